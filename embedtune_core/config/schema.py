"""Run configuration: frozen attrs classes, loaded from TOML or YAML plus ``-s key=value``.

Files are parsed (``tomllib`` / ``yaml.safe_load``), never evaluated. Every key is checked: an
unknown key suggests the closest one, a bad value names the key and what is allowed.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any, Mapping

import attrs

from embedtune_core.errors import ConfigError, closest
from embedtune_core.embedding.models import DEFAULT_MODEL
from embedtune_core.types import DATASET_TYPES


def opt(default: Any, kind: Any, help: str, *, choices: tuple | None = None, minimum: float | None = None,
        maximum: float | None = None) -> Any:
    """A config field: its default, value kind, help text and allowed values."""
    meta = {"kind": kind, "help": help, "choices": choices, "minimum": minimum, "maximum": maximum}
    if isinstance(default, (list, dict)):
        value = default
        return attrs.field(factory=lambda: type(value)(value), metadata=meta)
    return attrs.field(default=default, metadata=meta)


OPTIONAL = "optional"  # marker: kind may also be None


@attrs.frozen
class ModelConfig:
    name: str = opt(DEFAULT_MODEL, str, "model to tune: hub name, local folder, or the bundled default")
    max_seq_length: int | None = opt(None, (int, OPTIONAL), "truncate texts to this many tokens (model default when unset)", minimum=8)
    trust_remote_code: bool = opt(False, bool, "allow model code from the hub to run (off unless you turn it on)")
    device: str | None = opt(None, (str, OPTIONAL), "cpu, cuda, cuda:1, mps (auto when unset)")


@attrs.frozen
class DataConfig:
    source: str = opt("builtin:hpo-lay", str, "file, folder, builtin:NAME (see `embedtune data list`) or hub dataset name")
    type: str | None = opt(None, (str, OPTIONAL), "dataset type (the bundled set's own type when unset)", choices=tuple(DATASET_TYPES))
    reader: str | None = opt(None, (str, OPTIONAL), "dataset reader component (the type's reader when unset)")
    columns: dict = opt({}, dict, "map the type's column names to your file's, e.g. {anchor = 'question'}")
    options: dict = opt({}, dict, "extra options for the reader")
    eval_source: str | None = opt(None, (str, OPTIONAL), "held-out data (split from the training data when unset)")
    eval_fraction: float = opt(0.1, float, "fraction of anchors/queries held out when there is no eval split", minimum=0.0, maximum=0.9)
    limit: int | None = opt(None, (int, OPTIONAL), "use only the first N training examples", minimum=1)
    eval_limit: int | None = opt(None, (int, OPTIONAL), "use only the first N evaluation queries/rows", minimum=1)


@attrs.frozen
class MiningConfig:
    miner: str | None = opt(None, (str, OPTIONAL), "hard-negative miner (no mining when unset)")
    num_negatives: int = opt(1, int, "negatives per anchor", minimum=1)
    output: str = opt("hard-negatives", str, "dataset shape written", choices=("hard-negatives", "triplets"))
    model: str | None = opt(None, (str, OPTIONAL), "model used by dense miners (the model being tuned when unset)")
    options: dict = opt({}, dict, "miner options, e.g. range_min, relative_margin, max_score")


@attrs.frozen
class LossConfig:
    name: str | None = opt(None, (str, OPTIONAL), "loss component (the guide's choice for the dataset type when unset)")
    options: dict = opt({}, dict, "loss options, e.g. scale, margin, mini_batch_size, dims, base")


@attrs.frozen
class TrainingConfig:
    epochs: float = opt(1.0, float, "passes over the data (1 for small sets)", minimum=0.0)
    max_steps: int | None = opt(None, (int, OPTIONAL), "stop after this many steps (overrides epochs)", minimum=1)
    batch_size: int = opt(32, int, "per-device batch; in-batch negatives = batch - 1, so as large as memory allows", minimum=1)
    learning_rate: float = opt(2e-5, float, "peak learning rate", minimum=0.0)
    warmup_ratio: float = opt(0.1, float, "fraction of steps spent warming up (0.15-0.2 if loss oscillates early)", minimum=0.0, maximum=1.0)
    weight_decay: float = opt(0.01, float, "AdamW weight decay", minimum=0.0)
    lr_scheduler: str = opt("linear", str, "learning-rate schedule", choices=("linear", "cosine", "constant", "constant_with_warmup"))
    gradient_accumulation_steps: int = opt(1, int, "accumulate gradients over N batches", minimum=1)
    max_grad_norm: float = opt(1.0, float, "gradient clipping norm", minimum=0.0)
    seed: int = opt(42, int, "random seed")
    precision: str = opt("auto", str, "auto (bf16/fp16 on a GPU that has it), fp32, fp16 or bf16", choices=("auto", "fp32", "fp16", "bf16"))
    gradient_checkpointing: bool = opt(False, bool, "trade compute for memory")
    batch_sampler: str = opt("auto", str, "auto: no_duplicates for in-batch-negative losses; sequential keeps the data's order (curriculum)", choices=("auto", "batch_sampler", "no_duplicates", "sequential"))
    eval_steps: int | None = opt(None, (int, OPTIONAL), "evaluate on the eval split every N steps (never when unset)", minimum=1)
    save_steps: int | None = opt(None, (int, OPTIONAL), "checkpoint every N steps (once an epoch when unset)", minimum=1)
    save_total_limit: int = opt(2, int, "checkpoints kept", minimum=1)
    load_best_model_at_end: bool = opt(False, bool, "keep the best checkpoint by eval loss (needs eval_steps)")
    early_stopping_patience: int | None = opt(None, (int, OPTIONAL), "stop after N evaluations without improvement", minimum=1)
    logging_steps: int = opt(10, int, "log the loss every N steps", minimum=1)
    callbacks: list = opt(["metrics-log"], list, "callback components to attach")
    callback_options: dict = opt({}, dict, "options per callback name")
    report_to: list = opt([], list, "Trainer integrations: tensorboard, wandb (when installed)")
    dataloader_workers: int = opt(0, int, "data loader worker processes", minimum=0)


DEFAULT_METRICS = ["ndcg@10", "mrr@10", "map@100", "recall@10", "precision@10", "f1@10"]


@attrs.frozen
class EvaluationConfig:
    metrics: list = opt(list(DEFAULT_METRICS), list, "metrics as NAME@K")
    dims: list = opt([], list, "Matryoshka dims to evaluate (the Matryoshka loss's dims when unset)")
    before: bool = opt(True, bool, "evaluate the base model before training")
    after: bool = opt(True, bool, "evaluate the tuned model after training")
    batch_size: int = opt(128, int, "encoding batch size", minimum=1)
    all_queries: bool = opt(False, bool, "count every judged query, as trec_eval -c (queries in both run and qrels when off)")


@attrs.frozen
class RunConfig:
    name: str = opt("run", str, "run name; the run folder is output_dir/name")
    output_dir: str = opt("runs", str, "folder that holds run folders")
    model: ModelConfig = attrs.field(factory=ModelConfig)
    data: DataConfig = attrs.field(factory=DataConfig)
    mining: MiningConfig = attrs.field(factory=MiningConfig)
    loss: LossConfig = attrs.field(factory=LossConfig)
    training: TrainingConfig = attrs.field(factory=TrainingConfig)
    evaluation: EvaluationConfig = attrs.field(factory=EvaluationConfig)
    steps: list = opt(["mine", "evaluate-before", "train", "evaluate-after"], list, "pipeline steps to run, in order")

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name

    # -- constructors ---------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> "RunConfig":
        return _build(cls, data, prefix="", source=source)

    @classmethod
    def from_file(cls, path: str | os.PathLike, overrides: list[str] | tuple[str, ...] = ()) -> "RunConfig":
        from embedtune_core.config.files import apply_overrides, load_file

        data = load_file(path)
        apply_overrides(data, overrides)
        return cls.from_dict(data, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


STEP_NAMES = ("mine", "evaluate-before", "train", "evaluate-after")
SECTIONS = {"model": ModelConfig, "data": DataConfig, "mining": MiningConfig, "loss": LossConfig,
            "training": TrainingConfig, "evaluation": EvaluationConfig}


TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0"})


def parse_flag(value: Any) -> bool:
    """A boolean given as a bool or as true/false, yes/no, on/off, 1/0 (any case); ValueError
    otherwise."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _kind_name(kind: Any) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string", list: "a list",
             dict: "a table"}
    words = [names.get(k, str(k)) for k in kinds if k is not OPTIONAL]
    if OPTIONAL in kinds:
        words.append("unset")
    return " or ".join(words)


