"""Flow metrics next to DORA: pull requests, code churn, work items and sprints.

Same conventions as the DORA metrics: pure functions over records and a half-open window, a
``MetricResult`` back, ``None`` with a reason when there is nothing to measure, durations in
seconds. Pull request metrics select PRs by the event the metric is about (merged in the window
for throughput, size and review depth; first reviewed in the window for time to first review).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from doraflow.metrics.records import (
    Change,
    IssueTransition,
    PullRequest,
    Sprint,
    SprintMembership,
    StatusCategory,
    Window,
    WorkItem,
)
from doraflow.metrics.results import JSONValue, MetricResult
from doraflow.metrics.stats import describe
from doraflow.metrics.stats import median as true_median

__all__ = [
    "code_churn",
    "code_churn_from_totals",
    "pull_request_size",
    "pull_request_throughput",
    "review_depth",
    "sprint_carry_over",
    "sprint_throughput",
    "time_to_first_review",
    "work_item_cycle_time",
    "work_item_lead_time",
]


def _merged_in(pull_requests: Iterable[PullRequest], window: Window) -> list[PullRequest]:
    return [pr for pr in pull_requests if pr.merged_at is not None and window.contains(pr.merged_at)]


def _distribution_result(
    name: str, unit: str, values: list[float], empty_reason: str, details: dict[str, JSONValue]
) -> MetricResult:
    return MetricResult.from_distribution(name, unit, describe(values), empty_reason, details=details)


def pull_request_throughput(pull_requests: Iterable[PullRequest], window: Window) -> MetricResult:
    """Number of pull requests merged in the window (``details``: per week = count ÷ weeks)."""
    name, unit = "pull_request_throughput", "pull_requests"
    merged = _merged_in(pull_requests, window)
    if not merged:
        return MetricResult.unavailable(name, unit, "no pull requests were merged in the window")
    return MetricResult(
        name=name,
        value=float(len(merged)),
        unit=unit,
        tier=None,
        sample_size=len(merged),
        details={"per_week": len(merged) / window.days * 7, "per_day": len(merged) / window.days},
    )


def pull_request_size(pull_requests: Iterable[PullRequest], window: Window) -> MetricResult:
    """Lines changed (additions + deletions) per pull request merged in the window; median,
    p75, p90 (a few huge PRs must not hide that most are small, hence the median)."""
    merged = _merged_in(pull_requests, window)
    files = describe(float(pr.files_changed) for pr in merged)
    details: dict[str, JSONValue] = {"median_files_changed": None if files is None else files.median}
    return _distribution_result(
        "pull_request_size",
        "lines_changed",
        [float(pr.additions + pr.deletions) for pr in merged],
        "no pull requests were merged in the window",
        details,
    )


def review_depth(pull_requests: Iterable[PullRequest], window: Window) -> MetricResult:
    """Reviews plus review comments per pull request merged in the window.

    ``value`` is the mean (a ratio of totals: the median of small counts is too coarse to move
    when review habits change); ``details`` split reviews and comments, and give the median.
    """
    name, unit = "review_depth", "reviews_and_comments_per_pull_request"
    merged = _merged_in(pull_requests, window)
    if not merged:
        return MetricResult.unavailable(name, unit, "no pull requests were merged in the window")
    reviews = sum(pr.review_count for pr in merged)
    comments = sum(pr.comment_count for pr in merged)
    return MetricResult(
        name=name,
        value=(reviews + comments) / len(merged),
        unit=unit,
        tier=None,
        sample_size=len(merged),
        median=true_median(float(pr.review_count + pr.comment_count) for pr in merged),
        details={
            "reviews_per_pull_request": reviews / len(merged),
            "comments_per_pull_request": comments / len(merged),
            "merged_without_review": sum(1 for pr in merged if pr.review_count == 0),
        },
    )


def time_to_first_review(pull_requests: Iterable[PullRequest], window: Window) -> MetricResult:
    """Opened → first review by someone other than the author, for PRs first reviewed in the
    window; median, p75, p90. (Selecting by review time means a PR is measured once, when its
    wait ends, and long waits are not lost at window edges.)"""
    waits: list[float] = []
    counts: Counter[str] = Counter()
    for pr in pull_requests:
        if pr.first_review_at is None or not window.contains(pr.first_review_at):
            continue
        seconds = (pr.first_review_at - pr.opened_at).total_seconds()
        if seconds < 0:
            counts["reviewed_before_opened_excluded"] += 1
            continue
        waits.append(seconds)
    return _distribution_result(
        "time_to_first_review",
        "seconds",
        waits,
        "no pull requests received a first review in the window",
        {key: counts[key] for key in sorted(counts)},
    )


def code_churn(changes: Iterable[Change], window: Window) -> MetricResult:
    """Lines changed (added + deleted) per day by commits authored in the window.

    Merge commits are skipped (their diff repeats the commits they merge). ``details`` give
    lines added, lines deleted and files changed per day and the totals.
    """
    commits = [
        change for change in changes if not change.is_merge_commit and window.contains(change.authored_at)
    ]
    return code_churn_from_totals(
        commits=len(commits),
        lines_added=sum(change.additions for change in commits),
        lines_deleted=sum(change.deletions for change in commits),
        files_changed=sum(change.files_changed for change in commits),
        window=window,
    )


def code_churn_from_totals(
    *, commits: int, lines_added: int, lines_deleted: int, files_changed: int, window: Window
) -> MetricResult:
    """:func:`code_churn` from totals the caller summed over the same commits (non-merge commits
    authored in the window). The query layer sums ~10^5 commits in SQL and builds the result
    here, so the rates and the empty-window rule are defined once."""
    name, unit = "code_churn", "lines_changed_per_day"
    if commits == 0:
        return MetricResult.unavailable(name, unit, "no commits were authored in the window")
    days = window.days
    return MetricResult(
        name=name,
        value=(lines_added + lines_deleted) / days,
        unit=unit,
        tier=None,
        sample_size=commits,
        details={
            "lines_added_per_day": lines_added / days,
            "lines_deleted_per_day": lines_deleted / days,
            "files_changed_per_day": files_changed / days,
            "lines_added": lines_added,
            "lines_deleted": lines_deleted,
            "files_changed": files_changed,
            "commits": commits,
        },
    )


# --------------------------------------------------------------------------------------------
# Work items
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Timeline:
    """One work item's transitions, sorted, for "status at time t" look-ups by bisection."""

    times: list[datetime]
    categories: list[StatusCategory]

    def completed_at(self, moment: datetime, *, inclusive: bool = True) -> datetime | None:
        """When the item last entered *done*, if it is done at ``moment`` (counting a transition
        exactly at ``moment`` only when ``inclusive``)."""
        position = (bisect_right if inclusive else bisect_left)(self.times, moment) - 1
        if position < 0 or self.categories[position] is not StatusCategory.DONE:
            return None
        while position > 0 and self.categories[position - 1] is StatusCategory.DONE:
            position -= 1  # done → done (e.g. "Resolved" → "Closed") does not restart completion
        return self.times[position]

    def first_started_before(self, moment: datetime) -> datetime | None:
        for at, category in zip(self.times, self.categories, strict=True):
            if at > moment:
                return None
            if category is StatusCategory.IN_PROGRESS:
                return at
        return None


