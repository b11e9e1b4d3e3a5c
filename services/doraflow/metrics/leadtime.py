"""Lead time for changes computed inside PostgreSQL: the one large input of the DORA metrics.

A 90-day window of an active organization holds ~10^5 changes; building a record per commit
and sorting in Python costs most of a second, while ``percentile_cont`` over an index range
scan costs a few tens of milliseconds. This module is the SQL twin of
:func:`doraflow.metrics.dora.lead_time_for_changes` and must stay equivalent to it -- the
integration tests (``tests/integration/metrics/test_lead_time_equivalence.py``) run both on the
same data and compare value, median, p75, p90 and sample size.

It relies on the stored enrichment meaning exactly what the definition needs (stated as SQL in
:mod:`doraflow.metrics.enrichment`; see ``docs/metrics.md``, "How the database computes it"):
``commit_deployments.first_deployed_at`` is the commit's *shipped* time (its own first production
deployment, or its pull request's merge/squash commit's, whichever is earlier), and
``commit_deployments.represented_by_pull_request`` marks the squash commits whose work is counted
through the PR's own commits (the narrow table holds a commit's lead-time values apart from the wide
``commits`` row, migration 0008). The changes of a window are then one index-only range scan of
its ``(repository_id, first_deployed_at)`` index: merge commits and represented squash commits are
skipped, negative lead times (clock skew) are excluded and counted, and ``percentile_cont`` --
which :mod:`doraflow.metrics.stats` reproduces bit for bit -- summarises the rest.

The pull request cycle-time breakdown is *not* computed here: its input (the merged PRs
deployed in the window, ~10^4) is fetched as epoch tuples and summarised by the pure
:func:`doraflow.metrics.dora.cycle_time_breakdown`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from doraflow.metrics.dora import PullRequestTimesTuple
from doraflow.metrics.loaders import Database
from doraflow.metrics.records import Window
from doraflow.metrics.report import ResolvedScope
from doraflow.metrics.stats import Distribution

__all__ = ["LeadTimeSample", "deployed_pull_request_times", "disjoint_layers", "lead_time_samples"]

# Several windows are answered by one query when they do not overlap (a summary and the
# previous period, or the buckets of a trend): each row is placed in its window by
# `width_bucket` over the sorted window starts ($4) and kept if it is before that window's end
# ($5). $1 repositories, $2 earliest start, $3 latest end.
_WINDOW_OF: Final = "width_bucket({column}, $4::timestamptz[])"
_IN_WINDOW: Final = "WHERE window_index > 0 AND deployed < ($5::timestamptz[])[window_index]"

# The changes whose first production deployment is in a window, with their lead times: one
# index-only range scan of ix_commit_deployments_lead_time. The lead time is the stored
# `lead_seconds` (migration 0009): the difference of the two epoch values as float8 -- what the
# Python path computes, operation for operation (date_part on timestamptz is an exact int64
# microsecond count divided by 10^6, correctly rounded, like datetime.timestamp()).
_LEAD_TIME_SQL: Final = """
SELECT {outer_index},
       count(*) FILTER (WHERE counted) AS sample_size,
       percentile_cont(ARRAY[0, 0.5, 0.75, 0.9, 1]) WITHIN GROUP (ORDER BY lead) FILTER (WHERE counted),
       avg(lead) FILTER (WHERE counted),
       count(*) FILTER (WHERE change AND NOT counted) AS negative,
       count(*) FILTER (WHERE is_merge) AS merge_commits,
       count(*) FILTER (WHERE represented AND NOT is_merge) AS represented
