"""The training step on sentence-transformers' ``SentenceTransformerTrainer``: checkpoints, resume
and faults.

Faults become :class:`~embedtune_core.errors.TrainingError` with a hint: a NaN or infinite loss
stops the run before the bad step changes the weights or writes a checkpoint; out of memory
suggests a smaller batch or a constant-memory loss; Ctrl-C saves a checkpoint at the end of the
current step so ``--resume`` continues from there. A process killed outright resumes from its
newest complete checkpoint; a run whose training had finished is never trained further.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

import attrs

from embedtune_core.config.schema import TrainingConfig
from embedtune_core.errors import RunFolderError, TrainingError
from embedtune_core.training import guards
from embedtune_core.training.arguments import decide_batch_sampler, training_arguments
from embedtune_core.training.checkpoints import (
    CHECKPOINTS,
    TRAINING_LOG,
    check_checkpoint,
    checkpoint_step,
    hf_progress_bars,
    newest_checkpoint,
    remove_incomplete_checkpoints,
    trim_log,
)
from embedtune_core.training.losses import LossTraits, fit_dataset
from embedtune_core.distributed import is_main_process


class TrainingInterrupted(TrainingError):
    """Training was interrupted (Ctrl-C); a checkpoint was saved when possible."""

    exit_code = 130
    keeps_run = True


class TrainingStopped(TrainingError):
    """Training stopped on a bad loss; the run folder keeps the last good checkpoint for --resume."""

    keeps_run = True


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
    best_checkpoint: str | None = None


@attrs.frozen
class TrainSetup:
    """Everything :func:`train` needs besides the model, the data and the loss: the training
    settings, what the loss declared (:class:`~embedtune_core.training.losses.LossTraits`:
    in-batch negatives, how it reads rows, constant memory), whether the data's order matters (a
    miner declared ``ordered``), the callback objects, a constant-memory loss to suggest when
    memory runs out, and the data's name for the model card. ``batch_sampler = "auto"`` is
    decided from the traits and ``ordered``. ``validation`` scores a model on a held-out
    validation part (a callable ``model -> float``, higher is better, reported as
    ``validation_METRIC``): the run is scored every epoch (every ``eval_steps`` when set) and the
    best-scoring checkpoint is kept."""

    config: TrainingConfig
    traits: LossTraits = LossTraits(accepts=None, in_batch_negatives=False, input="rows", constant_memory=False)
    ordered: bool = False
    callbacks: tuple = ()
    large_batch_loss: str | None = None
    dataset_name: str | None = None
    validation: Any = None
    validation_metric: str = "ndcg@10"

    @property
    def validation_key(self) -> str | None:
        """The name the validation score is logged under (``eval_`` prefixed by the Trainer)."""
        return f"validation_{self.validation_metric}" if self.validation is not None else None

    def decided(self, *, hidden: int | None = None, rows: int | None = None) -> TrainingConfig:
        """The settings with ``batch_sampler`` decided, and ``learning_rate = "auto"`` for a
        model of ``hidden`` size trained on ``rows`` rows (a run's preflight decides both
        before; this is for direct callers)."""
        from embedtune_core.training.advice import decide_learning_rate

        sampler = decide_batch_sampler(self.config.batch_sampler, ordered=self.ordered,
                                       in_batch_negatives=self.traits.in_batch_negatives)
        config = decide_learning_rate(self.config, hidden=hidden, rows=rows)
        return attrs.evolve(config, batch_sampler=sampler)


def _hidden_size(model: Any) -> int | None:
    """The hidden size of the transformer inside a SentenceTransformer (None: not one)."""
    try:
        return int(model[0].auto_model.config.hidden_size)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        return None


def train(model: Any, train_dataset: Any, loss: Any, setup: TrainSetup, run_dir: str | Path, *,
          eval_dataset: Any = None, resume: bool = False, quiet: bool = False) -> TrainResult:
    """Train ``model`` in place on ``train_dataset`` with ``loss`` (a loss module built for this
    model). Checkpoints go to ``run_dir/checkpoints``; ``resume=True`` continues from the newest
    complete checkpoint (from step 0 when there is none). The weights are left in ``model``; save
    them with :func:`embedtune_core.training.checkpoints.save_model`."""
    from sentence_transformers import SentenceTransformerTrainer

    run_dir = Path(run_dir)
    if train_dataset is None or len(train_dataset) == 0:
        raise TrainingError("the training data is empty", hint="check the data source and data.limit")
    train_dataset = fit_dataset(train_dataset, setup.traits.input)
    eval_dataset = fit_dataset(eval_dataset, setup.traits.input)
    device = str(getattr(model, "device", "cpu"))
    decided = setup.decided(hidden=_hidden_size(model), rows=len(train_dataset))
    args = training_arguments(decided, run_dir, has_eval=eval_dataset is not None, device=device, quiet=quiet,
                              validation_metric=setup.validation_key)
    checkpoint = _checkpoint_to_resume(run_dir, resume, quiet)
    _prepare_log(run_dir, checkpoint)
    _describe_for_card(model, setup.dataset_name, quiet)
    nan_guard, stop_guard, callbacks = _callbacks(setup, loss)
    with hf_progress_bars(False):
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train_dataset,
                                             eval_dataset=eval_dataset, loss=loss, callbacks=callbacks,
                                             evaluator=_validation_evaluator(setup))
    _drop_default_display(trainer)
    if checkpoint is not None and checkpoint_step(checkpoint) >= _target_steps(trainer):
        nan_guard.unwatch()
        trainer._load_from_checkpoint(str(checkpoint))  # training had ended: the weights, no more steps
        return _result_of_checkpoint(checkpoint)
    try:
        with guards.SigintHandler(stop_guard, quiet), hf_progress_bars(False), warnings.catch_warnings():
            # the libraries' notices about their own deprecated calls under DDP, once a step
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"(accelerate|sentence_transformers)\.")
            output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    except KeyboardInterrupt:
        saved = guards.save_after_interrupt(trainer, stop_guard)
        raise TrainingInterrupted(
            f"training interrupted at step {trainer.state.global_step}" + (f"; checkpoint saved in {saved}" if saved else ""),
            file=run_dir, hint="continue with --resume" if saved or newest_checkpoint(run_dir) else "start again",
        ) from None
    except Exception as exc:
        _raise_known_fault(exc, setup, trainer.state.global_step + 1, run_dir)
        raise
    finally:
        nan_guard.unwatch()
    return _result(trainer, output, setup, nan_guard, stop_guard, run_dir)


def _validation_evaluator(setup: TrainSetup) -> Any:
    """A sentence-transformers evaluator reporting ``setup.validation``'s score of the model (in
    eval mode: no dropout) under ``setup.validation_key``; None without a validation part."""
    if setup.validation is None:
        return None
    from sentence_transformers.base.evaluation import BaseEvaluator

    class ValidationEvaluator(BaseEvaluator):
        def __init__(self) -> None:
            super().__init__()
            self.greater_is_better = True
            self.primary_metric = setup.validation_key

        def __call__(self, model: Any, output_path: Any = None, epoch: Any = -1, steps: Any = -1) -> dict:
            was_training = model.training
            model.eval()
            try:
                return {self.primary_metric: float(setup.validation(model))}
            finally:
                model.train(was_training)

    return ValidationEvaluator()


def _checkpoint_to_resume(run_dir: Path, resume: bool, quiet: bool) -> Path | None:
    checkpoint = newest_checkpoint(run_dir)
    if not resume:
        if checkpoint is not None:
            raise RunFolderError("the run folder has checkpoints of an earlier run", file=run_dir,
                                 hint="pass --resume to continue it, or --overwrite to start again")
        return None
    if checkpoint is not None:
        check_checkpoint(checkpoint)
    if not quiet and is_main_process():
        if checkpoint is None:
            print(f"no checkpoint in {run_dir / CHECKPOINTS}: starting from step 0", file=sys.stderr)
        else:
            state = _trainer_state(checkpoint)
            print(f"resuming from {checkpoint} (step {checkpoint_step(checkpoint)} of {state.get('max_steps', '?')})",
                  file=sys.stderr)
    return checkpoint


def _prepare_log(run_dir: Path, checkpoint: Path | None) -> None:
    log_path = run_dir / TRAINING_LOG
    if not is_main_process():
        return
    if checkpoint is not None:
        dropped = trim_log(log_path, checkpoint_step(checkpoint))
        if dropped:
            print(f"warning: {log_path}: {dropped} damaged line(s) of the training log were dropped", file=sys.stderr)
    elif log_path.exists():
        log_path.unlink()


def _describe_for_card(model: Any, dataset_name: str | None, quiet: bool) -> None:
    card = getattr(model, "model_card_data", None)
    if card is None:
        return
    card.local_files_only = True
    if quiet:  # the widget examples have a progress bar of their own; a quiet run's card does without
        card.set_widget_examples = lambda dataset: None
    if dataset_name:
        card.train_datasets = [{"name": dataset_name}]
    if hasattr(card, "add_tags"):
        card.add_tags("embedtune")


def _callbacks(setup: TrainSetup, loss: Any) -> tuple[Any, Any, list[Any]]:
    """The NaN guard (a configured one, else a new one) watching ``loss``, the stop guard, and
    every callback in the order the Trainer gets them."""
    from transformers import EarlyStoppingCallback

    extra = list(setup.callbacks)
    nan_guard = next((c for c in extra if getattr(c, "is_nan_guard", False)), None)
    if nan_guard is None:
        nan_guard = guards.make_nan_guard()
    else:
        extra.remove(nan_guard)
    nan_guard.watch(loss)
    stop_guard = guards.make_stop_guard()
    patience = setup.config.early_stopping_patience
    if patience and not any(isinstance(c, EarlyStoppingCallback) for c in extra):
        extra.append(EarlyStoppingCallback(early_stopping_patience=patience))
    return nan_guard, stop_guard, [nan_guard, stop_guard] + extra


def _drop_default_display(trainer: Any) -> None:
    """The Trainer's own bar and printer (every log as a dict) give way to the progress callback."""
    from transformers import PrinterCallback, ProgressCallback

    for default in (ProgressCallback, PrinterCallback):
        for callback in list(trainer.callback_handler.callbacks):
            if type(callback) is default:
                trainer.callback_handler.remove_callback(callback)


