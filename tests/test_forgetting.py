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
    report = (tmp_path / "runs" / "p" / "report.md").read_text()
    assert "Retention" in report and "Interpolation" in report


def test_the_saved_model_is_the_interpolation_the_run_evaluated(tiny_model, tmp_path, registry):
    from sentence_transformers import SentenceTransformer

    config = small_config(tiny_model, tmp_path, steps=["train"], mining={"miner": None},
                          training={"max_steps": 2, "batch_size": 8, "learning_rate": 1e-3, "interpolate": 0.5})
    run_pipeline(config, registry, quiet=True)
    base = SentenceTransformer(tiny_model, device="cpu").state_dict()
    saved = SentenceTransformer(str(tmp_path / "runs" / "p" / "model"), device="cpu").state_dict()
    key = next(k for k, v in base.items() if v.is_floating_point() and v.dim() == 2 and "embeddings" in k)
    assert not torch.equal(saved[key], base[key])
    # the same run without interpolation: its weights are base + 2 (saved - base)
    config = small_config(tiny_model, tmp_path, name="q", steps=["train"], mining={"miner": None},
                          training={"max_steps": 2, "batch_size": 8, "learning_rate": 1e-3})
    run_pipeline(config, registry, quiet=True)
    tuned = SentenceTransformer(str(tmp_path / "runs" / "q" / "model"), device="cpu").state_dict()
    assert torch.allclose(saved[key], 0.5 * base[key] + 0.5 * tuned[key], atol=1e-5)


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
