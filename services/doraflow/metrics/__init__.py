"""Doraflow metric definitions: pure, synchronous, dependency-free.

This package is the one place each DORA and flow metric is defined (see ``docs/metrics.md``).
It does no I/O: the processor and the API load compact records from PostgreSQL, build
:class:`ProductionDeployment` values with :func:`production_deployments`, and call the metric
functions, each of which returns a :class:`MetricResult`.

Typical use::

    deployments = production_deployments(deployment_rows, rules)
    window = Window(start, end)
    results = dora_metrics(deployments, changes, incidents, window, pull_requests=prs)

The query layer (:mod:`doraflow.metrics.queries`) runs the same definitions on the data in
PostgreSQL for one scope and window -- what the API serves::

    report = await dora_report(session, organization_id=org, scope=MetricScope.team(team_id),
                               window=Window(start, end), benchmark=2023)
"""

from doraflow.metrics.deployments import (
    DeploymentOutcome,
    DeploymentRules,
    FailureReason,
    ProductionDeployment,
    ReworkReason,
    classify_deployments,
    production_deployments,
)
from doraflow.metrics.dora import (
    DeliveryAnalysis,
    PullRequestStages,
    PullRequestTimes,
    analyse_delivery,
    change_failure_rate,
    cycle_time_breakdown,
    deployment_frequency,
    dora_metrics,
    failed_deployment_recovery_time,
    lead_time_for_changes,
    lead_time_result,
    pull_request_stages,
    rework_rate,
    time_to_restore_service,
)
from doraflow.metrics.flow import (
    code_churn,
    code_churn_from_totals,
    pull_request_size,
    pull_request_throughput,
    review_depth,
    sprint_carry_over,
    sprint_throughput,
    time_to_first_review,
    work_item_cycle_time,
    work_item_lead_time,
)
from doraflow.metrics.incidents import (
    DEFAULT_ATTRIBUTION_WINDOW,
    AttributionMethod,
    IncidentAttribution,
    attribute_incidents,
)
from doraflow.metrics.queries import (
    QueryLayerMetricsSource,
    dora_report,
    dora_trend,
    dora_windows,
    flow_report,
    list_deployments,
    list_incidents,
    list_pull_requests,
)
from doraflow.metrics.records import (
    Change,
    Deployment,
    Incident,
    IssueTransition,
    PullRequest,
    Sprint,
    SprintMembership,
    StatusCategory,
    Window,
    WorkItem,
)
from doraflow.metrics.report import (
    Bucket,
    DeploymentItem,
    DoraReport,
    DoraTrend,
    FlowReport,
    IncidentItem,
    InvalidCursorError,
    MetricScope,
    Page,
    PullRequestItem,
    ResolvedScope,
    ScopeNotFoundError,
    TrendPoint,
)
from doraflow.metrics.results import JSONValue, MetricResult
from doraflow.metrics.stats import Distribution, describe, median, percentile
from doraflow.metrics.tiers import (
    BENCHMARKS,
    DEFAULT_BENCHMARK,
    TIER_TABLE,
    Tier,
    TierThreshold,
    thresholds_for,
    tier_for,
)

__all__ = [
    "BENCHMARKS",
    "DEFAULT_ATTRIBUTION_WINDOW",
    "DEFAULT_BENCHMARK",
    "TIER_TABLE",
    "AttributionMethod",
    "Bucket",
    "Change",
    "DeliveryAnalysis",
    "Deployment",
    "DeploymentItem",
    "DeploymentOutcome",
    "DeploymentRules",
    "Distribution",
    "DoraReport",
    "DoraTrend",
    "FailureReason",
    "FlowReport",
    "Incident",
    "IncidentAttribution",
    "IncidentItem",
    "InvalidCursorError",
    "IssueTransition",
    "JSONValue",
    "MetricResult",
    "MetricScope",
    "Page",
    "ProductionDeployment",
    "PullRequest",
    "PullRequestItem",
    "PullRequestStages",
    "PullRequestTimes",
    "QueryLayerMetricsSource",
    "ResolvedScope",
    "ReworkReason",
    "ScopeNotFoundError",
    "Sprint",
    "SprintMembership",
    "StatusCategory",
    "Tier",
    "TierThreshold",
    "TrendPoint",
    "Window",
    "WorkItem",
    "analyse_delivery",
    "attribute_incidents",
    "change_failure_rate",
    "classify_deployments",
    "code_churn",
    "code_churn_from_totals",
    "cycle_time_breakdown",
    "deployment_frequency",
    "describe",
    "dora_metrics",
    "dora_report",
    "dora_trend",
    "dora_windows",
    "failed_deployment_recovery_time",
    "flow_report",
    "lead_time_for_changes",
    "lead_time_result",
    "list_deployments",
    "list_incidents",
    "list_pull_requests",
    "median",
    "percentile",
    "production_deployments",
    "pull_request_size",
    "pull_request_stages",
    "pull_request_throughput",
    "review_depth",
    "rework_rate",
    "sprint_carry_over",
    "sprint_throughput",
    "thresholds_for",
    "tier_for",
    "time_to_first_review",
    "time_to_restore_service",
    "work_item_cycle_time",
    "work_item_lead_time",
]