FROM (
    SELECT {window_of} AS window_index, c.first_deployed_at AS deployed,
           c.is_merge, c.represented_by_pull_request AS represented,
           NOT c.is_merge AND NOT c.represented_by_pull_request AS change,
           -- lead >= 0 exactly when deployed >= authored: distinct microseconds stay distinct
           -- as float8 epoch seconds (their spacing, 2^-22 s, is finer than a microsecond)
           NOT c.is_merge AND NOT c.represented_by_pull_request AND c.lead_seconds >= 0 AS counted,
           c.lead_seconds AS lead
    FROM commit_deployments c
    WHERE c.repository_id = ANY($1::uuid[])
      AND c.first_deployed_at >= $2 AND c.first_deployed_at < $3
    OFFSET 0  -- keeps the subquery: each row's lead is computed once, not once per aggregate
) AS changes
{in_window}
{group_by}
"""


@dataclass(frozen=True, slots=True)
class LeadTimeSample:
    """The lead-time distribution of one window and its exclusion counts.

    ``counts`` carries the same keys as the Python definition where they mean the same thing
    (``negative_lead_times_excluded``, ``squash_commits_represented_by_pr_commits``) and
    ``merge_commits_not_counted`` for the merge commits *first deployed in the window* (the
    Python function counts the merge commits among whatever changes it was given).
    """

    distribution: Distribution | None = None
    counts: Counter[str] = field(default_factory=Counter)


def disjoint_layers(windows: Sequence[Window]) -> list[list[int]]:
    """Indexes of ``windows`` grouped so that the windows of a group do not overlap, each group
    sorted by start: one query per group. (A trend or a summary with its previous period is one
    group.)"""
    layers: list[list[int]] = []
    for index in sorted(range(len(windows)), key=lambda position: windows[position].start):
        for layer in layers:
            if windows[layer[-1]].end <= windows[index].start:
                layer.append(index)
                break
        else:
            layers.append([index])
    return layers


def _query(template: str, column: str, layer_size: int) -> str:
    if layer_size == 1:  # the common case: no bucketing work per row, one aggregate row
        return template.format(window_of="1", outer_index="1", in_window="", group_by="")
    return template.format(
        window_of=_WINDOW_OF.format(column=column),
        outer_index="window_index",
        in_window=_IN_WINDOW,
        group_by="GROUP BY window_index",
    )


def _arguments(scope: ResolvedScope, windows: Sequence[Window], layer: list[int]) -> list[object]:
    starts = [windows[index].start for index in layer]
    ends = [windows[index].end for index in layer]
    arguments: list[object] = [list(scope.repository_ids), min(starts), max(ends)]
    if len(layer) > 1:
        arguments += [starts, ends]
    return arguments


async def lead_time_samples(
    db: Database, scope: ResolvedScope, windows: Sequence[Window]
) -> list[LeadTimeSample]:
    """The lead-time sample of each window, in order (empty samples for windows without any
    change first deployed in them)."""
    samples = [LeadTimeSample() for _ in windows]
    for group in disjoint_layers(windows):
        # A few large windows (a summary and its previous period) are cheaper one by one: the
        # grouped form must sort all rows by window before the percentile sorts.
        layers = [[index] for index in group] if len(group) <= _SEPARATE_UP_TO else [group]
        for layer in layers:
            await _lead_time_layer(db, scope, windows, layer, samples)
    return samples


_SEPARATE_UP_TO: Final = 4


async def _lead_time_layer(
    db: Database,
    scope: ResolvedScope,
    windows: Sequence[Window],
    layer: list[int],
    samples: list[LeadTimeSample],
) -> None:
    """One query for the non-overlapping windows ``layer`` (indexes into ``windows``, sorted by
    start); fills their entries of ``samples``."""
    query = _query(_LEAD_TIME_SQL, "c.first_deployed_at", len(layer))
    rows = await db.fetch(query, *_arguments(scope, windows, layer))
    for position, count, percentiles, mean, negative, merges, represented in rows:
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
            minimum, median, p75, p90, maximum = percentiles
            distribution = Distribution(
                count=count, median=median, p75=p75, p90=p90, mean=mean, minimum=minimum, maximum=maximum
            )
        samples[layer[position - 1]] = LeadTimeSample(distribution, counts)


# Merged PRs whose merge/squash commit first reached production in a window, as epoch seconds,
# one array per column and window; a PR without a first commit time falls back to its earliest
# own commit (as the Python definition does).
_PULL_REQUEST_TIMES_SQL: Final = """
SELECT window_index, array_agg(opened), array_agg(merged), array_agg(first_commit), array_agg(first_review),
       array_agg(shipped)
FROM (
    SELECT {window_of} AS window_index, p.first_deployed_at AS deployed,
           date_part('epoch', p.time) AS opened,
           date_part('epoch', p.merged_at) AS merged,
           date_part('epoch', coalesce(p.first_commit_at, (
               SELECT min(o.time) FROM commits o
               WHERE o.repository_id = p.repository_id AND o.pull_request_number = p.pr_number
                 AND NOT o.is_merge AND o.commit_sha <> p.merge_commit_sha
           ))) AS first_commit,
           date_part('epoch', p.first_review_at) AS first_review,
           date_part('epoch', p.first_deployed_at) AS shipped
    FROM pull_requests p
    WHERE p.repository_id = ANY($1::uuid[])
      AND p.first_deployed_at >= $2 AND p.first_deployed_at < $3
      AND p.merged_at IS NOT NULL AND p.merge_commit_sha IS NOT NULL
    OFFSET 0
) AS deployed
{in_window}
GROUP BY window_index
"""


async def deployed_pull_request_times(
    db: Database, scope: ResolvedScope, windows: Sequence[Window]
) -> list[list[PullRequestTimesTuple]]:
    """The input of :func:`~doraflow.metrics.dora.cycle_time_breakdown`, per window.

    Fetched as one array per column and window: decoding five ``float8[]`` is a few
    milliseconds, decoding ~10^4 rows of five values each is several times that.
    """
    result: list[list[PullRequestTimesTuple]] = [[] for _ in windows]
    for layer in disjoint_layers(windows):
        query = _PULL_REQUEST_TIMES_SQL.format(
            window_of="1" if len(layer) == 1 else _WINDOW_OF.format(column="p.first_deployed_at"),
            in_window="" if len(layer) == 1 else _IN_WINDOW,
        )
        for position, opened, merged, first_commit, first_review, shipped in await db.fetch(
            query, *_arguments(scope, windows, layer)
        ):
            result[layer[position - 1]] = list(
                zip(opened, merged, first_commit, first_review, shipped, strict=True)
            )
    return result
