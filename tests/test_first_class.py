"""Third-party components are first-class: a pack that copies the built-ins' behaviour under other
names gets exactly the built-ins' treatment, end to end, and the core's source names no built-in.

Each setting is checked by its effect on what sentence-transformers' Trainer was given (its batch
sampler, callbacks, loss) or on the output, not by the config string."""

import ast
import json
import textwrap
from pathlib import Path

import pytest

from embedtune_core import hookimpl
from embedtune_core.config.schema import RunConfig
from embedtune_core.pipeline.runner import run_pipeline
from embedtune_core.plugins.registry import build_registry
from embedtune_core.testing import invoke

ROOT = Path(__file__).resolve().parent.parent


class ShadowPack:
    """The built-ins' loss, miners and callback under other names, declaring what they declare."""

    @hookimpl
    def register_losses(self, register):
        from embedtune_plugins.losses import IN_BATCH_TYPES, matryoshka, mnrl

        register("tp-mnrl", mnrl, accepts=IN_BATCH_TYPES, in_batch_negatives=True)
        register("tp-matryoshka", matryoshka, wraps="base")

    @hookimpl
    def register_negative_miners(self, register):
        from embedtune_plugins.miners import CurriculumMiner, DenseMiner

        register("tp-dense", DenseMiner, model="required")
        register("tp-curriculum", CurriculumMiner, model="required", ordered=True, wraps="base")

    @hookimpl
    def register_callbacks(self, register):
        from embedtune_plugins.callbacks import metrics_log

        register("tp-log", metrics_log)


@pytest.fixture
def trainer_spy(monkeypatch):
    """What each SentenceTransformerTrainer of the test was given: the trainer itself and the
    batch sampler it built for training."""
    from sentence_transformers import SentenceTransformerTrainer

    seen = {"trainers": [], "samplers": []}
    init, get_batch_sampler = SentenceTransformerTrainer.__init__, SentenceTransformerTrainer.get_batch_sampler

    def spy_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        seen["trainers"].append(self)

    def spy_sampler(self, *args, **kwargs):
        sampler = get_batch_sampler(self, *args, **kwargs)
        seen["samplers"].append(sampler)
        return sampler

    monkeypatch.setattr(SentenceTransformerTrainer, "__init__", spy_init)
    monkeypatch.setattr(SentenceTransformerTrainer, "get_batch_sampler", spy_sampler)
    return seen


def config_of(tiny_model, tmp_path, name, loss, miner, base, callbacks, **training):
    return RunConfig.from_dict({
        "name": name, "output_dir": str(tmp_path / "runs"),
        "model": {"name": tiny_model, "max_seq_length": 32},
        "data": {"source": "builtin:construction-faq", "limit": 32, "eval_limit": 12},
        "mining": {"miner": miner, "options": {"base": base, "base_options": {"relative_margin": 0.02}}},
        "loss": {"name": loss, "options": {"base": "mnrl" if loss == "matryoshka" else "tp-mnrl", "dims": [32, 16]}},
        "training": {"max_steps": 3, "batch_size": 8, "callbacks": callbacks, "default_callbacks": False,
                     "seed": 5, **training},
        "evaluation": {"metrics": ["ndcg@10", "recall@5"], "batch_size": 64},
    })


