"""Incident attribution: explicit links, then same service within 7 days, else unattributed."""

from __future__ import annotations

from datetime import timedelta

from doraflow.metrics import AttributionMethod, Incident, attribute_incidents, production_deployments
from tests.unit.metrics.builders import at, deploy

DEPLOYMENTS = production_deployments(
    [
        deploy("api-1", at(0, 10), "r1", ("c1",)),
        deploy("api-2-eu", at(2, 10), "r2", ("c2",), environment="prod-eu"),
        deploy("api-2-us", at(2, 10, 30), "r2", environment="prod-us"),
        deploy("web-1", at(1, 10), "w1", ("c1",), service="web"),
        deploy("api-staging", at(3, 10), "r3", production=False),
    ]
)


def attribute(*incidents: Incident, window: timedelta = timedelta(days=7)) -> list[tuple[str | None, str]]:
    return [
        (attribution.deployment_id, attribution.method.value)
        for attribution in attribute_incidents(incidents, DEPLOYMENTS, window=window)
    ]


def test_latest_production_deployment_of_the_same_service_before_the_incident() -> None:
    # started day 2 12:00: api deployments before it are api-1 (day 0) and api-2 (day 2 10:00)
    incident = Incident("i", created_at=at(2, 12), service="api")
    assert attribute(incident) == [("api-2-eu", "service_window")]


def test_impact_start_not_creation_decides() -> None:
    # created after api-2, but impact started at day 1 (before api-2): api-1 caused it
    incident = Incident("i", created_at=at(2, 12), started_at=at(1, 0), service="api")
    assert attribute(incident) == [("api-1", "service_window")]


def test_a_deployment_finishing_exactly_when_the_incident_starts_is_not_before_it() -> None:
    incident = Incident("i", created_at=at(2, 10), service="api")
    assert attribute(incident) == [("api-1", "service_window")]


def test_attribution_window_is_inclusive_and_configurable() -> None:
    # api-2 reached production day 2 10:00; exactly 7 days later is still inside the window
    assert attribute(Incident("i", created_at=at(9, 10), service="api")) == [("api-2-eu", "service_window")]
    assert attribute(Incident("i", created_at=at(9, 10, 1), service="api")) == [(None, "unattributed")]
    assert attribute(Incident("i", created_at=at(3), service="api"), window=timedelta(hours=1)) == [
        (None, "unattributed")
    ]


def test_explicit_deployment_link_wins_and_any_region_row_resolves() -> None:
    incident = Incident("i", created_at=at(5), service="api", deployment_id="api-2-us")
    assert attribute(incident) == [("api-2-eu", "explicit_deployment")]
    # a link to a staging deployment is not guessed around: it stays unattributed
    staged = Incident("j", created_at=at(5), service="api", deployment_id="api-staging")
    assert attribute(staged) == [(None, "unattributed")]


def test_explicit_commit_link_uses_the_first_deployment_that_shipped_it_in_that_service() -> None:
    # c1 shipped by api-1 (day 0) and web-1 (day 1)
    assert attribute(Incident("i", created_at=at(5), commit_sha="c1")) == [("api-1", "explicit_commit")]
    assert attribute(Incident("i", created_at=at(5), commit_sha="c1", service="web")) == [
        ("web-1", "explicit_commit")
    ]
    assert attribute(Incident("i", created_at=at(5), commit_sha="never-shipped")) == [(None, "unattributed")]


def test_incident_with_no_candidate_is_unattributed_never_linked_to_another_service() -> None:
    # billing has no deployments at all: api's and web's deployments are not candidates
    billing = Incident("i", created_at=at(2, 12), service="billing")
    # before the first api deployment
    early = Incident("j", created_at=at(0, 9), service="api")
    # no service and no link
    unknown = Incident("k", created_at=at(2, 12))
    results = attribute_incidents([billing, early, unknown], DEPLOYMENTS)
    assert [result.deployment_id for result in results] == [None, None, None]
    assert all(result.method is AttributionMethod.UNATTRIBUTED for result in results)
    assert "no production deployment of billing" in results[0].explanation
