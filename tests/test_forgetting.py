"""Retention (a general-domain set evaluated before and after) and weight interpolation."""

import json
import os

import pytest
import torch

from embedtune_core.errors import EmbedtuneError
from embedtune_core.pipeline.forgetting import choose_alpha, interpolate, interpolated_state
from embedtune_core.pipeline.results import Evaluation
from embedtune_core.pipeline.runner import run_pipeline
from tests.conftest import DATA
from tests.test_pipeline import small_config


def test_interpolated_state_mixes_float_tensors_and_keeps_the_rest():
    base = {"w": torch.zeros(2, 2), "ids": torch.tensor([1, 2])}
    tuned = {"w": torch.ones(2, 2) * 4, "ids": torch.tensor([5, 6])}
    mixed = interpolated_state(base, tuned, 0.25)
    assert torch.allclose(mixed["w"], torch.full((2, 2), 1.0))
    assert mixed["ids"].tolist() == [5, 6]
    assert torch.equal(interpolated_state(base, tuned, 1.0)["w"], tuned["w"])
    assert torch.equal(interpolated_state(base, tuned, 0.0)["w"], base["w"])


def test_choose_alpha_takes_the_best_domain_score_within_the_retention_tolerance():
    alphas = [0.0, 0.5, 0.75, 1.0]
    domain = [0.50, 0.60, 0.64, 0.66]
    # a = 1 loses 0.05 of retention, a = 0.75 loses 0.008: 0.75 is the best one kept
    retention = [0.40, 0.398, 0.392, 0.35]
    assert choose_alpha(alphas, domain, retention, tolerance=0.01) == 0.75
    assert choose_alpha(alphas, domain, retention, tolerance=0.1) == 1.0
    assert choose_alpha(alphas, domain, retention, tolerance=0.0) == 0.0
    # without a retention set: the best domain score
    assert choose_alpha(alphas, [0.5, 0.7, 0.6, 0.55], [None] * 4, tolerance=0.01) == 0.5


def _evaluation(score):
    return Evaluation(model="m", results={None: {"ndcg@10": score}}, full_dim=2)


def test_interpolate_evaluates_each_alpha_and_leaves_the_model_at_the_chosen_one():
    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)  # tuned weight 1, base weight 0: the weight is a
    base = {"weight": torch.zeros(1, 1)}
    seen = []

    def evaluate(alpha):
        weight = float(model.weight.detach())
        seen.append((alpha, weight))
        # the domain score grows with a, the retention score falls fast past a = 0.5
        return _evaluation(0.5 + 0.1 * weight), _evaluation(0.4 - (0.2 * (weight - 0.5) if weight > 0.5 else 0))

    record, results = interpolate(model, base, evaluate, alphas=[0.5, 0.75], tolerance=0.01, metric="ndcg@10",
                                  retention_metric="ndcg@10", base_results=None)
    assert [a for a, _ in seen] == [0.0, 0.5, 0.75, 1.0]
    assert all(abs(a - w) < 1e-6 for a, w in seen)
    assert record["chosen"] == 0.5 and record["mode"] == "auto"
    assert abs(float(model.weight.detach()) - 0.5) < 1e-6
    assert results[0.5][0].full["ndcg@10"] == pytest.approx(0.55)

    # a = 0 known already (the base model's evaluation before training) is not evaluated again
    seen.clear()
    with torch.no_grad():
        model.weight.fill_(1.0)
    record, _ = interpolate(model, base, evaluate, alphas=[0.25], tolerance=0.5, metric="ndcg@10",
                            retention_metric="ndcg@10", base_results=(_evaluation(0.9), _evaluation(0.4)))
    assert [a for a, _ in seen] == [0.25, 1.0] and record["alphas"] == [0.0, 0.25, 1.0]
    assert record["domain"][0] == 0.9 and record["chosen"] == 0.0
    assert float(model.weight.detach()) == 0.0


