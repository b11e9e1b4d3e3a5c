"""Event builders for the processor tests: realistic, deterministic envelopes as bytes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson

from doraflow.core.bus import Message
from doraflow.core.events import (
    SCHEMAS,
    CodeReviewData,
    CommitData,
    DeploymentData,
    EventData,
    IncidentData,
    PersonRef,
    PullRequestData,
    RepositoryRef,
    SprintData,
    TransitionData,
    WorkItemData,
    make_event,
    schema_for,
    topic_name,
)

PREFIX = "doraflow"
ORG = "acme"
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
COLLECTED = datetime(2025, 6, 1, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def sha(n: int) -> str:
    return f"{n:040x}"


def repo(name: str = "acme/api", provider: str = "github", service: str | None = None) -> RepositoryRef:
    return RepositoryRef(
        provider=provider,
        id=name.replace("/", "-"),
        name=name,
        url=f"https://{provider}.com/{name}",
        default_branch="main",
        service=service,
    )


def person(n: int = 1, *, email: bool = True, username: bool = True) -> PersonRef:
    return PersonRef(
        email=f"dev{n}@acme.com" if email else None,
        name=f"Dev {n}",
        username=f"dev{n}" if username else None,
    )


def commit(
    n: int, *, repository: RepositoryRef | None = None, author: PersonRef | None = None, **kw: Any
) -> CommitData:
    return CommitData(
        repository=repository or repo(),
        sha=sha(n),
        author=author or person(n % 3),
        authored_at=kw.pop("authored_at", at(n)),
        committed_at=kw.pop("committed_at", at(n)),
        message=kw.pop("message", f"change {n}"),
        additions=kw.pop("additions", 10 + n),
        deletions=kw.pop("deletions", n % 5),
        files_changed=kw.pop("files_changed", 1 + n % 4),
        parents=kw.pop("parents", [sha(n + 100_000)]),
        **kw,
    )


def pull_request(number: int, *, state: str = "merged", **kw: Any) -> PullRequestData:
    merged = state == "merged"
    return PullRequestData(
        repository=kw.pop("repository", repo()),
        number=number,
        title=kw.pop("title", f"PR {number}"),
        author=kw.pop("author", person(number % 3)),
        state=state,
        created_at=kw.pop("created_at", at(number)),
        updated_at=kw.pop("updated_at", at(number + 60)),
        merged_at=kw.pop("merged_at", at(number + 60) if merged else None),
        merge_commit_sha=kw.pop("merge_commit_sha", sha(number) if merged else None),
        commit_shas=kw.pop("commit_shas", [sha(number)]),
        additions=kw.pop("additions", 20),
        deletions=kw.pop("deletions", 5),
        **kw,
    )


def review(
    pr: int, review_id: str, *, reviewer: PersonRef | None = None, minutes: float = 30, **kw: Any
) -> CodeReviewData:
    return CodeReviewData(
        repository=kw.pop("repository", repo()),
        pull_request_number=pr,
        review_id=review_id,
        reviewer=reviewer or person(9),
        state=kw.pop("state", "approved"),
        submitted_at=at(pr + minutes),
        comments_count=kw.pop("comments_count", 2),
        **kw,
    )


def deployment(
    deployment_id: str,
    shas: list[str],
    *,
    minutes: float,
    status: str = "success",
    environment: str = "production",
    **kw: Any,
) -> DeploymentData:
    return DeploymentData(
        repository=kw.pop("repository", repo()),
        deployment_id=deployment_id,
        environment=environment,
        is_production=kw.pop("is_production", environment == "production"),
        status=status,
        started_at=kw.pop("started_at", at(minutes - 5)),
        finished_at=kw.pop("finished_at", at(minutes) if status != "in_progress" else None),
        revision=kw.pop("revision", shas[-1] if shas else None),
        commit_shas=shas,
        **kw,
    )


def incident(
    external_id: str, *, minutes: float, service: str | None = "acme/api", **kw: Any
) -> IncidentData:
    return IncidentData(
        external_id=external_id,
        title=f"incident {external_id}",
        severity="sev2",
        service=service,
        created_at=at(minutes),
        resolved_at=kw.pop("resolved_at", at(minutes + 45)),
        **kw,
    )


def work_item(external_id: str, *, minutes: float = 0, **kw: Any) -> WorkItemData:
    return WorkItemData(
        project="ACME",
        external_id=external_id,
        key=f"ACME-{external_id}",
        title=f"issue {external_id}",
        issue_type="Story",
        status=kw.pop("status", "In Progress"),
        status_category=kw.pop("status_category", "in_progress"),
        assignee=kw.pop("assignee", person(1)),
        story_points=kw.pop("story_points", 3.0),
        labels=kw.pop("labels", ["backend"]),
        created_at=at(minutes),
        updated_at=kw.pop("updated_at", at(minutes + 10)),
        **kw,
    )


def transition(
    issue: str,
    transition_id: str,
    *,
    minutes: float,
    to: Literal["todo", "in_progress", "done"] = "in_progress",
) -> TransitionData:
    return TransitionData(
        project="ACME",
        issue_external_id=issue,
        transition_id=transition_id,
        from_status="To Do",
        to_status="In Progress" if to == "in_progress" else "Done",
        from_category="todo",
        to_category=to,
        transitioned_at=at(minutes),
        author=person(1),
    )


def sprint(external_id: str, issues: list[str], *, completed: list[str] | None = None) -> SprintData:
    return SprintData(
        project="ACME",
        external_id=external_id,
        board="ACME board",
        name=f"Sprint {external_id}",
        state="active",
        start_at=at(0),
        end_at=at(14 * 24 * 60),
        issue_ids=issues,
        completed_issue_ids=completed or [],
    )


SOURCES = {"git.": "github", "jira.": "jira", "incident": "pagerduty"}


def source_of(data: EventData) -> str:
    schema = schema_for(data)
    return next(source for prefix, source in SOURCES.items() if schema.startswith(prefix))


def encode(data: EventData, *, organization: str = ORG, source: str | None = None) -> bytes:
    return make_event(
        data,
        organization=organization,
        integration="default/test",
        source=source or source_of(data),
        collected_at=COLLECTED,
    ).to_bytes()


def topic_for(data: EventData, organization: str = ORG, prefix: str = PREFIX) -> str:
    return topic_name(prefix, organization, SCHEMAS[schema_for(data)].topic_suffix)


def topic_of(value: bytes, organization: str = ORG, prefix: str = PREFIX) -> str:
    """The topic an encoded event belongs on (its schema's), or the commits topic for garbage."""
    try:
        schema = orjson.loads(value)["schema"]
        return topic_name(prefix, organization, SCHEMAS[schema].topic_suffix)
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return topic_name(prefix, organization, "git.commits")


def message(
    data: EventData | bytes,
    *,
    topic: str | None = None,
    offset: int = 0,
    partition: int = 0,
    organization: str = ORG,
) -> Message:
    if isinstance(data, bytes):
        return Message(
            topic or topic_of(data, organization),
            partition,
            offset,
            f"{organization}/x",
            data,
            0,
        )
    return Message(
        topic or topic_for(data, organization),
        partition,
        offset,
        f"{organization}/x",
        encode(data, organization=organization),
        0,
    )


def deployment_key(deployment_id: str, repository: RepositoryRef | None = None) -> str:
    """The natural key the processor derives a deployment's row id from (scoped by repository)."""
    ref = repository or repo()
    return f"{ref.provider}:{ref.id}:{deployment_id}"