def _trainer_state(checkpoint: Path) -> dict[str, Any]:
    try:
        return json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _target_steps(trainer: Any) -> int:
    """The optimizer steps this training runs to, counted as the Trainer counts them (a
    checkpoint at or past it has finished: resuming from it must not train on)."""
    import math

    args = trainer.args
    if args.max_steps > 0:
        return args.max_steps
    # a last group of fewer batches than gradient_accumulation_steps is a step too
    per_epoch = max(math.ceil(len(trainer.get_train_dataloader()) / args.gradient_accumulation_steps), 1)
    return math.ceil(args.num_train_epochs * per_epoch)


def _result_of_checkpoint(checkpoint: Path) -> TrainResult:
    state = _trainer_state(checkpoint)
    history = list(state.get("log_history") or [])
    losses = [row["loss"] for row in history if isinstance(row.get("loss"), (int, float))]
    return TrainResult(global_step=int(state.get("global_step", 0)), epochs=float(state.get("epoch") or 0.0),
                       training_loss=sum(losses) / len(losses) if losses else None, log_history=history,
                       checkpoint_dir=checkpoint)


def _raise_known_fault(exc: BaseException, setup: TrainSetup, step: int, run_dir: Path) -> None:
    """Out of memory and a full disk (while a checkpoint is written) become one clear error;
    anything else is left to the caller."""
    if guards.is_out_of_memory(exc):
        guards.free_memory()
        raise guards.out_of_memory_error(exc, setup.config.batch_size, step, constant_memory=setup.traits.constant_memory,
                                         alternative=setup.large_batch_loss) from None
    from embedtune_core.io import disk_full_error

    error = disk_full_error(exc, run_dir / CHECKPOINTS, f"checkpoint-{step}")
    if error is not None:
        remove_incomplete_checkpoints(run_dir)  # the newest complete one stays: --resume continues
        raise error from None