def test_a_pack_copying_the_builtins_gets_identical_treatment(tiny_model, tmp_path, plugin_set, throwaway_plugin,
                                                              trainer_spy):
    throwaway_plugin(ShadowPack(), "shadow")
    registry = build_registry(plugin_set)
    builtin = run_pipeline(config_of(tiny_model, tmp_path, "builtin", "matryoshka", "curriculum", "dense",
                                     ["metrics-log"]), registry, quiet=True)
    pack = run_pipeline(config_of(tiny_model, tmp_path, "pack", "tp-matryoshka", "tp-curriculum", "tp-dense",
                                  ["tp-log"]), registry, quiet=True)
    runs = tmp_path / "runs"
    resolved = [RunConfig.from_file(runs / name / "config.toml") for name in ("builtin", "pack")]
    for config in resolved:  # what the core decided from the declarations
        assert config.training.batch_sampler == "sequential" and config.evaluation.dims == [32, 16]
        assert config.mining.model == tiny_model
    # the Trainer got the same sampler, kind of loss and callbacks; the rows kept the mined order
    assert [type(s).__name__ for s in trainer_spy["samplers"][:2]] == ["DefaultBatchSampler"] * 2
    for trainer, name in zip(trainer_spy["trainers"], ("builtin", "pack")):
        mined = [json.loads(line) for line in (runs / name / "mined.jsonl").read_text().splitlines()]
        order = [i for batch in trainer.get_train_dataloader().batch_sampler for i in batch]
        assert order == list(range(len(mined)))
        assert type(trainer.loss).__name__ == "MatryoshkaLoss" and trainer.loss.matryoshka_dims == (32, 16)
        assert any(type(c).__name__ == "MetricsLogCallback" for c in trainer.callback_handler.callbacks)
    assert (runs / "builtin" / "mined.jsonl").read_text() == (runs / "pack" / "mined.jsonl").read_text()
    assert (runs / "builtin" / "training_log.jsonl").exists() and (runs / "pack" / "training_log.jsonl").exists()
    # the same data, settings and seed: the same numbers
    assert builtin.to_json()["after"] == pack.to_json()["after"] and builtin.to_json()["dims"] == pack.to_json()["dims"]
    assert builtin.training["loss"] == pytest.approx(pack.training["loss"], abs=1e-7)


PACK_MODULE = '''
from embedtune_core import hookimpl


def tp_mnrl(model, scale: float = 20.0):
    """MNRL under another name"""
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    return MultipleNegativesRankingLoss(model, scale=scale)


@hookimpl
def register_losses(register):
    register("tp-mnrl", tp_mnrl, accepts=("pairs", "triplets", "hard-negatives", "ir"), in_batch_negatives=True)
'''


@pytest.mark.parametrize("command", ["train", "run"])
def test_a_pack_outside_the_repository_trains_with_the_no_duplicates_sampler(
        command, tiny_model, tmp_path, monkeypatch, trainer_spy):
    (tmp_path / "pack" / "third_party_pack.py").parent.mkdir()
    (tmp_path / "pack" / "third_party_pack.py").write_text(textwrap.dedent(PACK_MODULE), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path / "pack"))
    run = tmp_path / "runs" / "tp"
    common = ["-s", "training.max_steps=2", "-s", "training.batch_size=8", "-s", "data.limit=24",
              "-s", "data.eval_limit=8", "-s", "model.max_seq_length=32"]
    if command == "train":
        args = ["train", "--model", tiny_model, "--data", "builtin:construction-faq", "--loss", "tp-mnrl",
                "--output", str(run), "-q", *common]
    else:
        pipeline = tmp_path / "pipeline.toml"
        pipeline.write_text(f'name = "tp"\noutput_dir = "{tmp_path / "runs"}"\n[model]\nname = "{tiny_model}"\n'
                            '[data]\nsource = "builtin:construction-faq"\n[loss]\nname = "tp-mnrl"\n', encoding="utf-8")
        args = ["run", str(pipeline), "-q", *common]
    result = invoke(["-p", "third_party_pack", *args])
    assert result.exit_code == 0, result
    config = RunConfig.from_file(run / "config.toml")
    assert config.training.batch_sampler == "no_duplicates" and config.loss.name == "tp-mnrl"
    assert config.steps == (["train"] if command == "train" else ["evaluate-before", "train", "evaluate-after"])
    assert type(trainer_spy["samplers"][0]).__name__ == "NoDuplicatesBatchSampler"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["loss"] == "tp-mnrl" and metrics["training"]["steps"] == 2 and list(metrics["steps"]) == config.steps


def builtin_names(registry):
    """The built-in components' names, but for the dataset types and NLI labels (the core's own
    vocabulary, which the built-in readers and the contradiction miner are named after)."""
    from embedtune_core.types import DATASET_TYPES, NLI_LABELS

    builtin = {c.name for c in registry.components() if c.plugin in registry.builtin_plugins}
    return builtin - set(DATASET_TYPES) - set(NLI_LABELS)


#: where the core handles steps: a built-in step's name must not appear there (elsewhere "train" is
#: also the name of a data split and "mine" a miner's method, which the core rightly names)
STEP_PACKAGES = ("pipeline", "config", "cli")


