"""The `doraflow` command: one subcommand per process (DESIGN.md §1).

This module only wires things together; each subcommand's work lives in its own package.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from doraflow.core import migrate
from doraflow.core.bus import create_bus
from doraflow.core.cache import create_cache
from doraflow.core.database import create_engine, create_session_factory
from doraflow.core.logging import configure_logging
from doraflow.core.resources import ResourceError
from doraflow.core.service import serve
from doraflow.core.settings import Settings, get_settings

logger = logging.getLogger("doraflow")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="doraflow", description="DORA and flow metrics, Kubernetes-native.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    migrate_cmd = commands.add_parser("migrate", help="apply database migrations (idempotent)")
    migrate_cmd.add_argument("--revision", default="head", help="target revision (default: head)")
    migrate_cmd.add_argument(
        "--downgrade", metavar="REVISION", help="revert to REVISION instead (`base` empties the schema)"
    )

    up = commands.add_parser("up", help="run everything in one process with embedded storage")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=8080)
    up.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="Organization/Integration resources (default: this git repo)",
    )

    api = commands.add_parser("api", help="run the API service and dashboard")
    api.add_argument("--host", default="0.0.0.0")  # noqa: S104 - in a Pod, listen on the Pod's address
    api.add_argument("--port", type=int, default=8080)

    process = commands.add_parser("process", help="run the data processor")
    process.add_argument("--host", default="0.0.0.0")  # noqa: S104 - in a Pod, listen on the Pod's address
    process.add_argument("--port", type=int, default=8002)

    collect = commands.add_parser("collect", help="run the collector of one Integration")
    collect.add_argument("kind", choices=["git", "work"], help="git providers or work trackers")
    collect.add_argument("--integration", required=True, metavar="NS/NAME")
    collect.add_argument(
        "--config",
        required=True,
        type=Path,
        metavar="FILE",
        help="YAML with the Integration (and Organization)",
    )
    collect.add_argument("--host", default="0.0.0.0")  # noqa: S104 - in a Pod, listen on the Pod's address
    collect.add_argument("--port", type=int, help="default: 8000 for git, 8001 for work")

    operator = commands.add_parser("operator", help="run the Kubernetes operator (kopf)")
    operator.add_argument("--liveness-port", type=int, default=8081)
    return parser


async def run_migrate(settings: Settings, revision: str, downgrade_to: str | None) -> None:
    engine = create_engine(settings)
    try:
        if downgrade_to:
            await migrate.downgrade(engine, downgrade_to)
            logger.info("schema downgraded", extra={"revision": downgrade_to})
        else:
            await migrate.upgrade(engine, revision)
            logger.info("schema up to date", extra={"revision": revision})
    finally:
        await engine.dispose()


async def run_api(settings: Settings, host: str, port: int) -> None:
    from doraflow.api import create_app

    engine = create_engine(settings)
    bus = create_bus(settings.kafka_bootstrap_servers)
    await bus.start()
    cache = create_cache(settings.redis_url.get_secret_value() if settings.redis_url else None)
    try:
        await serve(create_app(settings, create_session_factory(engine), cache, bus), host, port)
    finally:
        await bus.stop()
        await cache.close()
        await engine.dispose()


async def run_collect(
    settings: Settings, kind: str, key: str, config: Path, host: str, port: int | None
) -> None:
    from doraflow.collectors.credentials import load_credentials
    from doraflow.collectors.cursors import DatabaseCursorStore
    from doraflow.collectors.kubernetes_status import KubernetesStatusReporter
    from doraflow.collectors.service import default_port, load_integration, run_collector

    integration, organization = load_integration(config, key)
    if integration.spec.provider.kind != kind:
        raise SystemExit(
            f"{key} is a {integration.spec.provider.value} integration: run `doraflow collect "
            f"{integration.spec.provider.kind}`"
        )
    # In a cluster the collector reports into its Integration's status; elsewhere it only logs.
    reporter = (
        await KubernetesStatusReporter.in_cluster() if os.environ.get("KUBERNETES_SERVICE_HOST") else None
    )
    engine = create_engine(settings)
    bus = create_bus(settings.kafka_bootstrap_servers)
    await bus.start()
    try:
        await run_collector(
            settings,
            integration,
            load_credentials(),
            bus,
            DatabaseCursorStore(create_session_factory(engine)),
            host=host,
            port=port or default_port(integration),
            organization=organization.slug if organization else None,
            topic_settings=organization.spec.kafka if organization else None,
            status_reporter=reporter,
        )
    finally:
        await bus.stop()
        await engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command. A resource file that cannot work (`ResourceError`: unreadable, invalid, or
    naming what does not exist) ends it with its message on stderr and exit status 2, like a bad
    command-line argument: it is the user's input to fix, not a crash to debug."""
    args = build_parser().parse_args(argv)
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        _run(args, settings)
    except ResourceError as exc:
        print(f"doraflow {args.command}: {exc}", file=sys.stderr)
        return 2
    return 0


def _run(args: argparse.Namespace, settings: Settings) -> None:
    if args.command == "migrate":
        asyncio.run(run_migrate(settings, args.revision, args.downgrade))
    elif args.command == "up":
        from doraflow.embedded import run_up

        asyncio.run(run_up(settings, args.host, args.port, args.config))
    elif args.command == "api":
        asyncio.run(run_api(settings, args.host, args.port))
    elif args.command == "process":
        from doraflow.processor.service import serve_processor

        asyncio.run(serve_processor(settings, args.host, args.port))
    elif args.command == "collect":
        asyncio.run(run_collect(settings, args.kind, args.integration, args.config, args.host, args.port))
    elif args.command == "operator":
        from doraflow_operator.main import run_operator

        asyncio.run(run_operator(settings, liveness_port=args.liveness_port))


if __name__ == "__main__":
    raise SystemExit(main())
