"""Which deployments count: production, successful, one per revision rollout; rollbacks; hotfixes."""

from __future__ import annotations

from datetime import timedelta

from doraflow.metrics import (
    DeploymentRules,
    FailureReason,
    ReworkReason,
    classify_deployments,
    production_deployments,
)
from tests.unit.metrics.builders import at, deploy


def test_only_successful_production_deployments_count() -> None:
    rows = [
        deploy("ok", at(0, 10), "r1"),
        deploy("staging", at(0, 9), "r1", environment="staging", production=False),
        deploy("ci-failed", at(0, 11), "r2", succeeded=False),  # failed before reaching production
    ]
    deployments = production_deployments(rows)
    assert [deployment.deployment_id for deployment in deployments] == ["ok"]


def test_multi_region_rollout_is_one_deployment_at_first_arrival() -> None:
    rows = [
        deploy("us", at(0, 10, 30), "r1", ("c2",), environment="prod-us"),
        deploy("eu", at(0, 10), "r1", ("c1",), environment="prod-eu"),
        deploy("ap", at(0, 11), "r1", environment="prod-ap"),
    ]
    (deployment,) = production_deployments(rows)
    # first reached production in eu at 10:00; three regions, one deployment
    assert deployment.deployed_at == at(0, 10)
    assert deployment.deployment_id == "eu"
    assert deployment.environments == ("prod-eu", "prod-us", "prod-ap")
    assert set(deployment.source_deployment_ids) == {"eu", "us", "ap"}
    assert deployment.shipped_shas == {"r1", "c1", "c2"}
    assert not deployment.is_rollback


def test_environments_declared_separate_services_are_not_merged() -> None:
    rows = [
        deploy("eu", at(0, 10), "r1", environment="prod-eu"),
        deploy("cn", at(0, 11), "r1", environment="prod-cn"),
    ]
    rules = DeploymentRules(separate_services={("api", "prod-cn"): "api-cn"})
    deployments = production_deployments(rows, rules)
    assert [(deployment.service, deployment.deployment_id) for deployment in deployments] == [
        ("api", "eu"),
        ("api-cn", "cn"),
    ]


def test_a_slow_region_finishing_the_previous_revision_is_not_a_rollback() -> None:
    # A reaches eu and us, B reaches eu, then the slow ap region finishes A: A's rollout, not a rollback
    rows = [
        deploy("a-eu", at(0, 10), "A", environment="eu"),
        deploy("a-us", at(0, 11), "A", environment="us"),
        deploy("b-eu", at(0, 12), "B", environment="eu"),
        deploy("a-ap", at(0, 13), "A", environment="ap"),
    ]
    deployments = production_deployments(rows)
    assert [(deployment.revision, deployment.environments) for deployment in deployments] == [
        ("A", ("eu", "us", "ap")),
        ("B", ("eu",)),
    ]
    assert not any(deployment.is_rollback for deployment in deployments)


def test_going_back_to_an_earlier_revision_is_a_rollback_and_a_new_deployment() -> None:
    rows = [
        deploy("d1", at(0, 10), "A"),
        deploy("d2", at(1, 10), "B"),
        deploy("d3", at(1, 12), "A"),  # production goes back to A
    ]
    deployments = production_deployments(rows)
    assert [(deployment.deployment_id, deployment.is_rollback) for deployment in deployments] == [
        ("d1", False),
        ("d2", False),
        ("d3", True),
    ]
    outcomes = classify_deployments(deployments, {})
    assert outcomes["d2"].failure_reasons == (FailureReason.ROLLED_BACK,)
    assert outcomes["d2"].recovered_at == at(1, 12)
    assert outcomes["d2"].restored_by_deployment_id == "d3"
    assert not outcomes["d1"].failed
    assert outcomes["d3"].rework_reasons == (ReworkReason.ROLLBACK,)


def test_rolling_forward_again_after_a_rollback_is_not_a_rollback() -> None:
    rows = [
        deploy("d1", at(0, 10), "A"),
        deploy("d2", at(1, 10), "B"),
        deploy("d3", at(1, 12), "A"),  # back to A: rollback of d2
        deploy("d4", at(2, 10), "B"),  # B again (newer than A): a re-release, not a rollback
    ]
    deployments = production_deployments(rows)
    assert [deployment.is_rollback for deployment in deployments] == [False, False, True, False]
    outcomes = classify_deployments(deployments, {})
    assert outcomes["d2"].failed
    assert not outcomes["d3"].failed


def test_rollback_to_a_commit_shipped_earlier_but_never_a_head_revision() -> None:
    rows = [
        deploy("d1", at(0, 10), "c2", ("c1", "c2")),
        deploy("d2", at(1, 10), "c3", ("c3",)),
        deploy("d3", at(1, 11), "c1"),  # c1 shipped with d1: an earlier revision
    ]
    deployments = production_deployments(rows)
    assert deployments[2].is_rollback
    without_detection = production_deployments(rows, DeploymentRules(detect_rollbacks=False))
    assert not without_detection[2].is_rollback
    # going back to a commit shipped together with the running head is going back too
    same_deployment = production_deployments(
        [deploy("e1", at(0, 10), "c2", ("c1", "c2")), deploy("e2", at(0, 11), "c1")]
    )
    assert same_deployment[1].is_rollback


def test_rollback_flag_from_the_integration_is_kept() -> None:
    rows = [deploy("d1", at(0, 10), "A"), deploy("d2", at(0, 11), "C", rollback=True)]
    deployments = production_deployments(rows)
    assert deployments[1].is_rollback
    assert classify_deployments(deployments, {})["d1"].failure_reasons == (FailureReason.ROLLED_BACK,)


def test_redeploying_the_running_revision_is_not_a_new_deployment() -> None:
    rows = [deploy("d1", at(0, 10), "A"), deploy("d1-rerun", at(0, 15), "A")]
    (deployment,) = production_deployments(rows)
    assert deployment.source_deployment_ids == ("d1", "d1-rerun")


def test_hotfix_marks_the_deployment_it_follows_as_failed() -> None:
    rows = [deploy("d1", at(0, 10), "A"), deploy("fix", at(0, 13), "B", hotfix=True)]
    deployments = production_deployments(rows)
    outcomes = classify_deployments(deployments, {})
    assert outcomes["d1"].failure_reasons == (FailureReason.FOLLOWED_BY_HOTFIX,)
    assert outcomes["d1"].recovered_at == at(0, 13)
    assert outcomes["fix"].rework_reasons == (ReworkReason.HOTFIX,)
    # with a one-hour hotfix window, a hotfix three hours later does not blame d1
    strict = DeploymentRules(hotfix_window=timedelta(hours=1))
    assert not classify_deployments(deployments, {}, rules=strict)["d1"].failed
    # and the rule can be switched off
    off = DeploymentRules(hotfix_marks_previous_failed=False)
    assert not classify_deployments(deployments, {}, rules=off)["d1"].failed


def test_deployments_of_other_services_do_not_roll_each_other_back() -> None:
    rows = [
        deploy("api-1", at(0, 10), "A"),
        deploy("web-1", at(0, 11), "A", service="web"),  # same sha in a monorepo, other service
    ]
    deployments = production_deployments(rows)
    assert not any(deployment.is_rollback for deployment in deployments)
    assert not any(outcome.failed for outcome in classify_deployments(deployments, {}).values())