def _timelines(transitions: Iterable[IssueTransition]) -> dict[str, _Timeline]:
    grouped: dict[str, list[IssueTransition]] = defaultdict(list)
    for transition in transitions:
        grouped[transition.item_id].append(transition)
    timelines: dict[str, _Timeline] = {}
    for item_id, item_transitions in grouped.items():
        item_transitions.sort(key=lambda transition: transition.at)
        timelines[item_id] = _Timeline(
            [transition.at for transition in item_transitions],
            [transition.to_category for transition in item_transitions],
        )
    return timelines


def _completions(timelines: dict[str, _Timeline], window: Window) -> dict[str, datetime]:
    """Items whose completion (last entry into done, still done at the window's end) is in the
    window. A reopened item is complete only once it is done again, at the later time."""
    completions: dict[str, datetime] = {}
    for item_id, timeline in timelines.items():
        done_at = timeline.completed_at(window.end, inclusive=False)
        if done_at is not None and window.contains(done_at):
            completions[item_id] = done_at
    return completions


def work_item_cycle_time(transitions: Iterable[IssueTransition], window: Window) -> MetricResult:
    """First move into *in progress* → completion, for work items completed in the window.

    Completion is the last move into *done*, provided the item is still done at the window's
    end (a reopened item completes again later). Items that went straight to done without ever
    being in progress have no cycle time and are counted in ``details``. Median, p75, p90.
    """
    timelines = _timelines(transitions)
    durations: list[float] = []
    counts: Counter[str] = Counter()
    for item_id, done_at in _completions(timelines, window).items():
        started = timelines[item_id].first_started_before(done_at)
        if started is None:
            counts["completed_without_in_progress"] += 1
            continue
        durations.append((done_at - started).total_seconds())
    return _distribution_result(
        "work_item_cycle_time",
        "seconds",
        durations,
        "no work items that were in progress were completed in the window",
        {key: counts[key] for key in sorted(counts)},
    )