def test_a_run_with_a_retention_set_and_auto_interpolation_records_both(tiny_model, tmp_path, registry):
    retention = os.path.join(DATA, "ir")
    config = small_config(tiny_model, tmp_path, steps=["evaluate-before", "train", "evaluate-after"],
                          mining={"miner": None}, evaluation={"retention": retention},
                          training={"max_steps": 3, "batch_size": 8, "learning_rate": 5e-4, "interpolate": "auto"})
    metrics = run_pipeline(config, registry, quiet=True).to_json()
    saved = json.loads((tmp_path / "runs" / "p" / "metrics.json").read_text())
    assert saved["retention"]["data"] == retention and saved["retention"]["metric"] == "ndcg@10"
    assert set(saved["retention"]["before"]) == {"ndcg@10", "recall@5"}
    interpolation = saved["interpolation"]
    assert interpolation["alphas"] == [0.0, 0.5, 0.75, 1.0] and interpolation["chosen"] in interpolation["alphas"]
    chosen = interpolation["alphas"].index(interpolation["chosen"])
    # the run's "after" is the chosen interpolation, and a = 0 is the base model's evaluation
    assert metrics["after"]["ndcg@10"] == pytest.approx(interpolation["domain"][chosen])
    assert interpolation["domain"][0] == pytest.approx(metrics["before"]["ndcg@10"])
    assert saved["retention"]["after"]["ndcg@10"] == pytest.approx(interpolation["retention"][chosen])
    assert interpolation["retention_metric"] == "ndcg@10"  # the first metric, as the retention record
    report = (tmp_path / "runs" / "p" / "report.md").read_text()
    assert "Retention" in report and "Interpolation" in report


def test_the_saved_model_is_the_interpolation_the_run_evaluated(tiny_model, tmp_path, registry):
    from sentence_transformers import SentenceTransformer

    config = small_config(tiny_model, tmp_path, steps=["train"], mining={"miner": None},
                          training={"max_steps": 2, "batch_size": 8, "learning_rate": 1e-3, "interpolate": 0.25})
    run_pipeline(config, registry, quiet=True)
    base = SentenceTransformer(tiny_model, device="cpu").state_dict()
    saved = SentenceTransformer(str(tmp_path / "runs" / "p" / "model"), device="cpu").state_dict()
    key = next(k for k, v in base.items() if v.is_floating_point() and v.dim() == 2 and "embeddings" in k)
    assert not torch.equal(saved[key], base[key])
    # the same run without interpolation: a = 0.25 is a quarter of the way from base to tuned
    config = small_config(tiny_model, tmp_path, name="q", steps=["train"], mining={"miner": None},
                          training={"max_steps": 2, "batch_size": 8, "learning_rate": 1e-3})
    run_pipeline(config, registry, quiet=True)
    tuned = SentenceTransformer(str(tmp_path / "runs" / "q" / "model"), device="cpu").state_dict()
    assert torch.allclose(saved[key], 0.75 * base[key] + 0.25 * tuned[key], atol=1e-5)
    assert not torch.allclose(saved[key], 0.25 * base[key] + 0.75 * tuned[key], atol=1e-5)
    config_toml = (tmp_path / "runs" / "p" / "config.toml").read_text()
    assert "interpolate = 0.25" in config_toml
    record = json.loads((tmp_path / "runs" / "p" / "metrics.json").read_text())["interpolation"]
    assert record == {"mode": "fixed", "chosen": 0.25}


def test_an_sts_retention_set_is_refused_before_anything_runs(tiny_model, tmp_path, registry):
    config = small_config(tiny_model, tmp_path, steps=["evaluate-before", "train"], mining={"miner": None},
                          evaluation={"retention": "builtin:lee-sts"})
    with pytest.raises(EmbedtuneError) as caught:
        run_pipeline(config, registry, quiet=True)
    assert caught.value.key == "evaluation.retention" and "ranked" in str(caught.value)
    assert not (tmp_path / "runs" / "p").exists()


