"""Every cache key name, in one place: the API builds keys with these functions when it fills the
cache, and the processor builds the matching patterns when new data lands. Two copies of a format
string would drift apart and leave stale metrics on screen, which is why nothing else may spell a key.

Key patterns (seed "Redis Cache Structure", extended per scope):

    org:{org_id}                              the organization as JSON
    team:{team_id}                            the team as JSON
    metrics:dora:{repo_id}:{period}           DORA metrics of one repository
    metrics:dora:org:{org_id}:{period}        ... of a whole organization
    metrics:dora:team:{team_id}:{period}      ... of a team
    metrics:flow:{repo_id|org:..|team:..}:{period}   flow metrics, same scopes
    ratelimit:{client}:{endpoint}             rate-limit counters

Repository keys have no scope word because the seed's pattern has none; a repository id is a UUID,
so it never collides with the words `org` and `team`. `period` is chosen by the API (a window and
options, e.g. `2025-01-01..2025-04-01:2023`); it may hold any character except that invalidation
only ever matches it with `*`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Literal

MetricFamily = Literal["dora", "flow"]
METRIC_FAMILIES: tuple[MetricFamily, ...] = ("dora", "flow")

_GLOB_SPECIAL = str.maketrans({c: f"\\{c}" for c in "*?[]\\"})


def escape_glob(value: str) -> str:
    """Escape Redis glob metacharacters so an id is matched literally inside a pattern."""
    return value.translate(_GLOB_SPECIAL)


def organization(org_id: uuid.UUID | str) -> str:
    return f"org:{org_id}"


def team(team_id: uuid.UUID | str) -> str:
    return f"team:{team_id}"


def repository_metrics(repository_id: uuid.UUID | str, period: str, family: MetricFamily = "dora") -> str:
    return f"metrics:{family}:{repository_id}:{period}"


def organization_metrics(org_id: uuid.UUID | str, period: str, family: MetricFamily = "dora") -> str:
    return f"metrics:{family}:org:{org_id}:{period}"


def team_metrics(team_id: uuid.UUID | str, period: str, family: MetricFamily = "dora") -> str:
    return f"metrics:{family}:team:{team_id}:{period}"


def rate_limit(client: str, endpoint: str) -> str:
    return f"ratelimit:{client}:{endpoint}"


# -- invalidation patterns ---------------------------------------------------------------------
# One pattern per scope covers both metric families (`metrics:*:…`): each pattern costs the cache a
# full SCAN, so fewer patterns is what keeps invalidation cheap.


def ingest_marker(
    kind: Literal["deployment", "incident"], org_id: uuid.UUID | str, source: str, item_id: str
) -> str:
    """Remembers an item reported through the ingest API, so a repeated report keeps its first start."""
    return f"ingest:{kind}:{org_id}:{source}:{item_id}"


def repository_metrics_pattern(repository_id: uuid.UUID | str) -> str:
    return f"metrics:*:{escape_glob(str(repository_id))}:*"


def organization_metrics_pattern(org_id: uuid.UUID | str) -> str:
    return f"metrics:*:org:{escape_glob(str(org_id))}:*"


def team_metrics_pattern(team_id: uuid.UUID | str) -> str:
    return f"metrics:*:team:{escape_glob(str(team_id))}:*"


def invalidation(
    *,
    organizations: Iterable[uuid.UUID | str] = (),
    repositories: Iterable[uuid.UUID | str] = (),
    teams: Iterable[uuid.UUID | str] = (),
) -> tuple[list[str], list[str]]:
    """What to drop when data of these entities changed: `(exact keys, glob patterns)`, sorted and
    without duplicates. Organization and team JSON documents carry counts and "last activity", so
    they go as well as the metric keys."""
    orgs = sorted({str(o) for o in organizations})
    repos = sorted({str(r) for r in repositories})
    team_ids = sorted({str(t) for t in teams})
    exact = [organization(o) for o in orgs] + [team(t) for t in team_ids]
    patterns = (
        [organization_metrics_pattern(o) for o in orgs]
        + [team_metrics_pattern(t) for t in team_ids]
        + [repository_metrics_pattern(r) for r in repos]
    )
    return exact, patterns
