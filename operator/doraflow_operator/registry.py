"""`OrganizationRegistry` over the API service's HTTP API, authenticated with the service token."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from doraflow.core.security import derive_service_token
from doraflow.core.settings import Settings
from doraflow_operator.reconcile import Registration, TeamSync


class ApiError(Exception):
    """The API refused a call; the message carries its own explanation (problem+json `detail`)."""


def _raise_for_status(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body = response.json()
        detail = body.get("detail") if isinstance(body, dict) else None
    except ValueError:
        detail = None
    raise ApiError(
        f"{response.status_code} from {response.request.url.path}: {detail or response.reason_phrase}"
    )


class ApiRegistry:
    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        if settings.api_secret_key is None:
            raise ValueError(
                "DORAFLOW_API_SECRET_KEY is required: the operator derives its API token from it"
            )
        token = derive_service_token(settings.api_secret_key.get_secret_value())
        self._client = httpx.AsyncClient(
            base_url=settings.api_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=15.0,
            transport=transport,
        )

    async def register(self, slug: str, name: str) -> Registration:
        response = await self._client.post("/api/v1/organizations", json={"slug": slug, "name": name})
        _raise_for_status(response)
        body = response.json()
        admin_key = (body.get("admin_key") or {}).get("key")  # only in the 201 of the first call
        return Registration(organization_id=str(body["organization"]["id"]), admin_key=admin_key)

    async def issue_admin_key(self, organization_id: str, name: str) -> str:
        response = await self._client.post(
            f"/api/v1/organizations/{organization_id}/admin-keys", json={"name": name}
        )
        _raise_for_status(response)
        key = response.json()["key"]
        return str(key)

    async def sync_teams(
        self, organization_id: str, managed_by: str, teams: Sequence[Mapping[str, Any]]
    ) -> TeamSync:
        """`PUT /api/v1/organizations/{id}/teams`: the complete declaration, every time."""
        response = await self._client.put(
            f"/api/v1/organizations/{organization_id}/teams",
            json={"managed_by": managed_by, "teams": list(teams)},
        )
        _raise_for_status(response)
        body = response.json()
        return TeamSync(
            teams=len(body["teams"]),
            changed=bool(body["changed"]),
            ambiguous=tuple(
                f"{team['slug']}/{member}" for team in body["teams"] for member in team["ambiguous_members"]
            ),
            waiting=tuple(
                f"{team['slug']}/{pattern}"
                for team in body["teams"]
                for pattern in team["waiting_repositories"]
            ),
            removed=tuple(body["removed"]),
        )

    async def aclose(self) -> None:
        await self._client.aclose()
