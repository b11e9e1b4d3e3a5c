"""The DORA metrics: each definition lives in exactly one function here.

All functions are pure: they take records (see :mod:`doraflow.metrics.records`), the production
deployments built by :func:`doraflow.metrics.deployments.production_deployments`, and a
half-open :class:`~doraflow.metrics.records.Window`, and return a
:class:`~doraflow.metrics.results.MetricResult`. A window with nothing to measure returns
``value=None`` with a reason, never 0. Durations are in seconds.

Deployments and incidents *outside* the window should still be passed: a commit's first
deployment may predate the window, and whether a deployment in the window failed depends on the
deployment and incidents that followed it.

The stability metrics (change failure rate, failed deployment recovery time, rework rate)
accept ``analysis=`` from :func:`analyse_delivery` over the same deployments and incidents, so
that they share one incident attribution and can never disagree on which deployments failed;
:func:`dora_metrics` computes everything that way.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import NamedTuple

from doraflow.metrics.deployments import (
    DeploymentOutcome,
    DeploymentRules,
    ProductionDeployment,
    classify_deployments,
)
from doraflow.metrics.incidents import DEFAULT_ATTRIBUTION_WINDOW, IncidentAttribution, attribute_incidents
from doraflow.metrics.records import Change, Incident, PullRequest, Window
from doraflow.metrics.results import JSONValue, MetricResult
from doraflow.metrics.stats import Distribution, describe
from doraflow.metrics.stats import median as true_median
from doraflow.metrics.tiers import (
    DAYS_PER_MONTH,
    DAYS_PER_SIX_MONTHS,
    DAYS_PER_WEEK,
    DEFAULT_BENCHMARK,
    thresholds_for,
    tier_for,
)

__all__ = [
    "DeliveryAnalysis",
    "PullRequestStages",
    "PullRequestTimes",
    "PullRequestTimesTuple",
    "analyse_delivery",
    "change_failure_rate",
    "cycle_time_breakdown",
    "deployment_frequency",
    "dora_metrics",
    "failed_deployment_recovery_time",
    "lead_time_for_changes",
    "lead_time_result",
    "pull_request_stages",
    "rework_rate",
    "time_to_restore_service",
]

SECONDS = "seconds"


def _no_tier_note(metric: str, benchmark: int) -> dict[str, JSONValue]:
    if thresholds_for(metric, benchmark):
        return {}
    return {"tier_note": f"the DORA {benchmark} benchmark has no performance levels for {metric}"}


# --------------------------------------------------------------------------------------------
# Deployment frequency
# --------------------------------------------------------------------------------------------


def deployment_frequency(
    deployments: Sequence[ProductionDeployment],
    window: Window,
    *,
    benchmark: int = DEFAULT_BENCHMARK,
    day_zone: tzinfo = UTC,
) -> MetricResult:
    """How often production receives a deployment.

    ``value`` is deployments per day over the window (``details`` add per week = x 7 and per
    month = x 30, and the raw count). The **tier** is not read from that volume but, as DORA asks
    for frequency rather than volume, from *deployment days* (calendar days in ``day_zone`` with
    at least one deployment): the median number of deployment days per 7-day bucket, and per
    30-day bucket for the lower tiers. Buckets are whole runs of 7 (30) days counted back from
    the window's last day; leftover days at the start are not bucketed (a partial bucket would
    drag the median down); a window shorter than one bucket uses its deployment days scaled to
    the bucket length instead. For the 2021 "once every six months" boundary the window's
    deployment days are scaled to 180 days. No deployments → ``None``.
    """
    in_window = [deployment for deployment in deployments if window.contains(deployment.deployed_at)]
    name, unit = "deployment_frequency", "deployments_per_day"
    if not in_window:
        return MetricResult.unavailable(
            name, unit, "no successful production deployments in the window", benchmark=benchmark
        )

    first_day = window.start.astimezone(day_zone).date()
    last_day = (window.end - timedelta(microseconds=1)).astimezone(day_zone).date()
    day_count = (last_day - first_day).days + 1
    deployed_on_day = [0] * day_count
    for deployment in in_window:
        deployed_on_day[(deployment.deployed_at.astimezone(day_zone).date() - first_day).days] = 1
    deployment_days = sum(deployed_on_day)

    def median_per_bucket(size: int) -> tuple[float, int]:
        buckets = day_count // size
        if buckets == 0:  # window shorter than one bucket: scale its deployment days to the bucket
            return deployment_days / day_count * size, 0
        counts = [
            sum(deployed_on_day[day_count - (index + 1) * size : day_count - index * size])
            for index in range(buckets)
        ]
        return true_median(counts), buckets

    per_week, weeks = median_per_bucket(7)
    per_month, months = median_per_bucket(30)
    per_six_months = deployment_days / day_count * 180
    measures: dict[str, float | None] = {
        DAYS_PER_WEEK: per_week,
        DAYS_PER_MONTH: per_month,
        DAYS_PER_SIX_MONTHS: per_six_months,
    }
    per_day = len(in_window) / window.days
    return MetricResult(
        name=name,
        value=per_day,
        unit=unit,
        tier=tier_for(name, measures, benchmark),
        sample_size=len(in_window),
        benchmark=benchmark,
        details={
            "deployment_count": len(in_window),
            "deployments_per_week": per_day * 7,
            "deployments_per_month": per_day * 30,
            "deployment_days": deployment_days,
            "days_in_window": day_count,
            DAYS_PER_WEEK: per_week,
            "weeks_measured": weeks,
            DAYS_PER_MONTH: per_month,
            "months_measured": months,
            DAYS_PER_SIX_MONTHS: per_six_months,
        },
    )


# --------------------------------------------------------------------------------------------
# Lead time for changes and the pull request cycle-time breakdown
# --------------------------------------------------------------------------------------------


def _first_shipped_timestamps(deployments: Iterable[ProductionDeployment]) -> dict[str, float]:
    """Commit SHA -> epoch seconds of the earliest production deployment that shipped it.

    Epoch floats rather than datetimes because this is the hot loop of the package (one entry
    per shipped commit; subtracting floats is several times cheaper than datetime arithmetic).
    """
    first: dict[str, float] = {}
    for deployment in deployments:
        at = deployment.deployed_at.timestamp()
        for sha in deployment.shipped_shas:
            known = first.get(sha)
            if known is None or at < known:
                first[sha] = at
    return first


def _distribution_details(values: list[float], empty_reason: str) -> dict[str, JSONValue]:
    summary = describe(values)
    if summary is None:
        return {"median": None, "p75": None, "p90": None, "sample_size": 0, "reason": empty_reason}
    return {
        "median": summary.median,
        "p75": summary.p75,
        "p90": summary.p90,
        "mean": summary.mean,
        "sample_size": summary.count,
    }


def lead_time_for_changes(
    changes: Iterable[Change],
    deployments: Sequence[ProductionDeployment],
    window: Window,
    *,
    pull_requests: Iterable[PullRequest] = (),
    benchmark: int = DEFAULT_BENCHMARK,
) -> MetricResult:
    """Time from a commit being authored to it running in production.

    For each change (commit): the **first** production deployment that shipped it minus its
    authored time; reported as median, p75 and p90 over the changes whose first deployment lies
    in the window. A change is shipped by a deployment that lists it (or deploys it as the
    revision), or -- for commits of a pull request -- by the first deployment of the PR's merge
    or squash commit, whichever is first. That is what makes squash merges correct: the PR's
    original commits never appear in any deployment, but their content shipped with the squash
    commit, so their lead time starts at *their* authored time. Merge commits, and a squash
    commit whose PR's own commits are present, are not changes themselves (that would count the
    same work twice). Trunk-based commits without a PR count like any other. The first-ever
    deployment needs no predecessor: its commits come from the commits it shipped. Negative lead
    times (authored after the deployment: clock skew) are excluded and counted in ``details``.
    Changes must be unique per (repository, sha), the natural key of the commits table.

    ``details["cycle_time_breakdown"]`` splits merged PRs whose merge/squash commit first
    reached production in the window into coding (first commit → opened; 0 if the PR was
    opened before its first commit), pickup (opened → first review by someone other than the
    author), review (first review → merged) and deploy (merged → first production deployment
    containing the merge/squash commit). A PR reviewed only after merging has no pickup/review
    time. A deployment that lists the merge commit but finished before the merge time is a clock
    inconsistency: that PR's deploy stage is excluded and counted.
    """
    pr_list = list(pull_requests)
    shipped_at = _first_shipped_timestamps(deployments)
    window_start, window_end = window.start.timestamp(), window.end.timestamp()

    pr_shipped_at: dict[str, float] = {}
    merge_sha_owner: dict[str, str] = {}
    for pr in pr_list:
        if pr.merge_commit_sha is not None:
            merge_sha_owner[pr.merge_commit_sha] = pr.pull_request_id
            if pr.merge_commit_sha in shipped_at:
                pr_shipped_at[pr.pull_request_id] = shipped_at[pr.merge_commit_sha]
    prs_missing_first_commit = {
        pr.pull_request_id
        for pr in pr_list
        if pr.first_commit_at is None
        and pr.pull_request_id in pr_shipped_at
        and window_start <= pr_shipped_at[pr.pull_request_id] < window_end
    }

    # One pass over the changes. Whether a PR's merge/squash commit is a change of its own
    # depends on whether the PR's own commits are present, known only after the pass.
    lead_times: list[float] = []
    merge_commit_leads: list[tuple[str, float]] = []
    prs_with_own_commits: set[str] = set()
    first_authored_in_pr: dict[str, datetime] = {}
    counts: Counter[str] = Counter()
    for change in changes:
        if change.is_merge_commit:
            counts["merge_commits_not_counted"] += 1
            continue
        pr_id = change.pull_request_id
        owner = merge_sha_owner.get(change.sha)
        shipped = shipped_at.get(change.sha)
        if pr_id is not None:
            if owner != pr_id:
                prs_with_own_commits.add(pr_id)
                if pr_id in prs_missing_first_commit:
                    known = first_authored_in_pr.get(pr_id)
                    if known is None or change.authored_at < known:
                        first_authored_in_pr[pr_id] = change.authored_at
            via_pr = pr_shipped_at.get(pr_id)
            if via_pr is not None and (shipped is None or via_pr < shipped):
                shipped = via_pr
        if shipped is None:
            counts["changes_not_deployed"] += 1
            continue
        if not window_start <= shipped < window_end:
            continue
        lead = shipped - change.authored_at.timestamp()
        if owner is not None and pr_id in (None, owner):
            merge_commit_leads.append((owner, lead))
        elif lead < 0:
            counts["negative_lead_times_excluded"] += 1
        else:
            lead_times.append(lead)
    for owner, lead in merge_commit_leads:
        if owner in prs_with_own_commits:
            counts["squash_commits_represented_by_pr_commits"] += 1
        elif lead < 0:
            counts["negative_lead_times_excluded"] += 1
        else:
            lead_times.append(lead)

    breakdown = _cycle_time_breakdown(pr_list, pr_shipped_at, first_authored_in_pr, window_start, window_end)
    return lead_time_result(describe(lead_times), counts, breakdown, benchmark=benchmark)


def lead_time_result(
    summary: Distribution | None,
    counts: Mapping[str, int],
    breakdown: Mapping[str, JSONValue],
    *,
    benchmark: int = DEFAULT_BENCHMARK,
) -> MetricResult:
    """The lead-time :class:`MetricResult` from the distribution of per-change lead times.

    Separate from :func:`lead_time_for_changes` so that the query layer, which computes the
    distribution of ~10^5 lead times inside PostgreSQL (``percentile_cont``), builds the result
    -- tier, details, empty-window reason -- in this one place too. ``counts`` are the
    exclusion counters (``negative_lead_times_excluded``, ...), listed in ``details`` sorted.
    """
    name, unit = "lead_time_for_changes", SECONDS
    details: dict[str, JSONValue] = {
        "changes_deployed_in_window": 0 if summary is None else summary.count,
        **{key: counts[key] for key in sorted(counts)},
        "cycle_time_breakdown": dict(breakdown),
    }
    return MetricResult.from_distribution(
        name,
        unit,
        summary,
        "no changes reached production in the window",
        tier=tier_for(name, summary.median, benchmark) if summary else None,
        benchmark=benchmark,
        details=details,
    )


def _cycle_time_breakdown(
    pull_requests: Iterable[PullRequest],
    pr_shipped_at: dict[str, float],
    first_authored_in_pr: dict[str, datetime],
    window_start: float,
    window_end: float,
) -> dict[str, JSONValue]:
    times: list[PullRequestTimes] = []
    for pr in pull_requests:
        shipped = pr_shipped_at.get(pr.pull_request_id)
        if pr.merged_at is None or shipped is None or not window_start <= shipped < window_end:
            continue
        first_commit_at = pr.first_commit_at or first_authored_in_pr.get(pr.pull_request_id)
        times.append(
            PullRequestTimes(
                opened=pr.opened_at.timestamp(),
                merged=pr.merged_at.timestamp(),
                first_commit=None if first_commit_at is None else first_commit_at.timestamp(),
                first_review=None if pr.first_review_at is None else pr.first_review_at.timestamp(),
                shipped=shipped,
            )
        )
    return cycle_time_breakdown(times)


class PullRequestTimes(NamedTuple):
    """The timestamps of one merged pull request's cycle-time stages, as epoch seconds.

    Epoch floats in a named tuple (not :class:`PullRequest` records) because the query layer
    loads tens of thousands of them per request straight from the database; ``first_commit`` is
    the PR's first commit time, or, when the source did not give one, its earliest own commit.
    ``shipped`` is when its merge or squash commit first reached production.
    """

    opened: float
    merged: float
    first_commit: float | None
    first_review: float | None
    shipped: float


class PullRequestStages(NamedTuple):
    """One pull request's cycle-time stages in seconds (``None`` when a stage has no time) and
    the flags that explain a missing stage; see :func:`pull_request_stages`."""

    coding: float | None
    pickup: float | None
    review: float | None
    deploy: float | None
    total: float
    opened_before_first_commit: bool
    without_first_commit_time: bool
    reviewed_before_opened: bool
    merged_without_review: bool
    deployed_before_merge: bool


# A pull request's timestamps as a plain tuple in :class:`PullRequestTimes` order (what the query
# layer zips from its column arrays, without building a named tuple per pull request).
PullRequestTimesTuple = tuple[float, float, float | None, float | None, float]


def pull_request_stages(times: PullRequestTimesTuple) -> PullRequestStages:
    """Coding, pickup, review and deploy time of one merged, deployed pull request.

    The one definition of the stages, used by the breakdown of lead time and by the pull
    request drill-down (so the list a user reads adds up to the breakdown they question):

    * coding: first commit → opened; 0 when the PR was opened before its first commit (coding
      then happened inside the PR), flagged ``opened_before_first_commit``;
    * pickup: opened → first review by someone other than the author; review: first review →
      merged. Only for PRs reviewed before merging and not "before opening" (a clock problem,
      flagged); a PR reviewed only after merging is ``merged_without_review``;
    * deploy: merged → first production deployment of the merge/squash commit; a deployment
      that claims to have finished before the merge is a clock inconsistency, flagged and left
      out rather than negative;
    * total: first commit (or opening, if earlier) → that deployment.
    """
    opened, merged, first_commit, first_review, shipped = times
    start = opened
    coding: float | None = None
    opened_before_first_commit = False
    if first_commit is not None:
        opened_before_first_commit = first_commit > opened
        coding = opened - first_commit if opened > first_commit else 0.0
        start = first_commit if first_commit < opened else opened
    pickup: float | None = None
    review: float | None = None
    reviewed_before_opened = False
    merged_without_review = first_review is None or first_review > merged
    if first_review is not None and not merged_without_review:
        if first_review < opened:
            reviewed_before_opened = True
        else:
            pickup = first_review - opened
            review = merged - first_review
    deployed_before_merge = shipped < merged
    # Positional: this runs once per pull request of the window (~10^4 per request).
    return PullRequestStages(
        coding,
        pickup,
        review,
        None if deployed_before_merge else shipped - merged,
        shipped - start,
        opened_before_first_commit,
        first_commit is None,
        reviewed_before_opened,
        merged_without_review,
        deployed_before_merge,
    )


def cycle_time_breakdown(pull_requests: Iterable[PullRequestTimesTuple]) -> dict[str, JSONValue]:
    """``details.cycle_time_breakdown`` of lead time: per stage median/p75/p90/mean over the
    given pull requests (the caller selects them: merged PRs whose merge/squash commit first
    reached production in the window), plus the counts of PRs a stage could not be timed for."""
    coding: list[float] = []
    pickup: list[float] = []
    review: list[float] = []
    deploy: list[float] = []
    total: list[float] = []
    counts: Counter[str] = Counter()
    pull_requests_counted = opened_before_first_commit = without_first_commit_time = 0
    reviewed_before_opened = merged_without_review = deployed_before_merge = 0
    for times in pull_requests:
        pull_requests_counted += 1
        (
            coding_time,
            pickup_time,
            review_time,
            deploy_time,
            total_time,
            opened_first,
            no_first_commit,
            reviewed_early,
            unreviewed,
            deployed_early,
        ) = pull_request_stages(times)
        if coding_time is not None:
            coding.append(coding_time)
        if pickup_time is not None and review_time is not None:
            pickup.append(pickup_time)
            review.append(review_time)
        if deploy_time is not None:
            deploy.append(deploy_time)
        total.append(total_time)
        opened_before_first_commit += opened_first
        without_first_commit_time += no_first_commit
        reviewed_before_opened += reviewed_early
        merged_without_review += unreviewed
        deployed_before_merge += deployed_early
    for key, count in (
        ("pull_requests", pull_requests_counted),
        ("opened_before_first_commit", opened_before_first_commit),
        ("without_first_commit_time", without_first_commit_time),
        ("reviewed_before_opened_excluded", reviewed_before_opened),
        ("merged_without_review", merged_without_review),
        ("deployed_before_merge_time_excluded", deployed_before_merge),
    ):
        if count:
            counts[key] = count
    stages_by_name = {"coding": coding, "pickup": pickup, "review": review, "deploy": deploy, "total": total}

    breakdown: dict[str, JSONValue] = {key: counts[key] for key in sorted(counts)}
    breakdown["pull_requests"] = counts["pull_requests"]
    for stage, values in stages_by_name.items():
        breakdown[stage] = _distribution_details(values, f"no pull request in the window has a {stage} time")
    return breakdown


# --------------------------------------------------------------------------------------------
# Failures: change failure rate, failed deployment recovery time, rework rate
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeliveryAnalysis:
    """Incident attribution and deployment outcomes, computed once and shared by the stability
    metrics (so that change failure rate and recovery time can never disagree on which
    deployments failed)."""

    deployments: tuple[ProductionDeployment, ...]
    incidents: tuple[Incident, ...]
    attributions: tuple[IncidentAttribution, ...]
    outcomes: dict[str, DeploymentOutcome]


def analyse_delivery(
    deployments: Sequence[ProductionDeployment],
    incidents: Iterable[Incident],
    *,
    rules: DeploymentRules | None = None,
    attribution_window: timedelta = DEFAULT_ATTRIBUTION_WINDOW,
) -> DeliveryAnalysis:
    """Attribute incidents and classify every deployment as failed/recovered/rework."""
    incident_list = tuple(incidents)
    attributions = attribute_incidents(incident_list, deployments, window=attribution_window)
    by_deployment: dict[str, list[Incident]] = defaultdict(list)
    for attribution in attributions:
        if attribution.deployment_id is not None:
            by_deployment[attribution.deployment_id].append(attribution.incident)
    outcomes = classify_deployments(deployments, by_deployment, incident_list, rules)
    return DeliveryAnalysis(tuple(deployments), incident_list, attributions, outcomes)


def _outcomes_in(analysis: DeliveryAnalysis, window: Window) -> list[DeploymentOutcome]:
    return [
        outcome for outcome in analysis.outcomes.values() if window.contains(outcome.deployment.deployed_at)
    ]


def change_failure_rate(
    deployments: Sequence[ProductionDeployment],
    incidents: Iterable[Incident],
    window: Window,
    *,
    rules: DeploymentRules | None = None,
    attribution_window: timedelta = DEFAULT_ATTRIBUTION_WINDOW,
    benchmark: int = DEFAULT_BENCHMARK,
    analysis: DeliveryAnalysis | None = None,
) -> MetricResult:
    """Failed deployments ÷ production deployments in the window (a ratio, 0.25 = 25%).

    A deployment failed if an incident is attributed to it, if it was rolled back (the next
    production deployment of the service ships an earlier revision), or if a hotfix deployment
    follows it (per ``rules``). The numerator counts *deployments*, never incidents: two
    incidents on one deployment make it failed once, so the rate cannot exceed 100%.
    Incidents that could not be attributed are not failures of any deployment; they are
    counted in ``details`` so that a low rate caused by missing links is visible.
    """
    name, unit = "change_failure_rate", "ratio"
    analysis = analysis or analyse_delivery(
        deployments, incidents, rules=rules, attribution_window=attribution_window
    )
    outcomes = _outcomes_in(analysis, window)
    in_window_incidents = [a for a in analysis.attributions if window.contains(a.incident.impact_started_at)]
    methods = Counter(attribution.method.value for attribution in in_window_incidents)
    reasons = Counter(reason.value for outcome in outcomes for reason in outcome.failure_reasons)
    failed = sum(1 for outcome in outcomes if outcome.failed)
    details: dict[str, JSONValue] = {
        "deployments": len(outcomes),
        "failed_deployments": failed,
        "failed_by_reason": {key: reasons[key] for key in sorted(reasons)},
        "incidents_in_window": len(in_window_incidents),
        "incidents_attributed": sum(1 for attribution in in_window_incidents if attribution.attributed),
        "incidents_unattributed": sum(1 for attribution in in_window_incidents if not attribution.attributed),
        "incidents_by_attribution_method": {key: methods[key] for key in sorted(methods)},
    }
    return MetricResult.from_ratio(
        name,
        unit,
        failed,
        len(outcomes),
        "no successful production deployments in the window",
        tier=lambda rate: tier_for(name, rate, benchmark),
        benchmark=benchmark,
        details=details,
    )


def failed_deployment_recovery_time(
    deployments: Sequence[ProductionDeployment],
    incidents: Iterable[Incident],
    window: Window,
    *,
    rules: DeploymentRules | None = None,
    attribution_window: timedelta = DEFAULT_ATTRIBUTION_WINDOW,
    benchmark: int = DEFAULT_BENCHMARK,
    analysis: DeliveryAnalysis | None = None,
) -> MetricResult:
    """DORA 2023+: how long service stayed degraded after a failed deployment.

    For each failed deployment in the window (same failure definition as
    :func:`change_failure_rate`): from the deployment reaching production to the earliest of
    the next deployment that restored service (the rollback or hotfix) and the resolution of its
    incidents (the last one resolved); median, p75, p90. Failed deployments not yet recovered
    are counted in ``details`` and left out of the distribution.
    """
    name, unit = "failed_deployment_recovery_time", SECONDS
    analysis = analysis or analyse_delivery(
        deployments, incidents, rules=rules, attribution_window=attribution_window
    )
    failed = [outcome for outcome in _outcomes_in(analysis, window) if outcome.failed]
    durations: list[float] = []
    counts: Counter[str] = Counter()
    for outcome in failed:
        if outcome.recovered_at is None:
            counts["not_recovered"] += 1
            continue
        seconds = (outcome.recovered_at - outcome.deployment.deployed_at).total_seconds()
        if seconds < 0:
            counts["recovered_before_deployed_excluded"] += 1
            continue
        durations.append(seconds)
        counts[
            "recovered_by_deployment"
            if outcome.restored_by_deployment_id
            else "recovered_by_incident_resolution"
        ] += 1
    details: dict[str, JSONValue] = {
        "failed_deployments": len(failed),
        **{key: counts[key] for key in sorted(counts)},
        **_no_tier_note(name, benchmark),
    }
    summary = describe(durations)
    reason = (
        "no failed deployments in the window"
        if not failed
        else f"none of the {len(failed)} failed deployments in the window has recovered"
    )
    return MetricResult.from_distribution(
        name,
        unit,
        summary,
        reason,
        tier=tier_for(name, summary.median, benchmark) if summary else None,
        benchmark=benchmark,
        details=details,
    )


def time_to_restore_service(
    incidents: Iterable[Incident],
    window: Window,
    *,
    benchmark: int = DEFAULT_BENCHMARK,
) -> MetricResult:
    """DORA 2021: incident created → resolved, for incidents resolved in the window.

    Every incident counts, attributed to a deployment or not (this metric is about restoring
    service, whatever broke it). Incidents are selected by *resolution* time so that long
    incidents are not dropped for being still open at the end of the window they started in;
    incidents open at the window's end are counted in ``details``. Median, p75, p90.
    """
    name, unit = "time_to_restore_service", SECONDS
    durations: list[float] = []
    counts: Counter[str] = Counter()
    for incident in incidents:
        resolved = incident.resolved_at
        if resolved is None or resolved >= window.end:
            if incident.created_at < window.end:
                counts["open_at_window_end"] += 1
            continue
        if resolved < window.start:
            continue
        seconds = (resolved - incident.created_at).total_seconds()
        if seconds < 0:
            counts["resolved_before_created_excluded"] += 1
            continue
        durations.append(seconds)
    details: dict[str, JSONValue] = {
        "incidents_resolved_in_window": len(durations),
        **{key: counts[key] for key in sorted(counts)},
        **_no_tier_note(name, benchmark),
    }
    summary = describe(durations)
    return MetricResult.from_distribution(
        name,
        unit,
        summary,
        "no incidents were resolved in the window",
        tier=tier_for(name, summary.median, benchmark) if summary else None,
        benchmark=benchmark,
        details=details,
    )


def rework_rate(
    deployments: Sequence[ProductionDeployment],
    incidents: Iterable[Incident],
    window: Window,
    *,
    rules: DeploymentRules | None = None,
    attribution_window: timedelta = DEFAULT_ATTRIBUTION_WINDOW,
    benchmark: int = DEFAULT_BENCHMARK,
    analysis: DeliveryAnalysis | None = None,
) -> MetricResult:
    """DORA 2024: unplanned deployments ÷ production deployments in the window (a ratio).

    A deployment is unplanned rework when it was made to fix a user-facing problem: it is a
    hotfix, a rollback (flagged, or shipping an earlier revision), or it resolved an incident
    (an incident names it as ``resolved_by_deployment_id``). Counted per deployment, so at most
    100%. DORA published no performance levels for it: ``tier`` is always ``None``.
    """
    name, unit = "rework_rate", "ratio"
    analysis = analysis or analyse_delivery(
        deployments, incidents, rules=rules, attribution_window=attribution_window
    )
    outcomes = _outcomes_in(analysis, window)
    reasons = Counter(reason.value for outcome in outcomes for reason in outcome.rework_reasons)
    rework = sum(1 for outcome in outcomes if outcome.is_rework)
    details: dict[str, JSONValue] = {
        "deployments": len(outcomes),
        "rework_deployments": rework,
        "rework_by_reason": {key: reasons[key] for key in sorted(reasons)},
        **_no_tier_note(name, benchmark),
    }
    return MetricResult.from_ratio(
        name,
        unit,
        rework,
        len(outcomes),
        "no successful production deployments in the window",
        benchmark=benchmark,
        details=details,
    )


def dora_metrics(
    deployments: Sequence[ProductionDeployment],
    changes: Iterable[Change],
    incidents: Iterable[Incident],
    window: Window,
    *,
    pull_requests: Iterable[PullRequest] = (),
    rules: DeploymentRules | None = None,
    attribution_window: timedelta = DEFAULT_ATTRIBUTION_WINDOW,
    benchmark: int = DEFAULT_BENCHMARK,
    day_zone: tzinfo = UTC,
) -> dict[str, MetricResult]:
    """All DORA metrics for one scope and window, sharing one incident attribution."""
    incident_list = tuple(incidents)
    analysis = analyse_delivery(
        deployments, incident_list, rules=rules, attribution_window=attribution_window
    )
    results = [
        deployment_frequency(deployments, window, benchmark=benchmark, day_zone=day_zone),
        lead_time_for_changes(changes, deployments, window, pull_requests=pull_requests, benchmark=benchmark),
        change_failure_rate(deployments, incident_list, window, benchmark=benchmark, analysis=analysis),
        failed_deployment_recovery_time(
            deployments, incident_list, window, benchmark=benchmark, analysis=analysis
        ),
        time_to_restore_service(incident_list, window, benchmark=benchmark),
        rework_rate(deployments, incident_list, window, benchmark=benchmark, analysis=analysis),
    ]
    return {result.name: result for result in results}
