"""HTTP routes: thin — parse, authorise, call a service, shape the answer."""

from __future__ import annotations

from fastapi import APIRouter

from doraflow.api.routes import analytics, api_keys, developers, ingest, organizations, repositories, teams


def api_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1")
    for module in (organizations, teams, repositories, developers, api_keys, analytics, ingest):
        router.include_router(module.router)
    return router
