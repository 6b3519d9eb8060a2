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
