"""The training step: losses by name, sentence-transformers' Trainer, checkpoints, resume, faults.

Training runs on ``SentenceTransformerTrainer`` with ``SentenceTransformerTrainingArguments`` built
from the ``[training]`` config section (:func:`training_arguments`). A run folder holds::

    RUN/checkpoints/checkpoint-N/   every ``save_steps`` (or once an epoch), resumable
    RUN/training_log.jsonl          one JSON row per logged step (the ``metrics-log`` callback)
    RUN/model/                      the trained model (written by the caller with :func:`save_model`)

Faults become :class:`~embedtune_core.errors.TrainingError` with a hint: a NaN or infinite loss
stops the run before the bad step changes the weights or writes a checkpoint; out of memory
suggests a smaller batch or ``cached-mnrl``; Ctrl-C saves a checkpoint at the end of the current
step so ``--resume`` continues from there. A process killed outright resumes from its newest
complete checkpoint.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import shutil
import signal
import threading
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import attrs

from embedtune_core.config.schema import TrainingConfig
from embedtune_core.errors import ComponentError, ConfigError, RunFolderError, TrainingError
from embedtune_core.types import DATASET_TYPES

#: The guide's loss for each dataset type.
RECOMMENDED_LOSS: dict[str, str] = {
    "pairs": "mnrl",
    "triplets": "mnrl",
    "nli": "mnrl",
    "ir": "mnrl",
    "hard-negatives": "mnrl",
    "sts": "cosent",
}

CHECKPOINTS = "checkpoints"
CHECKPOINT_PREFIX = "checkpoint-"
TRAINING_LOG = "training_log.jsonl"
#: Where ``prepare_run_dir(..., overwrite=True)`` keeps the previous run until the new one finishes.
REPLACED_SUFFIX = ".replaced"


class TrainingInterrupted(TrainingError):
    """Training was interrupted (Ctrl-C); a checkpoint was saved when possible."""

    exit_code = 130


@attrs.frozen
class TrainResult:
    """What :func:`train` did."""

    global_step: int
    epochs: float
    training_loss: float | None
    log_history: list = attrs.field(factory=list)
    checkpoint_dir: Path | None = None
    stopped_early: bool = False
    reason: str = "completed"


# -- losses -------------------------------------------------------------------------------------
def st_losses() -> Any:
    """sentence-transformers' losses module (it moved in sentence-transformers 6)."""
    try:
        from sentence_transformers.sentence_transformer import losses
    except ImportError:  # sentence-transformers 5
        from sentence_transformers import losses
    return losses


def recommend_loss(dataset_type: str) -> str:
    """The loss the guide recommends for ``dataset_type``: MNRL for everything with positives,
    CoSENT for STS scores."""
    try:
        return RECOMMENDED_LOSS[dataset_type]
    except KeyError:
        raise ConfigError(
            f"unknown dataset type '{dataset_type}'", key="data.type", hint="use one of: " + ", ".join(DATASET_TYPES)
        ) from None


def _default_option(factory: Any, option: str) -> Any:
    try:
        param = inspect.signature(factory).parameters.get(option)
    except (TypeError, ValueError):
        return None
    return None if param is None or param.default is param.empty else param.default


def loss_accepts(registry: Any, name: str, options: Mapping[str, Any] | None = None) -> tuple[str, ...] | None:
    """The dataset types loss ``name`` trains on with ``options`` (None: it does not say).

    A wrapping loss (registered with ``wraps="OPTION"``, like ``matryoshka`` with ``base``)
    trains on what the loss named by that option trains on.
    """
    component = registry.get("loss", name)
    options = dict(options or {})
    accepts = component.meta.get("accepts")
    accepts = tuple(accepts) if accepts is not None else None
    wraps = component.meta.get("wraps")
    if wraps:
        base = options.get(wraps, _default_option(component.factory, wraps))
        if isinstance(base, str) and base.strip():
            base_options = options.get(f"{wraps}_options") or {}
            inner = loss_accepts(registry, base.strip(), base_options if isinstance(base_options, Mapping) else {})
            if inner is not None:
                accepts = inner if accepts is None else tuple(t for t in accepts if t in inner)
    return accepts


