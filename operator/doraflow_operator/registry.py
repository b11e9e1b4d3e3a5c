"""`OrganizationRegistry` over the API service's HTTP API, authenticated with the service token."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from doraflow.core.security import derive_service_token
from doraflow.core.settings import Settings
from doraflow_operator.reconcile import Registration


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

    async def register(self, slug: str, name: str, teams: Sequence[Mapping[str, Any]]) -> Registration:
        response = await self._client.post("/api/v1/organizations", json={"slug": slug, "name": name})
        response.raise_for_status()
        body = response.json()
        admin_key = (body.get("admin_key") or {}).get("key")  # only in the 201 of the first call
        return Registration(organization_id=str(body["organization"]["id"]), admin_key=admin_key)

    async def issue_admin_key(self, organization_id: str, name: str) -> str:
        response = await self._client.post(
            f"/api/v1/organizations/{organization_id}/admin-keys", json={"name": name}
        )
        response.raise_for_status()
        key = response.json()["key"]
        return str(key)

    async def aclose(self) -> None:
        await self._client.aclose()
