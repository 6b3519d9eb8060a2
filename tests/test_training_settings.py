"""Every training setting embedtune decides, read from what the Trainer is given.

``train()`` runs up to the Trainer with sentence-transformers' ``SentenceTransformerTrainer`` and
``SentenceTransformerTrainingArguments`` replaced by recorders, so each test sees the exact
arguments and callbacks a real run would hand over (precision with a CUDA GPU faked, the
automatic learning rate around its threshold, the batch sampler, early stopping) without
training. Resume is checked on real short trainings."""

import json
import math
import types

import pytest
import sentence_transformers
import torch

from embedtune_core.config.schema import TrainingConfig
from embedtune_core.training.losses import LossTraits
from embedtune_core.training.trainer import TrainSetup, train
from training_samples import dataset, setup

IN_BATCH = LossTraits(accepts=None, in_batch_negatives=True, input="rows", constant_memory=False)
PLAIN = LossTraits(accepts=None, in_batch_negatives=False, input="rows", constant_memory=False)


class Handed(Exception):
    """Raised by the recording Trainer: what train() handed it."""

    def __init__(self, args, callbacks):
        super().__init__("handed over")
        self.arguments, self.callbacks = args, callbacks


class FakeModel:
    """What train() reads from a model before the Trainer: its device and its hidden size."""

    def __init__(self, device="cpu", hidden=384):
        self.device = device
        self.hidden = hidden

    def __getitem__(self, index):
        return types.SimpleNamespace(auto_model=types.SimpleNamespace(config=types.SimpleNamespace(hidden_size=self.hidden)))


@pytest.fixture
def handed(monkeypatch, tmp_path):
    """``handed(config, rows=..., ...)`` -> (the arguments as keywords, the callbacks)."""

    def record_arguments(**kwargs):
        return types.SimpleNamespace(**kwargs)

    def record_trainer(*, model, args, train_dataset, eval_dataset, loss, callbacks, evaluator=None):
        raise Handed(args, callbacks)

    monkeypatch.setattr(sentence_transformers, "SentenceTransformerTrainingArguments", record_arguments)
    monkeypatch.setattr(sentence_transformers, "SentenceTransformerTrainer", record_trainer)

    def run(config, *, rows=8, traits=IN_BATCH, ordered=False, device="cpu", hidden=384, eval_rows=0, callbacks=()):
        data = dataset("pairs", repeat=math.ceil(rows / 8)).select(range(rows))
        eval_data = dataset("pairs").select(range(eval_rows)) if eval_rows else None
        with pytest.raises(Handed) as caught:
            train(FakeModel(device, hidden), data, torch.nn.Identity(), TrainSetup(config=config, traits=traits,
                  ordered=ordered, callbacks=tuple(callbacks)), tmp_path / "run", eval_dataset=eval_data, quiet=True)
        return vars(caught.value.arguments), caught.value.callbacks

    return run


@pytest.fixture
def cuda(monkeypatch):
    """A CUDA GPU (``bf16`` says whether it supports bf16)."""

    def fake(bf16=True):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)

    return fake


@pytest.mark.parametrize("precision, device, bf16_supported, expected", [
    ("bf16", "cuda:0", True, (False, True)),
    ("fp16", "cuda:0", True, (True, False)),
    ("auto", "cuda:0", True, (False, True)),
    ("auto", "cuda", False, (True, False)),
    ("fp32", "cuda:0", True, (False, False)),
    ("auto", "cpu", True, (False, False)),  # the model is on the CPU: no mixed precision there
])
def test_precision_reaches_the_trainer(handed, cuda, precision, device, bf16_supported, expected):
    cuda(bf16_supported)
    args, _ = handed(TrainingConfig(precision=precision, learning_rate=1e-4), device=device)
    assert (args["fp16"], args["bf16"]) == expected
    assert args.get("use_cpu", False) == (device == "cpu")


def test_precision_without_a_gpu(monkeypatch):
    from embedtune_core.errors import ConfigError
    from embedtune_core.training.arguments import resolve_precision

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("auto", None) == "bf16" and resolve_precision("auto", "mps") == "fp32"
    with pytest.raises(ConfigError) as caught:
        resolve_precision("bf16", "cpu")  # a GPU in the machine, the model on the CPU
    assert (caught.value.message, caught.value.key, caught.value.hint) == (
        "precision 'bf16' needs a CUDA GPU", "training.precision", "use auto or fp32 on this machine")
    assert resolve_precision("fp32", "cuda") == "fp32" and resolve_precision("fp16", "cuda") == "fp16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_precision("fp16", "cuda") == "fp16"
    with pytest.raises(ConfigError) as caught:
        resolve_precision("bf16", "cuda")
    assert (caught.value.message, caught.value.key, caught.value.hint) == (
        "this GPU does not support bf16", "training.precision", "use fp16 or auto")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_precision("fp32", None) == "fp32"