def check_loss_accepts(registry: Any, name: str, dataset_type: str, options: Mapping[str, Any] | None = None) -> None:
    """Raise :class:`ComponentError` when loss ``name`` (with ``options``) does not train on
    ``dataset_type``, naming the loss the guide recommends instead."""
    recommended = recommend_loss(dataset_type)
    options = dict(options or {})
    accepts = loss_accepts(registry, name, options)
    if accepts is None or dataset_type in accepts:
        return
    component = registry.get("loss", name)
    label = f"loss '{name}'"
    wraps = component.meta.get("wraps")
    if wraps:
        label += f" ({wraps} '{options.get(wraps, _default_option(component.factory, wraps))}')"
    trains_on = ", ".join(accepts) if accepts else "no dataset type"
    raise ComponentError(
        f"{label} trains on {trains_on}, but the data is {dataset_type}; use {recommended}",
        key="loss.name",
        hint=f"drop --loss to get {recommended}, or give data of type {' / '.join(accepts) or '-'}",
    )


def check_loss_options(registry: Any, name: str, options: Mapping[str, Any] | None = None) -> None:
    """Reject unknown option names and bad option values of loss ``name`` without building it,
    so a typo such as ``loss.options = {scael = 20}`` fails before any model is loaded."""
    registry.check_options("loss", name, dict(options or {}), positional=1, key="loss.options")


def check_callbacks(config: TrainingConfig, registry: Any) -> None:
    """Every callback named in ``config.callbacks`` exists and its ``callback_options`` are
    accepted (names and values), and every ``callback_options`` entry names a known callback;
    nothing is built."""
    options_by_name = config.callback_options
    for name in [str(n) for n in config.callbacks]:
        try:
            registry.get("callback", name)
        except ComponentError as exc:
            raise ConfigError(exc.message, key="training.callbacks", hint=exc.hint) from None
    for name, options in options_by_name.items():
        key = f"training.callback_options.{name}"
        try:
            registry.get("callback", str(name))
        except ComponentError as exc:
            raise ConfigError(exc.message, key=key, hint=exc.hint) from None
        if not isinstance(options, Mapping):
            raise ConfigError(f"options for callback '{name}' must be a table, got {options!r}", key=key,
                              hint=f"e.g. callback_options = {{{name} = {{...}}}}")
        registry.check_options("callback", str(name), dict(options), key=key)


def build_loss(registry: Any, name: str | None, model: Any, dataset_type: str, options: Mapping[str, Any] | None = None) -> Any:
    """Build loss ``name`` (the guide's choice for ``dataset_type`` when None) for ``model``.

    Raises :class:`ComponentError` before any training when the loss does not train on
    ``dataset_type`` or an option is bad.
    """
    import torch

    name = name or recommend_loss(dataset_type)
    options = dict(options or {})
    check_loss_options(registry, name, options)
    check_loss_accepts(registry, name, dataset_type, options)
    try:
        loss = registry.create("loss", name, model, **options)
    except ComponentError:
        raise
    except (ValueError, TypeError) as exc:
        raise ComponentError(f"loss '{name}': {exc}", key="loss.options") from None
    if not isinstance(loss, torch.nn.Module):
        raise ComponentError(
            f"loss '{name}' built a {type(loss).__name__}, not a torch.nn.Module",
            hint="a loss factory returns a torch.nn.Module with forward(sentence_features, labels)",
        )
    return loss


def in_batch_negatives(loss: Any) -> bool:
    """Whether ``loss`` uses the other rows of a batch as negatives (so duplicates hurt it).

    A custom loss says so with an ``in_batch_negatives`` attribute.
    """
    flag = getattr(loss, "in_batch_negatives", None)
    if isinstance(flag, bool):
        return flag
    losses = st_losses()
    if isinstance(loss, (losses.MatryoshkaLoss,)):
        return in_batch_negatives(loss.loss)
    names = (
        "MultipleNegativesRankingLoss",
        "CachedMultipleNegativesRankingLoss",
        "MultipleNegativesSymmetricRankingLoss",
        "CachedMultipleNegativesSymmetricRankingLoss",
        "GISTEmbedLoss",
        "CachedGISTEmbedLoss",
    )
    classes = tuple(getattr(losses, n) for n in names if hasattr(losses, n))
    return isinstance(loss, classes)


def _is_triplet_loss(loss: Any) -> bool:
    losses = st_losses()
    if isinstance(loss, losses.MatryoshkaLoss):
        return _is_triplet_loss(loss.loss)
    return isinstance(loss, losses.TripletLoss)


