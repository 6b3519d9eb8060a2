"""Significance of a before/after change: paired bootstrap interval, randomisation test, wins and
losses, the queries that changed most."""

import numpy as np
import pytest

from embedtune_core.pipeline.significance import biggest_changes, paired_statistics, significance


def test_a_clear_gain_is_significant_and_its_interval_excludes_zero():
    rng = np.random.default_rng(3)
    before = rng.uniform(0, 0.6, 400)
    after = before + 0.1 + rng.normal(0, 0.05, 400)
    stats = paired_statistics(before, after)
    lo, hi = stats["ci95"]
    assert lo < stats["mean_change"] < hi and lo > 0.09 and hi < 0.11
    assert stats["p_value"] == pytest.approx(1 / 10_001)
    assert stats["wins"] + stats["losses"] + stats["ties"] == 400 and stats["wins"] > 390


def test_noise_is_not_significant_and_the_tests_are_seeded():
    rng = np.random.default_rng(4)
    before = rng.uniform(0, 1, 300)
    after = before + rng.normal(0, 0.05, 300)
    stats = paired_statistics(before, after)
    assert stats["p_value"] > 0.05 and stats["ci95"][0] < 0 < stats["ci95"][1]
    assert paired_statistics(before, after) == stats


def test_the_randomisation_p_value_matches_an_exact_enumeration():
    """With few queries every sign assignment can be listed: the Monte Carlo p-value is close."""
    import itertools

    diff = np.array([0.3, 0.1, -0.05, 0.2, 0.15, 0.0, 0.25, -0.1])
    observed = abs(diff.mean())
    flips = [np.mean(np.array(s) * diff) for s in itertools.product([-1, 1], repeat=len(diff))]
    exact = np.mean(np.abs(flips) >= observed - 1e-12)
    stats = paired_statistics(np.zeros(8), diff, resamples=20_000)
    assert stats["p_value"] == pytest.approx(exact, abs=0.01)
    assert stats["ties"] == 1 and stats["wins"] == 5 and stats["losses"] == 2


def test_biggest_changes_name_query_relevant_text_and_ranks():
    before = {"q1": {"value": 0.2, "rank": 5}, "q2": {"value": 1.0, "rank": 1}, "q3": {"value": 0.5, "rank": 2}}
    after = {"q1": {"value": 1.0, "rank": 1}, "q2": {"value": 0.0, "rank": None}, "q3": {"value": 0.5, "rank": 2}}
    texts = {q: (f"query {q}", f"doc {q}") for q in before}
    changes = biggest_changes(before, after, texts)
    assert [r["query_id"] for r in changes["gained"]] == ["q1"] and [r["query_id"] for r in changes["lost"]] == ["q2"]
    assert changes["gained"][0]["rank_before"] == 5 and changes["gained"][0]["rank_after"] == 1
    assert changes["lost"][0]["relevant"] == "doc q2" and changes["lost"][0]["rank_after"] is None
    entry = significance("ndcg@10", before, after, texts)["ndcg@10"]
    assert entry["wins"] == 1 and entry["losses"] == 1 and entry["ties"] == 1 and entry["queries"] == 3


def test_a_run_reports_the_significance_of_its_headline_change(tiny_model, tmp_path, registry):
    import json

    from embedtune_core.pipeline.runner import run_pipeline
    from tests.test_pipeline import small_config

    config = small_config(tiny_model, tmp_path, steps=["evaluate-before", "train", "evaluate-after"],
                          mining={"miner": None}, training={"max_steps": 3, "batch_size": 8, "learning_rate": 1e-3})
    run_pipeline(config, registry, quiet=True)
    saved = json.loads((tmp_path / "runs" / "p" / "metrics.json").read_text())
    entry = saved["significance"]["ndcg@10"]
    # the mean of the per-query changes is the change of the mean
    assert entry["mean_change"] == pytest.approx(saved["after"]["ndcg@10"] - saved["before"]["ndcg@10"], abs=1e-9)
    assert entry["wins"] + entry["losses"] + entry["ties"] == entry["queries"] == saved["evaluation"]["queries"]
    assert 0 < entry["p_value"] <= 1 and entry["ci95"][0] <= entry["mean_change"] <= entry["ci95"][1]
    for row in entry["gained"]:
        assert row["after"] > row["before"] and row["query"] and row["relevant"]
        assert row["rank_after"] is None or row["rank_after"] >= 1
    report = (tmp_path / "runs" / "p" / "report.md").read_text()
    assert "Is the change real?" in report


# -- against independent computations ------------------------------------------------------------
def _diffs(n, seed):
    """Per-query changes on a lattice of 0.05 (so equal means are exactly equal), spread enough
    that a wrong confidence level moves the interval by more than the Monte Carlo noise."""
    rng = np.random.default_rng(seed)
    return rng.integers(-6, 9, size=n) * 0.05