def work_item_lead_time(
    items: Iterable[WorkItem], transitions: Iterable[IssueTransition], window: Window
) -> MetricResult:
    """Creation → completion, for work items completed in the window (completion as in
    :func:`work_item_cycle_time`); median, p75, p90. Includes the time spent in the backlog,
    which cycle time leaves out."""
    created = {item.item_id: item.created_at for item in items}
    durations: list[float] = []
    counts: Counter[str] = Counter()
    for item_id, done_at in _completions(_timelines(transitions), window).items():
        created_at = created.get(item_id)
        if created_at is None:
            counts["unknown_work_items"] += 1
            continue
        seconds = (done_at - created_at).total_seconds()
        if seconds < 0:
            counts["completed_before_created_excluded"] += 1
            continue
        durations.append(seconds)
    return _distribution_result(
        "work_item_lead_time",
        "seconds",
        durations,
        "no work items were completed in the window",
        {key: counts[key] for key in sorted(counts)},
    )


# --------------------------------------------------------------------------------------------
# Sprints
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _SprintTally:
    sprint: Sprint
    completed: int
    completed_points: float
    carried_over: int
    in_sprint_at_end: int


def _tally_sprints(
    sprints: Iterable[Sprint],
    memberships: Iterable[SprintMembership],
    transitions: Iterable[IssueTransition],
    window: Window,
) -> list[_SprintTally]:
    """Per sprint ending in the window: items present at its end that were completed during it,
    and items present at its end that were not done (carry-over). Items already done before
    the sprint started are neither."""
    timelines = _timelines(transitions)
    members: dict[str, list[SprintMembership]] = defaultdict(list)
    for membership in memberships:
        members[membership.sprint_id].append(membership)
    tallies: list[_SprintTally] = []
    for sprint in sorted(sprints, key=lambda sprint: sprint.ended_at):
        if not window.contains(sprint.ended_at):
            continue
        completed = carried = present = 0
        points = 0.0
        for membership in members.get(sprint.sprint_id, ()):
            if membership.added_at is not None and membership.added_at > sprint.ended_at:
                continue
            if membership.removed_at is not None and membership.removed_at <= sprint.ended_at:
                continue
            timeline = timelines.get(membership.item_id)
            done_at = None if timeline is None else timeline.completed_at(sprint.ended_at)
            if done_at is not None and done_at < sprint.started_at:
                continue  # finished before the sprint: neither throughput nor carry-over
            present += 1
            if done_at is None:
                carried += 1
            else:
                completed += 1
                points += membership.story_points or 0.0
        tallies.append(_SprintTally(sprint, completed, points, carried, present))
    return tallies


def sprint_throughput(
    sprints: Iterable[Sprint],
    memberships: Iterable[SprintMembership],
    transitions: Iterable[IssueTransition],
    window: Window,
) -> MetricResult:
    """Median number of work items completed per sprint, over sprints ending in the window.

    An item counts for a sprint when it is in the sprint at its end and was completed between
    the sprint's start and end. ``details`` give story points and the per-sprint counts.
    """
    name, unit = "sprint_throughput", "work_items_per_sprint"
    tallies = _tally_sprints(sprints, memberships, transitions, window)
    if not tallies:
        return MetricResult.unavailable(name, unit, "no sprints ended in the window")
    per_sprint = [float(tally.completed) for tally in tallies]
    summary = describe(per_sprint)
    assert summary is not None
    return MetricResult(
        name=name,
        value=summary.median,
        unit=unit,
        tier=None,
        sample_size=len(tallies),
        median=summary.median,
        details={
            "mean": summary.mean,
            "median_story_points": true_median(tally.completed_points for tally in tallies),
            "sprints": [
                {
                    "sprint_id": tally.sprint.sprint_id,
                    "completed": tally.completed,
                    "completed_story_points": tally.completed_points,
                }
                for tally in tallies
            ],
        },
    )


def sprint_carry_over(
    sprints: Iterable[Sprint],
    memberships: Iterable[SprintMembership],
    transitions: Iterable[IssueTransition],
    window: Window,
) -> MetricResult:
    """Share of work items still in a sprint at its end that were not done, over sprints
    ending in the window (total carried over ÷ total in sprints at their end; a ratio)."""
    name, unit = "sprint_carry_over", "ratio"
    tallies = _tally_sprints(sprints, memberships, transitions, window)
    present = sum(tally.in_sprint_at_end for tally in tallies)
    if not tallies:
        return MetricResult.unavailable(name, unit, "no sprints ended in the window")
    if present == 0:
        return MetricResult.unavailable(
            name, unit, "the sprints that ended in the window held no work items", sample_size=len(tallies)
        )
    carried = sum(tally.carried_over for tally in tallies)
    return MetricResult(
        name=name,
        value=carried / present,
        unit=unit,
        tier=None,
        sample_size=present,
        details={
            "sprints": len(tallies),
            "carried_over": carried,
            "in_sprints_at_end": present,
            "per_sprint": [
                {"sprint_id": tally.sprint.sprint_id, "carried_over": tally.carried_over} for tally in tallies
            ],
        },
    )
