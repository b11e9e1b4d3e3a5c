"""A realistic, deterministic engineering dataset for API tests, the dashboard test and the
benchmark: repositories, developers, teams, pull requests with their commits and reviews,
production deployments shipping them, and incidents caused by some deployments.

It writes the rows the processor would have stored (including its enrichment columns), so the API
can be tested without running collectors. The numbers improve over time (more deployments,
shorter lead times), which gives the trend charts something to show.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from doraflow.core import models as m
from doraflow.metrics.enrichment import refresh_lead_time_enrichment
from doraflow.metrics.loaders import Database

REPOSITORIES = [
    ("acme/checkout", "checkout"),
    ("acme/payments", "payments"),
    ("acme/web", "web"),
    ("acme/search", "search"),
]
TEAMS = [
    ("Payments", "payments", ["acme/checkout", "acme/payments"]),
    ("Web", "web", ["acme/web", "acme/search"]),
]
PEOPLE = [
    "Ada Lovelace",
    "Grace Hopper",
    "Linus Torvalds",
    "Barbara Liskov",
    "Ken Thompson",
    "Margaret Hamilton",
    "Dennis Ritchie",
    "Frances Allen",
    "Guido van Rossum",
    "Radia Perlman",
    "Edsger Dijkstra",
    "Katherine Johnson",
]
TITLES = [
    "Add retry to payment capture",
    "Fix flaky checkout test",
    "Cache search facets",
    "Upgrade SQLAlchemy",
    "Refactor cart totals",
    "Hotfix currency rounding",
    "Add idempotency keys",
    "Speed up product listing",
    "Remove legacy coupon code",
    "Improve error messages",
    "Paginate order history",
    "Instrument slow queries",
]


@dataclass
class Dataset:
    organization_id: uuid.UUID
    repository_ids: dict[str, uuid.UUID] = field(default_factory=dict)
    team_ids: dict[str, uuid.UUID] = field(default_factory=dict)
    developer_ids: list[uuid.UUID] = field(default_factory=list)
    deployments: int = 0
    pull_requests: int = 0
    incidents: int = 0


def _sha(*parts: object) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()  # noqa: S324 - test data ids


async def seed_dataset(
    factory: async_sessionmaker[AsyncSession],
    organization_id: uuid.UUID,
    *,
    days: int = 120,
    now: datetime | None = None,
    seed: int = 7,
    prs_per_repo_per_week: float = 4.0,
) -> Dataset:
    rng = random.Random(seed)
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    start = now - timedelta(days=days)
    data = Dataset(organization_id)
    rows: list[object] = []

    for index, person in enumerate(PEOPLE):
        developer_id = uuid.uuid4()
        data.developer_ids.append(developer_id)
        handle = person.lower().replace(" ", ".")
        rows.append(
            m.Developer(
                id=developer_id,
                organization_id=organization_id,
                email=f"{handle}@acme.example",
                name=person,
                github_username=handle.replace(".", "-") if index % 3 else None,
            )
        )
    for name, service in REPOSITORIES:
        repository_id = uuid.uuid4()
        data.repository_ids[name] = repository_id
        rows.append(
            m.Repository(
                id=repository_id,
                organization_id=organization_id,
                name=name,
                provider="github",
                provider_id=str(rng.randint(10_000, 99_999)),
                url=f"https://github.com/{name}",
                default_branch="main",
                service=service,
            )
        )
    for team_name, slug, _ in TEAMS:
        team_id = uuid.uuid4()
        data.team_ids[slug] = team_id
        rows.append(m.Team(id=team_id, organization_id=organization_id, name=team_name, slug=slug))
    async with factory() as session:
        session.add_all(rows)
        await session.flush()
        for team_index, (_, slug, repositories) in enumerate(TEAMS):
            for name in repositories:
                session.add(
                    m.TeamRepository(team_id=data.team_ids[slug], repository_id=data.repository_ids[name])
                )
            for developer_id in data.developer_ids[team_index * 6 : team_index * 6 + 6]:
                session.add(m.TeamMember(team_id=data.team_ids[slug], developer_id=developer_id))
        await session.commit()

    rows = []
    for repo_index, (name, service) in enumerate(REPOSITORIES):
        repository_id = data.repository_ids[name]
        merged: list[tuple[datetime, str, int]] = []  # (merged_at, merge sha, pr number)
        number = 100 * (repo_index + 1)
        moment = start
        while moment < now - timedelta(hours=6):
            progress = (moment - start) / (now - start)  # 0 → 1: the team gets faster
            gap_hours = rng.expovariate(prs_per_repo_per_week / (7 * 24)) * (1.3 - 0.6 * progress)
            moment += timedelta(hours=max(gap_hours, 1))
            number += 1
            author = rng.choice(data.developer_ids)
            first_commit = moment - timedelta(hours=rng.uniform(2, 40) * (1.4 - 0.7 * progress))
            pickup = timedelta(hours=rng.lognormvariate(1.2 - progress, 0.8))
            review = timedelta(hours=rng.lognormvariate(1.5 - progress, 0.7))
            opened = moment
            first_review = opened + pickup
            merged_at = first_review + review
            is_open = merged_at > now
            merge_sha = _sha(name, number, "merge")
            commit_count = rng.randint(1, 4)
            for c in range(commit_count):
                authored = first_commit + (opened - first_commit) * (c / max(commit_count, 1))
                rows.append(
                    m.Commit(
                        time=authored,
                        repository_id=repository_id,
                        commit_sha=_sha(name, number, c),
                        organization_id=organization_id,
                        author_id=author,
                        committed_at=authored,
                        lines_added=rng.randint(5, 400),
                        lines_deleted=rng.randint(0, 200),
                        files_changed=rng.randint(1, 12),
                        message=f"{rng.choice(TITLES)} (part {c + 1})",
                        pull_request_number=number,
                    )
                )
            title = rng.choice(TITLES)
            rows.append(
                m.PullRequest(
                    time=opened,
                    repository_id=repository_id,
                    pr_number=number,
                    organization_id=organization_id,
                    author_id=author,
                    title=title,
                    state="open" if is_open else "merged",
                    merged_at=None if is_open else merged_at,
                    closed_at=None if is_open else merged_at,
                    first_commit_at=first_commit,
                    first_review_at=first_review if first_review < now else None,
                    merge_commit_sha=None if is_open else merge_sha,
                    head_branch=f"feature/{number}",
                    base_branch="main",
                    lines_added=rng.randint(10, 800),
                    lines_deleted=rng.randint(0, 300),
                    files_changed=rng.randint(1, 20),
                    commits_count=commit_count,
                    review_comments=rng.randint(0, 12),
                    reviews_count=rng.randint(1, 3),
                )
            )
            data.pull_requests += 1
            if not is_open:
                merged.append((merged_at, merge_sha, number))

        # Deployments: a release train that speeds up; each ships what was merged since the last.
        merged.sort()
        pending: list[tuple[datetime, str, int]] = []
        cursor = start + timedelta(hours=rng.uniform(4, 30))
        queue = list(merged)
        sequence = 0
        while cursor < now:
            progress = (cursor - start) / (now - start)
            while queue and queue[0][0] <= cursor:
                pending.append(queue.pop(0))
            if pending:
                sequence += 1
                failed = rng.random() < 0.08
                deployment_id = m.natural_id("deployment", organization_id, "argocd", f"{service}-{sequence}")
                duration = rng.randint(90, 900)
                revision = pending[-1][1]
                is_hotfix = rng.random() < 0.05
                rows.append(
                    m.Deployment(
                        id=deployment_id,
                        time=cursor,
                        organization_id=organization_id,
                        repository_id=repository_id,
                        source="argocd",
                        external_id=f"{service}-{sequence}",
                        service=service,
                        environment="production",
                        is_production=True,
                        status="failed" if failed else "success",
                        finished_at=cursor + timedelta(seconds=duration),
                        duration_seconds=duration,
                        revision=revision,
                        is_hotfix=is_hotfix,
                        url=f"https://argocd.acme.example/applications/{service}",
                    )
                )
                data.deployments += 1
                if not failed:
                    for _, sha, pr_number in pending:
                        rows.append(
                            m.DeploymentCommit(
                                deployment_id=deployment_id, commit_sha=sha, repository_id=repository_id
                            )
                        )
                        for c in range(4):
                            rows.append(
                                m.DeploymentCommit(
                                    deployment_id=deployment_id,
                                    commit_sha=_sha(name, pr_number, c),
                                    repository_id=repository_id,
                                )
                            )
                    shipped = {pr for _, _, pr in pending}
                    for row in rows:
                        if (
                            isinstance(row, m.PullRequest)
                            and row.repository_id == repository_id
                            and row.pr_number in shipped
                            and row.first_deployed_at is None
                        ):
                            row.first_deployment_id = deployment_id
                            row.first_deployed_at = cursor + timedelta(seconds=duration)
                    pending = []
                    if rng.random() < 0.07 + 0.05 * (1 - progress):
                        opened = cursor + timedelta(hours=rng.uniform(0.5, 20))
                        if opened < now:
                            restore = timedelta(hours=rng.lognormvariate(1.0 - progress, 0.9))
                            resolved = opened + restore
                            rows.append(
                                m.Incident(
                                    id=uuid.uuid4(),
                                    organization_id=organization_id,
                                    source="pagerduty",
                                    external_id=f"PD-{service}-{sequence}",
                                    title=f"{service}: elevated error rate",
                                    severity=rng.choice(["sev1", "sev2", "sev2", "sev3"]),
                                    service=service,
                                    created_at=opened,
                                    resolved_at=resolved if resolved < now else None,
                                    deployment_ref=f"{service}-{sequence}",
                                    deployment_id=deployment_id,
                                    attribution="explicit",
                                    url=f"https://acme.pagerduty.example/incidents/{sequence}",
                                )
                            )
                            data.incidents += 1
            hours = rng.uniform(10, 40) * (1.5 - 1.1 * progress)
            cursor += timedelta(hours=max(hours, 2))

    async with factory() as session:
        session.add_all(rows)
        await session.flush()
        # What the processor would have derived from these rows: each commit's and pull request's
        # first production deployment (the lead-time columns the metrics query layer reads).
        await refresh_lead_time_enrichment(await Database.of(session), organization_id)
        await session.commit()
    return data