@pytest.mark.parametrize("rows, accumulation, epochs, expected", [
    (12_000, 3, 1, 2e-4),  # batch 4 x 3 = 12 rows a step: 1,000 steps, still a short run
    (12_001, 3, 1, 5e-5),  # 1,001 steps
    (6_000, 3, 2, 2e-4),  # 500 steps an epoch, two epochs
    (6_001, 3, 2, 5e-5),  # 501 x 2
    (4_004, 1, 1, 5e-5),  # without the accumulation: 1,001 steps
])
def test_the_automatic_learning_rate_counts_optimizer_steps_as_the_trainer(handed, rows, accumulation, epochs, expected):
    config = TrainingConfig(batch_size=4, gradient_accumulation_steps=accumulation, epochs=epochs)
    args, _ = handed(config, rows=rows)
    assert args["learning_rate"] == expected
    assert args["gradient_accumulation_steps"] == accumulation and args["num_train_epochs"] == epochs
    steps = math.ceil(math.ceil(math.ceil(rows / 4) / accumulation) * epochs)  # transformers' own count
    assert (steps <= 1000) == (expected == 2e-4)


def test_the_automatic_learning_rate_counts_the_rows_every_process_takes(handed, monkeypatch):
    """Two processes take 2 x 4 rows a step: 8,000 rows are 1,000 steps (a short run), not 2,000."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert handed(TrainingConfig(batch_size=4), rows=8_000)[0]["learning_rate"] == 2e-4
    assert handed(TrainingConfig(batch_size=4), rows=8_001)[0]["learning_rate"] == 5e-5


def test_the_automatic_learning_rate_by_model_size_and_max_steps(handed):
    assert handed(TrainingConfig(max_steps=1000), rows=100_000, hidden=384)[0]["learning_rate"] == 2e-4
    assert handed(TrainingConfig(max_steps=1001), rows=16, hidden=384)[0]["learning_rate"] == 5e-5
    assert handed(TrainingConfig(), rows=16, hidden=768)[0]["learning_rate"] == 2e-5
    assert handed(TrainingConfig(), rows=16, hidden=767)[0]["learning_rate"] == 2e-4
    assert handed(TrainingConfig(learning_rate=3e-5), rows=16)[0]["learning_rate"] == 3e-5


def test_the_sampler_follows_the_loss_and_the_data_order(handed):
    from sentence_transformers.base.sampler import BatchSamplers

    from embedtune_core.training.samplers import sequential_batch_sampler

    config = TrainingConfig(learning_rate=1e-4)
    assert handed(config, traits=IN_BATCH)[0]["batch_sampler"] == BatchSamplers.NO_DUPLICATES
    assert handed(config, traits=PLAIN)[0]["batch_sampler"] == BatchSamplers.BATCH_SAMPLER
    assert handed(config, traits=IN_BATCH, ordered=True)[0]["batch_sampler"] is sequential_batch_sampler
    fixed = TrainingConfig(learning_rate=1e-4, batch_sampler="batch_sampler")
    assert handed(fixed, traits=IN_BATCH, ordered=True)[0]["batch_sampler"] == BatchSamplers.BATCH_SAMPLER


def test_early_stopping_and_evaluation_reach_the_trainer(handed):
    from transformers import EarlyStoppingCallback

    config = TrainingConfig(learning_rate=1e-4, eval_steps=5, early_stopping_patience=3, load_best_model_at_end=True)
    args, callbacks = handed(config, eval_rows=4)
    stopping = [c for c in callbacks if isinstance(c, EarlyStoppingCallback)]
    assert len(stopping) == 1 and stopping[0].early_stopping_patience == 3
    assert args["eval_strategy"] == "steps" and args["eval_steps"] == 5 and args["save_steps"] == 5
    assert args["load_best_model_at_end"] and args["metric_for_best_model"] == "eval_loss"
    assert args["greater_is_better"] is False
    # a callback of the user's own is kept, and no second one is added
    mine = EarlyStoppingCallback(early_stopping_patience=7)
    _, callbacks = handed(config, eval_rows=4, callbacks=[mine])
    assert [c for c in callbacks if isinstance(c, EarlyStoppingCallback)] == [mine]
    # without evaluation: no evaluation, nothing to stop on
    args, callbacks = handed(TrainingConfig(learning_rate=1e-4, eval_steps=5))
    assert args["eval_strategy"] == "no" and args["eval_steps"] is None and args["metric_for_best_model"] is None
    assert not any(isinstance(c, EarlyStoppingCallback) for c in callbacks)


def test_every_setting_and_its_default_reaches_the_trainer(handed, monkeypatch):
    config = TrainingConfig(epochs=2, batch_size=6, learning_rate=3e-5, warmup_ratio=0.25, weight_decay=0.02,
                            lr_scheduler="cosine", max_grad_norm=0.7, seed=11, save_total_limit=2, logging_steps=3,
                            dataloader_workers=1, save_steps=9)
    args, _ = handed(config)
    assert (args["num_train_epochs"], args["max_steps"]) == (2, -1)
    assert args["per_device_train_batch_size"] == args["per_device_eval_batch_size"] == 6
    assert (args["weight_decay"], args["lr_scheduler_type"], args["max_grad_norm"], args["seed"]) == (0.02, "cosine", 0.7, 11)
    assert args["warmup_steps"] == 0.25 and "warmup_ratio" not in args  # transformers 5: a ratio below 1
    assert (args["save_strategy"], args["save_steps"], args["save_total_limit"]) == ("steps", 9, 2)
    assert (args["logging_steps"], args["dataloader_num_workers"], args["report_to"]) == (3, 1, "none")
    assert args["output_dir"].endswith("checkpoints") and "dataloader_drop_last" not in args
    defaults, _ = handed(TrainingConfig(learning_rate=1e-4))
    assert defaults["save_strategy"] == "epoch" and defaults["max_steps"] == -1 and defaults["save_steps"] == 500
    assert defaults["greater_is_better"] is None and defaults["eval_strategy"] == "no"
    monkeypatch.setenv("WORLD_SIZE", "2")
    whole, _ = handed(TrainingConfig(learning_rate=1e-4, warmup_ratio=1.0))
    assert whole["dataloader_drop_last"] is True
    assert whole["warmup_steps"] == 0.999999  # 1 would mean one step to transformers 5


# -- resume -------------------------------------------------------------------------------------
def _quick(**overrides):
    values = dict(batch_size=2, learning_rate=1e-3, warmup_ratio=0.0, logging_steps=1, lr_scheduler="constant")
    values.update(overrides)
    return TrainingConfig(**values)


def test_resume_from_a_checkpoint_before_the_last_accumulated_step_trains_it(registry, tiny_model, tmp_path):
    """10 rows at batch 2 are 5 batches; with 2 batches a step the Trainer takes 3 steps (the last
    one a single batch). A run stopped at its checkpoint of step 2 has one step left."""
    import shutil

    from sentence_transformers import SentenceTransformer

    from embedtune_core.training.checkpoints import newest_checkpoint
    from embedtune_core.training.losses import build_loss

    config = _quick(gradient_accumulation_steps=2, save_steps=2)
    torch.manual_seed(0)
    model = SentenceTransformer(tiny_model, device="cpu")
    data = dataset("pairs", repeat=2).select(range(10))
    first = train(model, data, build_loss(registry, "mnrl", model, {}), setup(registry, config), tmp_path / "run",
                  quiet=True)
    assert first.global_step == 3
    for folder in (tmp_path / "run" / "checkpoints").iterdir():
        if folder.name != "checkpoint-2":
            shutil.rmtree(folder)  # as if killed after the checkpoint of step 2
    assert newest_checkpoint(tmp_path / "run").name == "checkpoint-2"
    torch.manual_seed(0)
    again = SentenceTransformer(tiny_model, device="cpu")
    resumed = train(again, data, build_loss(registry, "mnrl", again, {}), setup(registry, config), tmp_path / "run",
                    resume=True, quiet=True)
    assert resumed.global_step == 3 and [r["step"] for r in resumed.log_history if "loss" in r][-1] == 3


def test_resuming_a_finished_run_leaves_its_training_record_and_log(registry, tiny_model, tmp_path):
    from embedtune_core.pipeline.runner import run_pipeline
    from tests.test_pipeline import small_config

    config = small_config(tiny_model, tmp_path, steps=["train"], mining={"miner": None},
                          training={"max_steps": 3, "batch_size": 8, "learning_rate": 1e-3, "save_steps": 3,
                                    "logging_steps": 1})
    run_pipeline(config, registry, quiet=True)
    folder = tmp_path / "runs" / "p"
    before = json.loads((folder / "metrics.json").read_text())["training"]
    log = (folder / "training_log.jsonl").read_text()
    weights = (folder / "model" / "model.safetensors").read_bytes()
    run_pipeline(config, registry, resume=True, quiet=True)
    after = json.loads((folder / "metrics.json").read_text())["training"]
    assert after == before and before["steps"] == 3 and before["loss"] is not None
    assert (folder / "training_log.jsonl").read_text() == log
    assert (folder / "model" / "model.safetensors").read_bytes() == weights


# -- the advice's numbers -----------------------------------------------------------------------
MINILM = {"hidden": 384, "layers": 6, "heads": 12, "parameters": 22_337_280}


def test_model_shape_reads_config_json(tmp_path):
    from embedtune_core.training.advice import model_shape

    (tmp_path / "m" / "0_Transformer").mkdir(parents=True)
    config = {"hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12, "vocab_size": 30522,
              "intermediate_size": 1536}
    (tmp_path / "m" / "0_Transformer" / "config.json").write_text(json.dumps(config))
    assert model_shape(str(tmp_path / "m")) == MINILM  # 30522 x 384 + 6 x (4 x 384^2 + 2 x 384 x 1536)
    (tmp_path / "m" / "config.json").write_text(json.dumps({"hidden_size": 64}))  # the folder's own first
    assert model_shape(str(tmp_path / "m")) == {"hidden": 64, "layers": 12, "heads": 12,
                                                "parameters": 30522 * 64 + 12 * (4 * 64 * 64 + 2 * 64 * 256)}
    (tmp_path / "n").mkdir()
    (tmp_path / "n" / "config.json").write_text("{broken")
    assert model_shape(str(tmp_path / "n")) == {} and model_shape(str(tmp_path / "none")) == {}


@pytest.mark.parametrize("seq_len, texts, memory, expected", [
    (128, 2, 11.45, 256),  # 258 fit: the power of two below
    (128, 2, 11.25, 128),  # 254 fit
    (128, 2, 11.3065, 128),  # 255.6 fit (256.4 if a GB were 1025^3 bytes)
    (128, 3, 16, 128),
    (256, 2, 8, 64),
    (128, 2, 0.52, 1),
    (128, 2, 0.5, 0),  # the weights fit, not one example
    (128, 2, 0.4, 0),  # not even the weights
])
def test_max_batch_for_memory_at_its_boundaries(seq_len, texts, memory, expected):
    from embedtune_core.training.advice import max_batch_for_memory

    assert max_batch_for_memory(MINILM, seq_len, texts, memory) == expected


@pytest.mark.parametrize("size, batch, in_batch, expected", [
    (10_000, 1024, True, (256, 1, "r; capped at 256 so 10,000 examples still make at least 30 optimizer steps", 0)),
    (2_000, 64, True, (64, 1, "r", 0)),  # 31 steps: no cap
    (1_920, 64, True, (64, 1, "r", 0)),  # exactly 30 steps
    (1_919, 64, True, (32, 1, "r; capped at 32 so 1,919 examples still make at least 30 optimizer steps", 0)),
    (80, 32, True, (16, 6, "the floor of 15 in-batch negatives per example", 1)),
    (10, 32, True, (10, 10, "all 10 examples: fewer than the floor of 15 in-batch negatives", 1)),
    (16, 32, True, (16, 10, "the floor of 15 in-batch negatives per example", 1)),
    (500, 32, True, (16, 1, "r; capped at 16 so 500 examples still make at least 30 optimizer steps", 0)),
    (1_000, 8, True, (16, 1, "the floor of 15 in-batch negatives per example", 0)),  # memory allows 8: 63 steps at 16
    (80, 32, False, (2, 1, "r; capped at 2 so 80 examples still make at least 30 optimizer steps", 0)),
])
def test_plan_batches(size, batch, in_batch, expected):
    from embedtune_core.training.advice import plan_batches

    plan = plan_batches(size, batch, "r", in_batch_negatives=in_batch)
    assert (plan["batch_size"], plan["epochs"], plan["reason"], len(plan["warnings"])) == expected
    if plan["warnings"]:
        per_epoch = math.ceil(size / plan["batch_size"])
        assert plan["warnings"][0] == (
            f"{size:,} examples are too few for both 15+ in-batch negatives and 30 optimizer steps per epoch "
            f"(batch {plan['batch_size']} gives {per_epoch}); train {plan['epochs']} epochs instead, or better, add data")


def test_planned_steps_and_the_rate_without_a_row_count():
    from embedtune_core.training.advice import auto_learning_rate, decide_learning_rate, planned_steps

    assert planned_steps(10, 4, epochs=1.5) == 5  # 3 batches an epoch
    assert planned_steps(1000, 4, epochs=1, accumulation=3, processes=2) == 42
    assert planned_steps(0, 4, epochs=1) == 1 and planned_steps(5, 0, epochs=1) == 5
    assert auto_learning_rate(384, None) == 5e-5 and auto_learning_rate(767, 1000) == 2e-4
    assert decide_learning_rate(TrainingConfig(), hidden=384, rows=None).learning_rate == 5e-5
    assert decide_learning_rate(TrainingConfig(), hidden=None, rows=10).learning_rate == 2e-5


# -- checks of settings that depend on each other -----------------------------------------------
def test_settings_that_need_evaluation_or_a_package_are_refused_with_their_key(monkeypatch):
    from embedtune_core.errors import ConfigError
    from embedtune_core.training import arguments
    from embedtune_core.training.arguments import check_training_config

    def refused(config, has_eval=True):
        with pytest.raises(ConfigError) as caught:
            check_training_config(config, has_eval=has_eval)
        return caught.value.message, caught.value.key, caught.value.hint

    assert refused(TrainingConfig(eval_steps=5), has_eval=False) == (
        "training.eval_steps needs evaluation data", "training.eval_steps",
        "give held-out data (data.eval_source or data.eval_fraction > 0) or unset eval_steps")
    assert refused(TrainingConfig(load_best_model_at_end=True)) == (
        "load_best_model_at_end needs evaluation during training", "training.load_best_model_at_end",
        "set training.eval_steps or training.validation_fraction too")
    assert refused(TrainingConfig(early_stopping_patience=2)) == (
        "early stopping needs evaluation during training", "training.early_stopping_patience",
        "set training.eval_steps or training.validation_fraction too")
    assert refused(TrainingConfig(eval_steps=4, save_steps=6, load_best_model_at_end=True)) == (
        "with load_best_model_at_end, save_steps (6) must be a multiple of eval_steps (4)", "training.save_steps",
        "e.g. save_steps = 4")
    check_training_config(TrainingConfig(eval_steps=4, save_steps=8, load_best_model_at_end=True), has_eval=True)
    check_training_config(TrainingConfig(eval_steps=4, load_best_model_at_end=True), has_eval=True)
    assert refused(TrainingConfig(report_to=["mlflow"])) == (
        "cannot report to 'mlflow'", "training.report_to", "use one of: tensorboard, wandb")
    monkeypatch.setattr(arguments, "missing_report_package", lambda target: {"wandb": "wandb"}.get(target))
    assert refused(TrainingConfig(report_to=["WandB "])) == (
        "reporting to wandb needs the 'wandb' package, which is not installed", "training.report_to",
        "pip install wandb")
    assert arguments.check_report_to(" TensorBoard") == "tensorboard"


def test_which_package_reporting_needs(monkeypatch):
    import importlib.util

    from embedtune_core.training.arguments import missing_report_package

    installed = set()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object() if name in installed else None)
    assert missing_report_package("tensorboard") == "tensorboard" and missing_report_package("wandb") == "wandb"
    installed.add("tensorboardX")  # either of the two packages will do
    assert missing_report_package("tensorboard") is None


def test_arguments_refuse_undecided_settings_and_carry_the_rest(handed, tmp_path):
    from embedtune_core.training.arguments import training_arguments

    with pytest.raises(ValueError, match="^training_arguments needs a decided batch_sampler"):
        training_arguments(TrainingConfig(), tmp_path, has_eval=False)
    with pytest.raises(ValueError, match="^training_arguments needs a decided learning_rate"):
        training_arguments(TrainingConfig(batch_sampler="no_duplicates"), tmp_path, has_eval=False)
    args, _ = handed(TrainingConfig(learning_rate=1e-4, gradient_checkpointing=True, report_to=["WandB"]))
    assert args["activation_checkpointing"] is True and "gradient_checkpointing" not in args
    assert args["disable_tqdm"] is True and args["run_name"] == "run" and args["logging_first_step"] is True
    assert args["report_to"] == ["wandb"]
    config = TrainingConfig(learning_rate=1e-4, batch_sampler="batch_sampler")
    assert vars(training_arguments(config, tmp_path / "loud", has_eval=False))["disable_tqdm"] is False


def test_advise_on_a_data_summary(registry):
    """Every number and line ``advise`` gives for two summaries, worked out by hand: 5,000 pairs on
    a GPU with 11.25 GB (MiniLM: 128 examples fit at 128 tokens, the longest field's p95 being 100),
    and 500 STS pairs on CPU for a base-size model."""
    from embedtune_core.training.advice import advise

    stats = {"minimum": {"size": 5000, "required": 1000, "unit": "pairs"},
             "splits": {"train": {"tokens": {"anchor": {"count": 10, "p95": 40, "over_max_seq_length": 2},
                                             "positive": {"count": 10, "p95": 100},
                                             "negative": {"count": 0, "p95": 900}},  # no such texts: ignored
                                  "duplicate_records": 3},
                        "eval": {"duplicate_queries": 1}},
             "max_seq_length": 256, "leakage": {"shared_anchors": {"count": 2, "examples": ["x", "y"]},
                                                "none": {"count": 0}}}
    advice = advise(stats, dataset_type="pairs", model_name="m", shape=MINILM, memory_gb=11.25, device="gpu",
                    registry=registry)
    assert advice == {
        "dataset_type": "pairs", "examples": 5000, "model": "m", "loss": "mnrl", "batch_size": 128, "epochs": 1,
        "steps": 40, "warmup_ratio": 0.1, "learning_rate": 2e-4, "max_seq_length": 128,
        "notes": [
            "epochs: 1 — 5,000 examples is a small set; more epochs overfit it",
            "batch_size: 128 (the largest power of two that fits 11.25 GB at 128 tokens); each example then has 127 "
            "in-batch negatives — as large as memory allows",
            "loss: cached-mnrl reaches batches of 1,000+ in constant memory if the batch above is small",
            "warmup_ratio: 0.1 — 4 of 40 steps; use 0.15–0.2 if the loss oscillates early",
            "learning_rate: 0.0002 — small model (hidden size 384), short run (40 steps)",
            "loss: mnrl — the default for pairs data (in-batch negatives)",
            "max_seq_length: 128 covers 95% of the texts (p95 100 tokens)",
        ],
        "warnings": [
            "train: 3 duplicate records — remove them (duplicates in a batch become false negatives)",
            "train: 2 anchor text(s) longer than max_seq_length 256 are truncated",
            "eval: 1 duplicate queries — remove them (duplicates in a batch become false negatives)",
            "leakage (shared anchors): 2 anchor(s) on both sides, e.g. ['x']",
        ],
        "config": {"training": {"epochs": 1, "batch_size": 128, "warmup_ratio": 0.1, "learning_rate": 2e-4},
                   "loss": {"name": "mnrl"}, "model": {"max_seq_length": 128}},
    }
    small = {"minimum": {"size": 500, "required": 1000, "unit": "pairs"}, "splits": {"train": {}}}
    advice = advise(small, dataset_type="sts", model_name="m", shape={"hidden": 768}, memory_gb=None, device="cpu",
                    registry=registry)
    assert {k: advice[k] for k in ("loss", "batch_size", "epochs", "steps", "learning_rate", "max_seq_length")} == {
        "loss": "cosent", "batch_size": 16, "epochs": 1, "steps": 32, "learning_rate": 2e-5, "max_seq_length": 128}
    assert advice["notes"][1] == ("batch_size: 16 (on CPU, 32 keeps steps short; capped at 16 so 500 examples still "
                                  "make at least 30 optimizer steps)")
    assert advice["notes"][3:5] == ["learning_rate: 2e-05 — base-size model", "loss: cosent — the default for sts data"]
    assert advice["warnings"] == ["only 500 training pairs; the guide's minimum for sts is 1,000"]
    # a GPU with no memory size given: 64, and a longer field sets the length (up to the model's limit)
    long = {"minimum": {"size": 100_000, "required": 0, "unit": "pairs"}, "max_seq_length": None,
            "splits": {"train": {"tokens": {"anchor": {"count": 5, "p95": 700}}}}}
    advice = advise(long, dataset_type="triplets", model_name="m", shape=MINILM, memory_gb=None, device="gpu",
                    registry=registry)
    assert (advice["batch_size"], advice["max_seq_length"], advice["learning_rate"]) == (64, 512, 5e-5)
    assert advice["notes"][0] == ("epochs: 1 — 100,000 examples; add a second epoch only if the eval metric still "
                                  "rises at the end")
    assert "no memory size given (--memory-gb)" in advice["notes"][1]
