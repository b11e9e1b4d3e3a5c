"""`doraflow operator`: run the kopf operator with our handlers."""

from __future__ import annotations

import kopf

from doraflow.core.settings import Settings


async def run_operator(settings: Settings, *, liveness_port: int = 8081) -> None:
    import doraflow_operator.handlers  # noqa: F401 - registers the handlers with kopf

    namespaces = settings.watch_namespaces
    await kopf.operator(
        clusterwide=not namespaces,
        namespaces=namespaces,
        standalone=True,  # one replica with a Recreate strategy: no peering needed
        liveness_endpoint=f"http://0.0.0.0:{liveness_port}/healthz",
    )