def test_the_core_names_no_builtin_component(registry):
    """No string literal in embedtune_core (docstrings, help texts and the names of CLI commands
    aside) is the name of a built-in component: the built-ins could be replaced by a pack with
    other names."""
    step_names = {c.name for c in registry.components("step") if c.plugin in registry.builtin_plugins}
    assert step_names >= {"mine", "evaluate-before", "train", "evaluate-after"}
    text_keywords = {"help", "hint", "epilog", "short_help"}
    found = []
    for path in sorted((ROOT / "embedtune_core").rglob("*.py")):
        if "templates" in path.parts:
            continue
        names = builtin_names(registry) - (set() if path.parent.name in STEP_PACKAGES else step_names)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        prose = set()
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body:
                if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                    prose.add(id(body[0].value))
            if isinstance(node, ast.keyword) and node.arg in text_keywords:
                prose.update(id(sub) for sub in ast.walk(node.value))
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) in ("command", "group") and node.args:
                prose.add(id(node.args[0]))  # @click.command("train") names a command, not a component
        found += [f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}" for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and node.value in names and id(node) not in prose]
    assert len(names) >= 20 and not found, found


# -- each setting arrives where it acts ---------------------------------------------------------
def small_run(tiny_model, tmp_path, **sections):
    data = {"name": "s", "output_dir": str(tmp_path / "runs"), "model": {"name": tiny_model, "max_seq_length": 32},
            "data": {"source": "builtin:construction-faq", "limit": 32, "eval_limit": 12},
            "training": {"max_steps": 2, "batch_size": 8}, "steps": ["train"],
            "evaluation": {"metrics": ["ndcg@10"]}}
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return RunConfig.from_dict(data)


def test_cached_mnrl_trains_with_the_no_duplicates_sampler(tiny_model, tmp_path, registry, trainer_spy):
    run_pipeline(small_run(tiny_model, tmp_path, loss={"name": "cached-mnrl", "options": {"mini_batch_size": 4}}),
                 registry, quiet=True)
    assert type(trainer_spy["samplers"][0]).__name__ == "NoDuplicatesBatchSampler"
    assert type(trainer_spy["trainers"][0].loss).__name__ == "CachedMultipleNegativesRankingLoss"


def test_a_loss_without_in_batch_negatives_gets_the_plain_sampler(tiny_model, tmp_path, registry, trainer_spy):
    run_pipeline(small_run(tiny_model, tmp_path, loss={"name": "triplet"},
                           data={"source": "builtin:hpo-nli", "limit": 24}), registry, quiet=True)
    assert type(trainer_spy["samplers"][0]).__name__ == "DefaultBatchSampler"
    assert not isinstance(trainer_spy["samplers"][0].sampler, type(None))


def test_early_stopping_patience_reaches_the_trainer(tiny_model, tmp_path, registry, trainer_spy):
    run_pipeline(small_run(tiny_model, tmp_path, training={"eval_steps": 1, "early_stopping_patience": 2}),
                 registry, quiet=True)
    stoppers = [c for c in trainer_spy["trainers"][0].callback_handler.callbacks
                if type(c).__name__ == "EarlyStoppingCallback"]
    assert len(stoppers) == 1 and stoppers[0].early_stopping_patience == 2


def test_matryoshka_dims_per_step_reaches_the_loss(tiny_model, tmp_path, registry, trainer_spy):
    run_pipeline(small_run(tiny_model, tmp_path, loss={"name": "matryoshka", "options": {"n_dims_per_step": 1}}),
                 registry, quiet=True)
    loss = trainer_spy["trainers"][0].loss
    assert loss.n_dims_per_step == 1 and loss.matryoshka_dims == (32, 16, 8)
    assert RunConfig.from_file(tmp_path / "runs" / "s" / "config.toml").evaluation.dims == [32, 16, 8]


