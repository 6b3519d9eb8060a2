"""The output of a miner: the dataset with its negatives and the statistics table."""

from __future__ import annotations

from typing import Any

from embedtune_core.mining.guards import DROP_REASONS, FALSE_NEGATIVE_REASONS
from embedtune_core.mining.pairs import PairData
from embedtune_core.mining.selection import Selection
from embedtune_core.types import MiningRequest, MiningResult, MiningStats


def build_result(
    data: PairData,
    selection: Selection,
    request: MiningRequest,
    stats: MiningStats,
    *,
    score_gaps: bool = True,
) -> MiningResult:
    """The output dataset and the final statistics.

    ``hard-negatives``: one row per input row, columns anchor, positive, negative_1..n; an anchor
    still short of n negatives after filling (``short="fill"``, the default) or with
    ``short="drop"`` loses its rows (all n columns must hold a text). ``triplets``: one row (anchor, positive, negative) per input
    row and negative, so short anchors keep what they have. ``queries_short`` counts the anchors
    that got fewer negatives than asked before any filling.
    """
    import numpy as np

    from embedtune_core.data.columns import dataset_from_columns

    n = request.num_negatives
    negatives = selection.negatives
    counts = (negatives >= 0).sum(axis=1)
    filled = selection.filled if selection.filled is not None else np.zeros(negatives.shape, dtype=bool)
    mined_counts = ((negatives >= 0) & ~filled).sum(axis=1)
    stats.queries = len(data.queries)
    stats.queries_short = int((mined_counts < n).sum())
    corpus = data.corpus
    if request.output == "triplets":
        anchors, positives, negs = [], [], []
        for row in range(len(data.anchors)):
            q = data.row_query[row]
            for d in negatives[q][negatives[q] >= 0].tolist():
                anchors.append(data.anchors[row])
                positives.append(data.positives[row])
                negs.append(corpus[d])
        columns = {"anchor": anchors, "positive": positives, "negative": negs}
        stats.negatives_written = len(negs)
        rows_out = len(anchors)
    else:
        keep = np.flatnonzero(counts[data.row_query] >= n)
        keep_rows = keep.tolist()
        columns = {
            "anchor": [data.anchors[r] for r in keep_rows],
            "positive": [data.positives[r] for r in keep_rows],
        }
        kept_queries = data.row_query[keep]
        for i in range(n):
            columns[f"negative_{i + 1}"] = [corpus[d] for d in negatives[kept_queries, i].tolist()]
        stats.negatives_written = len(keep_rows) * n
        rows_out = len(keep_rows)
    if score_gaps and selection.scores is not None:
        mask = negatives >= 0
        if request.output != "triplets":
            mask &= (counts >= n)[:, None]
        gaps = (selection.positive_scores[:, None] - selection.scores)[mask]
        gaps = gaps[np.isfinite(gaps)]
        stats.mean_score_gap = float(gaps.mean()) if len(gaps) else None
    dropped = stats.extra.get("dropped", {})
    stats.dropped_false_negatives = int(sum(dropped.get(r, 0) for r in FALSE_NEGATIVE_REASONS) + sum(
        v for r, v in dropped.items() if r not in DROP_REASONS
    ))
    stats.rows_in, stats.rows_out = len(data.anchors), rows_out
    stats.extra["output"] = request.output
    if request.output != "triplets":
        stats.extra["rows_dropped_short"] = len(data.anchors) - rows_out
    return MiningResult(dataset=dataset_from_columns(columns), stats=stats)


def expected_columns(output: str, num_negatives: int) -> list[str]:
    if output == "triplets":
        return ["anchor", "positive", "negative"]
    return ["anchor", "positive"] + [f"negative_{i + 1}" for i in range(num_negatives)]


def stats_rows(stats: MiningStats) -> list[list[Any]]:
    """``[name, value]`` rows of the statistics table the CLI prints."""
    rows = [
        ["queries", stats.queries],
        ["candidates seen", stats.candidates_seen],
        ["dropped as likely false negatives", stats.dropped_false_negatives],
        ["negatives written", stats.negatives_written],
        ["queries with fewer negatives than asked", stats.queries_short],
        ["mean score gap (positive - negative)", stats.mean_score_gap],
    ]
    for reason, count in (stats.extra.get("dropped") or {}).items():
        if count:
            rows.append([f"  dropped: {reason}", count])
    for key in ("rows_in", "rows_out", "negatives_filled"):
        if getattr(stats, key) is not None:
            rows.append([key.replace("_", " "), getattr(stats, key)])
    for key in ("rows_dropped_short", "searched_deeper", "score", "ordered"):
        if key in stats.extra:
            rows.append([key.replace("_", " "), stats.extra[key]])
    if "search" in stats.extra:
        rows.append(["search", stats.extra["search"]])
    for key in sorted(k for k in stats.extra if k.startswith("search_recall@")):
        rows.append([f"{key.replace('_', ' ')} (against exact search)", stats.extra[key]])
    return rows