def _coerce(value: Any, field: attrs.Attribute, key: str, source: str | None) -> Any:
    meta = field.metadata
    kinds = meta["kind"] if isinstance(meta["kind"], tuple) else (meta["kind"],)
    if value is None or (isinstance(value, str) and value.lower() in {"none", "null"} and OPTIONAL in kinds and str not in kinds):
        if OPTIONAL in kinds:
            return None
        raise ConfigError(f"must be {_kind_name(meta['kind'])}, not empty", file=source, key=key)
    if isinstance(value, str) and value.lower() in {"none", "null"} and OPTIONAL in kinds:
        return None
    base = next(k for k in kinds if k is not OPTIONAL)
    ok = False
    if base is bool:
        ok = isinstance(value, bool)
    elif base is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        if isinstance(value, float) and value.is_integer():
            value, ok = int(value), True
    elif base is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok:
            value = float(value)
            if not math.isfinite(value):
                raise ConfigError(f"must be a finite number, got {value}", file=source, key=key)
    elif base is str:
        ok = isinstance(value, str)
    elif base is list:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [v.strip() for v in str(value).split(",") if v.strip()] if isinstance(value, str) else [value]
        ok = isinstance(value, list)
    elif base is dict:
        ok = isinstance(value, dict)
    if not ok:
        raise ConfigError(
            f"must be {_kind_name(meta['kind'])}, got {value!r}", file=source, key=key
        )
    choices = meta.get("choices")
    if choices and value not in choices:
        guess = closest(str(value), [str(c) for c in choices])
        raise ConfigError(
            f"'{value}' is not allowed",
            file=source,
            key=key,
            hint=(f"did you mean '{guess}'? " if guess else "") + "allowed: " + ", ".join(map(str, choices)),
        )
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if meta.get("minimum") is not None and value < meta["minimum"]:
            raise ConfigError(f"must be at least {meta['minimum']}, got {value}", file=source, key=key)
        if meta.get("maximum") is not None and value > meta["maximum"]:
            raise ConfigError(f"must be at most {meta['maximum']}, got {value}", file=source, key=key)
    return value