def test_the_best_checkpoint_is_the_model_saved(tiny_model, tmp_path, registry):
    """load_best_model_at_end: the run's model has the weights of the checkpoint with the lowest
    eval loss, not those of the last step."""
    import torch
    from sentence_transformers import SentenceTransformer

    config = small_run(tiny_model, tmp_path, training={"max_steps": 6, "eval_steps": 2, "load_best_model_at_end": True,
                                                       "learning_rate": 5e-3, "save_total_limit": 3})
    run_pipeline(config, registry, quiet=True)
    run = tmp_path / "runs" / "s"
    state = json.loads(sorted((run / "checkpoints").glob("checkpoint-*/trainer_state.json"))[-1].read_text())
    best = Path(state["best_model_checkpoint"])
    saved = SentenceTransformer(str(run / "model"), device="cpu").state_dict()
    expected = SentenceTransformer(str(best), device="cpu").state_dict()
    assert all(torch.equal(saved[k], expected[k]) for k in expected)
    last = SentenceTransformer(str(run / "checkpoints" / "checkpoint-6"), device="cpu").state_dict()
    assert best.name == "checkpoint-6" or not all(torch.equal(saved[k], last[k]) for k in last)


# -- the data side --------------------------------------------------------------------------------
def test_a_score_range_not_starting_at_zero_maps_onto_zero_to_five(tmp_path, registry):
    from embedtune_core.data.loading import load_data

    path = tmp_path / "sts.jsonl"
    path.write_text("".join(json.dumps({"sentence1": f"a{i}", "sentence2": f"b{i}", "score": s}) + "\n"
                            for i, s in enumerate([1, 2, 5])), encoding="utf-8")
    bundle = load_data(registry, str(path), dataset_type="sts", options={"score_range": [1, 5]})
    assert bundle.train["score"] == pytest.approx([0.0, 1.25, 5.0])


def test_a_split_always_leaves_a_training_anchor():
    from datasets import Dataset

    from embedtune_core.data.loading import split_train_eval
    from embedtune_core.errors import DataError

    rows = Dataset.from_dict({"anchor": ["a", "a", "b"], "positive": ["x", "y", "z"]})
    train, held = split_train_eval(rows, 0.9, seed=1)
    assert len(set(train["anchor"])) == 1 and not set(train["anchor"]) & set(held["anchor"])
    with pytest.raises(DataError, match="cannot split 1 distinct anchor"):
        split_train_eval(Dataset.from_dict({"anchor": ["a", "A "], "positive": ["x", "y"]}), 0.5)


def test_a_written_run_ranks_by_score_then_id():
    from embedtune_core.ranking.trec import format_run

    lines = format_run({"q": {"d1": 0.2, "d2": 0.9, "d3": 0.2}}).splitlines()
    assert [line.split()[2:4] for line in lines] == [["d2", "1"], ["d3", "2"], ["d1", "3"]]


def test_the_relative_margin_of_a_negative_positive_score():
    """score <= positive - |positive| * margin: for a positive of -0.5 and a margin of 0.1 the
    threshold is -0.55 (positive * (1 - margin) would wrongly give -0.45)."""
    import numpy as np

    from embedtune_core.mining.guards import GuardOptions, failed_guards

    values = np.array([[-0.52, -0.6, -0.46]])
    (reason, mask), = failed_guards(values, np.array([[-0.5]]), GuardOptions(relative_margin=0.1))
    assert reason == "relative_margin" and mask.tolist() == [[True, False, True]]
    assert failed_guards(values, np.array([[-0.5]]), GuardOptions(relative_margin=None)) == []


def test_the_anchors_own_text_is_never_its_negative(registry):
    from datasets import Dataset

    from embedtune_core.mining import run_miner

    rows = Dataset.from_dict({"anchor": ["Fever."], "positive": ["high body temperature"]})
    corpus = ["the fever", "FEVER", "a cough", "a rash", "joint pain"]

    def encoder(texts):  # the anchor's own text scores highest of all
        import numpy as np

        return np.array([[1.0, 0.0] if "fever" in t.lower() else [0.6, 0.8] for t in texts])

    result = run_miner(registry, "dense", rows, "pairs", num_negatives=2, options={"relative_margin": None},
                       encoder=encoder, corpus=corpus)
    row = result.dataset[0]
    assert "FEVER" not in (row["negative_1"], row["negative_2"])
    assert result.stats.extra["dropped"]["same_text"] == 1  # "FEVER"; "the fever" is another text