def test_the_bootstrap_interval_is_the_95_percent_percentile_interval_of_scipy():
    """scipy.stats.bootstrap (percentile method, paired: the per-query change resampled) with many
    resamples: ours agrees within 0.001, while a 94% or 96% interval is 0.002+ off on each side."""
    from scipy import stats as scipy_stats

    diff = _diffs(40, 5)
    before = np.full(40, 0.5)
    ours = paired_statistics(before, before + diff, resamples=100_000, seed=1)
    reference = scipy_stats.bootstrap((diff,), np.mean, confidence_level=0.95, n_resamples=100_000,
                                      method="percentile", random_state=np.random.default_rng(2))
    lo, hi = reference.confidence_interval
    assert ours["ci95"] == pytest.approx([lo, hi], abs=1e-3)
    for level in (0.94, 0.96):
        other = scipy_stats.bootstrap((diff,), np.mean, confidence_level=level, n_resamples=100_000,
                                      method="percentile", random_state=np.random.default_rng(2)).confidence_interval
        assert abs(other.low - lo) > 2e-3 and abs(other.high - hi) > 2e-3  # the test can tell the levels apart
    assert ours["mean_change"] == pytest.approx(diff.mean(), abs=1e-12)
    assert ours["resamples"] == 100_000 and ours["queries"] == 40


def test_the_bootstrap_interval_matches_the_exact_bootstrap_distribution():
    """Five queries: all 5^5 resamples listed, each equally likely. The exact 2.5th and 97.5th
    percentiles (numpy's linear interpolation on the exact distribution) bound ours."""
    import itertools

    diff = np.array([0.4, -0.1, 0.05, 0.3, 0.0])
    means = np.sort([diff[list(i)].mean() for i in itertools.product(range(5), repeat=5)])
    lo, hi = np.percentile(means, 2.5), np.percentile(means, 97.5)
    ours = paired_statistics(np.zeros(5), diff, resamples=200_000, seed=3)["ci95"]
    assert ours == pytest.approx([lo, hi], abs=0.011)
    # a 90% interval would be [-0.01, 0.26]: further than the tolerance on both sides
    assert abs(np.percentile(means, 5) - lo) > 0.02 and abs(np.percentile(means, 95) - hi) > 0.02


def _exact_p_value(units):
    """Two-sided sign-flip p-value by listing every assignment, in integer units (no rounding)."""
    import itertools

    observed = abs(int(np.sum(units)))
    hits = sum(1 for signs in itertools.product((-1, 1), repeat=len(units))
               if abs(int(np.dot(signs, units))) >= observed)
    return hits / 2 ** len(units)


@pytest.mark.parametrize("units", [
    [3, 1, -1, 2, 2, 0, 3, -2, 1, 1, 2, -1],  # many assignments tie with the observed mean: >= counts them
    [1, 1, 1, 1, -1, 1, 1, 1, 0, 2, -2, 1],
])
def test_the_randomisation_p_value_matches_exact_enumeration_and_scipy(units):
    from scipy import stats as scipy_stats

    units = np.array(units)
    diff = units * 0.1
    exact = _exact_p_value(units)
    ours = paired_statistics(np.zeros(len(diff)), diff, resamples=100_000, seed=4)
    assert ours["p_value"] == pytest.approx(exact, abs=0.005)
    # scipy lists every assignment for 12 queries: the same exact value
    reference = scipy_stats.permutation_test((units,), np.mean, permutation_type="samples", n_resamples=10_000,
                                             alternative="two-sided")
    assert reference.pvalue == pytest.approx(exact, abs=1e-9)
    # counting only strictly larger changes, or one side, gives a value the tolerance rejects
    strictly = sum(1 for s in __import__("itertools").product((-1, 1), repeat=len(units))
                   if abs(int(np.dot(s, units))) > abs(int(units.sum()))) / 2 ** len(units)
    assert abs(strictly - exact) > 0.01


def test_the_p_value_of_a_certain_change_is_one_over_resamples_plus_one():
    ours = paired_statistics(np.zeros(30), np.full(30, 0.2), resamples=999, seed=0)
    # every flip but the all-positive one gives a smaller change: the +1 correction only
    assert ours["p_value"] == pytest.approx(1 / 1000)
    none = paired_statistics(np.full(30, 0.3), np.full(30, 0.3), resamples=999)
    assert none["p_value"] == 1.0 and none["ci95"] == [0.0, 0.0] and none["ties"] == 30


