"""A realistic, deterministic event stream for one organization (processor benchmarks and tests).

Shaped like a year of a mid-size engineering organization: per repository a linear history of
commits, every few commits a pull request (opened, then merged with a squash commit, one or two
reviews), a production deployment every ~20 commits shipping what changed since the previous one,
now and then an incident on the repository's service; plus work items with their transitions and
sprints. Proportions: about 41% commits, 21% pull-request events, 15% reviews, 2% deployments, 21%
work-tracker events, under 1% incidents. People appear as email + GitHub login on git events and as
Jira accounts with the same email on work items, so identity resolution has real work to do.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

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
    message_key,
    schema_for,
    topic_name,
)

START = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)
COLLECTED = datetime(2026, 1, 1, tzinfo=UTC)
WORDS = ("fix", "add", "refactor", "update", "remove", "handle", "cache", "retry", "parser", "api", "tests")


@dataclass(frozen=True, slots=True)
class Published:
    topic: str
    key: str
    value: bytes


def _sha(rng: random.Random) -> str:
    return f"{rng.getrandbits(160):040x}"


def _people(count: int) -> list[tuple[PersonRef, PersonRef]]:
    """(git identity, Jira identity) per person: same email, different provider accounts."""
    return [
        (
            PersonRef(email=f"engineer{i}@bench.example", name=f"Engineer {i}", username=f"eng{i}"),
            PersonRef(email=f"engineer{i}@bench.example", name=f"Engineer {i}", username=f"jira-{i:05d}"),
        )
        for i in range(count)
    ]


def events(
    total: int,
    *,
    organization: str = "bench",
    prefix: str = "doraflow",
    seed: int = 7,
    repositories: int = 40,
) -> Iterator[Published]:
    """About `total` encoded events (exactly `total`: the stream is cut there)."""
    rng = random.Random(seed)
    people = _people(150)
    produced = 0

    def emit(data: EventData, source: str) -> Published:
        envelope = make_event(
            data, organization=organization, integration="bench/github", source=source, collected_at=COLLECTED
        )
        topic = topic_name(prefix, organization, SCHEMAS[schema_for(data)].topic_suffix)
        return Published(topic, message_key(envelope, data), envelope.to_bytes())

    repos = [
        RepositoryRef(
            provider="github",
            id=str(100_000 + r),
            name=f"{organization}/service-{r}",
            url=f"https://github.com/{organization}/service-{r}",
            default_branch="main",
            service=f"service-{r}",
        )
        for r in range(repositories)
    ]
    clock = {r.id: START + timedelta(minutes=rng.randint(0, 600)) for r in repos}
    pending: dict[str, list[str]] = {r.id: [] for r in repos}
    pr_numbers = {r.id: 0 for r in repos}
    deployments = {r.id: 0 for r in repos}
    issue_number = 0
    sprint_number = 0

    while produced < total:
        # --- git: one pull request's worth of work on a random repository
        repo = rng.choice(repos)
        author_git = rng.choice(people)[0]
        commit_shas: list[str] = []
        first_commit_at = clock[repo.id]
        for _ in range(rng.randint(2, 5)):
            clock[repo.id] += timedelta(minutes=rng.randint(5, 240))
            sha = _sha(rng)
            commit_shas.append(sha)
            yield emit(
                CommitData(
                    repository=repo,
                    sha=sha,
                    author=author_git,
                    authored_at=clock[repo.id],
                    committed_at=clock[repo.id],
                    message=" ".join(rng.choices(WORDS, k=rng.randint(3, 9))),
                    additions=rng.randint(1, 400),
                    deletions=rng.randint(0, 200),
                    files_changed=rng.randint(1, 12),
                    parents=[_sha(rng)],
                    pull_request_number=pr_numbers[repo.id] + 1,
                ),
                "github",
            )
            produced += 1
        pr_numbers[repo.id] += 1
        number = pr_numbers[repo.id]
        opened = clock[repo.id] + timedelta(minutes=rng.randint(1, 60))
        squash = _sha(rng)
        base = {
            "repository": repo,
            "number": number,
            "title": " ".join(rng.choices(WORDS, k=5)),
            "author": PersonRef(username=author_git.username, name=author_git.name),  # GitHub: no email
            "created_at": opened,
            "first_commit_at": first_commit_at,
            "commit_shas": commit_shas,
            "head_branch": f"feature/{number}",
            "base_branch": "main",
            "additions": rng.randint(10, 800),
            "deletions": rng.randint(0, 300),
            "changed_files": rng.randint(1, 20),
        }
        yield emit(PullRequestData(state="open", updated_at=opened, **base), "github")
        produced += 1
        reviewed = opened
        for index in range(rng.randint(1, 2)):
            reviewed += timedelta(minutes=rng.randint(10, 600))
            reviewer = rng.choice(people)[0]
            yield emit(
                CodeReviewData(
                    repository=repo,
                    pull_request_number=number,
                    review_id=f"{repo.id}-{number}-{index}",
                    reviewer=PersonRef(username=reviewer.username),
                    state="approved" if index else "commented",
                    submitted_at=reviewed,
                    comments_count=rng.randint(0, 6),
                ),
                "github",
            )
            produced += 1
        merged = reviewed + timedelta(minutes=rng.randint(5, 300))
        clock[repo.id] = merged
        yield emit(
            PullRequestData(
                state="merged",
                updated_at=merged,
                merged_at=merged,
                merge_commit_sha=squash,
                review_comments=3,
                **base,
            ),
            "github",
        )
        produced += 1
        pending[repo.id].extend([*commit_shas, squash])

        if len(pending[repo.id]) >= 20:
            deployments[repo.id] += 1
            started = clock[repo.id] + timedelta(minutes=rng.randint(10, 120))
            finished = started + timedelta(minutes=rng.randint(3, 25))
            failed = rng.random() < 0.1
            yield emit(
                DeploymentData(
                    repository=repo,
                    deployment_id=f"{repo.id}-{deployments[repo.id]}",
                    environment="production",
                    status="failed" if failed else "success",
                    started_at=started,
                    finished_at=finished,
                    revision=pending[repo.id][-1],
                    commit_shas=pending[repo.id],
                    deployed_by=PersonRef(username="deploy-bot"),
                ),
                "github",
            )
            produced += 1
            if not failed:
                pending[repo.id] = []
                if rng.random() < 0.08:
                    yield emit(
                        IncidentData(
                            external_id=f"INC-{repo.id}-{deployments[repo.id]}",
                            title="elevated error rate",
                            severity=rng.choice(("sev1", "sev2", "sev3")),
                            service=repo.service,
                            created_at=finished + timedelta(hours=rng.randint(1, 48)),
                            resolved_at=finished + timedelta(hours=rng.randint(49, 60)),
                        ),
                        "pagerduty",
                    )
                    produced += 1

        # --- work tracker: an issue every other round (created, started, done)
        if rng.random() < 0.5:
            issue_number += 1
            external_id = str(10_000 + issue_number)
            assignee = rng.choice(people)[1]
            created = START + timedelta(hours=issue_number)
            started = created + timedelta(hours=rng.randint(1, 72))
            done = started + timedelta(hours=rng.randint(2, 120))
            item = {
                "project": "BENCH",
                "external_id": external_id,
                "key": f"BENCH-{issue_number}",
                "title": " ".join(rng.choices(WORDS, k=6)),
                "issue_type": rng.choice(("Story", "Bug", "Task")),
                "priority": rng.choice(("P1", "P2", "P3")),
                "assignee": assignee,
                "story_points": float(rng.choice((1, 2, 3, 5, 8))),
                "labels": ["backend"],
                "created_at": created,
            }
            yield emit(
                WorkItemData(status="To Do", status_category="todo", updated_at=created, **item),
                "jira",
            )
            for index, (moment, status, category) in enumerate(
                ((started, "In Progress", "in_progress"), (done, "Done", "done"))
            ):
                yield emit(
                    TransitionData(
                        project="BENCH",
                        issue_external_id=external_id,
                        transition_id=f"{external_id}-{index}",
                        to_status=status,
                        to_category=category,
                        transitioned_at=moment,
                        author=assignee,
                    ),
                    "jira",
                )
            yield emit(
                WorkItemData(
                    status="Done", status_category="done", updated_at=done, resolved_at=done, **item
                ),
                "jira",
            )
            produced += 4
            if issue_number % 40 == 0:
                sprint_number += 1
                yield emit(
                    SprintData(
                        project="BENCH",
                        external_id=f"S{sprint_number}",
                        board="BENCH",
                        name=f"Sprint {sprint_number}",
                        state="closed",
                        start_at=START + timedelta(days=14 * sprint_number),
                        end_at=START + timedelta(days=14 * sprint_number + 14),
                        issue_ids=[str(10_000 + n) for n in range(issue_number - 39, issue_number + 1)],
                        completed_issue_ids=[
                            str(10_000 + n) for n in range(issue_number - 39, issue_number - 5)
                        ],
                    ),
                    "jira",
                )
                produced += 1


def workload(
    total: int,
    *,
    organization: str = "bench",
    prefix: str = "doraflow",
    seed: int = 7,
    repositories: int = 40,
) -> list[Published]:
    """Exactly `total` events."""
    stream = events(total, organization=organization, prefix=prefix, seed=seed, repositories=repositories)
    return [next(stream) for _ in range(total)]
