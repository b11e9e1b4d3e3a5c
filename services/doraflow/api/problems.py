"""Every error the API returns is an RFC 9457 problem document (`application/problem+json`).

Why one place: clients (the operator, CI scripts, the dashboard) handle errors by `status` and
`type` without parsing prose, and a validation error must name the field that is wrong so a user
can fix a curl command without reading our source. Unexpected exceptions become a generic 500
problem that reveals nothing internal; the test suite asserts no input ever reaches it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://doraflow.dev/problems/"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "content-too-large",
    415: "unsupported-media-type",
    422: "validation-error",
    429: "rate-limited",
    500: "internal-error",
    503: "unavailable",
}


class FieldError(BaseModel):
    """One invalid input: where it is (`body`, `query`, `path`, `header`) and what is wrong."""

    field: str = Field(description="dotted path of the field, e.g. `name` or `repository.id`")
    location: str = Field(description="body, query, path or header")
    message: str
    type: str = Field(description="machine-readable error code")


class ProblemDocument(BaseModel):
    """The documented shape of every error response (for the OpenAPI schema)."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None


class Problem(Exception):  # noqa: N818 - named after RFC 9457 problem documents
    """Raise anywhere below a route to end the request with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str | None = None,
        *,
        slug: str | None = None,
        title: str | None = None,
        errors: Sequence[FieldError] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title or _TITLES.get(status, "Error"))
        self.status = status
        self.detail = detail
        self.slug = slug or _SLUGS.get(status, "error")
        self.title = title or _TITLES.get(status, "Error")
        self.errors = list(errors) if errors else None
        self.headers = dict(headers or {})


def not_found(kind: str, identifier: object) -> Problem:
    """Another organization's object is reported exactly like a missing one (DESIGN.md §8)."""
    return Problem(404, f"{kind} {identifier} not found")


def field_problem(field: str, message: str, *, location: str = "query", status: int = 422) -> Problem:
    """A validation problem for one named input, raised by services that check beyond the schema."""
    return Problem(
        status,
        f"{field}: {message}",
        slug="validation-error",
        errors=[FieldError(field=field, location=location, message=message, type="value_error")],
    )


def problem_response(
    status: int,
    *,
    detail: str | None = None,
    slug: str | None = None,
    title: str | None = None,
    instance: str | None = None,
    errors: Sequence[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + (slug or _SLUGS.get(status, "error")),
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = [error.model_dump() for error in errors]
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_errors(exc: RequestValidationError) -> list[FieldError]:
    errors: list[FieldError] = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        location = loc[0] if loc else "body"
        path = loc[1:]
        kind = str(error.get("type", "value_error"))
        message = str(error.get("msg", "invalid value"))
        if kind == "json_invalid":
            field = "body"
            ctx = error.get("ctx") or {}
            message = f"request body is not valid JSON ({ctx.get('error', 'parse error')})"
        elif kind == "missing" and location == "body" and not path:
            field = "body"
            message = "a JSON request body is required"
        else:
            # Pydantic puts union/validator tags into the location ("function-after[...]"):
            # users want the field names they sent.
            field = ".".join(part for part in path if "[" not in part) or location
        errors.append(FieldError(field=field, location=location, message=message, type=kind))
    return errors


def install_problem_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return problem_response(
            exc.status,
            detail=exc.detail,
            slug=exc.slug,
            title=exc.title,
            instance=request.url.path,
            errors=exc.errors,
            headers=exc.headers,
        )

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = _field_errors(exc)
        detail = "; ".join(f"{e.location} field '{e.field}': {e.message}" for e in errors[:5])
        return problem_response(
            422, detail=detail, slug="validation-error", instance=request.url.path, errors=errors
        )

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else None
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route for {request.method} {request.url.path}"
        return problem_response(
            exc.status_code, detail=detail, instance=request.url.path, headers=exc.headers
        )

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        logger.error(
            "unhandled error", exc_info=exc, extra={"path": request.url.path, "method": request.method}
        )
        return problem_response(500, detail="unexpected error; it has been logged", instance=request.url.path)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting problem documents for `statuses`."""
    return {
        status: {
            "model": ProblemDocument,
            "description": _TITLES.get(status, "Error"),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDocument"}}},
        }
        for status in statuses
    }


class BodyLimit:
    """Refuse request bodies over `max_bytes` with a problem document (413).

    A declared `Content-Length` over the limit is refused before anything is read; a chunked body
    is counted as it streams in and refused when it passes the limit (raised as an HTTP exception
    from `receive`, so the route's exception handlers render it). FastAPI's own `max_body_size`
    answers in plain text, which is why the limit lives here.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                declared = int(value) if value.isdigit() else -1
                if declared < 0 or declared > self.max_bytes:
                    too_large = declared > self.max_bytes
                    response = problem_response(
                        413 if too_large else 400,
                        detail=self._detail() if too_large else "invalid Content-Length header",
                        instance=scope.get("path"),
                    )
                    await response(scope, receive, send)
                    return
                break
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise StarletteHTTPException(413, self._detail())
            return message

        await self.app(scope, counted, send)

    def _detail(self) -> str:
        return f"request bodies are limited to {self.max_bytes} bytes"
