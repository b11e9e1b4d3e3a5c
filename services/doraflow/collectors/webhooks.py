"""Webhooks: near-real-time syncs triggered by the provider, verified before anything is parsed.

A provider registers a `WebhookSource`: a verifier (is this delivery really from the provider?) and
a handler (which scope and resources does it concern?). The service mounts the sources that match
the integration's provider at `POST /webhooks/{source}`; a delivery that fails verification gets a
401 and a log line naming the source and the reason — never the payload, the signature or the
secret. A verified delivery only *triggers* a (debounced) sync of the affected scope: the data
itself always comes from the provider's API through the normal, cursor-guarded path, so a forged or
replayed webhook can at worst cause an extra sync.

GitHub signs with HMAC-SHA256 in `X-Hub-Signature-256`, Bitbucket Cloud with HMAC-SHA256 in
`X-Hub-Signature` (only when a secret is configured on the hook), GitLab echoes a shared token in
`X-Gitlab-Token`. Work trackers (issue 7) register theirs the same way: `register_webhook(...)`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from doraflow.collectors.base import Resource

Headers = Mapping[str, str]  # case-insensitive in the service (Starlette); use lower-case names in tests


@dataclass(frozen=True, slots=True)
class SyncRequest:
    """Sync `resources` of `scope` (the provider's repository/project name; None: every scope)."""

    scope: str | None
    resources: tuple[Resource, ...]


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    syncs: tuple[SyncRequest, ...] = ()
    status_code: int = 202
    body: dict[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)  # e.g. Asana's X-Hook-Secret handshake


# Returns None when the delivery is authentic, else the reason it is not (logged; no secrets in it).
Verifier = Callable[[Headers, bytes, str | None], str | None]
Handler = Callable[[Headers, bytes], WebhookOutcome]


@dataclass(frozen=True, slots=True)
class WebhookSource:
    name: str  # the path segment: /webhooks/{name}
    verify: Verifier
    handle: Handler
    providers: frozenset[str]  # integration providers whose collector accepts it


WEBHOOKS: dict[str, WebhookSource] = {}


def register_webhook(source: WebhookSource) -> None:
    WEBHOOKS[source.name] = source


def webhooks_for(provider: str) -> dict[str, WebhookSource]:
    return {name: source for name, source in WEBHOOKS.items() if provider in source.providers}


def header(headers: Headers, name: str) -> str | None:
    value = headers.get(name)
    return value if value is not None else headers.get(name.lower())


def parse_json(body: bytes) -> dict[str, Any]:
    """The payload as a JSON object; `ValueError` (→ 400) otherwise."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ValueError("the payload is not JSON") from None
    if not isinstance(payload, dict):
        raise ValueError("the payload is not a JSON object")
    return payload


# -- verifiers ---------------------------------------------------------------------------------------


def hmac_sha256_verifier(header_name: str, *, prefix: str = "sha256=", optional: bool = False) -> Verifier:
    """HMAC-SHA256 of the raw body, hex, in `header_name` (after `prefix`), compared in constant
    time. `optional`: a source whose hooks may have no secret (Bitbucket) is accepted unsigned when
    *we* have no secret configured either; with a secret configured, a signature is required."""

    def verify(headers: Headers, body: bytes, secret: str | None) -> str | None:
        if not secret:
            return None if optional else "no webhook secret is configured (DORAFLOW_WEBHOOK_SECRET)"
        signature = header(headers, header_name)
        if not signature:
            return f"missing {header_name} header"
        if not signature.startswith(prefix):
            return f"{header_name} is not an {prefix.rstrip('=')} signature"
        expected = prefix + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
            return f"{header_name} does not match the payload"
        return None

    return verify


def token_verifier(header_name: str) -> Verifier:
    """A shared token echoed in `header_name` (GitLab), compared in constant time."""

    def verify(headers: Headers, body: bytes, secret: str | None) -> str | None:
        if not secret:
            return "no webhook secret is configured (DORAFLOW_WEBHOOK_SECRET)"
        token = header(headers, header_name)
        if not token:
            return f"missing {header_name} header"
        if not hmac.compare_digest(token.encode(), secret.encode()):
            return f"{header_name} does not match"
        return None

    return verify


# -- the git forges ----------------------------------------------------------------------------------

_CODE = (Resource.COMMITS, Resource.BRANCHES_AND_TAGS)
_TAGS = (Resource.BRANCHES_AND_TAGS, Resource.DEPLOYMENTS)
_PRS = (Resource.PULL_REQUESTS,)
_DEPLOYS = (Resource.DEPLOYMENTS,)
_GIT_PROVIDERS = ("git",)  # a local-git integration may mirror a repository of any forge


def _outcome(scope: object, resources: tuple[Resource, ...], event: str) -> WebhookOutcome:
    if not resources:
        return WebhookOutcome(status_code=200, body={"accepted": False, "event": event, "reason": "ignored"})
    name = scope if isinstance(scope, str) and scope else None
    request = SyncRequest(name, resources)
    return WebhookOutcome(syncs=(request,), body={"accepted": True, "event": event})


GITHUB_EVENTS: dict[str, tuple[Resource, ...]] = {
    "pull_request": _PRS,
    "pull_request_review": _PRS,
    "pull_request_review_comment": _PRS,
    "deployment": _DEPLOYS,
    "deployment_status": _DEPLOYS,
    "workflow_run": _DEPLOYS,
    "release": _TAGS,
    "create": (Resource.BRANCHES_AND_TAGS,),
    "delete": (Resource.BRANCHES_AND_TAGS,),
}


def _github(headers: Headers, body: bytes) -> WebhookOutcome:
    event = header(headers, "X-GitHub-Event") or ""
    if event == "ping":
        return WebhookOutcome(status_code=200, body={"accepted": False, "event": "ping"})
    payload = parse_json(body)
    repository = payload.get("repository") or {}
    resources: tuple[Resource, ...]
    if event == "push":
        ref = str(payload.get("ref") or "")
        resources = _TAGS if ref.startswith("refs/tags/") else _CODE
    else:
        resources = GITHUB_EVENTS.get(event, ())
    return _outcome(repository.get("full_name"), resources, event)


GITLAB_EVENTS: dict[str, tuple[Resource, ...]] = {
    "Push Hook": _CODE,
    "Tag Push Hook": _TAGS,
    "Merge Request Hook": _PRS,
    "Note Hook": _PRS,
    "Deployment Hook": _DEPLOYS,
    "Release Hook": _TAGS,
    "Pipeline Hook": _DEPLOYS,
}


def _gitlab(headers: Headers, body: bytes) -> WebhookOutcome:
    event = header(headers, "X-Gitlab-Event") or ""
    payload = parse_json(body)
    project = payload.get("project") or {}
    return _outcome(project.get("path_with_namespace"), GITLAB_EVENTS.get(event, ()), event)


def _bitbucket(headers: Headers, body: bytes) -> WebhookOutcome:
    event = header(headers, "X-Event-Key") or ""
    payload = parse_json(body)
    repository = payload.get("repository") or {}
    resources: tuple[Resource, ...] = ()
    if event == "repo:push":
        changes = (payload.get("push") or {}).get("changes") or []
        kinds = {((change or {}).get("new") or {}).get("type") for change in changes}
        resources = tuple(dict.fromkeys((*(_TAGS if "tag" in kinds else ()), *_CODE)))
    elif event.startswith("pullrequest:"):
        resources = _PRS
    elif event.startswith("repo:commit_status"):
        resources = _DEPLOYS
    return _outcome(repository.get("full_name"), resources, event)


register_webhook(
    WebhookSource(
        "github", hmac_sha256_verifier("X-Hub-Signature-256"), _github, frozenset({"github", *_GIT_PROVIDERS})
    )
)
register_webhook(
    WebhookSource("gitlab", token_verifier("X-Gitlab-Token"), _gitlab, frozenset({"gitlab", *_GIT_PROVIDERS}))
)
register_webhook(
    WebhookSource(
        "bitbucket",
        hmac_sha256_verifier("X-Hub-Signature", optional=True),
        _bitbucket,
        frozenset({"bitbucket", *_GIT_PROVIDERS}),
    )
)
