"""``SentenceTransformerTrainingArguments`` from the ``[training]`` config section, and the checks
of settings that depend on each other, the machine or installed packages."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from embedtune_core.config.schema import TrainingConfig
from embedtune_core.errors import ConfigError
from embedtune_core.training.checkpoints import CHECKPOINTS

REPORT_TARGETS = ("tensorboard", "wandb")
_REPORT_MODULES = {"tensorboard": ("tensorboard", "tensorboardX"), "wandb": ("wandb",)}


def resolve_precision(precision: str, device: str | None = None) -> str:
    """The precision a setting means on this machine: ``fp32``, ``fp16`` or ``bf16``. ``auto``:
    bf16 on a CUDA GPU that supports it, else fp16 on a CUDA GPU, else fp32. ``fp16``/``bf16``
    without a CUDA GPU is an error."""
    import torch

    on_cpu = device is not None and str(device).startswith(("cpu", "mps"))
    cuda = torch.cuda.is_available() and not on_cpu
    if precision == "fp32":
        return "fp32"
    if precision == "auto":
        if not cuda:
            return "fp32"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if not cuda:
        raise ConfigError(
            f"precision '{precision}' needs a CUDA GPU", key="training.precision", hint="use auto or fp32 on this machine"
        )
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise ConfigError("this GPU does not support bf16", key="training.precision", hint="use fp16 or auto")
    return precision


def missing_report_package(target: str) -> str | None:
    """The package reporting to ``target`` needs when it is not installed, else None."""
    import importlib.util

    modules = _REPORT_MODULES[target]
    return None if any(importlib.util.find_spec(m) is not None for m in modules) else modules[0]


def check_report_to(target: Any, *, key: str = "training.report_to") -> str:
    """``target`` when its package is installed; a clear error otherwise."""
    name = str(target).strip().lower()
    if name not in REPORT_TARGETS:
        raise ConfigError(f"cannot report to '{target}'", key=key, hint="use one of: " + ", ".join(REPORT_TARGETS))
    missing = missing_report_package(name)
    if missing:
        raise ConfigError(f"reporting to {name} needs the '{missing}' package, which is not installed", key=key,
                          hint=f"pip install {missing}")
    return name


def check_training_config(config: TrainingConfig, *, has_eval: bool, validating: bool = False) -> None:
    """Check the training settings that depend on each other or on installed packages (a
    :class:`ConfigError` otherwise). ``validating``: the run holds out a validation part
    (``training.validation_fraction``), scored every epoch when ``eval_steps`` is unset."""
    evaluate = bool(config.eval_steps) or validating
    if config.eval_steps and not has_eval:
        raise ConfigError("training.eval_steps needs evaluation data", key="training.eval_steps",
                          hint="give held-out data (data.eval_source or data.eval_fraction > 0) or unset eval_steps")
    if config.load_best_model_at_end and not evaluate:
        raise ConfigError("load_best_model_at_end needs evaluation during training", key="training.load_best_model_at_end",
                          hint="set training.eval_steps or training.validation_fraction too")
    if config.early_stopping_patience and not evaluate:
        raise ConfigError("early stopping needs evaluation during training", key="training.early_stopping_patience",
                          hint="set training.eval_steps or training.validation_fraction too")
    if (config.load_best_model_at_end or validating) and config.eval_steps:
        save_steps = save_steps_of(config, validating=validating)
        if save_steps % config.eval_steps:
            raise ConfigError(
                f"with load_best_model_at_end, save_steps ({save_steps}) must be a multiple of eval_steps ({config.eval_steps})",
                key="training.save_steps", hint=f"e.g. save_steps = {config.eval_steps}",
            )
    for target in config.report_to:
        check_report_to(target)


def save_steps_of(config: TrainingConfig, *, validating: bool = False) -> int | None:
    """Checkpoint every this many steps (None: once an epoch); when the best checkpoint is kept
    (load_best_model_at_end, or a validation part), every evaluation unless set."""
    if config.load_best_model_at_end or validating:
        return config.save_steps or config.eval_steps
    return config.save_steps


def decide_batch_sampler(setting: str, *, in_batch_negatives: bool, ordered: bool) -> str:
    """``training.batch_sampler`` decided: ``auto`` is sequential for data whose order matters
    (a miner declared ``ordered``), no_duplicates for a loss declared with in-batch negatives,
    else the plain sampler."""
    if setting != "auto":
        return setting
    if ordered:
        return "sequential"
    return "no_duplicates" if in_batch_negatives else "batch_sampler"


def batch_sampler(name: str) -> Any:
    """What ``SentenceTransformerTrainingArguments(batch_sampler=...)`` takes for a resolved
    sampler name: ``batch_sampler``, ``no_duplicates`` or ``sequential`` (keeps the data's order)."""
    if name == "sequential":
        from embedtune_core.training.samplers import sequential_batch_sampler

        return sequential_batch_sampler
    try:
        from sentence_transformers.base.sampler import BatchSamplers
    except ImportError:  # sentence-transformers 5
        from sentence_transformers.training_args import BatchSamplers
    return BatchSamplers(name)


def training_arguments(config: TrainingConfig, output_dir: str | os.PathLike, *, has_eval: bool,
                       device: str | None = None, quiet: bool = False, validation_metric: str | None = None) -> Any:
    """``SentenceTransformerTrainingArguments`` for ``config`` (its ``batch_sampler`` decided,
    see :func:`decide_batch_sampler`; ``precision = "auto"`` is decided here for ``device``);
    checkpoints go to ``output_dir/checkpoints``. ``device`` "cpu" keeps training on the CPU.
    ``validation_metric``: the name an evaluator reports its validation score under
    (``validation_ndcg@10``); the run is then evaluated every epoch (every ``eval_steps`` when
    set) and the checkpoint with the highest score is loaded at the end."""
    import dataclasses

    from sentence_transformers import SentenceTransformerTrainingArguments

    from embedtune_core.distributed import world_size
    from transformers import TrainingArguments

    if config.batch_sampler == "auto":
        raise ValueError("training_arguments needs a decided batch_sampler (see decide_batch_sampler)")
    if config.learning_rate == "auto":
        raise ValueError("training_arguments needs a decided learning_rate (see advice.decide_learning_rate)")
    precision = resolve_precision(config.precision, device)
    validating = validation_metric is not None
    evaluate = bool(config.eval_steps) and (has_eval or validating)
    save_steps = save_steps_of(config, validating=validating)
    best_by = f"eval_{validation_metric}" if validating else "eval_loss" if evaluate else None
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
        fp16=precision == "fp16",
        bf16=precision == "bf16",
        gradient_checkpointing=config.gradient_checkpointing,
        batch_sampler=batch_sampler(config.batch_sampler),
        eval_strategy="steps" if evaluate else "epoch" if validating else "no",
        eval_steps=config.eval_steps if evaluate else None,
        save_strategy="steps" if save_steps else "epoch",
        save_steps=save_steps or 500,
        save_total_limit=config.save_total_limit,
        load_best_model_at_end=config.load_best_model_at_end or validating,
        metric_for_best_model=best_by,
        greater_is_better=validating if best_by else None,
        logging_steps=config.logging_steps,
        logging_first_step=True,
        report_to=[str(t).strip().lower() for t in config.report_to] or "none",
        dataloader_num_workers=config.dataloader_workers,
        disable_tqdm=quiet,
        run_name=Path(output_dir).name,
    )
    if device is not None and str(device).startswith("cpu"):
        kwargs["use_cpu"] = True
    if world_size() > 1:  # every process takes a full batch each step (sentence-transformers asks for it)
        kwargs["dataloader_drop_last"] = True
    fields = {f.name for f in dataclasses.fields(TrainingArguments)}
    if "activation_checkpointing" in fields:  # transformers 5 name
        kwargs["activation_checkpointing"] = kwargs.pop("gradient_checkpointing")
    if "warmup_ratio" in fields:  # transformers 4
        kwargs["warmup_ratio"] = config.warmup_ratio
    else:  # transformers 5: a warmup_steps value below 1 is a ratio of the total steps
        kwargs["warmup_steps"] = min(config.warmup_ratio, 0.999999)
    return SentenceTransformerTrainingArguments(**kwargs)
