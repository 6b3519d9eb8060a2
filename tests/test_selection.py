"""The deeper search of anchors still short of negatives: each is searched once more, straight to
the deepest window, and gets the negatives a search window by window gives."""

import datasets
import numpy as np
import pytest

from embedtune_core.mining.guards import DROP_REASONS, GuardOptions, guard_positives
from embedtune_core.mining.pairs import prepare_pairs
from embedtune_core.mining.selection import (
    Selection,
    _deeper_levels,
    _select_batch,
    plan_selection,
    positive_scores,
    select_negatives,
)
from embedtune_core.mining.sources import ScoreSource
from embedtune_core.types import MiningRequest, MiningStats

ANCHORS, EXTRA = 60, 900
#: how many candidates score above each anchor's positive: short at the first window, or deeper
ABOVE = (0, 0, 1, 2, 5, 9, 20, 40, 90, 200, 400, 2000)


def planted():
    """Anchors whose positive scores 0.5 and a planted number of candidates above it (dropped by
    the margin), the rest below; a source that records every search it is asked for."""
    rng = np.random.default_rng(0)
    rows = {"anchor": [f"anchor {i}" for i in range(ANCHORS)], "positive": [f"positive {i}" for i in range(ANCHORS)]}
    request = MiningRequest(dataset=datasets.Dataset.from_dict(rows), dataset_type="pairs", num_negatives=2,
                            corpus=[f"text {i}" for i in range(EXTRA)], seed=3)
    data = prepare_pairs(request)
    scores = rng.uniform(0.0, 0.45, size=(len(data.queries), len(data.corpus))).astype(np.float32)
    for q in range(len(data.queries)):
        above = min(ABOVE[q % len(ABOVE)], len(data.corpus) - 10)
        scores[q, rng.choice(len(data.corpus), above, replace=False)] = rng.uniform(0.55, 0.9, above)
        scores[q, data.query_positives[q]] = 0.5
    searches = []

    def score_rows(query_ids):
        return scores[np.asarray(query_ids)]

    source = ScoreSource(score_rows, name="planted", dense=True)
    search = source.search

    def recorded(query_ids, depth):
        searches.append((np.asarray(query_ids).tolist(), depth))
        return search(query_ids, depth)

    source.search = recorded
    return data, source, request, searches


def window_by_window(data, source, guards, request):
    """The former selection: every short anchor searched again from scratch for each window."""
    n, nq = request.num_negatives, len(data.queries)
    plan = plan_selection(data, source, guards, request)
    positives = positive_scores(data, source, plan)
    compared, _ = guard_positives(positives, plan.guards.positive_floor)
    selection = Selection(negatives=np.full((nq, n), -1, dtype=np.int64), scores=np.full((nq, n), np.nan, np.float32),
                          positive_scores=positives, guard_positives=compared)
    counts = {reason: np.zeros(nq, dtype=np.int64) for reason in ("seen",) + DROP_REASONS}
    rng = np.random.default_rng(request.seed)
    pending = np.arange(nq)
    for level in [plan] + _deeper_levels(plan, data, guards):
        for start in range(0, len(pending), guards.batch_size):
            _select_batch(data, source, level, selection, pending[start : start + guards.batch_size], n, rng, counts)
        pending = pending[(selection.negatives[pending] < 0).any(axis=1)]
        if not len(pending):
            break
    return selection, counts


@pytest.mark.parametrize("batch_size", [7, 1024])
def test_short_anchors_are_searched_once_more_with_the_same_negatives(batch_size):
    data, source, request, searches = planted()
    guards = GuardOptions(batch_size=batch_size, short="drop")
    want, want_counts = window_by_window(data, source, guards, request)
    searches.clear()
    stats = MiningStats()
    got = select_negatives(data, source, guards, request, stats)
    np.testing.assert_array_equal(got.negatives, want.negatives)
    np.testing.assert_array_equal(got.scores, want.scores)
    levels = _deeper_levels(plan_selection(data, source, guards, request), data, guards)
    first = [q for ids, depth in searches if depth == levels[0].depth // 4 for q in ids]
    deeper = [(q, depth) for ids, depth in searches if depth != levels[0].depth // 4 for q in ids]
    assert sorted(first) == list(range(len(data.queries)))  # every anchor once at the first window
    plan = plan_selection(data, source, guards, request)
    first_window = select_negatives(data, source, GuardOptions(range_max=plan.range_max, short="drop"), request,
                                    MiningStats())
    short = set(np.flatnonzero((first_window.negatives < 0).any(axis=1)).tolist())
    assert 10 < len(short) < 40
    assert stats.extra["searched_deeper"] == len(short) and stats.extra["deepest"] == levels[-1].depth
    assert sorted(q for q, _ in deeper) == sorted(short)  # each short anchor once more...
    assert {depth for _, depth in deeper} == {levels[-1].depth}  # ...straight to the deepest window
    assert (got.negatives[[q for q in range(len(data.queries)) if ABOVE[q % len(ABOVE)] < 400]] >= 0).all()
    assert stats.candidates_seen == int(want_counts["seen"].sum())
    assert stats.extra["dropped"]["relative_margin"] == int(want_counts["relative_margin"].sum())


def test_a_fixed_window_is_searched_once():
    data, source, request, searches = planted()
    select_negatives(data, source, GuardOptions(range_max=30, short="drop"), request, MiningStats())
    assert [depth for _, depth in searches] == [31]
