"""Pure parts of the GitHub client: URL layouts and how GitHub's objects map to our events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from doraflow.collectors.git.github import (
    _deployment_candidate,
    _tag_candidate,
    api_urls,
    format_time,
    parse_time,
)
from doraflow.core.events import RepositoryRef


@pytest.mark.parametrize(
    ("base_url", "rest", "graphql"),
    [
        (None, "https://api.github.com", "https://api.github.com/graphql"),
        ("https://api.github.com", "https://api.github.com", "https://api.github.com/graphql"),
        ("https://github.com/", "https://api.github.com", "https://api.github.com/graphql"),
        ("https://ghe.acme.test/api/v3", "https://ghe.acme.test/api/v3", "https://ghe.acme.test/api/graphql"),
        (
            "https://ghe.acme.test/api/v3/",
            "https://ghe.acme.test/api/v3",
            "https://ghe.acme.test/api/graphql",
        ),
        ("https://ghe.acme.test", "https://ghe.acme.test/api/v3", "https://ghe.acme.test/api/graphql"),
        (
            "https://ghe.acme.test/api/graphql",
            "https://ghe.acme.test/api/v3",
            "https://ghe.acme.test/api/graphql",
        ),
        ("http://127.0.0.1:8080/api/v3", "http://127.0.0.1:8080/api/v3", "http://127.0.0.1:8080/api/graphql"),
        ("https://api.acme.ghe.com", "https://api.acme.ghe.com", "https://api.acme.ghe.com/graphql"),
    ],
)
def test_rest_and_graphql_urls_for_github_com_and_enterprise_server(
    base_url: str | None, rest: str, graphql: str
) -> None:
    assert api_urls(base_url) == (rest, graphql)


def test_times_round_trip_in_utc() -> None:
    moment = parse_time("2024-03-01T10:00:00Z")
    assert moment == datetime(2024, 3, 1, 10, tzinfo=UTC)
    assert format_time(parse_time("2024-03-01T12:00:00+02:00")) == "2024-03-01T10:00:00Z"


DEPLOYMENT: dict[str, Any] = {
    "id": 7,
    "node_id": "DE_1",
    "sha": "a" * 40,
    "ref": "main",
    "task": "deploy",
    "environment": "production",
    "description": "Deploy request from hubot",
    "creator": {"login": "hubot"},
    "created_at": "2024-03-01T10:00:00Z",
}


def status(state: str, minute: int, status_id: int) -> dict[str, Any]:
    return {
        "id": status_id,
        "state": state,
        "created_at": f"2024-03-01T10:{minute:02d}:00Z",
        "log_url": "https://ci/1",
    }


@pytest.mark.parametrize(
    ("statuses", "expected", "finished_minute"),
    [
        ([], "in_progress", None),
        ([status("queued", 1, 1), status("in_progress", 2, 2)], "in_progress", None),
        ([status("in_progress", 1, 1), status("success", 5, 2)], "success", 5),
        ([status("in_progress", 1, 1), status("failure", 5, 2)], "failed", 5),
        ([status("error", 5, 2)], "failed", 5),
        # A later deployment to the environment marks this one inactive: it had succeeded.
        ([status("success", 5, 2), status("inactive", 30, 3)], "success", 5),
        ([status("inactive", 30, 3)], "success", 30),
    ],
)
def test_deployment_outcome_from_statuses(
    statuses: list[dict[str, Any]], expected: str, finished_minute: int | None
) -> None:
    candidate = _deployment_candidate(DEPLOYMENT, statuses)
    assert candidate.status == expected
    if finished_minute is None:
        assert candidate.finished_at is None
    else:
        assert candidate.finished_at == datetime(2024, 3, 1, 10, finished_minute, tzinfo=UTC)
    assert candidate.deployment_id == "github:deployment:7"
    assert candidate.deployed_by is not None
    assert candidate.deployed_by.username == "hubot"


REPO = RepositoryRef(provider="github", id="1", name="acme/lib")


def test_annotated_tag_deploys_at_the_tagger_date_lightweight_at_the_commit_date() -> None:
    commit = {
        "__typename": "Commit",
        "oid": "b" * 40,
        "committedDate": "2024-01-01T00:00:00Z",
        "message": "m",
    }
    annotated = {
        "name": "v1.0.0",
        "target": {
            "__typename": "Tag",
            "oid": "c" * 40,
            "message": "Release\n\nnotes",
            "tagger": {"date": "2024-01-02T00:00:00Z", "name": "Alice", "email": "a@x.test"},
            "target": commit,
        },
    }
    candidate, ordered = _tag_candidate(REPO, annotated)
    assert candidate is not None
    assert candidate.sha == "b" * 40
    assert candidate.started_at == datetime(2024, 1, 2, tzinfo=UTC)
    assert ordered == datetime(2024, 1, 1, tzinfo=UTC)
    assert candidate.text == "v1.0.0 Release"
    lightweight, _ = _tag_candidate(REPO, {"name": "v1.0.1", "target": commit})
    assert lightweight is not None
    assert lightweight.started_at == datetime(2024, 1, 1, tzinfo=UTC)
    assert lightweight.deployed_by is None
    tree, _ = _tag_candidate(REPO, {"name": "v0", "target": {"__typename": "Tree", "oid": "d" * 40}})
    assert tree is None
