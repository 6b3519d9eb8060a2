"""Run configuration: frozen attrs classes, loaded from TOML or YAML plus ``-s key=value``.

Every field is declared like a component's option (:mod:`embedtune_core.plugins.options`): its
annotation is the type (with ``Range`` bounds and a help text), its default the default. One
function checks every value: an unknown key suggests the closest one, a bad value names the key
and what is allowed. The same declarations generate ``docs/configuration.md`` and the commented
``embedtune init`` starter.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

import attrs

from embedtune_core.embedding.models import DEFAULT_MODEL
from embedtune_core.errors import ConfigError, closest
from embedtune_core.plugins.options import MODEL, STRICT, Matches, OptionError, Range, class_specs, coerce
from embedtune_core.types import DATASET_TYPES

DatasetType = Literal[tuple(DATASET_TYPES)]  # type: ignore[valid-type]
DEVICE = Matches(r"cpu|mps|cuda(:[0-9]+)?", "cpu, cuda, cuda:N or mps")
DEFAULT_METRICS = ["ndcg@10", "mrr@10", "map@100", "recall@10", "precision@10", "f1@10"]


def _list(default: list) -> Any:
    return attrs.field(factory=lambda: list(default))


@attrs.frozen
class ModelConfig:
    name: Annotated[str, MODEL, "model to tune: hub name, local folder, or the bundled default"] = DEFAULT_MODEL
    max_seq_length: Annotated[int | None, Range(ge=8),
                              "truncate texts to this many tokens (model default when unset)"] = None
    trust_remote_code: Annotated[bool, STRICT, "allow model code from the hub to run (off unless you turn it on; "
                                               "only true or false, never text)"] = False
    device: Annotated[str | None, DEVICE, "cpu, cuda, cuda:1, mps (a GPU when there is one when unset)"] = None


@attrs.frozen
class DataConfig:
    source: Annotated[str, "file, folder, builtin:NAME (see `embedtune data list`) or hub dataset name"] = "builtin:hpo-lay"
    type: Annotated[DatasetType | None, "dataset type (the bundled set's own type, or recognised from the folder, "
                                        "when unset)"] = None
    reader: Annotated[str | None, "dataset reader component (the type's reader when unset)"] = None
    columns: Annotated[dict[str, str], "map the type's column names to your file's, e.g. {anchor = 'question'}"] = \
        attrs.field(factory=dict)
    options: Annotated[dict, "extra options for the reader"] = attrs.field(factory=dict)
    eval_source: Annotated[str | None, "held-out data (split from the training data when unset)"] = None
    eval_fraction: Annotated[float | None, Range(ge=0, le=0.9),
                             "fraction held out for evaluation: handed to a reader that makes its own split, else "
                             "the fraction of anchors/queries split off when training with no eval split (0.1 when "
                             "unset); the run records the one used"] = None
    limit: Annotated[int | None, Range(ge=1), "use only the first N training examples"] = None
    eval_limit: Annotated[int | None, Range(ge=1), "use only the first N evaluation queries/rows"] = None


@attrs.frozen
class MiningConfig:
    miner: Annotated[str | None, "hard-negative miner (no mining when unset)"] = None
    num_negatives: Annotated[int, Range(ge=1), "negatives per anchor"] = 1
    output: Annotated[Literal["hard-negatives", "triplets"], "dataset shape written"] = "hard-negatives"
    model: Annotated[str | None, MODEL, "model miners encode with (the model being tuned when unset)"] = None
    corpus: Annotated[str | None, "candidate texts: .txt (one a line) or a table with 'text' (and optional "
                                  "'category') (the data's corpus, else its positives, when unset)"] = None
    options: Annotated[dict, "miner options, e.g. range_min, relative_margin, max_score"] = attrs.field(factory=dict)


@attrs.frozen
class LossConfig:
    name: Annotated[str | None, "loss component (the one declared the default for the data type when unset)"] = None
    options: Annotated[dict, "loss options, e.g. scale, margin, mini_batch_size, dims, base"] = attrs.field(factory=dict)


@attrs.frozen
class TrainingConfig:
    epochs: Annotated[float, Range(ge=0), "passes over the data (1 for small sets)"] = 1.0
    max_steps: Annotated[int | None, Range(ge=1), "stop after this many steps (overrides epochs)"] = None
    batch_size: Annotated[int, Range(ge=1), "per-device batch; in-batch negatives = batch - 1, so as large as "
                                            "memory allows"] = 32
    learning_rate: Annotated[float | Literal["auto"], Range(ge=0),
                             "peak learning rate; auto: 2e-4 for a small model (hidden size under 768) on a short "
                             "run (up to 1,000 optimizer steps), 5e-5 for a small model on a longer one, 2e-5 for "
                             "a base-size or unknown model (the run's config.toml records the value)"] = "auto"
    warmup_ratio: Annotated[float, Range(ge=0, le=1), "fraction of steps spent warming up (0.15-0.2 if loss "
                                                      "oscillates early)"] = 0.1
    weight_decay: Annotated[float, Range(ge=0), "AdamW weight decay"] = 0.01
    lr_scheduler: Annotated[Literal["linear", "cosine", "constant", "constant_with_warmup"],
                            "learning-rate schedule"] = "linear"
    gradient_accumulation_steps: Annotated[int, Range(ge=1), "accumulate gradients over N batches"] = 1
    max_grad_norm: Annotated[float, Range(ge=0), "gradient clipping norm"] = 1.0
    seed: Annotated[int, Range(ge=0, le=2**32 - 1), "random seed (0 to 2**32-1)"] = 42
    precision: Annotated[Literal["auto", "fp32", "fp16", "bf16"],
                         "auto (bf16/fp16 on a GPU that has it), fp32, fp16 or bf16"] = "auto"
    gradient_checkpointing: Annotated[bool, "trade compute for memory"] = False
    batch_sampler: Annotated[Literal["auto", "batch_sampler", "no_duplicates", "sequential"],
                             "auto: no_duplicates for losses declared with in-batch negatives, sequential for data "
                             "a miner declared ordered (a curriculum)"] = "auto"
    validation_fraction: Annotated[float, Range(ge=0, le=0.5),
                                   "share of the training rows held out before mining (whole groups of connected "
                                   "anchors and positives) to score the model on after every epoch (every eval_steps "
                                   "when set) with the headline metric; the best-scoring checkpoint is kept, and "
                                   "early_stopping_patience counts these scores (0: no validation)"] = 0.0
    eval_steps: Annotated[int | None, Range(ge=1), "evaluate on the eval split every N steps (never when unset)"] = None
    save_steps: Annotated[int | None, Range(ge=1), "checkpoint every N steps (once an epoch when unset)"] = None
    save_total_limit: Annotated[int, Range(ge=1), "checkpoints kept"] = 2
    load_best_model_at_end: Annotated[bool, "keep the best checkpoint by eval loss (needs eval_steps)"] = False
    early_stopping_patience: Annotated[int | None, Range(ge=1), "stop after N evaluations without improvement"] = None
    logging_steps: Annotated[int, Range(ge=1), "log the loss every N steps"] = 10
    default_callbacks: Annotated[bool, "attach the callbacks plugins declare default (the metrics log, the progress "
                                       "bar)"] = True
    callbacks: Annotated[list[str], "callback components to attach besides the default ones"] = _list([])
    callback_options: Annotated[dict, "options per callback name"] = attrs.field(factory=dict)
    report_to: Annotated[list[Literal["tensorboard", "wandb"]], "Trainer integrations (when installed)"] = _list([])
    dataloader_workers: Annotated[int, Range(ge=0), "data loader worker processes"] = 0
    interpolate: Annotated[float | Literal["auto", "off"], Range(ge=0, le=1),
                           "weight of the tuned model in (1 - a) base + a tuned: auto keeps the best a on the held-out "
                           "data whose retention drop stays within retention_tolerance; off keeps the tuned model"] = "off"
    interpolation_alphas: Annotated[list[Annotated[float, Range(gt=0, lt=1)]],
                                    "the a values auto tries besides 0 (the base model) and 1 (the tuned one)"] = \
        _list([0.5, 0.75])
    retention_tolerance: Annotated[float, Range(ge=0), "largest drop of the headline metric on the retention set "
                                                       "(absolute) that interpolate = auto accepts"] = 0.01


@attrs.frozen
class EvaluationConfig:
    metrics: Annotated[list[str], "metrics as NAME@K"] = _list(DEFAULT_METRICS)
    dims: Annotated[list[Annotated[int, Range(ge=1)]], "Matryoshka dims to evaluate (the loss's dims when unset)"] = \
        _list([])
    baseline: Annotated[str | None, MODEL, "model the evaluate-before step evaluates (model.name before training "
                                           "when unset)"] = None
    batch_size: Annotated[int, Range(ge=1), "encoding batch size"] = 128
    all_queries: Annotated[bool, "count every judged query, as trec_eval -c (queries in both run and qrels when "
                                 "off)"] = False
    retention: Annotated[str | None, "a general-domain set evaluated before and after (full size, first metric), to "
                                     "see what training costs outside the domain: builtin:NAME, an IR folder or a file "
                                     "of (anchor, positive) pairs; \"none\" turns it off"] = \
        "builtin:wordnet-general"
    approximate_from: Annotated[int | None, Range(ge=1), "corpus size from which IR retrieval uses an approximate "
                                                         "faiss index and reports its recall as search_recall@K "
                                                         "(none: always exact)"] = 1_000_000


@attrs.frozen
class RunConfig:
    name: Annotated[str, "run name; the run folder is output_dir/name"] = "run"
    output_dir: Annotated[str, "folder that holds run folders"] = "runs"
    model: ModelConfig = attrs.field(factory=ModelConfig)
    data: DataConfig = attrs.field(factory=DataConfig)
    mining: MiningConfig = attrs.field(factory=MiningConfig)
    loss: LossConfig = attrs.field(factory=LossConfig)
    training: TrainingConfig = attrs.field(factory=TrainingConfig)
    evaluation: EvaluationConfig = attrs.field(factory=EvaluationConfig)
    steps: Annotated[list[str], "pipeline steps to run, in order (`embedtune components step`); empty: the default "
                                "pipeline, every step that declares a place in it"] = _list([])
    step_options: Annotated[dict[str, dict], "options per step name, e.g. {export = {precisions = ['binary']}}"] = \
        attrs.field(factory=dict)

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name

    # -- constructors ---------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> "RunConfig":
        return _build(cls, data, prefix="", source=source)

    @classmethod
    def from_file(cls, path: str | os.PathLike, overrides: list[str] | tuple[str, ...] = ()) -> "RunConfig":
        from embedtune_core.config.files import apply_overrides, blame_overrides, load_file

        data = load_file(path)
        apply_overrides(data, overrides)
        try:
            return cls.from_dict(data, source=str(path))
        except ConfigError as exc:
            raise blame_overrides(exc, overrides) from None

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


SECTIONS = {"model": ModelConfig, "data": DataConfig, "mining": MiningConfig, "loss": LossConfig,
            "training": TrainingConfig, "evaluation": EvaluationConfig}


def _coerce(value: Any, spec: Any, key: str, source: str | None) -> Any:
    try:
        return coerce(value, spec)
    except OptionError as exc:
        raise ConfigError(str(exc), file=source, key=key, hint=exc.hint) from None


def _build(cls: type, data: Mapping[str, Any], *, prefix: str, source: str | None) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"must be a table, got {data!r}", file=source, key=prefix.rstrip(".") or None)
    fields = {f.name: f for f in attrs.fields(cls)}
    specs = class_specs(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if key not in fields:
            guess = closest(str(key), list(fields))
            hint = (f"did you mean '{prefix}{guess}'? " if guess else "") + "known keys: " + ", ".join(
                prefix + name for name in fields
            )
            raise ConfigError("unknown config key", file=source, key=full, hint=hint)
        if key in SECTIONS and cls is RunConfig:
            kwargs[key] = _build(SECTIONS[key], value if value is not None else {}, prefix=f"{full}.", source=source)
        else:
            kwargs[key] = _coerce(value, specs[key], full, source)
    config = cls(**kwargs)
    if cls is RunConfig:
        _check_run(config, source)
    return config


def _check_run(config: RunConfig, source: str | None) -> None:
    from embedtune_core.ranking.metrics import parse_metric

    for metric in config.evaluation.metrics:
        try:
            parse_metric(metric)
        except ConfigError as exc:
            raise ConfigError(exc.message, file=source, key="evaluation.metrics", hint=exc.hint) from None
    if config.training.load_best_model_at_end and not config.training.eval_steps:
        raise ConfigError(
            "load_best_model_at_end needs evaluation during training",
            file=source, key="training.load_best_model_at_end", hint="set training.eval_steps too",
        )
    name = config.name
    if not name or "/" in name or "\\" in name or name in {".", ".."}:
        raise ConfigError(f"run name {name!r} must be a plain folder name", file=source, key="name")


def describe_fields(cls: type = RunConfig, prefix: str = "") -> list[dict[str, Any]]:
    """Every config key with its default, type and help, for docs and ``embedtune init``."""
    rows = []
    specs = class_specs(cls)
    for field in attrs.fields(cls):
        if field.name in SECTIONS and cls is RunConfig:
            rows.extend(describe_fields(SECTIONS[field.name], prefix=f"{field.name}."))
            continue
        spec = specs[field.name]
        rows.append({"key": prefix + field.name, "name": field.name, "default": spec.default, "help": spec.help,
                     "choices": spec.choices or (spec.item.choices if spec.item is not None else None),
                     "type": spec.describe()})
    return rows