def fit_dataset(dataset: Any, loss: Any) -> Any:
    """Adapt a dataset's shape to what ``loss`` reads: TripletLoss reads exactly (anchor,
    positive, negative), so a hard-negatives row with several negatives becomes one triplet per
    negative. Other datasets are returned unchanged."""
    if dataset is None or not _is_triplet_loss(loss):
        return dataset
    columns = list(dataset.column_names)
    texts = [c for c in columns if c not in ("label", "labels", "score", "scores")]
    if len(texts) < 3:
        from embedtune_core.errors import DataError

        raise DataError(
            f"the triplet loss needs (anchor, positive, negative) rows, but the data has {', '.join(columns)}",
            key="loss.name", hint="use mnrl, which trains on pairs, or give data with negatives",
        )
    negatives = [c for c in columns[2:] if c == "negative" or c.startswith("negative_")]
    if len(columns) <= 3 or len(negatives) < 2:
        return dataset
    from datasets import Dataset

    anchors, positives = dataset[columns[0]], dataset[columns[1]]
    out: dict[str, list] = {"anchor": [], "positive": [], "negative": []}
    for column in negatives:
        for anchor, positive, negative in zip(anchors, positives, dataset[column]):
            if negative is None or negative == "":
                continue
            out["anchor"].append(anchor)
            out["positive"].append(positive)
            out["negative"].append(negative)
    return Dataset.from_dict(out)


# -- arguments ----------------------------------------------------------------------------------
def resolve_precision(precision: str, device: str | None = None) -> tuple[bool, bool]:
    """``(fp16, bf16)`` for a precision setting. ``auto``: bf16 on a CUDA GPU that supports it,
    else fp16 on a CUDA GPU, else full precision. ``fp16``/``bf16`` without a CUDA GPU is an error."""
    import torch

    on_cpu = device is not None and str(device).startswith("cpu")
    cuda = torch.cuda.is_available() and not on_cpu and not (device is not None and str(device).startswith("mps"))
    if precision == "fp32":
        return False, False
    if precision == "auto":
        if not cuda:
            return False, False
        return (False, True) if torch.cuda.is_bf16_supported() else (True, False)
    if not cuda:
        raise ConfigError(
            f"precision '{precision}' needs a CUDA GPU", key="training.precision", hint="use auto or fp32 on this machine"
        )
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise ConfigError("this GPU does not support bf16", key="training.precision", hint="use fp16 or auto")
    return precision == "fp16", precision == "bf16"


def _batch_samplers() -> Any:
    try:
        from sentence_transformers.base.sampler import BatchSamplers
    except ImportError:  # sentence-transformers 5
        from sentence_transformers.training_args import BatchSamplers
    return BatchSamplers


def _training_args_class() -> Any:
    from sentence_transformers import SentenceTransformerTrainingArguments

    return SentenceTransformerTrainingArguments


REPORT_TARGETS = ("tensorboard", "wandb")


def check_report_to(target: str, *, key: str = "training.report_to", error: type = ConfigError) -> str:
    """``target`` when its package is installed; a clear error otherwise."""
    import importlib.util

    name = str(target).strip().lower()
    if name not in REPORT_TARGETS:
        raise error(f"cannot report to '{target}'", key=key, hint="use one of: " + ", ".join(REPORT_TARGETS))
    modules = {"tensorboard": ("tensorboard", "tensorboardX"), "wandb": ("wandb",)}[name]
    if not any(importlib.util.find_spec(m) is not None for m in modules):
        raise error(f"reporting to {name} needs the '{modules[0]}' package, which is not installed", key=key,
                    hint=f"pip install {modules[0]}")
    return name


def check_training_config(config: TrainingConfig, *, has_eval: bool, device: str | None = None) -> tuple[bool, bool, int | None, Any]:
    """Check the settings that depend on each other, the machine or installed packages (a
    :class:`ConfigError` otherwise); returns ``(fp16, bf16, save_steps, report_to)``."""
    fp16, bf16 = resolve_precision(config.precision, device)
    evaluate = bool(config.eval_steps)
    if evaluate and not has_eval:
        raise ConfigError("training.eval_steps needs evaluation data", key="training.eval_steps",
                          hint="give held-out data (data.eval_source or data.eval_fraction > 0) or unset eval_steps")
    if config.load_best_model_at_end and not evaluate:
        raise ConfigError("load_best_model_at_end needs evaluation during training", key="training.load_best_model_at_end",
                          hint="set training.eval_steps too")
    if config.early_stopping_patience and not evaluate:
        raise ConfigError("early stopping needs evaluation during training", key="training.early_stopping_patience",
                          hint="set training.eval_steps too")
    if not evaluate and any(str(n).split(":")[-1] == "early-stopping" for n in config.callbacks):
        raise ConfigError("the early-stopping callback needs evaluation during training", key="training.callbacks",
                          hint="set training.eval_steps too")
    save_steps = config.save_steps
    if config.load_best_model_at_end:
        save_steps = save_steps or config.eval_steps
        if save_steps % config.eval_steps:
            raise ConfigError(
                f"with load_best_model_at_end, save_steps ({save_steps}) must be a multiple of eval_steps ({config.eval_steps})",
                key="training.save_steps", hint=f"e.g. save_steps = {config.eval_steps}",
            )
    report_to = [check_report_to(t) for t in config.report_to] or "none"
    return fp16, bf16, save_steps, report_to


