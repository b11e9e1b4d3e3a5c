"""Small builders for hand-computed metric fixtures.

All fixtures hang off ``T0``, Monday 2024-03-04 00:00 UTC, so that "day 2, 10:00" in a test
comment is ``at(2, 10)`` in code and every expected number can be checked by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from doraflow.metrics import Deployment, Window

T0 = datetime(2024, 3, 4, tzinfo=UTC)
MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0
WEEK = 7 * DAY


def at(days: float = 0, hours: float = 0, minutes: float = 0) -> datetime:
    """``T0`` + the given offset: ``at(1, 12)`` is day 1 at 12:00 UTC."""
    return T0 + timedelta(days=days, hours=hours, minutes=minutes)


def window(days: float, start_days: float = 0) -> Window:
    """The window ``[at(start_days), at(start_days + days))``."""
    return Window(at(start_days), at(start_days + days))


def deploy(
    deployment_id: str,
    finished_at: datetime,
    revision: str,
    commits: tuple[str, ...] = (),
    *,
    service: str = "api",
    environment: str = "production",
    succeeded: bool = True,
    production: bool = True,
    hotfix: bool = False,
    rollback: bool = False,
) -> Deployment:
    return Deployment(
        deployment_id=deployment_id,
        service=service,
        environment=environment,
        revision=revision,
        finished_at=finished_at,
        succeeded=succeeded,
        is_production=production,
        commit_shas=commits,
        is_hotfix=hotfix,
        is_rollback=rollback,
    )