def test_wins_losses_and_ties_use_the_tie_tolerance():
    before = np.zeros(9)
    after = np.array([1e-10, -1e-10, 2e-9, -2e-9, 0.3, -0.3, 0.0, 1e-9, -1e-9])
    stats = paired_statistics(before, after, resamples=100)
    # a change of exactly the tolerance (1e-9) is a tie, not a win or a loss
    assert (stats["wins"], stats["losses"], stats["ties"]) == (2, 2, 5)
    assert stats["queries"] == 9
    changes = biggest_changes({q: {"value": 0.0} for q in "abcd"},
                              {"a": {"value": 1e-9}, "b": {"value": -1e-9}, "c": {"value": 0.5}, "d": {"value": -0.5}}, {})
    assert [r["query_id"] for r in changes["gained"]] == ["c"] and [r["query_id"] for r in changes["lost"]] == ["d"]


def test_no_queries_and_mismatched_queries():
    empty = paired_statistics([], [])
    assert empty["mean_change"] is None and empty["ci95"] is None and empty["p_value"] is None
    assert (empty["wins"], empty["losses"], empty["ties"], empty["queries"]) == (0, 0, 0, 0)
    assert empty["resamples"] == 10_000
    with pytest.raises(ValueError, match="^before and after need one value per query, the same queries$"):
        paired_statistics([0.1, 0.2], [0.1])


def test_biggest_changes_orders_several_gains_and_losses_ties_by_query_id():
    """Seven queries gained and seven lost, with equal changes on both sides: the five largest
    of each, largest first, equal changes in query id order; ties (no change) in neither."""
    changes = {"g1": 0.5, "g2": 0.2, "g3": 0.2, "g4": 0.9, "g5": 0.1, "g6": 0.05, "g7": 0.3,
               "l1": -0.4, "l2": -0.2, "l3": -0.2, "l4": -0.7, "l5": -0.05, "l6": -0.6, "l7": -0.1,
               "t1": 0.0, "t2": 5e-10}
    before = {q: {"value": 0.1 if c > 0 else 0.95, "rank": i + 1} for i, (q, c) in enumerate(changes.items())}
    after = {q: {"value": before[q]["value"] + c, "rank": None if c < -0.5 else 1} for q, c in changes.items()}
    texts = {q: (f"query {q}", f"doc {q}") for q in changes}
    result = biggest_changes(before, after, texts)
    assert [r["query_id"] for r in result["gained"]] == ["g4", "g1", "g7", "g2", "g3"]
    assert [r["query_id"] for r in result["lost"]] == ["l4", "l6", "l1", "l2", "l3"]
    assert [r["query_id"] for r in biggest_changes(before, after, texts, count=2)["lost"]] == ["l4", "l6"]
    row = result["lost"][1]
    assert row == {"query_id": "l6", "query": "query l6", "relevant": "doc l6", "before": 0.95,
                   "after": pytest.approx(0.35), "change": pytest.approx(-0.6), "rank_before": 13, "rank_after": None}
    assert result["gained"][0]["rank_before"] == 4 and result["gained"][0]["rank_after"] == 1
    # a query evaluated only once is not compared; one without texts has empty ones
    del after["g4"], texts["g1"]
    again = biggest_changes(before, after, texts)
    assert [r["query_id"] for r in again["gained"]][:2] == ["g1", "g7"]
    assert again["gained"][0]["query"] == again["gained"][0]["relevant"] == ""
    entry = significance("ndcg@10", before, after, texts)["ndcg@10"]
    assert entry["queries"] == 15 and (entry["wins"], entry["losses"], entry["ties"]) == (6, 7, 2)
    assert [r["query_id"] for r in entry["lost"]] == ["l4", "l6", "l1", "l2", "l3"]


def test_a_single_resample_is_drawn():
    stats = paired_statistics(np.zeros(30), np.full(30, 0.25), resamples=1)
    assert stats["ci95"] == [0.25, 0.25]  # every resample of a constant change has its mean
    assert stats["p_value"] == 0.5  # the one sign flip is (almost surely) smaller: (0 + 1) / (1 + 1)


def test_resamples_past_one_chunk_and_the_seed():
    """1,500 resamples (a chunk and a half) fill every slot; the default seed is 0, and the seed
    given to ``significance`` is the one the statistics use."""
    diff = _diffs(25, 8)
    stats = paired_statistics(np.zeros(25), diff, resamples=1_500)
    assert stats["resamples"] == 1_500 and 0 < stats["p_value"] <= 1
    assert stats == paired_statistics(np.zeros(25), diff, resamples=1_500, seed=0)
    assert stats["ci95"] != paired_statistics(np.zeros(25), diff, resamples=1_500, seed=9)["ci95"]
    before = {f"q{i}": {"value": 0.0} for i in range(25)}
    after = {f"q{i}": {"value": float(d)} for i, d in enumerate(diff)}
    entry = significance("mrr@10", before, after, {})["mrr@10"]
    seeded = significance("mrr@10", before, after, {}, seed=9)["mrr@10"]
    order = sorted(before)  # the statistics take the queries in id order
    for got, seed in ((entry, 0), (seeded, 9)):
        want = paired_statistics([0.0] * 25, [after[q]["value"] for q in order], seed=seed)
        assert {k: got[k] for k in want} == want