def _result(trainer: Any, output: Any, setup: TrainSetup, nan_guard: Any, stop_guard: Any, run_dir: Path) -> TrainResult:
    newest = newest_checkpoint(run_dir)
    if nan_guard.bad_step is not None:
        kept = f"the last good checkpoint is {newest}" if newest else "no checkpoint had been saved yet"
        raise TrainingStopped(
            f"the training loss became {nan_guard.bad_value} at step {nan_guard.bad_step}; training stopped and {kept}",
            file=run_dir,
            hint="lower training.learning_rate, use training.precision = fp32, or check the data for empty or "
                 "broken rows; then --resume from the checkpoint or --overwrite to start again",
        )
    if stop_guard.requested:
        raise TrainingInterrupted(f"training interrupted at step {trainer.state.global_step}; checkpoint saved in {newest}",
                                  file=run_dir, hint="continue with --resume")
    state = trainer.state
    stopped_early = state.global_step < state.max_steps
    reason = "completed"
    if stopped_early:
        patience = setup.config.early_stopping_patience
        watched = setup.validation_key.replace("_", " ", 1) if setup.validation_key else "eval loss"
        reason = (f"early stopping: {watched} did not improve for {patience} evaluations" if patience
                  else "stopped by a callback")
    return TrainResult(
        global_step=state.global_step,
        epochs=float(state.epoch or 0.0),
        training_loss=float(output.training_loss) if output.training_loss is not None else None,
        log_history=list(state.log_history),
        checkpoint_dir=newest,
        stopped_early=stopped_early,
        reason=reason,
        best_checkpoint=state.best_model_checkpoint,
    )