def test_auto_interpolation_without_the_evaluate_after_step_is_refused(tiny_model, tmp_path, registry):
    config = small_config(tiny_model, tmp_path, steps=["train"], mining={"miner": None},
                          training={"interpolate": "auto"})
    with pytest.raises(EmbedtuneError) as caught:
        run_pipeline(config, registry, quiet=True)
    assert caught.value.key == "training.interpolate" and "evaluate-after" in caught.value.hint
    assert not (tmp_path / "runs" / "p").exists()


# -- every choice of the interpolation, on data where it matters --------------------------------
def test_interpolated_state_goes_from_base_at_zero_to_tuned_at_one():
    base = {"w": torch.full((2,), 2.0), "b": torch.full((3,), 1.0, dtype=torch.float64), "odd": torch.ones(2)}
    tuned = {"w": torch.full((2,), 10.0), "b": torch.full((3,), 5.0, dtype=torch.float32), "odd": torch.full((3,), 7.0),
             "new": torch.full((1,), 3.0)}
    mixed = interpolated_state(base, tuned, 0.25)
    assert mixed["w"].tolist() == [4.0, 4.0]  # 0.75 * 2 + 0.25 * 10: a quarter of the way to tuned
    assert mixed["b"].dtype == torch.float32 and mixed["b"].tolist() == [2.0] * 3  # in tuned's dtype
    assert mixed["odd"].tolist() == [7.0] * 3 and mixed["new"].tolist() == [3.0]  # no base of that shape: tuned's
    assert set(mixed) == set(tuned)


def test_choose_alpha_ties_boundaries_and_missing_scores():
    alphas = [0.0, 0.3, 0.6, 1.0]
    # equal best domain scores: the larger a
    assert choose_alpha(alphas, [0.5, 0.7, 0.7, 0.6], [None] * 4, tolerance=0.0) == 0.6
    # a retention drop of exactly the tolerance is kept; just above it is not
    assert choose_alpha(alphas, [0.5, 0.6, 0.7, 0.8], [0.5, 0.49, 0.48, 0.3], tolerance=0.02) == 0.6
    assert choose_alpha(alphas, [0.5, 0.6, 0.7, 0.8], [0.5, 0.49, 0.4799, 0.3], tolerance=0.02) == 0.3
    # the base model's retention is the first one (a = 0), not the best one
    assert choose_alpha(alphas, [0.5, 0.6, 0.7, 0.8], [0.40, 0.45, 0.39, 0.30], tolerance=0.02) == 0.6
    # a domain score that is missing is never chosen; nothing scored: the last a
    assert choose_alpha(alphas, [0.5, None, 0.4, None], [None] * 4, tolerance=0.0) == 0.0
    assert choose_alpha(alphas, [0.5, None, 0.7, None], [None] * 4, tolerance=0.0) == 0.6  # scores after a gap count
    assert choose_alpha(alphas, [None] * 4, [None] * 4, tolerance=0.0) == 1.0
    # without the base model's retention, or without one a's, nothing is excluded for it
    assert choose_alpha(alphas, [0.5, 0.6, 0.7, 0.8], [None, 0.1, 0.1, 0.1], tolerance=0.0) == 1.0
    assert choose_alpha(alphas, [0.5, 0.6, 0.7, 0.8], [0.5, 0.5, 0.1, None], tolerance=0.0) == 1.0


def test_headline_of_an_evaluation_that_is_missing():
    from embedtune_core.pipeline.forgetting import headline_of

    assert headline_of(None, "ndcg@10") is None and headline_of(_evaluation(0.4), None) is None
    assert headline_of(_evaluation(0.4), "ndcg@10") == 0.4 and headline_of(_evaluation(0.4), "mrr@10") is None