def training_arguments(
    config: TrainingConfig,
    output_dir: str | os.PathLike,
    *,
    loss_name: str | None,
    has_eval: bool,
    in_batch_negatives: bool | None = None,
    device: str | None = None,
    quiet: bool = False,
) -> Any:
    """``SentenceTransformerTrainingArguments`` for ``config``; checkpoints go to
    ``output_dir/checkpoints``.

    ``in_batch_negatives`` decides the ``auto`` batch sampler (no duplicates in a batch for
    in-batch-negative losses); when None it follows ``loss_name`` (mnrl, cached-mnrl and
    matryoshka, whose default base is mnrl). ``device`` "cpu" keeps training on the CPU.
    """
    import dataclasses

    samplers = _batch_samplers()
    if in_batch_negatives is None:
        in_batch_negatives = (loss_name or "").split(":")[-1] in {"mnrl", "cached-mnrl", "matryoshka"}
    if config.batch_sampler == "auto":
        sampler = samplers.NO_DUPLICATES if in_batch_negatives else samplers.BATCH_SAMPLER
    elif config.batch_sampler == "sequential":  # keep an easy-to-hard (curriculum) order
        from embedtune_core.mining.toolkit import sequential_batch_sampler

        sampler = sequential_batch_sampler
    else:
        sampler = samplers(config.batch_sampler)
    fp16, bf16, save_steps, report_to = check_training_config(config, has_eval=has_eval, device=device)
    evaluate = bool(config.eval_steps)

    kwargs: dict[str, Any] = dict(
        output_dir=str(Path(output_dir) / CHECKPOINTS),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        lr_scheduler_type=config.lr_scheduler,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        max_grad_norm=config.max_grad_norm,
        seed=config.seed,
        fp16=fp16,
        bf16=bf16,
        gradient_checkpointing=config.gradient_checkpointing,
        batch_sampler=sampler,
        eval_strategy="steps" if evaluate else "no",
        eval_steps=config.eval_steps if evaluate else None,
        save_strategy="steps" if save_steps else "epoch",
        save_steps=save_steps or 500,
        save_total_limit=config.save_total_limit,
        load_best_model_at_end=config.load_best_model_at_end,
        metric_for_best_model="eval_loss" if evaluate else None,
        greater_is_better=False if evaluate else None,
        logging_steps=config.logging_steps,
        logging_first_step=True,
        report_to=report_to,
        dataloader_num_workers=config.dataloader_workers,
        disable_tqdm=quiet,
        run_name=Path(output_dir).name,
    )
    if device is not None and str(device).startswith("cpu"):
        kwargs["use_cpu"] = True
    from transformers import TrainingArguments

    fields = {f.name for f in dataclasses.fields(TrainingArguments)}
    if "activation_checkpointing" in fields:  # transformers 5 name
        kwargs["activation_checkpointing"] = kwargs.pop("gradient_checkpointing")
    if "warmup_ratio" in fields:  # transformers 4
        kwargs["warmup_ratio"] = config.warmup_ratio
    else:  # transformers 5: a warmup_steps value below 1 is a ratio of the total steps
        kwargs["warmup_steps"] = min(config.warmup_ratio, 0.999999)
    return _training_args_class()(**kwargs)


# -- run folders --------------------------------------------------------------------------------
def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def replaced_path(path: str | os.PathLike) -> Path:
    """Where an overwritten run is kept until the new run finishes: ``.NAME.replaced`` beside it."""
    path = Path(path)
    return path.with_name(f".{path.name}{REPLACED_SUFFIX}")


def _has_finished_model(path: Path) -> bool:
    return (path / "model" / "modules.json").exists() or (path / "metrics.json").exists()


def check_run_dir(path: str | os.PathLike, *, overwrite: bool = False, resume: bool = False) -> None:
    """Raise what :func:`prepare_run_dir` would raise, without creating or changing anything."""
    path = Path(path)
    if overwrite and resume:
        raise ConfigError("--overwrite and --resume cannot be used together",
                          hint="--resume continues the run in the folder; --overwrite starts a new one")
    if path.exists() and not path.is_dir():
        raise RunFolderError("the run folder path is a file", file=path, hint="choose another --output")
    if not _is_main_process():
        return
    if path.is_dir() and any(path.iterdir()) and not resume and not overwrite:
        raise RunFolderError(
            "run folder already exists and is not empty",
            file=path,
            hint="pass --overwrite to replace it (kept aside until the new run finishes) or --resume to continue its training",
        )


