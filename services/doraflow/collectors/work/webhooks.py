"""Webhooks of the work trackers, registered with the runtime's webhook registry
(`doraflow.collectors.webhooks`), which mounts them at `POST /webhooks/{jira,linear,asana}`.

As for the git forges, a verified delivery only triggers a debounced sync of the affected project
(or of every project when the payload does not say which); the data always comes from the API.

* Jira Cloud signs deliveries of webhooks registered with a secret: `X-Hub-Signature:
  sha256=<hex HMAC-SHA256 of the raw body>`.
* Linear signs every delivery: `Linear-Signature: <hex HMAC-SHA256 of the raw body>`, and puts
  `webhookTimestamp` (ms) in the payload; deliveries older than `LINEAR_MAX_AGE` are refused as
  replays.
* Asana chooses the secret itself: the first request of a new webhook carries `X-Hook-Secret`,
  which must be echoed back (the handshake); later deliveries carry `X-Hook-Signature`, the hex
  HMAC-SHA256 of the body with that secret. Secrets from handshakes are kept in memory (the last
  few), and the configured webhook secret is accepted too — set it to the handshake's value to
  keep verifying after a restart. Accepting a handshake triggers nothing by itself.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import deque
from typing import Any

from doraflow.collectors.base import Resource
from doraflow.collectors.webhooks import (
    Headers,
    SyncRequest,
    WebhookOutcome,
    WebhookSource,
    header,
    hmac_sha256_verifier,
    parse_json,
    register_webhook,
)

LINEAR_MAX_AGE = 300.0  # seconds
ASANA_PINNED_SECRETS = 16

_ISSUES = (Resource.ISSUES,)
_SPRINTS = (Resource.SPRINTS,)


def _ignored(event: str) -> WebhookOutcome:
    return WebhookOutcome(status_code=200, body={"accepted": False, "event": event, "reason": "ignored"})


def _accepted(event: str, requests: list[SyncRequest]) -> WebhookOutcome:
    return WebhookOutcome(syncs=tuple(requests), body={"accepted": True, "event": event})


# -- Jira ---------------------------------------------------------------------------------------------


def jira_handle(headers: Headers, body: bytes) -> WebhookOutcome:
    payload = parse_json(body)
    event = str(payload.get("webhookEvent") or "")
    if event.startswith("jira:issue_"):
        issue = payload.get("issue") or {}
        project = ((issue.get("fields") or {}).get("project") or {}).get("key")
        return _accepted(event, [SyncRequest(project if isinstance(project, str) else None, _ISSUES)])
    if event.startswith("issuelink_"):
        return _accepted(event, [SyncRequest(None, _ISSUES)])
    if event.startswith(("sprint_", "board_")):
        return _accepted(event, [SyncRequest(None, _SPRINTS)])
    return _ignored(event)


# -- Linear -------------------------------------------------------------------------------------------

_linear_signature = hmac_sha256_verifier("Linear-Signature", prefix="")


def linear_verify(headers: Headers, body: bytes, secret: str | None) -> str | None:
    reason = _linear_signature(headers, body, secret)
    if reason is not None:
        return reason
    try:
        stamp = parse_json(body).get("webhookTimestamp")
    except ValueError:
        return None  # authentic but not JSON: the handler answers 400
    if isinstance(stamp, int | float) and abs(time.time() - stamp / 1000.0) > LINEAR_MAX_AGE:
        return "webhookTimestamp is too old (a replayed delivery?)"
    return None


def linear_handle(headers: Headers, body: bytes) -> WebhookOutcome:
    payload = parse_json(body)
    kind = str(payload.get("type") or "")
    event = f"{kind}.{payload.get('action') or ''}"
    data: dict[str, Any] = payload.get("data") or {}
    team = data.get("teamId") or (data.get("team") or {}).get("id")
    if kind in ("Issue", "Comment", "IssueLabel", "Attachment", "Reaction"):
        targets = [data.get("projectId"), team] if kind == "Issue" else [team]
        scopes: list[str | None] = [s for s in targets if isinstance(s, str) and s] or [None]
        return _accepted(event, [SyncRequest(scope, _ISSUES) for scope in scopes])
    if kind == "Cycle":
        return _accepted(event, [SyncRequest(team if isinstance(team, str) else None, _SPRINTS)])
    return _ignored(event)


# -- Asana --------------------------------------------------------------------------------------------

_asana_secrets: deque[str] = deque(maxlen=ASANA_PINNED_SECRETS)


def asana_verify(headers: Headers, body: bytes, secret: str | None) -> str | None:
    handshake = header(headers, "X-Hook-Secret")
    signature = header(headers, "X-Hook-Signature")
    if handshake and not signature:
        return None  # the handshake of a new webhook: echoed by the handler, syncs nothing
    if not signature:
        return "missing X-Hook-Signature header"
    candidates = [s for s in (secret, *_asana_secrets) if s]
    if not candidates:
        return "no webhook secret is configured and no Asana handshake was seen"
    given = signature.strip().lower().encode()
    for candidate in candidates:
        expected = hmac.new(candidate.encode(), body, hashlib.sha256).hexdigest().encode()
        if hmac.compare_digest(expected, given):
            return None
    return "X-Hook-Signature does not match the payload"


def asana_handle(headers: Headers, body: bytes) -> WebhookOutcome:
    handshake = header(headers, "X-Hook-Secret")
    if handshake and not header(headers, "X-Hook-Signature"):
        if handshake not in _asana_secrets:
            _asana_secrets.append(handshake)
        return WebhookOutcome(
            status_code=200,
            body={"accepted": False, "event": "handshake"},
            headers={"X-Hook-Secret": handshake},
        )
    payload = parse_json(body) if body else {}
    events = payload.get("events") or []
    projects: list[str] = []
    for item in events if isinstance(events, list) else []:
        for ref in ((item or {}).get("parent"), (item or {}).get("resource")):
            if not isinstance(ref, dict) or ref.get("resource_type") != "project":
                continue
            gid = str(ref.get("gid") or "")
            if gid and gid not in projects:
                projects.append(gid)
    if not events:
        return _ignored("heartbeat")
    return _accepted("events", [SyncRequest(p, _ISSUES) for p in projects] or [SyncRequest(None, _ISSUES)])


def forget_asana_secrets() -> None:
    """Tests: start without pinned handshake secrets."""
    _asana_secrets.clear()


register_webhook(
    WebhookSource("jira", hmac_sha256_verifier("X-Hub-Signature"), jira_handle, frozenset({"jira"}))
)
register_webhook(WebhookSource("linear", linear_verify, linear_handle, frozenset({"linear"})))
register_webhook(WebhookSource("asana", asana_verify, asana_handle, frozenset({"asana"})))
