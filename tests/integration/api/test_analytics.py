"""Analytics: the DORA answer's shape, scopes, windows, the trend, flow, drill-downs and caching."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from doraflow.api.ratelimit import RateLimits
from doraflow.api.services.analytics import MetricsScope
from doraflow.core import models as m
from doraflow.metrics import MetricResult, Tier, Window
from tests.integration.api.conftest import Api, Org, bearer
from tests.integration.api.dataset import seed_dataset

pytestmark = pytest.mark.integration

DORA = {
    "deployment_frequency",
    "lead_time_for_changes",
    "change_failure_rate",
    "failed_deployment_recovery_time",
    "time_to_restore_service",
    "rework_rate",
}


class RecordingSource:
    """A `MetricsSource` that remembers what it was asked and answers fixed numbers."""

    def __init__(self) -> None:
        self.calls: list[tuple[MetricsScope, list[Window], int]] = []

    async def dora(
        self, session: AsyncSession, scope: MetricsScope, windows: Sequence[Window], *, benchmark: int
    ) -> list[Mapping[str, MetricResult]]:
        self.calls.append((scope, list(windows), benchmark))
        return [
            {
                name: MetricResult(name, 1.5, "seconds", Tier.ELITE, 3, median=1.5, p75=2.0, p90=3.0)
                if name != "rework_rate"
                else MetricResult.unavailable(name, "ratio", "no deployments")
                for name in DORA
            }
            for _ in windows
        ]

    async def flow(
        self, session: AsyncSession, scope: MetricsScope, window: Window
    ) -> Mapping[str, MetricResult]:
        self.calls.append((scope, [window], 0))
        return {
            "pull_request_throughput": MetricResult("pull_request_throughput", 4.0, "pull_requests", None, 4)
        }


async def test_dora_answer_has_every_metric_with_tiers_and_reasons(api: Api) -> None:
    org = await api.new_org()
    await seed_dataset(api.factory, org.id, days=120)
    response = await api.client.get("/api/v1/analytics/dora", params={"window": "90d"}, headers=org.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body["metrics"]) == DORA
    for name, metric in body["metrics"].items():
        assert {"value", "unit", "tier", "sample_size", "reason", "median", "p75", "p90"} <= set(metric), name
        assert (metric["value"] is None) == (metric["reason"] is not None), name
    assert body["metrics"]["deployment_frequency"]["tier"] in {"elite", "high", "medium", "low"}
    lead = body["metrics"]["lead_time_for_changes"]
    assert lead["unit"] == "seconds"
    assert lead["median"] <= lead["p75"] <= lead["p90"]
    assert set(lead["details"]["cycle_time_breakdown"]) >= {"coding", "pickup", "review", "deploy"}
    assert body["benchmark"] == 2023
    assert body["scope"] == {"kind": "organization", "id": str(org.id), "name": org.slug.title()}
    start, end = (
        datetime.fromisoformat(body["window"]["start"]),
        datetime.fromisoformat(body["window"]["end"]),
    )
    assert end - start == timedelta(days=90)
    assert end.time() == datetime.min.time()
    assert end > datetime.now(UTC)
    assert body["previous"] is None

    older = await api.client.get(
        "/api/v1/analytics/dora",
        params={"window": "30d", "benchmark": "2021", "compare": True},
        headers=org.headers,
    )
    assert older.json()["benchmark"] == 2021
    assert set(older.json()["previous"]) == DORA
    # 2021 has tiers for time to restore; 2023 does not (it has failed deployment recovery time).
    assert body["metrics"]["time_to_restore_service"]["tier"] is None

    empty_org = await api.new_org()
    empty = (await api.client.get("/api/v1/analytics/dora", headers=empty_org.headers)).json()
    assert all(m["value"] is None and m["reason"] for m in empty["metrics"].values())


async def test_scopes_are_resolved_to_repositories(make_api: object) -> None:
    source = RecordingSource()
    api: Api = await make_api()  # type: ignore[operator]
    api.app.state.doraflow.analytics.source = source
    org = await api.new_org()
    data = await seed_dataset(api.factory, org.id, days=3)
    team = data.team_ids["payments"]
    for params, expected in [
        ({}, None),
        (
            {"scope": "team", "id": str(team)},
            {data.repository_ids["acme/checkout"], data.repository_ids["acme/payments"]},
        ),
        (
            {"scope": "repository", "id": str(data.repository_ids["acme/web"])},
            {data.repository_ids["acme/web"]},
        ),
    ]:
        response = await api.client.get("/api/v1/analytics/dora", params=params, headers=org.headers)
        assert response.status_code == 200, response.text
        scope, windows, benchmark = source.calls[-1]
        assert scope.organization_id == org.id
        assert (None if scope.repository_ids is None else set(scope.repository_ids)) == expected
        assert scope.kind == params.get("scope", "organization")
        assert scope.id == (uuid.UUID(params["id"]) if "id" in params else None)
        assert len(windows) == 1
        assert benchmark == 2023
    body = response.json()
    assert body["metrics"]["rework_rate"] == {
        "value": None,
        "unit": "ratio",
        "tier": None,
        "benchmark": None,
        "sample_size": 0,
        "reason": "no deployments",
        "median": None,
        "p75": None,
        "p90": None,
        "details": {},
    }
    missing_id = await api.client.get("/api/v1/analytics/dora", params={"scope": "team"}, headers=org.headers)
    assert missing_id.status_code == 422
    assert missing_id.json()["errors"][0]["field"] == "id"
    unknown = await api.client.get(
        "/api/v1/analytics/dora", params={"scope": "team", "id": str(uuid.uuid4())}, headers=org.headers
    )
    assert unknown.status_code == 404


async def test_windows_and_their_errors_name_the_field(api: Api) -> None:
    org = await api.new_org()
    ok = await api.client.get(
        "/api/v1/analytics/dora",
        params={"from": "2025-01-01", "to": "2025-02-01T00:00:00Z"},
        headers=org.headers,
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["window"] == {"start": "2025-01-01T00:00:00Z", "end": "2025-02-01T00:00:00Z"}
    for params, field in [
        ({"window": "14d"}, "window"),
        ({"window": "30d", "from": "2025-01-01"}, "window"),
        ({"to": "2025-01-01"}, "from"),
        ({"from": "2025-02-01", "to": "2025-01-01"}, "to"),
        ({"from": "2015-01-01", "to": "2025-01-01"}, "from"),
        ({"from": "yesterday"}, "from"),
        ({"from": "1900-01-01"}, "from"),
        ({"benchmark": "2019"}, "benchmark"),
        ({"scope": "galaxy"}, "scope"),
        ({"scope": "team", "id": "not-a-uuid"}, "id"),
    ]:
        response = await api.client.get("/api/v1/analytics/dora", params=params, headers=org.headers)
        assert response.status_code == 422, (params, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["errors"][0]["field"] == field, (params, response.json())
        assert field in response.json()["detail"]


async def test_answers_are_cached_under_the_seed_keys(api: Api) -> None:
    org = await api.new_org()
    data = await seed_dataset(api.factory, org.id, days=40)
    repo = data.repository_ids["acme/checkout"]
    params = {"scope": "repository", "id": str(repo), "window": "30d"}
    first = await api.client.get("/api/v1/analytics/dora", params=params, headers=org.headers)
    second = await api.client.get("/api/v1/analytics/dora", params=params, headers=org.headers)
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert first.content == second.content
    stored = [key.decode() async for key in api.cache._client.scan_iter(match=f"metrics:dora:{repo}:*")]
    assert len(stored) == 1
    assert 0 < await api.cache._client.ttl(stored[0]) <= 60

    await api.client.get("/api/v1/analytics/dora", headers=org.headers)
    assert [k async for k in api.cache._client.scan_iter(match=f"metrics:dora:org:{org.id}:*")]
    await api.client.get(
        "/api/v1/analytics/flow",
        params={"scope": "team", "id": str(data.team_ids["web"])},
        headers=org.headers,
    )
    assert [k async for k in api.cache._client.scan_iter(match=f"metrics:flow:team:{data.team_ids['web']}:*")]

    # The processor's invalidation pattern drops it; the next answer is computed again.
    await api.cache.delete_pattern(f"metrics:*:{repo}:*")
    third = await api.client.get("/api/v1/analytics/dora", params=params, headers=org.headers)
    assert third.headers["x-cache"] == "miss"

    # Another organization asking for the same repository id never sees the cached answer.
    other = await api.new_org()
    stolen = await api.client.get("/api/v1/analytics/dora", params=params, headers=other.headers)
    assert stolen.status_code == 404


async def test_trend_buckets_cover_the_window(api: Api) -> None:
    org = await api.new_org()
    await seed_dataset(api.factory, org.id, days=100)
    weekly = await api.client.get(
        "/api/v1/analytics/dora/trend", params={"window": "90d", "granularity": "week"}, headers=org.headers
    )
    assert weekly.status_code == 200, weekly.text
    body = weekly.json()
    series = body["series"]
    assert 13 <= len(series) <= 14
    assert series[0]["start"] == body["window"]["start"]
    assert series[-1]["end"] == body["window"]["end"]
    for earlier, later in itertools.pairwise(series):
        assert earlier["end"] == later["start"]
        assert datetime.fromisoformat(later["start"]).weekday() == 0
    assert set(series[-1]["metrics"]) == DORA
    assert sum(p["metrics"]["deployment_frequency"]["sample_size"] for p in series) > 20

    daily = await api.client.get(
        "/api/v1/analytics/dora/trend",
        params={
            "window": "7d",
            "granularity": "day",
            "metric": ["deployment_frequency", "lead_time_for_changes"],
        },
        headers=org.headers,
    )
    points = daily.json()["series"]
    assert len(points) == 7
    assert not any(p["partial"] for p in points)
    assert set(points[0]["metrics"]) == {"deployment_frequency", "lead_time_for_changes"}
    monthly = await api.client.get(
        "/api/v1/analytics/dora/trend",
        params={"from": "2025-01-15", "to": "2025-04-01", "granularity": "month"},
        headers=org.headers,
    )
    assert [p["start"][:10] for p in monthly.json()["series"]] == ["2025-01-15", "2025-02-01", "2025-03-01"]
    assert [p["partial"] for p in monthly.json()["series"]] == [True, False, False]
    too_many = await api.client.get(
        "/api/v1/analytics/dora/trend",
        params={"from": "2023-01-01", "to": "2025-06-01", "granularity": "day"},
        headers=org.headers,
    )
    assert too_many.status_code == 422
    assert too_many.json()["errors"][0]["field"] == "granularity"


async def test_flow_metrics(api: Api) -> None:
    org = await api.new_org()
    await seed_dataset(api.factory, org.id, days=40)
    response = await api.client.get("/api/v1/analytics/flow", headers=org.headers)
    assert response.status_code == 200
    metrics = response.json()["metrics"]
    assert {
        "pull_request_throughput",
        "pull_request_size",
        "time_to_first_review",
        "review_depth",
        "code_churn",
    } <= set(metrics)
    assert metrics["pull_request_throughput"]["value"] > 0


async def every_row(api: Api, org: Org, path: str, **params: str) -> tuple[list[dict[str, Any]], int]:
    """Every row of a drill-down, page by page, and the `total` the first page announced."""
    rows: list[dict[str, Any]] = []
    cursor = None
    total = None
    while True:
        page = await api.client.get(
            f"/api/v1/analytics/{path}",
            params={**params, "limit": "7", **({"cursor": cursor} if cursor else {})},
            headers=org.headers,
        )
        assert page.status_code == 200, page.text
        body = page.json()
        total = body["total"] if total is None else total
        rows += body["items"]
        cursor = body["next_cursor"]
        if not cursor:
            return rows, total


@pytest.mark.parametrize("scope", ["organization", "team"])
async def test_drill_downs_list_exactly_the_rows_the_metrics_counted(api: Api, scope: str) -> None:
    org = await api.new_org()
    data = await seed_dataset(api.factory, org.id, days=60)
    params = {"window": "30d", "scope": scope}
    if scope == "team":
        params["id"] = str(data.team_ids["payments"])
    dora = (await api.client.get("/api/v1/analytics/dora", params=params, headers=org.headers)).json()
    metrics = dora["metrics"]

    deployments, total = await every_row(api, org, "deployments", **params)
    assert len({d["id"] for d in deployments}) == len(deployments) == total
    assert len(deployments) == metrics["deployment_frequency"]["sample_size"] > 0
    deployed = [d["deployed_at"] for d in deployments]
    assert deployed == sorted(deployed, reverse=True)
    # Lead time's sample is the changes those deployments first shipped.
    assert sum(d["changes"] for d in deployments) == metrics["lead_time_for_changes"]["sample_size"] > 0
    if scope == "team":
        assert {d["repository"] for d in deployments} <= {"acme/checkout", "acme/payments"}

    failed, _ = await every_row(api, org, "deployments", failed="true", sort="recovery_time", **params)
    assert len(failed) == metrics["change_failure_rate"]["details"]["failed_deployments"] > 0
    assert all(d["failed"] and d["failure_reasons"] for d in failed)
    assert {d["id"] for d in failed} == {d["id"] for d in deployments if d["failed"]}

    pull_requests, _ = await every_row(api, org, "pull-requests", **params)
    breakdown = metrics["lead_time_for_changes"]["details"]["cycle_time_breakdown"]
    assert len(pull_requests) == breakdown["pull_requests"] > 0
    assert all(p["first_deployed_at"] and p["cycle_time_seconds"] is not None for p in pull_requests)

    restored, _ = await every_row(api, org, "incidents", selection="resolved", **params)
    assert len(restored) == metrics["time_to_restore_service"]["sample_size"]
    started, _ = await every_row(api, org, "incidents", sort="created_at", **params)
    assert [i["created_at"] for i in started] == sorted(i["created_at"] for i in started)
    assert all(i["attribution_explanation"] for i in started)
    # The incidents list and the deployments list tell the same attribution.
    by_id = {d["id"]: d for d in deployments}
    linked = [i for i in started if i["deployment_id"] in by_id]
    assert all(i["id"] in by_id[i["deployment_id"]]["incident_ids"] for i in linked)


async def test_drill_down_pull_requests_sort_and_select(api: Api) -> None:
    org = await api.new_org()
    data = await seed_dataset(api.factory, org.id, days=40)
    merged, _ = await every_row(
        api,
        org,
        "pull-requests",
        scope="repository",
        id=str(data.repository_ids["acme/web"]),
        selection="merged",
        sort="-cycle_time",
    )
    assert merged
    assert {p["repository"] for p in merged} == {"acme/web"}
    assert all(p["merged_at"] is not None and p["opened_at"] <= p["merged_at"] for p in merged)
    cycle = [p["cycle_time_seconds"] for p in merged]
    present = [value for value in cycle if value is not None]
    assert present == sorted(present, reverse=True)
    assert cycle[len(present) :] == [None] * (len(cycle) - len(present))  # missing values last

    page = await api.client.get(
        "/api/v1/analytics/pull-requests", params={"cursor": "not-a-cursor"}, headers=org.headers
    )
    assert page.status_code == 422
    assert page.json()["errors"][0]["field"] == "cursor"
    unknown = await api.client.get(
        "/api/v1/analytics/deployments", params={"sort": "status"}, headers=org.headers
    )
    assert unknown.status_code == 422


async def test_team_flow_metrics_count_the_members_work_items(api: Api) -> None:
    """A team's work-item and sprint metrics are its members' (assignees), not the
    organization's: the dataset gives the two different numbers."""
    org = await api.new_org()
    start = datetime(2025, 3, 3, tzinfo=UTC)
    developers = {name: uuid.uuid4() for name in ("ana", "bo", "chen")}
    team_id = uuid.uuid4()
    sprint_id = uuid.uuid4()
    async with api.factory() as session:
        session.add_all(
            m.Developer(id=developer_id, organization_id=org.id, email=f"{name}@acme.example", name=name)
            for name, developer_id in developers.items()
        )
        session.add(m.Team(id=team_id, organization_id=org.id, name="Payments", slug="payments"))
        session.add(
            m.Sprint(
                id=sprint_id,
                organization_id=org.id,
                source="jira",
                external_id="S1",
                name="Sprint 1",
                state="closed",
                start_at=start,
                end_at=start + timedelta(days=14),
            )
        )
        await session.flush()
        session.add_all(
            m.TeamMember(team_id=team_id, developer_id=developers[name]) for name in ("ana", "bo")
        )
        # (assignee, hours in progress): the team's items take 2 h and 4 h, chen's take 30 h.
        for number, (assignee, hours) in enumerate([("ana", 2), ("bo", 4), ("chen", 30), ("chen", 30)]):
            issue_id = uuid.uuid4()
            started = start + timedelta(days=1 + number)
            session.add(
                m.WorkItem(
                    id=issue_id,
                    organization_id=org.id,
                    source="jira",
                    external_id=str(number),
                    key=f"PAY-{number}",
                    assignee_id=developers[assignee],
                    status="Done",
                    status_category="done",
                    created_at=started - timedelta(hours=1),
                    started_at=started,
                    resolved_at=started + timedelta(hours=hours),
                )
            )
            await session.flush()
            for index, (category, at) in enumerate(
                [("in_progress", started), ("done", started + timedelta(hours=hours))]
            ):
                session.add(
                    m.IssueTransition(
                        organization_id=org.id,
                        issue_id=issue_id,
                        external_id=f"{number}-{index}",
                        from_status=None,
                        to_status=category,
                        from_category=None,
                        to_category=category,
                        transitioned_at=at,
                    )
                )
            session.add(m.SprintIssue(sprint_id=sprint_id, issue_id=issue_id))
        await session.commit()

    window = {"from": "2025-03-01", "to": "2025-04-01"}
    organization = (
        await api.client.get("/api/v1/analytics/flow", params=window, headers=org.headers)
    ).json()["metrics"]
    team_response = await api.client.get(
        "/api/v1/analytics/flow", params={**window, "scope": "team", "id": str(team_id)}, headers=org.headers
    )
    assert team_response.status_code == 200, team_response.text
    team = team_response.json()["metrics"]
    hour = 3600.0
    assert (team["work_item_cycle_time"]["value"], team["work_item_cycle_time"]["sample_size"]) == (
        3 * hour,
        2,
    )
    assert organization["work_item_cycle_time"]["value"] == 17 * hour  # median of 2, 4, 30, 30
    assert team["work_item_lead_time"]["value"] == 4 * hour
    assert organization["work_item_lead_time"]["sample_size"] == 4
    assert (team["sprint_throughput"]["value"], organization["sprint_throughput"]["value"]) == (2, 4)
    assert team_response.json()["scope"] == {"kind": "team", "id": str(team_id), "name": "Payments"}


