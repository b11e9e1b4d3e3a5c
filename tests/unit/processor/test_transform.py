"""Transform: one row per natural key per batch, the version the database would keep."""

from __future__ import annotations

from doraflow.core.events import EventData, PersonRef
from doraflow.processor.transform import INT4_MAX, Plan, build_plan, clamp, text
from doraflow.processor.validation import Accepted, validate
from tests.unit.processor import factories as f


def plan_of(*events: EventData) -> Plan:
    accepted = []
    for offset, data in enumerate(events):
        outcome = validate(f.message(data, offset=offset), f.PREFIX)
        assert isinstance(outcome, Accepted), outcome
        accepted.append(outcome)
    return build_plan(accepted)


def test_pull_request_keeps_the_latest_update_whatever_the_order() -> None:
    opened = f.pull_request(7, state="open", updated_at=f.at(10), merged_at=None, merge_commit_sha=None)
    merged = f.pull_request(7, state="merged", updated_at=f.at(90))
    for events in ((opened, merged), (merged, opened)):
        (staged,) = plan_of(*events).pull_requests.values()
        assert staged.data.state == "merged"


def test_pull_request_with_the_same_update_time_keeps_the_further_state() -> None:
    closed = f.pull_request(7, state="closed", updated_at=f.at(90), merged_at=None, merge_commit_sha=None)
    merged = f.pull_request(7, state="merged", updated_at=f.at(90))
    (staged,) = plan_of(merged, closed).pull_requests.values()
    assert staged.data.state == "merged"


def test_deployment_keeps_the_finished_version_and_unions_commit_lists() -> None:
    running = f.deployment("d1", [f.sha(1)], minutes=100, status="in_progress")
    done = f.deployment("d1", [f.sha(2)], minutes=100, status="success")
    plan = plan_of(done, running)
    (key,) = plan.deployments
    assert plan.deployments[key].data.status == "success"
    assert plan.deployment_shas[key] == {f.sha(1), f.sha(2)}


def test_duplicates_collapse_to_one_row_per_natural_key() -> None:
    plan = plan_of(f.commit(1), f.commit(1), f.commit(2), f.review(3, "r1"), f.review(3, "r1"))
    assert len(plan.commits) == 2
    assert len(plan.reviews) == 1
    assert len(plan) == 5  # every event is counted
    assert plan.schemas["git.commit/v1"] == 3


def test_repositories_and_people_are_collected_once() -> None:
    plan = plan_of(f.commit(1), f.commit(4), f.pull_request(2, author=PersonRef(username="dev1")))
    assert list(plan.repositories) == [("acme", "github", "acme-api")]
    assert {(p.email, p.username) for p in plan.persons} == {("dev1@acme.com", "dev1"), (None, "dev1")}


def test_values_are_made_storable() -> None:
    assert clamp(2**40) == INT4_MAX
    assert clamp(None) is None
    assert text("a\x00b", None) == "ab"
    assert text("x" * 300, 255) == "x" * 255
