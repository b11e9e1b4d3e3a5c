"""Lead time for changes computed inside PostgreSQL: the one large input of the DORA metrics.

A 90-day window of an active organization holds ~10^5 changes; building a record per commit
and sorting in Python costs most of a second, while ``percentile_cont`` over an index range
scan costs a few tens of milliseconds. This module is the SQL twin of
:func:`doraflow.metrics.dora.lead_time_for_changes` and must stay equivalent to it -- the
integration tests (``tests/integration/metrics/test_lead_time_equivalence.py``) run both on the
same data and compare value, median, p75, p90 and sample size.

It relies on the stored enrichment meaning exactly what the definition needs (stated as SQL in
:mod:`doraflow.metrics.enrichment`; see ``docs/metrics.md``, "How the database computes it"):
``commits.first_deployed_at`` is the commit's *shipped* time (its own first production
deployment, or its pull request's merge/squash commit's, whichever is earlier), and
``commits.represented_by_pull_request`` marks the squash commits whose work is counted through
the PR's own commits. The changes of a window are then one index-only range scan of
``(repository_id, first_deployed_at)``: merge commits and represented squash commits are
skipped, negative lead times (clock skew) are excluded and counted, and ``percentile_cont`` --
which :mod:`doraflow.metrics.stats` reproduces bit for bit -- summarises the rest.

The pull request cycle-time breakdown is *not* computed here: its input (the merged PRs
deployed in the window, ~10^4) is fetched as epoch tuples and summarised by the pure
:func:`doraflow.metrics.dora.cycle_time_breakdown`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from doraflow.metrics.dora import PullRequestTimes
from doraflow.metrics.loaders import Database
from doraflow.metrics.records import Window
from doraflow.metrics.report import Bucket, ResolvedScope
from doraflow.metrics.stats import Distribution

__all__ = ["LeadTimeSample", "deployed_pull_request_times", "lead_time_samples"]

_BUCKET_SQL: Final = {
    None: "NULL::timestamptz",
    Bucket.DAY: "date_trunc('day', {column}, 'UTC')",
    Bucket.WEEK: "date_trunc('week', {column}, 'UTC')",
    Bucket.MONTH: "date_trunc('month', {column}, 'UTC')",
}

# The changes whose first production deployment is in the window, with their lead times: one
# index-only range scan of ix_commits_lead_time. $1 repositories, $2 window start, $3 window end.
# The lead time is the difference of the two epoch values as float8 -- what the Python path
# computes, operation for operation (date_part on timestamptz is an exact int64 microsecond count
# divided by 10^6, correctly rounded, like datetime.timestamp()).
_LEAD_TIME_SQL: Final = """
SELECT {aggregate_bucket} AS bucket,
       count(*) FILTER (WHERE change AND lead >= 0) AS sample_size,
       percentile_cont(ARRAY[0.5, 0.75, 0.9]) WITHIN GROUP (ORDER BY lead)
           FILTER (WHERE change AND lead >= 0),
       avg(lead) FILTER (WHERE change AND lead >= 0),
       min(lead) FILTER (WHERE change AND lead >= 0),
       max(lead) FILTER (WHERE change AND lead >= 0),
       count(*) FILTER (WHERE change AND lead < 0) AS negative,
       count(*) FILTER (WHERE is_merge) AS merge_commits,
       count(*) FILTER (WHERE represented AND NOT is_merge) AS represented
FROM (
    SELECT {bucket} AS bucket, c.is_merge, c.represented_by_pull_request AS represented,
           NOT c.is_merge AND NOT c.represented_by_pull_request AS change,
           date_part('epoch', c.first_deployed_at) - date_part('epoch', c.time) AS lead
    FROM commits c
    WHERE c.repository_id = ANY($1::uuid[])
      AND c.first_deployed_at >= $2 AND c.first_deployed_at < $3
    OFFSET 0  -- keeps the subquery: each row's lead is computed once, not once per aggregate
) AS changes
{group_by}
"""


@dataclass(frozen=True, slots=True)
class LeadTimeSample:
    """The lead-time distribution of one window or bucket and its exclusion counts.

    ``counts`` carries the same keys as the Python definition where they mean the same thing
    (``negative_lead_times_excluded``, ``squash_commits_represented_by_pr_commits``) and
    ``merge_commits_not_counted`` for the merge commits *first deployed in the window* (the
    Python function counts the merge commits among whatever changes it was given).
    """

    distribution: Distribution | None
    counts: Counter[str]


async def lead_time_samples(
    db: Database, scope: ResolvedScope, window: Window, bucket: Bucket | None = None
) -> dict[datetime | None, LeadTimeSample]:
    """Lead time per bucket of ``first_deployed_at`` (one entry keyed ``None`` without a
    bucket). Buckets without any change first deployed in them are absent."""
    query = _LEAD_TIME_SQL.format(
        bucket=_BUCKET_SQL[bucket].format(column="c.first_deployed_at"),
        group_by="" if bucket is None else "GROUP BY bucket",
        aggregate_bucket="NULL::timestamptz" if bucket is None else "bucket",
    )
    rows = await db.fetch(query, list(scope.repository_ids), window.start, window.end)
    samples: dict[datetime | None, LeadTimeSample] = {}
    for key, count, percentiles, mean, minimum, maximum, negative, merges, represented in rows:
        counts: Counter[str] = Counter()
        for name, value in (
            ("negative_lead_times_excluded", negative),
            ("merge_commits_not_counted", merges),
            ("squash_commits_represented_by_pr_commits", represented),
        ):
            if value:
                counts[name] = value
        distribution = None
        if count:
            median, p75, p90 = percentiles
            distribution = Distribution(
                count=count, median=median, p75=p75, p90=p90, mean=mean, minimum=minimum, maximum=maximum
            )
        samples[key] = LeadTimeSample(distribution, counts)
    return samples


# Merged PRs whose merge/squash commit first reached production in the window, as epoch
# seconds; a PR without a first commit time falls back to its earliest own commit (as the
# Python definition does).
_PULL_REQUEST_TIMES_SQL: Final = """
SELECT {bucket} AS bucket,
       date_part('epoch', p.time),
       date_part('epoch', p.merged_at),
       date_part('epoch', coalesce(p.first_commit_at, (
           SELECT min(o.time) FROM commits o
           WHERE o.repository_id = p.repository_id AND o.pull_request_number = p.pr_number
             AND NOT o.is_merge AND o.commit_sha <> p.merge_commit_sha
       ))),
       date_part('epoch', p.first_review_at),
       date_part('epoch', p.first_deployed_at)
FROM pull_requests p
WHERE p.repository_id = ANY($1::uuid[])
  AND p.first_deployed_at >= $2 AND p.first_deployed_at < $3
  AND p.merged_at IS NOT NULL AND p.merge_commit_sha IS NOT NULL
"""


async def deployed_pull_request_times(
    db: Database, scope: ResolvedScope, window: Window, bucket: Bucket | None = None
) -> dict[datetime | None, list[PullRequestTimes]]:
    """The input of :func:`~doraflow.metrics.dora.cycle_time_breakdown`, per bucket."""
    query = _PULL_REQUEST_TIMES_SQL.format(bucket=_BUCKET_SQL[bucket].format(column="p.first_deployed_at"))
    rows = await db.fetch(query, list(scope.repository_ids), window.start, window.end)
    grouped: dict[datetime | None, list[PullRequestTimes]] = {}
    for key, opened, merged, first_commit, first_review, shipped in rows:
        grouped.setdefault(key, []).append(
            PullRequestTimes(opened, merged, first_commit, first_review, shipped)
        )
    return grouped
