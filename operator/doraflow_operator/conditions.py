"""Status conditions as the Kubernetes API conventions define them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

ConditionStatus = Literal["True", "False", "Unknown"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a reconcile concluded about one condition type."""

    type: str
    status: ConditionStatus
    reason: str  # CamelCase, machine-readable
    message: str  # for humans: what is wrong and what to do


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_conditions(
    current: Sequence[Mapping[str, Any]],
    verdicts: Sequence[Verdict],
    *,
    generation: int | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """Apply `verdicts` to `current`: `lastTransitionTime` moves only when a status flips, so
    `kubectl get` shows how long something has been broken, not when we last looked."""
    by_type = {str(condition.get("type")): dict(condition) for condition in current}
    for verdict in verdicts:
        previous = by_type.get(verdict.type)
        transitioned = previous is None or previous.get("status") != verdict.status
        by_type[verdict.type] = {
            "type": verdict.type,
            "status": verdict.status,
            "reason": verdict.reason,
            "message": verdict.message,
            "lastTransitionTime": rfc3339(now)
            if transitioned or previous is None
            else previous.get("lastTransitionTime", rfc3339(now)),
            "observedGeneration": generation,
        }
    return sorted(by_type.values(), key=lambda condition: str(condition["type"]))


def status_changed(current: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> bool:
    """Write status only when it changes: every write is an event for every watcher."""
    current = current or {}
    return any(current.get(key) != value for key, value in desired.items())