def _build(cls: type, data: Mapping[str, Any], *, prefix: str, source: str | None) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"must be a table, got {data!r}", file=source, key=prefix.rstrip(".") or None)
    fields = {f.name: f for f in attrs.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if key not in fields:
            guess = closest(str(key), list(fields))
            hint = (f"did you mean '{prefix}{guess}'? " if guess else "") + "known keys: " + ", ".join(
                prefix + name for name in fields
            )
            raise ConfigError("unknown config key", file=source, key=full, hint=hint)
        field = fields[key]
        if key in SECTIONS and cls is RunConfig:
            kwargs[key] = _build(SECTIONS[key], value if value is not None else {}, prefix=f"{full}.", source=source)
        else:
            kwargs[key] = _coerce(value, field, full, source)
    config = cls(**kwargs)
    if cls is RunConfig:
        _check_run(config, source)
    return config


def _check_run(config: RunConfig, source: str | None) -> None:
    for step in config.steps:
        if step not in STEP_NAMES:
            guess = closest(str(step), STEP_NAMES)
            raise ConfigError(
                f"unknown step '{step}'", file=source, key="steps",
                hint=(f"did you mean '{guess}'? " if guess else "") + "steps: " + ", ".join(STEP_NAMES),
            )
    for metric in config.evaluation.metrics:
        if not isinstance(metric, str) or not metric.strip():
            raise ConfigError(f"metric {metric!r} must be NAME@K", file=source, key="evaluation.metrics")
    for dim in config.evaluation.dims:
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            raise ConfigError(f"dim {dim!r} must be a positive integer", file=source, key="evaluation.dims")
    if config.training.load_best_model_at_end and not config.training.eval_steps:
        raise ConfigError(
            "load_best_model_at_end needs evaluation during training",
            file=source, key="training.load_best_model_at_end", hint="set training.eval_steps too",
        )
    name = config.name
    if not name or "/" in name or "\\" in name or name in {".", ".."}:
        raise ConfigError(f"run name {name!r} must be a plain folder name", file=source, key="name")


def describe_fields(cls: type = RunConfig, prefix: str = "") -> list[dict[str, Any]]:
    """Every config key with its default and help, for docs and ``embedtune init``."""
    rows = []
    for field in attrs.fields(cls):
        if field.name in SECTIONS and cls is RunConfig:
            rows.extend(describe_fields(SECTIONS[field.name], prefix=f"{field.name}."))
            continue
        default = field.default.factory() if isinstance(field.default, attrs.Factory) else field.default
        rows.append({
            "key": prefix + field.name,
            "default": default,
            "help": field.metadata.get("help", ""),
            "choices": field.metadata.get("choices"),
        })
    return rows