def prepare_run_dir(path: str | os.PathLike, *, overwrite: bool = False, resume: bool = False) -> Path:
    """Create the run folder ``path`` and return it.

    An existing non-empty folder is refused (:class:`RunFolderError`) unless ``resume`` (use it
    as it is) or ``overwrite``. ``overwrite`` moves the old run aside to ``.NAME.replaced``; it is
    deleted by :func:`finish_run_dir` once the new run has finished, so a failed new run never
    costs the old model. Only one replaced run is kept: a second ``--overwrite`` keeps the one
    with a finished model.
    """
    path = Path(path)
    check_run_dir(path, overwrite=overwrite, resume=resume)
    if not _is_main_process():
        path.mkdir(parents=True, exist_ok=True)
        return path
    if path.is_dir() and any(path.iterdir()) and not resume:
        aside = replaced_path(path)
        if aside.exists():
            if _has_finished_model(aside) and not _has_finished_model(path):
                shutil.rmtree(path)
            else:
                shutil.rmtree(aside)
        if path.exists():
            os.replace(path, aside)
    path.mkdir(parents=True, exist_ok=True)
    return path


def finish_run_dir(path: str | os.PathLike) -> None:
    """The run in ``path`` has finished: delete the run it replaced (if any)."""
    aside = replaced_path(path)
    if _is_main_process() and aside.exists():
        shutil.rmtree(aside, ignore_errors=True)


def checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """The complete checkpoints of a run, oldest first. A checkpoint is complete once its
    ``trainer_state.json`` exists (the Trainer writes it last)."""
    folder = Path(run_dir) / CHECKPOINTS
    if not folder.is_dir():
        return []
    found = []
    for child in folder.iterdir():
        suffix = child.name[len(CHECKPOINT_PREFIX):]
        if child.name.startswith(CHECKPOINT_PREFIX) and suffix.isdigit() and (child / "trainer_state.json").exists():
            found.append((int(suffix), child))
    return [p for _, p in sorted(found)]


def newest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    found = checkpoints(run_dir)
    return found[-1] if found else None


def checkpoint_step(checkpoint: str | os.PathLike) -> int:
    return int(Path(checkpoint).name[len(CHECKPOINT_PREFIX):])


# -- saving -------------------------------------------------------------------------------------
def save_model(model: Any, path: str | os.PathLike) -> Path:
    """Save ``model`` in sentence-transformers format with safetensors weights, written to a
    temporary folder and renamed into place."""
    from embedtune_core.io import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp, _hf_progress_bars(False):
        model.save(str(tmp), safe_serialization=True)
    return path


# -- callbacks used by train() ------------------------------------------------------------------
def _callback_base() -> Any:
    from transformers import TrainerCallback

    return TrainerCallback


def make_nan_guard() -> Any:
    """A callback that stops training when the loss of a step is NaN or infinite.

    :meth:`watch` hooks it onto the loss module. The check runs before the optimizer step:
    the bad gradients are dropped (the weights stay as they were) and no checkpoint is
    written after that step, so the newest checkpoint is the last good one.
    """
    import torch

    class NanGuardCallback(_callback_base()):
        is_nan_guard = True

        def __init__(self) -> None:
            self.bad_step: int | None = None
            self.bad_value: float | None = None
            self._values: list = []
            self._handles: list = []

        def watch(self, loss_module: Any) -> "NanGuardCallback":
            self._handles.append(loss_module.register_forward_hook(self._record))
            return self

        def unwatch(self) -> None:
            for handle in self._handles:
                handle.remove()
            self._handles.clear()

        def _record(self, module, inputs, output) -> None:
            if not torch.is_grad_enabled():  # evaluation
                return
            if isinstance(output, dict):
                output = torch.stack([v.detach().float().sum() for v in output.values()]).sum()
            if isinstance(output, torch.Tensor):
                self._values.append(output.detach())

        def _check(self, step: int) -> bool:
            """Whether a loss of this step (or an earlier one) was not finite; one device sync."""
            values, self._values = self._values, []
            if self.bad_step is None and values:
                stacked = torch.stack([v.float().reshape(-1)[0] for v in values])
                finite = torch.isfinite(stacked)
                if not bool(finite.all()):
                    self.bad_step = step
                    self.bad_value = float(stacked[~finite][0])
            return self.bad_step is not None

        def on_step_begin(self, args, state, control, **kwargs):
            self._values = []

        def on_pre_optimizer_step(self, args, state, control, optimizer=None, model=None, **kwargs):
            if self._check(state.global_step + 1):
                # drop the step: no gradient, no update (AdamW skips parameters without one)
                if optimizer is not None:
                    optimizer.zero_grad(set_to_none=True)
                elif model is not None:
                    model.zero_grad(set_to_none=True)
                control.should_training_stop = True

        def on_step_end(self, args, state, control, **kwargs):
            if self._check(state.global_step):
                control.should_training_stop = True
                control.should_save = False
                control.should_evaluate = False

        def on_epoch_end(self, args, state, control, **kwargs):
            if self.bad_step is not None:
                control.should_save = False
                control.should_evaluate = False

    return NanGuardCallback()


