"""The metrics benchmark dataset: one organization's two years of delivery, straight into PostgreSQL.

`generate(spec)` simulates, per repository, a main branch fed by pull requests (merge-commit or
squash style, with branch commits, reviews and review comments) and direct trunk commits, and a
production deployment process that ships whatever landed since its previous run -- to one or to
three regions, with staging runs, failed runs, rollbacks and hotfixes -- plus incidents on the
services (most soon after a deployment, some naming the deployment or a commit, some attributable
to nothing), work items with status transitions, and two-week sprints per team.

The enrichment columns hold what `doraflow.metrics.enrichment` defines (the tests check the two
agree): `pull_requests.first_deployed_at` is the first successful production deployment row that
listed the PR's merge or squash commit; `commit_deployments.first_deployed_at` the earlier of the
commit's own first deployment and its PR's; `commit_deployments.represented_by_pull_request` marks the
squash (and merge) commits of PRs whose own commits are stored (a row only for the commits with a
deployment or represented). One repository in five is collected the way the
GitHub collector does it -- default branch only, no PR numbers on commits, so squashed branch
commits are never seen -- the others the GitLab/Bitbucket way (PR commits carry their number).

`load(connection, dataset)` writes every table with `COPY` (asyncpg `copy_records_to_table`), and
`provision(spec)` does the whole thing on the test PostgreSQL (pgserver in a temporary directory,
or the server of `DORAFLOW_TEST_DATABASE_URL`): create a database, migrate it, load, `VACUUM
ANALYZE`. The default spec is the issue's benchmark: 1M commits, 100k pull requests, 20k deployment
rows and 2k incidents over two years. The API benchmark reuses it.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import os
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from doraflow.core import migrate
from doraflow.core.database import create_engine
from doraflow.core.settings import Settings

__all__ = ["Dataset", "DatasetSpec", "ProvisionedDatabase", "generate", "load", "provision"]

Row = tuple[Any, ...]

WORDS = ("fix", "add", "refactor", "update", "remove", "handle", "cache", "retry", "parser", "api", "tests")
REGIONS = ("eu-west-1", "us-east-1", "ap-south-1")


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    """Sizes of the dataset. ``deployments`` counts rows of the `deployments` table (every
    environment and outcome: production regions, staging, failed runs); about 40% of them are
    successful production deployments after multi-region collapse."""

    commits: int = 1_000_000
    pull_requests: int = 100_000
    deployments: int = 20_000
    incidents: int = 2_000
    days: int = 730
    teams: int = 5
    repositories: int = 40
    developers: int = 300
    work_items: int = 20_000
    end: datetime = datetime(2025, 11, 3, tzinfo=UTC)  # a Monday: windows end on a week boundary
    seed: int = 20251103
    slug: str = "acme"

    @classmethod
    def small(cls, *, seed: int = 7, slug: str = "small") -> DatasetSpec:
        """A few thousand rows: for tests that compare paths on realistic, varied data."""
        return cls(
            commits=4_000,
            pull_requests=400,
            deployments=300,
            incidents=60,
            days=120,
            teams=2,
            repositories=5,
            developers=20,
            work_items=300,
            seed=seed,
            slug=slug,
        )

    @property
    def start(self) -> datetime:
        return self.end - timedelta(days=self.days)


@dataclass(slots=True)
class Dataset:
    """Generated rows per table (in `COPY` column order) and the ids a benchmark needs."""

    spec: DatasetSpec
    organization_id: uuid.UUID
    team_ids: list[uuid.UUID]
    repository_ids: list[uuid.UUID]
    tables: dict[str, tuple[tuple[str, ...], list[Row]]] = field(default_factory=dict)

    def rows(self, table: str) -> list[Row]:
        return self.tables[table][1]

    def counts(self) -> dict[str, int]:
        return {table: len(rows) for table, (_, rows) in self.tables.items()}


COLUMNS: dict[str, tuple[str, ...]] = {
    "organizations": ("id", "name", "slug"),
    "teams": ("id", "organization_id", "name", "slug"),
    "repositories": (
        "id",
        "organization_id",
        "name",
        "provider",
        "provider_id",
        "url",
        "default_branch",
        "service",
        "integration",
    ),
    "developers": ("id", "organization_id", "email", "name", "github_username"),
    "team_members": ("team_id", "developer_id", "role"),
    "team_repositories": ("team_id", "repository_id"),
    "commits": (
        "time",
        "repository_id",
        "commit_sha",
        "organization_id",
        "author_id",
        "committed_at",
        "lines_added",
        "lines_deleted",
        "files_changed",
        "message",
        "is_merge",
        "pull_request_number",
    ),
    "commit_deployments": (
        "repository_id",
        "time",
        "commit_sha",
        "organization_id",
        "is_merge",
        "first_deployment_id",
        "first_deployed_at",
        "represented_by_pull_request",
    ),
    "pull_requests": (
        "time",
        "repository_id",
        "pr_number",
        "organization_id",
        "author_id",
        "title",
        "state",
        "merged_at",
        "closed_at",
        "first_commit_at",
        "first_review_at",
        "merge_commit_sha",
        "head_branch",
        "base_branch",
        "lines_added",
        "lines_deleted",
        "files_changed",
        "commits_count",
        "review_comments",
        "reviews_count",
        "updated_at",
        "first_deployment_id",
        "first_deployed_at",
    ),
    "pull_request_reviews": (
        "id",
        "organization_id",
        "repository_id",
        "pr_number",
        "external_id",
        "reviewer_id",
        "state",
        "submitted_at",
        "comments_count",
    ),
    "deployments": (
        "id",
        "time",
        "organization_id",
        "repository_id",
        "source",
        "external_id",
        "service",
        "environment",
        "is_production",
        "status",
        "finished_at",
        "duration_seconds",
        "deployed_by",
        "revision",
        "is_hotfix",
        "is_rollback",
        "url",
    ),
    "deployment_commits": ("deployment_id", "commit_sha", "repository_id"),
    "incidents": (
        "id",
        "organization_id",
        "source",
        "external_id",
        "title",
        "severity",
        "service",
        "created_at",
        "resolved_at",
        "deployment_ref",
        "commit_sha_ref",
        "deployment_id",
        "attribution",
        "url",
    ),
    "issues": (
        "id",
        "organization_id",
        "source",
        "external_id",
        "key",
        "project",
        "title",
        "issue_type",
        "status",
        "status_category",
        "priority",
        "assignee_id",
        "story_points",
        "created_at",
        "updated_at",
        "started_at",
        "resolved_at",
    ),
    "issue_transitions": (
        "id",
        "organization_id",
        "issue_id",
        "external_id",
        "from_status",
        "to_status",
        "from_category",
        "to_category",
        "transitioned_at",
    ),
    "sprints": (
        "id",
        "organization_id",
        "source",
        "external_id",
        "board",
        "name",
        "state",
        "start_at",
        "end_at",
        "completed_at",
    ),
    "sprint_issues": ("sprint_id", "issue_id", "story_points", "completed_in_sprint"),
}
# Parents before children, so the foreign keys hold while loading.
LOAD_ORDER = tuple(COLUMNS)


# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------


class _Clock:
    """Random working-hours moments: weekdays five times as likely as weekend days, 08-20 UTC."""

    def __init__(self, rng: random.Random, start: datetime, days: int) -> None:
        self.rng = rng
        self.start = start
        weights = [5.0 if (start + timedelta(days=day)).weekday() < 5 else 1.0 for day in range(days)]
        self.cumulative = [0.0]
        for weight in weights:
            self.cumulative.append(self.cumulative[-1] + weight)

    def moment(self) -> datetime:
        point = self.rng.random() * self.cumulative[-1]
        day = bisect.bisect_right(self.cumulative, point) - 1
        seconds = self.rng.uniform(8 * 3600, 20 * 3600)
        return self.start + timedelta(days=day, seconds=int(seconds))


def _lognormal(rng: random.Random, median_hours: float, sigma: float, cap_hours: float) -> timedelta:
    hours = min(rng.lognormvariate(math.log(median_hours), sigma), cap_hours)
    return timedelta(seconds=int(hours * 3600) + 1)


def _sha(rng: random.Random) -> str:
    return f"{rng.getrandbits(160):040x}"


def _split(total: int, weights: Sequence[float], rng: random.Random) -> list[int]:
    """``total`` split by ``weights`` into integers that add up exactly."""
    scale = total / sum(weights)
    shares = [int(weight * scale) for weight in weights]
    for index in rng.sample(range(len(weights)), total - sum(shares)):
        shares[index] += 1
    return shares


@dataclass(slots=True)
class _Landing:
    """Something reaching the main branch: what a deployment after it ships."""

    at: datetime
    revision: str
    shas: list[str]  # what a deployment lists for it: merge commit + branch commits, or one commit


@dataclass(slots=True)
class _RepositoryState:
    id: uuid.UUID
    name: str
    service: str
    team: int
    squash: bool
    linked: bool  # commits carry their PR number (GitLab, Bitbucket) or not (GitHub's default branch)
    regions: tuple[str, ...]
    staging: bool
    pull_requests: int
    trunk_commits: int
    deployments: int
    landings: list[_Landing] = field(default_factory=list)
    pr_rows: list[list[Any]] = field(default_factory=list)
    commit_rows: list[list[Any]] = field(default_factory=list)


def generate(spec: DatasetSpec) -> Dataset:
    rng = random.Random(spec.seed)
    ids = random.Random(spec.seed + 1)

    def new_id() -> uuid.UUID:
        return uuid.UUID(int=ids.getrandbits(128), version=4)

    organization_id = new_id()
    clock = _Clock(rng, spec.start, spec.days)
    dataset = Dataset(spec, organization_id, [], [])
    tables: dict[str, list[Row]] = {table: [] for table in COLUMNS}
    tables["organizations"].append((organization_id, f"{spec.slug.title()} Inc.", spec.slug))

    team_ids = [new_id() for _ in range(spec.teams)]
    dataset.team_ids = team_ids
    for index, team_id in enumerate(team_ids):
        tables["teams"].append((team_id, organization_id, f"Team {index + 1}", f"team-{index + 1}"))
    developers: list[uuid.UUID] = []
    team_of_developer: list[int] = []
    members_by_team: list[list[uuid.UUID]] = [[] for _ in team_ids]
    for index in range(spec.developers):
        developer_id = new_id()
        team = index % spec.teams
        developers.append(developer_id)
        team_of_developer.append(team)
        members_by_team[team].append(developer_id)
        tables["developers"].append(
            (
                developer_id,
                organization_id,
                f"dev{index}@{spec.slug}.example",
                f"Developer {index}",
                f"dev{index}",
            )
        )
        tables["team_members"].append((team_ids[team], developer_id, "member"))

    # Repositories: activity follows a Zipf-like curve (a few busy services, a long tail).
    weights = [1.0 / (rank + 1) ** 0.8 for rank in range(spec.repositories)]
    prs_per_repo = _split(spec.pull_requests, weights, rng)
    deploy_weights = [math.sqrt(weight) for weight in weights]
    repositories: list[_RepositoryState] = []
    for index in range(spec.repositories):
        repository_id = new_id()
        name = f"{spec.slug}/service-{index:02d}"
        team = index % spec.teams
        state = _RepositoryState(
            id=repository_id,
            name=name,
            service=f"service-{index:02d}",
            team=team,
            squash=rng.random() < 0.4,
            linked=rng.random() < 0.8,
            regions=REGIONS if rng.random() < 0.25 else ("production",),
            staging=rng.random() < 0.4,
            pull_requests=prs_per_repo[index],
            trunk_commits=0,
            deployments=0,
        )
        repositories.append(state)
        dataset.repository_ids.append(repository_id)
        tables["repositories"].append(
            (
                repository_id,
                organization_id,
                name,
                "github",
                str(100000 + index),
                f"https://github.example/{name}",
                "main",
                state.service,
                "default/github",
            )
        )
        tables["team_repositories"].append((team_ids[team], repository_id))

    # Deployment rows per logical production deployment: its regions, a staging run for some
    # repositories, a failed run now and then, rollbacks re-deploying.
    rows_per_logical = [len(repo.regions) * 1.02 + (1 if repo.staging else 0) + 0.05 for repo in repositories]
    logical_total = spec.deployments / (
        sum(w * r for w, r in zip(deploy_weights, rows_per_logical, strict=True)) / sum(deploy_weights)
    )
    for repo, count in zip(repositories, _split(int(logical_total), deploy_weights, rng), strict=True):
        repo.deployments = max(count, 2)

    # --- pull requests and their commits ------------------------------------------------------
    merged_prs = 0
    for repo in repositories:
        team_members = members_by_team[repo.team]
        for number in range(1, repo.pull_requests + 1):
            author = rng.choice(team_members) if rng.random() < 0.85 else rng.choice(developers)
            opened = clock.moment()
            branch_commits = 1 + min(int(rng.expovariate(1 / 6.2)), 60)
            coding = _lognormal(rng, 6, 1.3, 24 * 30)
            first_commit = (
                opened - coding if rng.random() > 0.15 else opened + timedelta(minutes=rng.randint(5, 90))
            )
            reviewed = rng.random() < 0.9
            first_review = opened + _lognormal(rng, 3, 1.4, 24 * 14) if reviewed else None
            if first_review is not None:
                merged = first_review + _lognormal(rng, 6, 1.3, 24 * 14)
            else:
                merged = opened + _lognormal(rng, 4, 1.2, 24 * 7)
            fate = rng.random()
            if merged >= spec.end or fate < 0.04:
                pr_state, merged_at, closed_at = "open", None, None
            elif fate < 0.10:
                pr_state, merged_at, closed_at = "closed", None, merged
            else:
                pr_state, merged_at, closed_at = "merged", merged, merged
            if first_review is not None and first_review >= spec.end:
                first_review = None
            last_commit_at = max(first_commit, (merged_at or min(merged, spec.end)) - timedelta(minutes=10))
            shas: list[str] = []
            additions = deletions = files = 0
            for position in range(branch_commits):
                authored = (
                    first_commit
                    if position == 0
                    else first_commit + (last_commit_at - first_commit) * rng.random()
                )
                if authored >= spec.end:
                    continue
                sha = _sha(rng)
                shas.append(sha)
                added = int(rng.lognormvariate(math.log(25), 1.2))
                deleted = int(added * rng.random() * 0.6)
                changed = 1 + added // 40
                additions, deletions, files = additions + added, deletions + deleted, files + changed
                if repo.squash and not repo.linked:
                    continue  # GitHub collects the default branch only: squashed branches are never seen
                repo.commit_rows.append(
                    [
                        authored,
                        repo.id,
                        sha,
                        organization_id,
                        author,
                        authored,
                        added,
                        deleted,
                        changed,
                        f"{rng.choice(WORDS)} {rng.choice(WORDS)} #{number}",
                        False,
                        number if repo.linked else None,
                        None,
                        None,
                        False,
                    ]
                )
            merge_sha = None
            if merged_at is not None:
                merged_prs += 1
                merge_sha = _sha(rng)
                repo.commit_rows.append(
                    [
                        merged_at,
                        repo.id,
                        merge_sha,
                        organization_id,
                        author,
                        merged_at,
                        0 if not repo.squash else additions,
                        0 if not repo.squash else deletions,
                        0 if not repo.squash else files,
                        f"Merge pull request #{number}"
                        if not repo.squash
                        else f"{rng.choice(WORDS)} (#{number})",
                        not repo.squash,
                        number if repo.linked else None,
                        None,
                        None,
                        False,
                    ]
                )
                listed = [merge_sha] if repo.squash else [merge_sha, *shas]
                repo.landings.append(_Landing(merged_at, merge_sha, listed))
                reviewers = [d for d in team_members if d != author] or developers
                if first_review is not None:
                    count = 1 + min(int(rng.expovariate(1 / 0.8)), 5)
                    for review in range(count):
                        submitted = (
                            first_review
                            if review == 0
                            else first_review + (merged_at - first_review) * rng.random()
                        )
                        tables["pull_request_reviews"].append(
                            (
                                new_id(),
                                organization_id,
                                repo.id,
                                number,
                                f"{number}-{review}",
                                rng.choice(reviewers),
                                rng.choice(("approved", "commented", "changes_requested")),
                                submitted,
                                min(int(rng.expovariate(1 / 1.5)), 30),
                            )
                        )
            review_rows = None if first_review is None else 1
            repo.pr_rows.append(
                [
                    opened,
                    repo.id,
                    number,
                    organization_id,
                    author,
                    f"{rng.choice(WORDS)} {rng.choice(WORDS)}",
                    pr_state,
                    merged_at,
                    closed_at,
                    first_commit if first_commit < spec.end else None,
                    first_review,
                    merge_sha,
                    f"feature/{number}",
                    "main",
                    additions,
                    deletions,
                    files,
                    len(shas),
                    min(int(rng.expovariate(1 / 2.5)), 60) if review_rows else 0,
                    0 if first_review is None else 1,
                    closed_at or opened,
                    None,
                    None,
                ]
            )

    # Trunk commits fill the commit budget (hotfix-style direct pushes, bots, release commits).
    generated = sum(len(repo.commit_rows) for repo in repositories)
    trunk_total = max(spec.commits - generated, 0)
    for repo, count in zip(repositories, _split(trunk_total, weights, rng), strict=True):
        for _ in range(count):
            authored = clock.moment()
            sha = _sha(rng)
            added = int(rng.lognormvariate(math.log(12), 1.1))
            repo.commit_rows.append(
                [
                    authored,
                    repo.id,
                    sha,
                    organization_id,
                    rng.choice(developers),
                    authored,
                    added,
                    int(added * rng.random() * 0.5),
                    1 + added // 50,
                    f"{rng.choice(WORDS)} {rng.choice(WORDS)}",
                    False,
                    None,
                    None,
                    None,
                    False,
                ]
            )
            repo.landings.append(_Landing(authored + timedelta(minutes=rng.randint(1, 20)), sha, [sha]))

    # --- deployments ----------------------------------------------------------------------------
    own_first: dict[str, tuple[datetime, uuid.UUID]] = {}
    external_id_of: dict[uuid.UUID, str] = {}
    production_rollouts: list[tuple[_RepositoryState, datetime, uuid.UUID, str, list[str]]] = []
    for repo in repositories:
        repo.landings.sort(key=lambda landing: landing.at)
        landing_times = [landing.at for landing in repo.landings]
        moments = sorted(clock.moment() for _ in range(repo.deployments))
        shipped_upto = 0
        running: str | None = None
        previous: str | None = None
        sequence = 0

        def emit(
            environment: str,
            production: bool,
            status: str,
            finished: datetime,
            revision: str,
            listed: list[str],
            *,
            hotfix: bool = False,
            rollback: bool = False,
            repo: _RepositoryState = repo,
        ) -> uuid.UUID:
            nonlocal sequence
            sequence += 1
            deployment_id = new_id()
            external_id_of[deployment_id] = f"{repo.service}-{sequence}"
            duration = rng.randint(180, 1200)
            tables["deployments"].append(
                (
                    deployment_id,
                    finished - timedelta(seconds=duration),
                    organization_id,
                    repo.id,
                    "github-actions",
                    f"{repo.service}-{sequence}",
                    repo.service,
                    environment,
                    production,
                    status,
                    finished,
                    duration,
                    rng.choice(developers),
                    revision,
                    hotfix,
                    rollback,
                    f"https://ci.example/{repo.service}/{sequence}",
                )
            )
            for sha in dict.fromkeys([*listed, revision]):
                tables["deployment_commits"].append((deployment_id, sha, repo.id))
                if production and status == "success":
                    known = own_first.get(sha)
                    if known is None or (finished, str(deployment_id)) < (known[0], str(known[1])):
                        own_first[sha] = (finished, deployment_id)
            return deployment_id

        for index, moment in enumerate(moments):
            if moment >= spec.end:
                continue
            hotfix = index > 0 and rng.random() < 0.03
            if hotfix:
                moment = max(moments[index - 1], moment - timedelta(days=2)) + _lognormal(rng, 2, 0.6, 12)
                if moment >= spec.end:
                    continue
            cut = bisect.bisect_left(landing_times, moment - timedelta(minutes=15))
            if cut <= shipped_upto:
                continue  # nothing new landed
            listed = [sha for landing in repo.landings[shipped_upto:cut] for sha in landing.shas]
            revision = repo.landings[cut - 1].revision
            shipped_upto = cut
            if repo.staging:
                emit("staging", False, "success", moment - timedelta(minutes=30), revision, listed)
            if rng.random() < 0.05:
                emit(repo.regions[0], True, "failed", moment - timedelta(minutes=12), revision, listed)
            first_row: uuid.UUID | None = None
            for offset, region in enumerate(repo.regions):
                finished = moment + timedelta(minutes=offset * rng.randint(3, 8))
                row = emit(region, True, "success", finished, revision, listed, hotfix=hotfix)
                first_row = first_row or row
            assert first_row is not None
            production_rollouts.append((repo, moment, first_row, revision, listed))
            previous, running = running, revision
            if previous is not None and rng.random() < 0.02:  # roll back to the previous revision
                back = moment + _lognormal(rng, 1, 0.5, 6)
                if back < spec.end:
                    flagged = rng.random() < 0.5
                    for offset, region in enumerate(repo.regions):
                        emit(
                            region,
                            True,
                            "success",
                            back + timedelta(minutes=offset * 4),
                            previous,
                            [previous],
                            rollback=flagged,
                        )
                    running = previous
                    # The next regular deployment ships the newer revision again (roll forward).
                    shipped_upto = max(shipped_upto - 1, 0) if shipped_upto else 0

    # --- enrichment: what doraflow.metrics.enrichment defines --------------------------------------
    for repo in repositories:
        pr_first: dict[int, tuple[datetime, uuid.UUID]] = {}
        merge_sha_of: dict[str, int] = {}
        for pr in repo.pr_rows:
            merge_sha = pr[11]
            if merge_sha is not None:
                merge_sha_of[merge_sha] = pr[2]
                if merge_sha in own_first:
                    pr[22], pr[21] = own_first[merge_sha]
                    pr_first[pr[2]] = own_first[merge_sha]
        own_commits: set[int] = set()
        for commit in repo.commit_rows:
            number = commit[11]
            if number is not None and not commit[10] and merge_sha_of.get(commit[2]) != number:
                own_commits.add(number)
        for commit in repo.commit_rows:
            sha, number = commit[2], commit[11]
            first = own_first.get(sha)
            via_pull_request = pr_first.get(number) if number is not None else None
            if via_pull_request is not None and (first is None or via_pull_request[0] < first[0]):
                first = via_pull_request
            if first is not None:
                commit[13], commit[12] = first
            owner = merge_sha_of.get(sha)
            commit[14] = owner is not None and number in (None, owner) and owner in own_commits
        tables["pull_requests"].extend(tuple(row) for row in repo.pr_rows)
        tables["commits"].extend(tuple(row[:12]) for row in repo.commit_rows)
        tables["commit_deployments"].extend(commit_deployment_rows(repo.commit_rows))

    # --- incidents ----------------------------------------------------------------------------------
    severities = ("sev1", "sev2", "sev3", "sev3", "sev4")
    for index in range(spec.incidents):
        roll = rng.random()
        service: str | None
        deployment_ref = commit_ref = None
        if roll < 0.65 and production_rollouts:
            repo, deployed, first_row, _, listed = rng.choice(production_rollouts)
            created = deployed + _lognormal(rng, 8, 1.2, 24 * 6)
            service = repo.service
            kind = rng.random()
            if kind < 0.15:
                deployment_ref = external_id_of[first_row]
            elif kind < 0.20 and listed:
                commit_ref = rng.choice(listed)
        else:
            created = clock.moment()
            service = rng.choice(repositories).service if roll < 0.96 else None
        if created >= spec.end:
            continue
        resolved: datetime | None = created + _lognormal(rng, 2, 1.4, 24 * 10)
        if resolved is not None and resolved >= spec.end:
            resolved = None
        tables["incidents"].append(
            (
                new_id(),
                organization_id,
                "pagerduty",
                f"INC-{index + 1}",
                f"{rng.choice(WORDS)} degraded",
                rng.choice(severities),
                service,
                created,
                resolved,
                deployment_ref,
                commit_ref,
                None,
                "unattributed",
                f"https://pagerduty.example/INC-{index + 1}",
            )
        )

    _work_items(spec, rng, new_id, clock, organization_id, team_ids, members_by_team, tables)
    dataset.tables = {table: (COLUMNS[table], rows) for table, rows in tables.items()}
    return dataset


def _work_items(
    spec: DatasetSpec,
    rng: random.Random,
    new_id: Any,
    clock: _Clock,
    organization_id: uuid.UUID,
    team_ids: list[uuid.UUID],
    members_by_team: list[list[uuid.UUID]],
    tables: dict[str, list[Row]],
) -> None:
    """Issues with todo → in progress → done transitions (some reopened, some never finished) and
    two-week sprints per team holding the issues worked on during them."""
    sprint_length = timedelta(days=14)
    sprints_by_team: list[list[tuple[uuid.UUID, datetime, datetime]]] = []
    for team_index, _ in enumerate(team_ids):
        team_sprints = []
        start = spec.start - timedelta(days=spec.start.weekday())
        number = 1
        while start < spec.end:
            sprint_id = new_id()
            end = start + sprint_length
            state = "closed" if end <= spec.end else "active"
            tables["sprints"].append(
                (
                    sprint_id,
                    organization_id,
                    "jira",
                    f"{team_index}-{number}",
                    f"board-{team_index + 1}",
                    f"Team {team_index + 1} sprint {number}",
                    state,
                    start,
                    end,
                    end if state == "closed" else None,
                )
            )
            team_sprints.append((sprint_id, start, end))
            start, number = end, number + 1
        sprints_by_team.append(team_sprints)

    for index in range(spec.work_items):
        team = index % len(team_ids)
        issue_id = new_id()
        created = clock.moment()
        points = rng.choice((1, 2, 3, 5, 8, None))
        transitions: list[tuple[str, str, datetime]] = []
        started = created + _lognormal(rng, 48, 1.2, 24 * 60)
        category = "todo"
        resolved: datetime | None = None
        if started < spec.end and rng.random() < 0.9:
            transitions.append(("in_progress", "In Progress", started))
            category = "in_progress"
            done = started + _lognormal(rng, 60, 1.0, 24 * 45)
            if done < spec.end and rng.random() < 0.92:
                transitions.append(("done", "Done", done))
                category, resolved = "done", done
                if rng.random() < 0.08:
                    reopened = done + _lognormal(rng, 24, 1.0, 24 * 10)
                    if reopened < spec.end:
                        transitions.append(("in_progress", "In Progress", reopened))
                        category, resolved = "in_progress", None
                        again = reopened + _lognormal(rng, 24, 1.0, 24 * 10)
                        if again < spec.end:
                            transitions.append(("done", "Closed", again))
                            category, resolved = "done", again
        status = {"todo": "To Do", "in_progress": "In Progress", "done": "Done"}[category]
        tables["issues"].append(
            (
                issue_id,
                organization_id,
                "jira",
                f"J-{index + 1}",
                f"PRJ{team + 1}-{index + 1}",
                f"PRJ{team + 1}",
                f"{rng.choice(WORDS)} {rng.choice(WORDS)}",
                rng.choice(("story", "bug", "task")),
                status,
                category,
                rng.choice(("high", "medium", "low")),
                rng.choice(members_by_team[team]),
                points,
                created,
                transitions[-1][2] if transitions else created,
                started if transitions else None,
                resolved,
            )
        )
        previous_category, previous_status = "todo", "To Do"
        for position, (to_category, to_status, at) in enumerate(transitions):
            tables["issue_transitions"].append(
                (
                    new_id(),
                    organization_id,
                    issue_id,
                    f"{index + 1}-{position}",
                    previous_status,
                    to_status,
                    previous_category,
                    to_category,
                    at,
                )
            )
            previous_category, previous_status = to_category, to_status
        if transitions:
            first_start = transitions[0][2]
            last = transitions[-1][2] if category == "done" else spec.end
            for sprint_id, sprint_start, sprint_end in sprints_by_team[team]:
                if sprint_end > first_start and sprint_start < last:
                    completed = category == "done" and sprint_start <= last < sprint_end
                    tables["sprint_issues"].append((sprint_id, issue_id, points, completed))


def commit_deployment_rows(commit_rows: Sequence[Sequence[Any]]) -> list[Row]:
    """The `commit_deployments` rows of commit rows built with the three lead-time values appended
    (`first_deployment_id`, `first_deployed_at`, `represented_by_pull_request`, as 12-14): one per
    commit whose values are not the defaults."""
    return [
        (row[1], row[0], row[2], row[3], row[10], row[12], row[13], row[14])
        for row in commit_rows
        if row[13] is not None or row[14]
    ]


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


async def load(connection: Any, dataset: Dataset) -> dict[str, float]:
    """COPY every table of ``dataset`` (parents first); returns seconds per table."""
    seconds: dict[str, float] = {}
    for table in LOAD_ORDER:
        columns, rows = dataset.tables[table]
        started = time.perf_counter()
        if rows:
            await connection.copy_records_to_table(table, records=rows, columns=list(columns))
        seconds[table] = time.perf_counter() - started
    return seconds


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass(frozen=True, slots=True)
class ProvisionedDatabase:
    """A migrated database holding one or more datasets; ``url`` is SQLAlchemy's asyncpg form."""

    url: str
    datasets: tuple[Dataset, ...]
    timings: dict[str, float]