def test_interpolate_records_every_alpha_and_leaves_the_chosen_weights():
    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(3.0)  # tuned 3, base 1: the weight at a is 1 + 2a
    base = {"weight": torch.ones(1, 1)}
    seen = []

    def evaluate(alpha):
        weight = float(model.weight.detach())
        seen.append(round(weight, 6))
        # domain: best at a = 0.6 (weight 2.2) and a = 1 equally; retention falls past a = 0.6
        domain = {1.0: 0.5, 1.4: 0.55, 2.2: 0.7, 3.0: 0.7}[round(weight, 6)]
        retention = {1.0: 0.4, 1.4: 0.4, 2.2: 0.395, 3.0: 0.2}[round(weight, 6)]
        return _evaluation(domain), _evaluation(retention)

    record, results = interpolate(model, base, evaluate, alphas=[0.6, 0.2, 0.6], tolerance=0.01, metric="ndcg@10",
                                  retention_metric="ndcg@10", base_results=None)
    assert seen == [1.0, 1.4, 2.2, 3.0]
    assert record == {"metric": "ndcg@10", "retention_metric": "ndcg@10", "alphas": [0.0, 0.2, 0.6, 1.0],
                      "domain": [0.5, 0.55, 0.7, 0.7], "retention": [0.4, 0.4, 0.395, 0.2], "chosen": 0.6,
                      "mode": "auto", "tolerance": 0.01}
    assert float(model.weight.detach()) == pytest.approx(2.2)
    assert sorted(results) == [0.0, 0.2, 0.6, 1.0] and results[0.6][1].full["ndcg@10"] == 0.395
    # with a looser bound the tie between 0.6 and 1 goes to 1: the tuned weights, unchanged
    with torch.no_grad():
        model.weight.fill_(3.0)
    seen.clear()
    record, _ = interpolate(model, base, evaluate, alphas=[0.6], tolerance=0.5, metric="ndcg@10",
                            retention_metric="ndcg@10", base_results=None)
    assert record["chosen"] == 1.0 and float(model.weight.detach()) == pytest.approx(3.0)


def _evaluated(model, tmp_path, registry, name, **evaluation):
    """An evaluate-only run of ``model`` on the same data: what the model scores, independently."""
    config = small_config(model, tmp_path, name=name, steps=["evaluate-after"], mining={"miner": None},
                          evaluation=evaluation)
    return run_pipeline(config, registry, quiet=True).to_json()


def test_retention_before_and_after_come_from_the_base_and_the_trained_model(tiny_model, tmp_path, registry):
    """Training at a high learning rate moves the retention score of a set of hundreds of queries
    (a six-document set can rank the same before and after); "before" is the base model's and
    "after" the saved model's, each compared with the model evaluated on its own."""
    retention = "builtin:wordnet-general"
    config = small_config(tiny_model, tmp_path, steps=["evaluate-before", "train", "evaluate-after"],
                          mining={"miner": None}, evaluation={"retention": retention},
                          training={"max_steps": 6, "batch_size": 8, "learning_rate": 5e-3})
    run_pipeline(config, registry, quiet=True)
    saved = json.loads((tmp_path / "runs" / "p" / "metrics.json").read_text())
    base = _evaluated(tiny_model, tmp_path, registry, "base", retention=retention)
    tuned = _evaluated(str(tmp_path / "runs" / "p" / "model"), tmp_path, registry, "tuned", retention=retention)
    assert base["retention"]["after"] != tuned["retention"]["after"]  # the two can be told apart
    assert saved["retention"]["before"] == pytest.approx(base["retention"]["after"])
    assert saved["retention"]["after"] == pytest.approx(tuned["retention"]["after"])
    assert saved["before"] == pytest.approx(base["after"]) and saved["after"] == pytest.approx(tuned["after"])