async def test_analytics_rate_limit_headers(make_api: object) -> None:
    api: Api = await make_api(RateLimits(per_ip=1000, per_key=1000))  # type: ignore[operator]
    org = await api.new_org()
    response = await api.client.get("/api/v1/analytics/dora", headers=org.headers)
    assert response.headers["ratelimit-limit"] == "1000"
    assert int(response.headers["ratelimit-remaining"]) == 999


async def test_cache_hits_are_served_exactly_like_the_route(api: Api) -> None:
    """Hits are answered before the framework (doraflow.api.fastpath); the answers must not differ."""
    org = await api.new_org()
    data = await seed_dataset(api.factory, org.id, days=30)
    team = str(data.team_ids["web"])
    repo = str(data.repository_ids["acme/web"])
    for path in [
        "/api/v1/analytics/dora",
        "/api/v1/analytics/dora?compare=true&benchmark=2021&window=7d",
        f"/api/v1/analytics/dora?scope=team&id={team}",
        "/api/v1/analytics/dora/trend?granularity=week",
        f"/api/v1/analytics/dora/trend?scope=repository&id={repo}&window=30d&granularity=day",
        "/api/v1/analytics/flow?window=7d",
    ]:
        miss = await api.client.get(path, headers=org.headers)
        hit = await api.client.get(path, headers=org.headers)
        assert miss.status_code == 200, (path, miss.text)
        assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("miss", "hit"), path
        assert hit.content == miss.content, path
        assert hit.headers["content-type"] == "application/json"
        assert "ratelimit-remaining" in hit.headers
        # Parameters the fast path does not handle go to the route, which answers the same.
        separator = "&" if "?" in path else "?"
        routed = await api.client.get(f"{path}{separator}compare=1", headers=org.headers)
        assert routed.status_code == 200, path

    cached = f"/api/v1/analytics/dora?scope=repository&id={repo}"
    assert (await api.client.get(cached, headers=org.headers)).status_code == 200
    other = await api.new_org()
    assert (await api.client.get(cached, headers=other.headers)).status_code == 404
    assert (await api.client.get(cached)).status_code == 401
    viewer = await api.key(org, "viewer")
    assert (await api.client.get(cached, headers=bearer(viewer))).headers["x-cache"] == "hit"
    key_id = next(
        k["id"]
        for k in (await api.client.get("/api/v1/api-keys", headers=org.headers)).json()["items"]
        if viewer.startswith(k["prefix"])
    )
    await api.client.delete(f"/api/v1/api-keys/{key_id}", headers=org.headers)
    revoked = await api.client.get(cached, headers=bearer(viewer))
    assert revoked.status_code == 401
    assert revoked.headers["content-type"] == "application/problem+json"