@asynccontextmanager
async def server_url() -> AsyncIterator[str]:
    """The maintenance-database URL of the test PostgreSQL: ``DORAFLOW_TEST_DATABASE_URL``, or a
    pgserver in a temporary directory, removed on exit (as ``tests/testenv/postgres.py`` does)."""
    override = os.environ.get("DORAFLOW_TEST_DATABASE_URL")
    if override:
        yield override
        return
    import pgserver

    datadir = Path(tempfile.mkdtemp(prefix="doraflow-bench-pg-"))
    server = await asyncio.to_thread(pgserver.get_server, datadir, cleanup_mode="delete")
    try:
        uri = make_url(server.get_uri()).set(drivername="postgresql+asyncpg")
        yield uri.render_as_string(hide_password=False)
    finally:
        await asyncio.to_thread(server.cleanup)
        shutil.rmtree(datadir, ignore_errors=True)


async def provision(
    server: str, specs: Sequence[DatasetSpec] = (DatasetSpec(),), *, log: Any = print
) -> ProvisionedDatabase:
    """Create a fresh database on ``server``, migrate it to head, generate and COPY ``specs``,
    then ``VACUUM ANALYZE`` (index-only scans need the visibility map a vacuum sets, as
    autovacuum would in production)."""
    timings: dict[str, float] = {}
    name = f"doraflow_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(_dsn(server))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = make_url(server).set(database=name).render_as_string(hide_password=False)

    started = time.perf_counter()
    engine = create_engine(Settings(), url=url)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()
    timings["migrate"] = time.perf_counter() - started

    datasets: list[Dataset] = []
    connection = await asyncpg.connect(_dsn(url))
    try:
        for spec in specs:
            started = time.perf_counter()
            dataset = generate(spec)
            timings[f"generate {spec.slug}"] = time.perf_counter() - started
            log(
                f"generated {spec.slug}: " + ", ".join(f"{t} {n:,}" for t, n in dataset.counts().items() if n)
            )
            started = time.perf_counter()
            await load(connection, dataset)
            timings[f"copy {spec.slug}"] = time.perf_counter() - started
            datasets.append(dataset)
        started = time.perf_counter()
        await connection.execute("VACUUM ANALYZE")
        timings["vacuum analyze"] = time.perf_counter() - started
    finally:
        await connection.close()
    return ProvisionedDatabase(url, tuple(datasets), timings)


def iter_windows(end: datetime, days: int, count: int) -> Iterator[tuple[datetime, datetime]]:
    """``count`` windows of ``days`` ending at ``end`` and at the ``count - 1`` days before it."""
    for back in range(count):
        window_end = end - timedelta(days=back)
        yield window_end - timedelta(days=days), window_end


def with_slug(spec: DatasetSpec, slug: str, seed: int) -> DatasetSpec:
    return replace(spec, slug=slug, seed=seed)
