"""The pipeline: steps, run folder rules, resume, lifecycle hooks, curriculum order."""

import json

import pytest

from embedtune_core import hookimpl
from embedtune_core.config.schema import RunConfig
from embedtune_core.errors import EmbedtuneError
from embedtune_core.pipeline.runner import run_pipeline
from embedtune_core.plugins.registry import build_registry


def small_config(tiny_model, tmp_path, **sections):
    data = {
        "name": "p",
        "output_dir": str(tmp_path / "runs"),
        "model": {"name": tiny_model, "max_seq_length": 32},
        "data": {"source": "builtin:construction-faq", "limit": 40, "eval_limit": 16},
        "mining": {"miner": "bm25", "num_negatives": 1},
        "training": {"max_steps": 2, "batch_size": 8},
        "evaluation": {"metrics": ["ndcg@10", "recall@5"], "batch_size": 64},
    }
    for key, value in sections.items():
        if isinstance(value, dict):
            data.setdefault(key, {}).update(value)
        else:
            data[key] = value
    return RunConfig.from_dict(data)


class Recorder:
    def __init__(self):
        self.calls = []

    @hookimpl
    def run_started(self, config, run_dir):
        self.calls.append(("run_started", config.name, run_dir.name))

    @hookimpl
    def evaluation_finished(self, stage, results, run_dir):
        self.calls.append(("evaluation_finished", stage, sorted(results[None])))

    @hookimpl
    def run_finished(self, run_dir, metrics):
        self.calls.append(("run_finished", sorted(metrics["after"])))


def test_pipeline_calls_lifecycle_hooks_and_writes_the_run(tiny_model, tmp_path, plugin_set, throwaway_plugin):
    recorder = throwaway_plugin(Recorder(), "recorder")
    registry = build_registry(plugin_set)
    config = small_config(tiny_model, tmp_path)
    metrics = run_pipeline(config, registry, plugin_set, quiet=True).to_json()
    assert recorder.calls == [
        ("run_started", "p", "p"),
        ("evaluation_finished", "before", ["ndcg@10", "recall@5"]),
        ("evaluation_finished", "after", ["ndcg@10", "recall@5"]),
        ("run_finished", ["ndcg@10", "recall@5"]),
    ]
    run_dir = tmp_path / "runs" / "p"
    written = json.loads((run_dir / "metrics.json").read_text())
    assert written["before"] == metrics["before"] and written["loss"] == "mnrl"
    assert written["mining"]["negatives_written"] > 0
    assert (run_dir / "mined.jsonl").exists()
    resolved = RunConfig.from_file(run_dir / "config.toml")
    assert resolved.steps == ["mine", "evaluate-before", "train", "evaluate-after"]
    assert resolved.loss.name == "mnrl" and resolved.loss.options == {
        "scale": 20.0, "similarity": "cosine", "gather_across_devices": False, "directions": ["query_to_doc"],
        "partition_mode": "joint", "hardness_mode": "none", "hardness_strength": 0.0}  # TOML has no null
    assert resolved.training.batch_sampler == "no_duplicates" and resolved.training.precision == "fp32"
    assert resolved.model.device == "cpu" and resolved.data.type == "ir" and resolved.mining.model == tiny_model
    assert resolved.mining.options["relative_margin"] == "auto" and resolved.mining.options["k1"] == 1.5
    assert resolved.training.callbacks == ["metrics-log", "progress"]


def test_existing_run_is_refused_then_overwritten(tiny_model, tmp_path, registry):
    config = small_config(tiny_model, tmp_path, steps=["train"], mining={"miner": None})
    run_pipeline(config, registry, quiet=True)
    model_file = tmp_path / "runs" / "p" / "model" / "model.safetensors"
    first = model_file.read_bytes()
    with pytest.raises(EmbedtuneError, match="already exists"):
        run_pipeline(config, registry, quiet=True)
    assert model_file.read_bytes() == first
    run_pipeline(config, registry, quiet=True, overwrite=True)
    assert model_file.exists()
    assert not (tmp_path / "runs" / ".p.replaced").exists()


def test_resume_reuses_mining_and_the_base_evaluation(tiny_model, tmp_path, registry, monkeypatch):
    config = small_config(tiny_model, tmp_path)
    import embedtune_core.training.trainer as training

    real_train = training.train

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "train", crash)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(config, registry, quiet=True)
    state = json.loads((tmp_path / "runs" / "p" / "state.json").read_text())
    assert "mining" in state["steps"]["mine"] and "before" in state["steps"]["evaluate-before"]
    monkeypatch.setattr(training, "train", real_train)
    import embedtune_core.mining.miner as mining

    monkeypatch.setattr(mining, "run_miner", lambda *a, **k: pytest.fail("mined again on resume"))
    metrics = run_pipeline(config, registry, quiet=True, resume=True).to_json()
    assert metrics["before"] == state["steps"]["evaluate-before"]["before"]["results"]["full"]
    assert metrics["training"]["steps"] == 2