def test_auto_interpolation_against_a_baseline_evaluates_the_base_model_at_zero(tiny_model, tmp_path, registry):
    """With ``evaluation.baseline`` "before" is the baseline's evaluation, but a = 0 of the
    interpolation is the base model (``model.name``): it is evaluated, not taken from "before"."""
    from embedtune_core.testing import build_tiny_model

    other = str(build_tiny_model(tmp_path / "other", seed=5, word_embedding_std=0.5))
    retention = os.path.join(DATA, "ir")
    config = small_config(tiny_model, tmp_path, steps=["evaluate-before", "train", "evaluate-after"],
                          mining={"miner": None}, evaluation={"retention": retention, "baseline": other},
                          training={"max_steps": 3, "batch_size": 8, "learning_rate": 5e-3, "interpolate": "auto",
                                    "retention_tolerance": 1.0})
    metrics = run_pipeline(config, registry, quiet=True).to_json()
    baseline = _evaluated(other, tmp_path, registry, "baseline", retention=retention)
    base = _evaluated(tiny_model, tmp_path, registry, "base", retention=retention)
    assert baseline["after"]["ndcg@10"] != base["after"]["ndcg@10"]  # the two can be told apart
    assert metrics["before"] == pytest.approx(baseline["after"])
    assert metrics["retention"]["before"] == pytest.approx(baseline["retention"]["after"])
    record = metrics["interpolation"]
    assert record["domain"][0] == pytest.approx(base["after"]["ndcg@10"])
    assert record["retention"][0] == pytest.approx(base["retention"]["after"]["ndcg@10"])
    # "after" is the chosen interpolation (any a within a tolerance of 1.0: the best domain score)
    best = max(record["domain"])
    chosen = record["alphas"].index(record["chosen"])
    assert record["domain"][chosen] == best and record["chosen"] == max(
        a for a, d in zip(record["alphas"], record["domain"]) if d == best)
    assert metrics["after"]["ndcg@10"] == pytest.approx(best)
    assert metrics["retention"]["after"]["ndcg@10"] == pytest.approx(record["retention"][chosen])
    saved = _evaluated(str(tmp_path / "runs" / "p" / "model"), tmp_path, registry, "saved", retention=retention)
    assert saved["after"] == pytest.approx(metrics["after"])


def test_a_run_reports_and_saves_the_interpolation_chosen_not_the_tuned_model(tiny_model, tmp_path, registry,
                                                                               monkeypatch):
    """Whatever ``a`` the choice lands on, "after" (domain and retention) is that interpolation's
    evaluation and the saved model is those weights: here the choice is made to land on 0.5."""
    from embedtune_core.pipeline import forgetting

    chose = []

    def choose_half(alphas, domain, retention, tolerance):
        chose.append((list(alphas), list(domain), list(retention)))
        return 0.5

    monkeypatch.setattr(forgetting, "choose_alpha", choose_half)
    retention = "builtin:wordnet-general"
    config = small_config(tiny_model, tmp_path, steps=["evaluate-before", "train", "evaluate-after"],
                          mining={"miner": None}, evaluation={"retention": retention},
                          training={"max_steps": 6, "batch_size": 8, "learning_rate": 5e-3, "interpolate": "auto"})
    metrics = run_pipeline(config, registry, quiet=True).to_json()
    (alphas, domain, kept), = chose
    record = metrics["interpolation"]
    assert alphas == record["alphas"] == [0.0, 0.5, 0.75, 1.0] and record["chosen"] == 0.5
    assert domain[1] != domain[3] or kept[1] != kept[3]  # a = 0.5 and a = 1 can be told apart
    assert metrics["after"]["ndcg@10"] == pytest.approx(domain[1])
    assert metrics["retention"]["after"]["ndcg@10"] == pytest.approx(kept[1])
    monkeypatch.undo()
    saved = _evaluated(str(tmp_path / "runs" / "p" / "model"), tmp_path, registry, "saved", retention=retention)
    assert saved["after"] == pytest.approx(metrics["after"])
    assert saved["retention"]["after"] == pytest.approx(metrics["retention"]["after"])
