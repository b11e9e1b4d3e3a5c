"""Transform: validated events → one deduplicated set of rows per table, still keyed by natural keys.

Why dedupe here: PostgreSQL refuses `INSERT … ON CONFLICT DO UPDATE` that touches the same row twice
in one statement, and a batch often holds several versions of one item (a pull request opened,
reviewed and merged within the linger). The version kept is the one the database would keep after
all of them (see `storage` for the matching SQL guards), so a batch and its events one by one end
in the same state:

* pull requests: latest `updated_at`, then the further state (open < closed < merged);
* deployments: latest of finished/started, then a final status over `in_progress`;
* work items: latest `updated_at`; incidents: latest of resolved/created;
* commits: the last one, keeping what an earlier version knew and the last one does not (line
  counts, pull request number), as the storage upsert does;
* everything else (reviews, sprints, transitions): the last one in the batch — the same
  item stays in one partition, so the last one read is the last one published.

Values are also made storable: integers clamped to the column's range, text truncated to the
column's length and stripped of NUL characters (which PostgreSQL text cannot hold), so a valid event
never fails on a database constraint.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from doraflow.core.events import (
    CodeReviewData,
    CommitData,
    DeploymentData,
    IncidentData,
    PersonRef,
    PullRequestData,
    RepositoryRef,
    SprintData,
    TransitionData,
    WorkItemData,
)
from doraflow.processor.identity import PersonKey
from doraflow.processor.refs import REF_TYPES, RefsPlan
from doraflow.processor.validation import Accepted

INT4_MAX = 2**31 - 1
# Payload types with a storage rule; an event of any other registered schema is dead-lettered.
SUPPORTED: frozenset[type] = frozenset(
    {
        CommitData,
        PullRequestData,
        CodeReviewData,
        DeploymentData,
        WorkItemData,
        SprintData,
        TransitionData,
        IncidentData,
        *REF_TYPES,
    }
)
PR_STATE_RANK = {"open": 0, "closed": 1, "merged": 2}

RepoKey = tuple[str, str, str]  # (organization slug, provider, provider's repository id)
SourceKey = tuple[str, str, str]  # (organization slug, source, external id)

T = TypeVar("T")


def clamp(value: int | None) -> int | None:
    return None if value is None else min(value, INT4_MAX)


def text(value: str | None, limit: int | None = None) -> str | None:
    if value is None:
        return None
    if "\x00" in value:
        value = value.replace("\x00", "")
    return value[:limit] if limit is not None else value


@dataclass(slots=True)
class Staged(Generic[T]):
    data: T
    organization: str
    source: str
    integration: str
    rank: tuple[Any, ...]
    person: PersonKey | None = None  # author / reviewer / assignee / deployer
    repository: RepoKey | None = None
    collected_at: datetime | None = None  # sprints: a deterministic time for issue placeholders


@dataclass(slots=True)
class RepositoryStage:
    ref: RepositoryRef
    integration: str


@dataclass(slots=True)
class Plan:
    """Everything one batch writes, deduplicated by natural key."""

    organizations: set[str] = field(default_factory=set)
    repositories: dict[RepoKey, RepositoryStage] = field(default_factory=dict)
    persons: set[PersonKey] = field(default_factory=set)
    commits: dict[tuple[RepoKey, str], Staged[CommitData]] = field(default_factory=dict)
    pull_requests: dict[tuple[RepoKey, int], Staged[PullRequestData]] = field(default_factory=dict)
    reviews: dict[tuple[RepoKey, str], Staged[CodeReviewData]] = field(default_factory=dict)
    deployments: dict[SourceKey, Staged[DeploymentData]] = field(default_factory=dict)
    deployment_shas: dict[SourceKey, set[str]] = field(default_factory=dict)
    work_items: dict[SourceKey, Staged[WorkItemData]] = field(default_factory=dict)
    sprints: dict[SourceKey, Staged[SprintData]] = field(default_factory=dict)
    transitions: dict[tuple[SourceKey, str], Staged[TransitionData]] = field(default_factory=dict)
    incidents: dict[SourceKey, Staged[IncidentData]] = field(default_factory=dict)
    refs: RefsPlan = field(default_factory=RefsPlan)  # branches, tags, releases, contributors
    schemas: Counter[str] = field(default_factory=Counter)

    def __len__(self) -> int:
        return sum(self.schemas.values())


def _keep(table: dict[Any, Staged[Any]], key: Any, staged: Staged[Any]) -> None:
    current = table.get(key)
    if current is None or staged.rank >= current.rank:
        table[key] = staged


def _occurred(*candidates: datetime | None) -> datetime:
    for candidate in candidates:
        if candidate is not None:
            return candidate
    raise ValueError("no timestamp")  # unreachable: every schema has a required time


class PlanBuilder:
    """Accumulates a batch's events into a `Plan`, one event at a time (so the caller can build
    a batch in slices and let other work run in between)."""

    def __init__(self) -> None:
        self.plan = Plan()
        self._position = 0
        # The same few people appear on most events of a batch: normalise each once.
        self._people: dict[tuple[str, str, str | None, str | None, str | None], PersonKey] = {}

    def _person(self, org: str, provider: str, who: PersonRef | None) -> PersonKey | None:
        if who is None:
            return None
        raw = (org, provider, who.email, who.username, who.name)
        key = self._people.get(raw)
        if key is None:
            key = self._people[raw] = PersonKey.of(org, provider, who)
            self.plan.persons.add(key)
        return key

    def _repository(self, org: str, ref: RepositoryRef, integration: str) -> RepoKey:
        key = (org, ref.provider, ref.id)
        self.plan.repositories[key] = RepositoryStage(ref, integration)
        return key

    def add(self, accepted: Accepted) -> None:
        envelope, data = accepted.event.envelope, accepted.event.data
        self._position += 1
        self.plan.organizations.add(accepted.organization)
        self.plan.schemas[envelope.schema_] += 1
        # Dispatch on the exact type: `isinstance` against pydantic models goes through
        # ABCMeta.__instancecheck__, which a chain of checks per event makes measurably slow.
        handler = _HANDLERS.get(type(data))
        if handler is None:  # a schema added to core.events without a storage rule must not pass
            raise TypeError(f"no storage rule for {type(data).__name__}")
        handler(self, accepted.organization, envelope.source, envelope.integration, data, envelope)

    def _commit(self, org: str, source: str, integration: str, data: Any, envelope: Any) -> None:
        repo = self._repository(org, data.repository, integration)
        author = self._person(org, data.repository.provider, data.author)
        previous = self.plan.commits.get((repo, data.sha))
        if previous is not None:
            data = _merge_commit(previous.data, data)
        staged = Staged(data, org, source, integration, (self._position,), author, repo)
        self.plan.commits[(repo, data.sha)] = staged

    def _pull_request(self, org: str, source: str, integration: str, data: Any, envelope: Any) -> None:
        repo = self._repository(org, data.repository, integration)
        rank = (_occurred(data.updated_at, data.created_at), PR_STATE_RANK[data.state], self._position)
        author = self._person(org, data.repository.provider, data.author)
        _keep(
            self.plan.pull_requests,
            (repo, data.number),
            Staged(data, org, source, integration, rank, author, repo),
        )

    def _review(self, org: str, source: str, integration: str, data: Any, envelope: Any) -> None:
        repo = self._repository(org, data.repository, integration)
        reviewer = self._person(org, data.repository.provider, data.reviewer)
        staged = Staged(data, org, source, integration, (self._position,), reviewer, repo)
        self.plan.reviews[(repo, data.review_id)] = staged

    def _deployment(self, org: str, source: str, integration: str, data: Any, envelope: Any) -> None:
        repo = self._repository(org, data.repository, integration) if data.repository else None
        provider = data.repository.provider if data.repository is not None else source
        key = (org, source, data.deployment_id)
        rank = (_occurred(data.finished_at, data.started_at), data.status != "in_progress", self._position)
        deployer = self._person(org, provider, data.deployed_by)
        _keep(self.plan.deployments, key, Staged(data, org, source, integration, rank, deployer, repo))
        shas = self.plan.deployment_shas.setdefault(key, set())
        shas.update(data.commit_shas)
        if data.revision:
            shas.add(data.revision)

    def _work_item(self, org: str, source: str, integration: str, data: Any, envelope: Any) -> None:
        rank = (_occurred(data.updated_at, data.created_at), self._position)
        assignee = self._person(org, source, data.assignee)
        staged = Staged(data, org, source, integration, rank, assignee)
        _keep(self.plan.work_items, (org, source, data.external_id), staged)

    def _sprint(self, org: str, source: str, integration: str, data: Any, envelope: Any) -> None:
        staged = Staged(data, org, source, integration, (self._position,), collected_at=envelope.collected_at)
        self.plan.sprints[(org, source, data.external_id)] = staged

    def _transition(self, org: str, source: str, integration: str, data: Any, envelope: Any) -> None:
        author = self._person(org, source, data.author)
        staged = Staged(data, org, source, integration, (self._position,), author)
        self.plan.transitions[((org, source, data.issue_external_id), data.transition_id)] = staged

    def _incident(self, org: str, source: str, integration: str, data: Any, envelope: Any) -> None:
        rank = (_occurred(data.resolved_at, data.created_at), self._position)
        _keep(
            self.plan.incidents, (org, source, data.external_id), Staged(data, org, source, integration, rank)
        )

    def _ref(self, org: str, source: str, integration: str, data: Any, envelope: Any) -> None:
        repo, provider = self._repository(org, data.repository, integration), data.repository.provider
        self.plan.refs.add(data, org, repo, envelope.collected_at, lambda p: self._person(org, provider, p))


_HANDLERS: dict[type, Callable[[PlanBuilder, str, str, str, Any, Any], None]] = {
    CommitData: PlanBuilder._commit,
    PullRequestData: PlanBuilder._pull_request,
    CodeReviewData: PlanBuilder._review,
    DeploymentData: PlanBuilder._deployment,
    WorkItemData: PlanBuilder._work_item,
    SprintData: PlanBuilder._sprint,
    TransitionData: PlanBuilder._transition,
    IncidentData: PlanBuilder._incident,
    **dict.fromkeys(REF_TYPES, PlanBuilder._ref),
}


def build_plan(events: Iterable[Accepted]) -> Plan:
    builder = PlanBuilder()
    for accepted in events:
        builder.add(accepted)
    return builder.plan


_COMMIT_KEPT_FIELDS = (
    "committed_at",
    "message",
    "additions",
    "deletions",
    "files_changed",
    "pull_request_number",
)


def _merge_commit(earlier: CommitData, later: CommitData) -> CommitData:
    """`later`, with the fields it lacks taken from `earlier` (see the module docstring)."""
    update: dict[str, Any] = {
        name: getattr(earlier, name)
        for name in _COMMIT_KEPT_FIELDS
        if getattr(later, name) is None and getattr(earlier, name) is not None
    }
    if not later.parents and earlier.parents:
        update["parents"] = earlier.parents
    return later.model_copy(update=update) if update else later