def test_curriculum_mining_trains_in_order(tiny_model, tmp_path, registry, monkeypatch):
    import embedtune_core.training.trainer as training

    seen = {}
    real_train = training.train

    def spy(model, dataset, loss, setup, *args, **kwargs):
        seen["sampler"] = setup.decided().batch_sampler
        return real_train(model, dataset, loss, setup, *args, **kwargs)

    monkeypatch.setattr(training, "train", spy)
    config = small_config(
        tiny_model, tmp_path, steps=["mine", "train"],
        mining={"miner": "curriculum", "options": {"base": "bm25"}},
    )
    run_pipeline(config, registry, quiet=True)
    assert seen["sampler"] == "sequential"


def test_loss_that_does_not_fit_the_data_fails_before_training(tiny_model, tmp_path, registry):
    config = small_config(tiny_model, tmp_path, loss={"name": "cosent"})
    with pytest.raises(EmbedtuneError, match="cosent"):
        run_pipeline(config, registry, quiet=True)


def test_eval_steps_evaluate_the_held_out_split_during_training(tiny_model, tmp_path, registry):
    config = small_config(
        tiny_model, tmp_path, steps=["train"], mining={"miner": None},
        training={"max_steps": 4, "eval_steps": 2, "save_steps": 2, "load_best_model_at_end": True},
    )
    metrics = run_pipeline(config, registry, quiet=True).to_json()
    log = [json.loads(line) for line in (tmp_path / "runs" / "p" / "training_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log if "eval_loss" in row] == [2, 4]
    assert metrics["training"]["steps"] == 4


def test_eval_steps_without_held_out_data_fails_before_anything_is_written(tiny_model, tmp_path, registry):
    config = small_config(tiny_model, tmp_path, steps=["train"], mining={"miner": None},
                          data={"source": "tests/data/pairs.jsonl", "type": "pairs", "eval_fraction": 0.0},
                          training={"eval_steps": 2})
    with pytest.raises(EmbedtuneError, match="eval_steps"):
        run_pipeline(config, registry, quiet=True)
    assert not (tmp_path / "runs").exists()


def test_a_validation_part_is_held_out_of_the_training_rows_and_keeps_the_best_epoch(tiny_model, tmp_path, registry):
    """training.validation_fraction holds whole groups out of the training rows (never the test
    part), scores the model on them every epoch, and keeps the best epoch's checkpoint."""
    from embedtune_core.pipeline.data import prepare_data

    config = small_config(tiny_model, tmp_path, data={"limit": None},
                          training={"max_steps": None, "epochs": 2, "batch_size": 16, "validation_fraction": 0.2})
    data = prepare_data(config, registry, frozenset({"training-rows", "held-out", "mining", "training"}))
    validation = data.validation
    train_anchors = set(data.train["anchor"])
    assert 0 < len(validation.queries) and not train_anchors & set(validation.queries.values())
    assert not set(data.validation_rows["positive"]) & set(data.train["positive"])
    assert not set(data.validation_rows["positive"]) & set(data.corpus)  # nor mined as a negative
    assert set(data.train["positive"]) <= set(validation.corpus.values())  # ranked against every document
    assert not set(validation.queries.values()) & set(data.evaluation.queries.values())  # the test part is apart
    full = prepare_data(small_config(tiny_model, tmp_path, data={"limit": None}), registry,
                        frozenset({"training-rows", "training"}))
    assert len(data.train) + len(data.validation_rows) == len(full.train)

    metrics = run_pipeline(config, registry, quiet=True).to_json()
    summary = metrics["training"]["validation"]
    assert summary["metric"] == "ndcg@10" and summary["queries"] == len(validation.queries)
    assert [round(row["epoch"]) for row in summary["scores"]] == [1, 2]
    best = max(summary["scores"], key=lambda row: row["ndcg@10"])
    assert summary["best_step"] == best["step"] and summary["best"] == best["ndcg@10"]
    saved = RunConfig.from_file(tmp_path / "runs" / "p" / "config.toml")
    assert saved.training.validation_fraction == 0.2


def test_validation_with_early_stopping_stops_and_keeps_the_best_epoch(tiny_model, tmp_path, registry, monkeypatch):
    from embedtune_plugins import steps

    falling = iter([0.5, 0.4, 0.3, 0.2])
    monkeypatch.setattr(steps, "_validation_score", lambda context, metric: lambda model: next(falling))
    config = small_config(tiny_model, tmp_path, steps=["train"], mining={"miner": None}, data={"limit": None},
                          training={"max_steps": None, "epochs": 4, "batch_size": 16, "validation_fraction": 0.2,
                                    "early_stopping_patience": 1})
    training = run_pipeline(config, registry, quiet=True).to_json()["training"]
    scores = training["validation"]["scores"]
    assert [row["ndcg@10"] for row in scores] == [0.5, 0.4]
    assert training["stopped_early"] and training["reason"] == "early stopping: validation ndcg@10 did not improve for 1 evaluations"
    assert training["validation"]["best_step"] == scores[0]["step"] < training["steps"]
