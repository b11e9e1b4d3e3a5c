"""Cache key names shared by the API and the processor."""

from __future__ import annotations

import fnmatch
import uuid

from doraflow.core.cache import keys

REPO = uuid.UUID("11111111-1111-1111-1111-111111111111")
ORG = uuid.UUID("22222222-2222-2222-2222-222222222222")
TEAM = uuid.UUID("33333333-3333-3333-3333-333333333333")


def test_key_formats_follow_the_seed() -> None:
    assert keys.organization(ORG) == f"org:{ORG}"
    assert keys.team(TEAM) == f"team:{TEAM}"
    assert keys.repository_metrics(REPO, "90d") == f"metrics:dora:{REPO}:90d"
    assert keys.organization_metrics(ORG, "90d") == f"metrics:dora:org:{ORG}:90d"
    assert keys.team_metrics(TEAM, "90d", "flow") == f"metrics:flow:team:{TEAM}:90d"
    assert keys.rate_limit("10.0.0.1", "/api/v1/metrics") == "ratelimit:10.0.0.1:/api/v1/metrics"


def test_invalidation_patterns_match_exactly_their_scope() -> None:
    exact, patterns = keys.invalidation(organizations=[ORG], repositories=[REPO], teams=[TEAM])
    assert exact == [f"org:{ORG}", f"team:{TEAM}"]
    cached = [
        keys.repository_metrics(REPO, "2025-01-01..2025-04-01"),
        keys.repository_metrics(REPO, "30d", "flow"),
        keys.organization_metrics(ORG, "7d"),
        keys.team_metrics(TEAM, "7d"),
    ]
    for key in cached:
        assert any(fnmatch.fnmatchcase(key, p) for p in patterns), key
    other = uuid.uuid4()
    untouched = [
        keys.repository_metrics(other, "7d"),
        keys.organization_metrics(other, "7d"),
        keys.team_metrics(other, "7d"),
        keys.rate_limit("x", "y"),
    ]
    for key in untouched:
        assert not any(fnmatch.fnmatchcase(key, p) for p in patterns), key


def test_invalidation_deduplicates_and_sorts() -> None:
    exact, patterns = keys.invalidation(organizations=[ORG, str(ORG)], repositories=[REPO, REPO])
    assert exact == [f"org:{ORG}"]
    assert len(patterns) == 2


def test_glob_metacharacters_are_escaped() -> None:
    assert keys.escape_glob("a*b?[c]\\") == "a\\*b\\?\\[c\\]\\\\"
    assert keys.repository_metrics_pattern("x*") == "metrics:*:x\\*:*"
