"""Flow metrics on hand-computed fixtures (times are offsets from T0, Monday 2024-03-04 UTC)."""

from __future__ import annotations

import pytest

from doraflow.metrics import (
    Change,
    IssueTransition,
    PullRequest,
    Sprint,
    SprintMembership,
    StatusCategory,
    WorkItem,
    code_churn,
    pull_request_size,
    pull_request_throughput,
    review_depth,
    sprint_carry_over,
    sprint_throughput,
    time_to_first_review,
    work_item_cycle_time,
    work_item_lead_time,
)
from tests.unit.metrics.builders import DAY, HOUR, at, window

WEEK_WINDOW = window(7)
TODO, IN_PROGRESS, DONE = StatusCategory.TODO, StatusCategory.IN_PROGRESS, StatusCategory.DONE

PULL_REQUESTS = [
    # P1: 120 lines, 3 files, 2 reviews + 3 comments, first review after 1 h
    PullRequest(
        "P1", opened_at=at(0, 9), first_review_at=at(0, 10), merged_at=at(0, 12),
        additions=100, deletions=20, files_changed=3, review_count=2, comment_count=3,
    ),
    # P2: 10 lines, 1 file, 1 review, first review after 4 h
    PullRequest(
        "P2", opened_at=at(1, 9), first_review_at=at(1, 13), merged_at=at(2, 9),
        additions=10, deletions=0, files_changed=1, review_count=1, comment_count=0,
    ),
    # P3: 400 lines, 10 files, 1 review + 5 comments, first review after 24 h
    PullRequest(
        "P3", opened_at=at(2, 9), first_review_at=at(3, 9), merged_at=at(3, 10),
        additions=300, deletions=100, files_changed=10, review_count=1, comment_count=5,
    ),
    # P4: merged after the window, never reviewed
    PullRequest("P4", opened_at=at(5), merged_at=at(8), additions=5),
]  # fmt: skip


def test_pull_request_throughput() -> None:
    result = pull_request_throughput(PULL_REQUESTS, WEEK_WINDOW)
    # P1, P2, P3 merged in the window; P4 after it
    assert result.value == 3
    assert result.details["per_week"] == pytest.approx(3)


def test_pull_request_size() -> None:
    result = pull_request_size(PULL_REQUESTS, WEEK_WINDOW)
    # sizes 120, 10, 400 -> sorted 10, 120, 400: median 120
    assert result.value == 120
    # p75: position 1.5 -> 120 + 0.5 * 280 = 260; p90: position 1.8 -> 120 + 0.8 * 280 = 344
    assert result.p75 == pytest.approx(260)
    assert result.p90 == pytest.approx(344)
    assert result.details["median_files_changed"] == 3


def test_review_depth() -> None:
    result = review_depth(PULL_REQUESTS, WEEK_WINDOW)
    # (2 + 3) + (1 + 0) + (1 + 5) = 12 over 3 PRs = 4; per-PR 5, 1, 6 -> median 5
    assert result.value == 4
    assert result.median == 5
    assert result.details["reviews_per_pull_request"] == pytest.approx(4 / 3)
    assert result.details["comments_per_pull_request"] == pytest.approx(8 / 3)


def test_time_to_first_review() -> None:
    result = time_to_first_review(PULL_REQUESTS, WEEK_WINDOW)
    # 1 h, 4 h, 24 h -> median 4 h
    assert result.value == 4 * HOUR
    assert result.sample_size == 3
    # even count: drop P3 -> (1 h + 4 h) / 2 = 2.5 h
    assert time_to_first_review(PULL_REQUESTS[:2], WEEK_WINDOW).value == 2.5 * HOUR


def test_code_churn_per_day() -> None:
    changes = [
        Change("a", at(0, 10), additions=10, deletions=5, files_changed=2),
        Change("b", at(3, 10), additions=30, deletions=0, files_changed=1),
        Change("m", at(3, 11), additions=40, deletions=5, files_changed=3, is_merge_commit=True),
        Change("late", at(9), additions=1000),
    ]
    result = code_churn(changes, WEEK_WINDOW)
    # a and b only: (10 + 5 + 30 + 0) = 45 lines over 7 days
    assert result.value == pytest.approx(45 / 7)
    assert result.details["lines_added_per_day"] == pytest.approx(40 / 7)
    assert result.details["lines_deleted_per_day"] == pytest.approx(5 / 7)
    assert result.details["files_changed_per_day"] == pytest.approx(3 / 7)
    assert result.sample_size == 2