def make_stop_guard() -> Any:
    """A callback that ends training cleanly when asked (first Ctrl-C): it saves a checkpoint at
    the end of the current step and stops. It also avoids saving the same step twice."""

    class StopGuardCallback(_callback_base()):
        def __init__(self) -> None:
            self.requested = False
            self.saved_step: int | None = None

        def on_step_end(self, args, state, control, **kwargs):
            if self.requested:
                control.should_save = True
                control.should_training_stop = True
                control.should_evaluate = False

        def on_save(self, args, state, control, **kwargs):
            self.saved_step = state.global_step

        def on_epoch_end(self, args, state, control, **kwargs):
            if self.saved_step == state.global_step:
                control.should_save = False

    return StopGuardCallback()


def make_progress(show_eval: bool = True) -> Any:
    """A tqdm progress bar over the optimizer steps, with the latest loss and learning rate
    beside it (the Trainer's own bar, which prints every log as a dict, made quieter)."""
    from transformers import ProgressCallback

    class EmbedtuneProgressCallback(ProgressCallback):
        def __init__(self) -> None:
            super().__init__()
            self.show_eval = show_eval

        def on_train_begin(self, args, state, control, **kwargs):
            from tqdm.auto import tqdm

            if state.is_world_process_zero:
                self.training_bar = tqdm(total=state.max_steps, initial=state.global_step, dynamic_ncols=True,
                                         desc="training", unit="step")
            self.current_step = state.global_step

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or self.training_bar is None or not logs:
                return
            shown = {k: f"{logs[k]:.4g}" for k in ("loss", "learning_rate") if isinstance(logs.get(k), (int, float))}
            if shown:
                self.training_bar.set_postfix(shown, refresh=False)
            if self.show_eval and isinstance(logs.get("eval_loss"), (int, float)):
                self.training_bar.write(f"step {state.global_step}: eval loss {logs['eval_loss']:.4g}")

        def on_train_end(self, args, state, control, **kwargs):
            if state.is_world_process_zero and self.training_bar is not None:
                self.training_bar.close()
                self.training_bar = None

    return EmbedtuneProgressCallback()


class _SigintHandler:
    """First Ctrl-C: ask the stop guard to save and stop after this step. Second: stop now."""

    def __init__(self, guard: Any, quiet: bool) -> None:
        self.guard = guard
        self.quiet = quiet
        self.previous: Any = None
        self.active = False

    def __enter__(self) -> "_SigintHandler":
        if threading.current_thread() is threading.main_thread() and _world_size() == 1:
            self.previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handle)
            self.active = True
        return self

    def _handle(self, signum, frame) -> None:
        if self.guard.requested:
            raise KeyboardInterrupt
        self.guard.requested = True
        if not self.quiet:
            import sys

            print("\ninterrupted: saving a checkpoint after this step (Ctrl-C again to stop at once)", file=sys.stderr, flush=True)

    def __exit__(self, *exc) -> None:
        if self.active:
            signal.signal(signal.SIGINT, self.previous)