# Work items, window days 0-6:
#   W1 created day -10, in progress day 1 09:00, done day 3 09:00: cycle 48 h, lead 13 d 9 h
#   W2 created day 0, in progress day 0 12:00, done day 1 12:00, reopened day 2, done day 4:
#      complete at day 4 00:00; cycle from the first start 3.5 d; lead 4 d
#   W3 created day 0, straight to done day 2: no cycle time; lead 2 d
#   W4 in progress day 5, done day 8: after the window
#   W5 done day 6 00:00, reopened day 6 12:00: not done at the window's end
WORK_ITEMS = [
    WorkItem("W1", at(-10)),
    WorkItem("W2", at(0)),
    WorkItem("W3", at(0)),
    WorkItem("W4", at(0)),
    WorkItem("W5", at(0)),
]
TRANSITIONS = [
    IssueTransition("W1", at(1, 9), IN_PROGRESS),
    IssueTransition("W1", at(3, 9), DONE),
    IssueTransition("W2", at(0, 12), IN_PROGRESS),
    IssueTransition("W2", at(1, 12), DONE),
    IssueTransition("W2", at(2), IN_PROGRESS),
    IssueTransition("W2", at(4), DONE),
    IssueTransition("W3", at(2), DONE),
    IssueTransition("W4", at(5), IN_PROGRESS),
    IssueTransition("W4", at(8), DONE),
    IssueTransition("W5", at(6), DONE),
    IssueTransition("W5", at(6, 12), TODO),
]


def test_work_item_cycle_time() -> None:
    result = work_item_cycle_time(TRANSITIONS, WEEK_WINDOW)
    # W1 48 h = 172800 s; W2 3.5 d = 302400 s -> median (172800 + 302400) / 2 = 237600
    assert result.value == 237600
    assert result.sample_size == 2
    assert result.details["completed_without_in_progress"] == 1


def test_work_item_lead_time() -> None:
    result = work_item_lead_time(WORK_ITEMS, TRANSITIONS, WEEK_WINDOW)
    # W1 13 d 9 h = 1155600 s; W2 4 d = 345600 s; W3 2 d = 172800 s -> median 345600
    assert result.value == 4 * DAY
    assert result.sample_size == 3


def test_done_to_done_does_not_restart_completion() -> None:
    transitions = [
        IssueTransition("X", at(0), IN_PROGRESS),
        IssueTransition("X", at(1), DONE, to_status="Resolved"),
        IssueTransition("X", at(2), DONE, to_status="Closed"),
    ]
    assert work_item_cycle_time(transitions, WEEK_WINDOW).value == DAY


# Sprints in window days 0-14 (S1 days 0-7, S2 days 7-14, S3 ends after the window):
#   S1 holds W1 (done day 3, 3 points), W2 (done day 4, 5 points), W4 (not done by day 7),
#      W6 (added day 2, never started), W7 (removed day 3), W8 (done before the sprint)
#   S2 holds W4 (done day 8, 2 points) and W6
SPRINTS = [Sprint("S1", at(0), at(7)), Sprint("S2", at(7), at(14)), Sprint("S3", at(14), at(21))]
MEMBERSHIPS = [
    SprintMembership("S1", "W1", story_points=3),
    SprintMembership("S1", "W2", story_points=5),
    SprintMembership("S1", "W4"),
    SprintMembership("S1", "W6", added_at=at(2)),
    SprintMembership("S1", "W7", removed_at=at(3)),
    SprintMembership("S1", "W8"),
    SprintMembership("S2", "W4", story_points=2),
    SprintMembership("S2", "W6"),
]
SPRINT_TRANSITIONS = [*TRANSITIONS, IssueTransition("W8", at(-2), DONE), IssueTransition("W7", at(2), DONE)]


def test_sprint_throughput() -> None:
    result = sprint_throughput(SPRINTS, MEMBERSHIPS, SPRINT_TRANSITIONS, window(15))
    # S1 completed W1, W2 (2 items, 8 points); S2 completed W4 (1 item, 2 points) -> median 1.5
    assert result.value == 1.5
    assert result.sample_size == 2
    assert result.details["median_story_points"] == 5  # (8 + 2) / 2


def test_sprint_carry_over() -> None:
    result = sprint_carry_over(SPRINTS, MEMBERSHIPS, SPRINT_TRANSITIONS, window(15))
    # S1: 4 present at its end (W1, W2, W4, W6), 2 carried over (W4, W6)
    # S2: 2 present (W4, W6), 1 carried over (W6) -> 3 of 6 = 0.5
    assert result.value == 0.5
    assert result.details["carried_over"] == 3
    assert result.details["in_sprints_at_end"] == 6


def test_empty_windows_return_none_with_a_reason() -> None:
    empty = window(7, start_days=100)
    results = [
        pull_request_throughput(PULL_REQUESTS, empty),
        pull_request_size(PULL_REQUESTS, empty),
        review_depth(PULL_REQUESTS, empty),
        time_to_first_review(PULL_REQUESTS, empty),
        code_churn([Change("a", at(0), additions=1)], empty),
        work_item_cycle_time(TRANSITIONS, empty),
        work_item_lead_time(WORK_ITEMS, TRANSITIONS, empty),
        sprint_throughput(SPRINTS, MEMBERSHIPS, SPRINT_TRANSITIONS, empty),
        sprint_carry_over(SPRINTS, MEMBERSHIPS, SPRINT_TRANSITIONS, empty),
    ]
    for result in results:
        assert result.value is None, result.name
        assert result.reason, result.name