def _is_out_of_memory(exc: BaseException) -> bool:
    import torch

    oom_types = tuple(t for t in (getattr(torch, "OutOfMemoryError", None), getattr(torch.cuda, "OutOfMemoryError", None)) if t)
    if isinstance(exc, MemoryError) or (oom_types and isinstance(exc, oom_types)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def _out_of_memory_error(exc: BaseException, config: TrainingConfig, loss: Any, step: int, device: str) -> TrainingError:
    import torch

    cached = isinstance(loss, st_losses().CachedMultipleNegativesRankingLoss) or isinstance(
        getattr(loss, "loss", None), st_losses().CachedMultipleNegativesRankingLoss
    )
    smaller = max(1, config.batch_size // 2)
    if cached:
        hint = (f"lower loss.options.mini_batch_size (the memory used), or training.batch_size "
                f"(e.g. -s training.batch_size={smaller}); gradient_checkpointing = true also saves memory")
    else:
        hint = (f"use a smaller batch (e.g. -s training.batch_size={smaller}), or --loss cached-mnrl, which trains "
                "large batches in constant memory; training.gradient_checkpointing = true also saves memory")
    oom_types = tuple(t for t in (getattr(torch, "OutOfMemoryError", None), getattr(torch.cuda, "OutOfMemoryError", None)) if t)
    on_gpu = isinstance(exc, oom_types) or "cuda" in str(exc).lower() or "mps" in str(exc).lower()
    where = "GPU" if on_gpu else "CPU"
    return TrainingError(
        f"out of {where} memory at step {step} with batch size {config.batch_size}", key="training.batch_size", hint=hint
    )


# -- train --------------------------------------------------------------------------------------
def _trim_log(path: Path, last_step: int) -> None:
    """Keep the log rows up to ``last_step`` (rows logged after the checkpoint a resumed run
    starts from would otherwise appear twice)."""
    from embedtune_core.io import write_text

    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a line cut short by a crash
        if isinstance(row, dict) and int(row.get("step", 0)) <= last_step:
            kept.append(line)
    write_text(path, "".join(line + "\n" for line in kept))


def _build_callbacks(config: TrainingConfig, registry: Any, run_dir: Path, quiet: bool) -> list[Any]:
    names = [str(n) for n in config.callbacks]
    if not names:
        return []
    if registry is None:
        from embedtune_core.plugins.registry import load_registry

        _, registry = load_registry()
    TrainerCallback = _callback_base()
    out = []
    for name in names:
        short = name.split(":")[-1]
        if quiet and short == "progress":
            continue
        options = dict(config.callback_options.get(name, config.callback_options.get(short, {})) or {})
        if short == "metrics-log":
            options.setdefault("path", str(run_dir / TRAINING_LOG))
        callback = registry.create("callback", name, **options)
        if isinstance(callback, type) and issubclass(callback, TrainerCallback):
            callback = callback()
        if not isinstance(callback, TrainerCallback):
            raise ComponentError(f"callback '{name}' built a {type(callback).__name__}, not a transformers.TrainerCallback",
                                 key="training.callbacks")
        out.append(callback)
    return out


def _kind_of(callback: Any) -> tuple[str, str]:
    cls = type(callback)
    return cls.__module__, cls.__qualname__


def train(
    model: Any,
    train_dataset: Any,
    loss: Any,
    config: TrainingConfig,
    output_dir: str | os.PathLike,
    *,
    eval_dataset: Any = None,
    callbacks: Iterable[Any] = (),
    resume: bool = False,
    registry: Any = None,
    quiet: bool = False,
    loss_name: str | None = None,
    dataset_name: str | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``train_dataset`` with ``loss`` (a loss module built for this
    model, e.g. by :func:`build_loss`).

    ``output_dir`` is the run folder (see :func:`prepare_run_dir`); checkpoints go to its
    ``checkpoints`` folder. ``resume=True`` continues from the newest complete checkpoint (from
    step 0 when there is none). Callbacks named in ``config.callbacks`` are built from
    ``registry`` with ``config.callback_options``; ``callbacks`` adds callback objects (one of
    the same class as a callback the config names is left out: the config's is used). ``dataset_name`` names the training data
    in the model card. The weights are left in ``model``; save them with :func:`save_model`.
    """
    from sentence_transformers import SentenceTransformerTrainer
    from transformers import EarlyStoppingCallback, PrinterCallback, ProgressCallback

    run_dir = Path(output_dir)
    if train_dataset is None or len(train_dataset) == 0:
        raise TrainingError("the training data is empty", hint="check the data source and data.limit")
    train_dataset = fit_dataset(train_dataset, loss)
    eval_dataset = fit_dataset(eval_dataset, loss)
    device = str(getattr(model, "device", "cpu"))
    args = training_arguments(
        config, run_dir, loss_name=loss_name, has_eval=eval_dataset is not None,
        in_batch_negatives=in_batch_negatives(loss), device=device, quiet=quiet,
    )

    checkpoint = newest_checkpoint(run_dir) if resume else None
    if not resume and newest_checkpoint(run_dir) is not None:
        raise RunFolderError("the run folder has checkpoints of an earlier run", file=run_dir,
                             hint="pass --resume to continue it, or --overwrite to start again")
    if resume and checkpoint is None and not quiet:
        import sys

        print(f"no checkpoint in {run_dir / CHECKPOINTS}: starting from step 0", file=sys.stderr)
    log_path = run_dir / TRAINING_LOG
    if _is_main_process():
        if checkpoint is not None:
            _trim_log(log_path, checkpoint_step(checkpoint))
        elif log_path.exists():
            log_path.unlink()

    card = getattr(model, "model_card_data", None)
    if card is not None:
        card.local_files_only = True
        if dataset_name:
            card.train_datasets = [{"name": dataset_name}]
        if hasattr(card, "add_tags"):
            card.add_tags("embedtune")

    extra = _build_callbacks(config, registry, run_dir, quiet)
    built = {_kind_of(c) for c in extra}
    extra += [c for c in callbacks if _kind_of(c) not in built]
    nan_guard = next((c for c in extra if getattr(c, "is_nan_guard", False)), None)
    if nan_guard is None:
        nan_guard = make_nan_guard()
    else:
        extra.remove(nan_guard)
    nan_guard.watch(loss)
    stop_guard = make_stop_guard()
    if config.early_stopping_patience and not any(isinstance(c, EarlyStoppingCallback) for c in extra):
        extra.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience))
    if not quiet and not any(isinstance(c, ProgressCallback) for c in extra):
        extra.append(make_progress())

    with _hf_progress_bars(False):
        trainer = SentenceTransformerTrainer(
            model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset, loss=loss,
            callbacks=[nan_guard, stop_guard] + extra,
        )
    # our own progress display (or none when quiet) replaces the Trainer's bar and printer
    for default in (ProgressCallback, PrinterCallback):
        for cb in list(trainer.callback_handler.callbacks):
            if type(cb) is default:
                trainer.callback_handler.remove_callback(cb)

    try:
        with _SigintHandler(stop_guard, quiet), _hf_progress_bars(False):
            output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    except KeyboardInterrupt:
        saved = _save_after_interrupt(trainer, stop_guard)
        raise TrainingInterrupted(
            f"training interrupted at step {trainer.state.global_step}"
            + (f"; checkpoint saved in {saved}" if saved else ""),
            file=run_dir,
            hint="continue with --resume" if saved or newest_checkpoint(run_dir) else "start again",
        ) from None
    except Exception as exc:
        if _is_out_of_memory(exc):
            _free_memory()
            raise _out_of_memory_error(exc, config, loss, trainer.state.global_step + 1, device) from None
        raise
    finally:
        nan_guard.unwatch()

    newest = newest_checkpoint(run_dir)
    if nan_guard.bad_step is not None:
        kept = f"the last good checkpoint is {newest}" if newest else "no checkpoint had been saved yet"
        raise TrainingError(
            f"the training loss became {nan_guard.bad_value} at step {nan_guard.bad_step}; training stopped and {kept}",
            file=run_dir,
            hint="lower training.learning_rate, use training.precision = fp32, or check the data for empty or "
                 "broken rows; then --resume from the checkpoint or --overwrite to start again",
        )
    if stop_guard.requested:
        raise TrainingInterrupted(
            f"training interrupted at step {trainer.state.global_step}; checkpoint saved in {newest}",
            file=run_dir, hint="continue with --resume",
        )

    state = trainer.state
    max_steps = state.max_steps
    stopped_early = state.global_step < max_steps
    reason = "completed"
    if stopped_early:
        patience = config.early_stopping_patience
        reason = (f"early stopping: eval loss did not improve for {patience} evaluations" if patience
                  else "stopped by a callback")
    return TrainResult(
        global_step=state.global_step,
        epochs=float(state.epoch or 0.0),
        training_loss=float(output.training_loss) if output.training_loss is not None else None,
        log_history=list(state.log_history),
        checkpoint_dir=newest,
        stopped_early=stopped_early,
        reason=reason,
    )


@contextlib.contextmanager
def _hf_progress_bars(enabled: bool) -> Iterator[None]:
    """Turn transformers' own progress bars (weight loading, shard writing) on or off for a block."""
    from transformers.utils import logging as hf_logging

    before = hf_logging.is_progress_bar_enabled()
    (hf_logging.enable_progress_bar if enabled else hf_logging.disable_progress_bar)()
    try:
        yield
    finally:
        (hf_logging.enable_progress_bar if before else hf_logging.disable_progress_bar)()


def _save_after_interrupt(trainer: Any, stop_guard: Any) -> Path | None:
    """Save a checkpoint for the steps completed when training was interrupted at once."""
    step = trainer.state.global_step
    if step == 0 or _world_size() > 1 or stop_guard.saved_step == step:
        return None
    try:
        trainer._save_checkpoint(trainer.model, trial=None)
    except Exception:  # a second failure while saving must not hide the interrupt
        return None
    folder = Path(trainer.args.output_dir) / f"{CHECKPOINT_PREFIX}{step}"
    return folder if (folder / "trainer_state.json").exists() else None


def _free_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
