"""What keeps a training run safe and visible: the NaN guard, the stop guard behind Ctrl-C, the
progress bar, and out-of-memory errors that say what to change."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

from embedtune_core.errors import TrainingError
from embedtune_core.distributed import world_size


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
    """A tqdm progress bar over the optimizer steps, with the learning rate of the current step
    and the latest logged loss with the step it was logged at (the Trainer's own bar, which
    prints every log as a dict, made quieter)."""
    from transformers import ProgressCallback

    class EmbedtuneProgressCallback(ProgressCallback):
        def __init__(self) -> None:
            super().__init__()
            self.show_eval = show_eval
            self.shown: dict[str, str] = {}

        def on_step_end(self, args, state, control, **kwargs):
            super().on_step_end(args, state, control, **kwargs)
            scheduler = kwargs.get("lr_scheduler")
            if state.is_world_process_zero and self.training_bar is not None and scheduler is not None:
                self.shown["lr"] = f"{scheduler.get_last_lr()[0]:.3g}"
                self.training_bar.set_postfix(self.shown, refresh=False)

        def on_train_begin(self, args, state, control, **kwargs):
            from tqdm.auto import tqdm

            if state.is_world_process_zero:
                self.training_bar = tqdm(total=state.max_steps, initial=state.global_step, dynamic_ncols=True,
                                         desc="training", unit="step")
            self.current_step = state.global_step

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or self.training_bar is None or not logs:
                return
            if isinstance(logs.get("loss"), (int, float)):
                self.shown = {"loss": f"{logs['loss']:.4g} (step {state.global_step})", **{
                    k: v for k, v in self.shown.items() if k == "lr"}}
                self.training_bar.set_postfix(self.shown, refresh=False)
            if self.show_eval and isinstance(logs.get("eval_loss"), (int, float)):
                self.training_bar.write(f"step {state.global_step}: eval loss {logs['eval_loss']:.4g}")

        def on_train_end(self, args, state, control, **kwargs):
            if state.is_world_process_zero and self.training_bar is not None:
                self.training_bar.close()
                self.training_bar = None

    return EmbedtuneProgressCallback()


class SigintHandler:
    """First Ctrl-C: ask the stop guard to save and stop after this step. Second: stop now."""

    def __init__(self, guard: Any, quiet: bool) -> None:
        self.guard = guard
        self.quiet = quiet
        self.previous: Any = None
        self.active = False

    def __enter__(self) -> "SigintHandler":
        if threading.current_thread() is threading.main_thread() and world_size() == 1:
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


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    oom_types = tuple(t for t in (getattr(torch, "OutOfMemoryError", None), getattr(torch.cuda, "OutOfMemoryError", None)) if t)
    if isinstance(exc, MemoryError) or (oom_types and isinstance(exc, oom_types)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def out_of_memory_error(exc: BaseException, batch_size: int, step: int, *, constant_memory: bool,
                        alternative: str | None) -> TrainingError:
    """The message for running out of memory: a smaller batch, and a loss whose memory does not
    grow with the batch (``alternative``, a loss registered with ``constant_memory=True``) when the
    current one is not such a loss."""
    import torch

    smaller = max(1, batch_size // 2)
    if constant_memory:
        hint = (f"lower the loss's mini_batch_size (the memory used), or training.batch_size "
                f"(e.g. -s training.batch_size={smaller}); gradient_checkpointing = true also saves memory")
    else:
        hint = f"use a smaller batch (e.g. -s training.batch_size={smaller})"
        if alternative:
            hint += f", or --loss {alternative}, which trains large batches in constant memory"
        hint += "; training.gradient_checkpointing = true also saves memory"
    oom_types = tuple(t for t in (getattr(torch, "OutOfMemoryError", None), getattr(torch.cuda, "OutOfMemoryError", None)) if t)
    on_gpu = isinstance(exc, oom_types) or "cuda" in str(exc).lower() or "mps" in str(exc).lower()
    where = "GPU" if on_gpu else "CPU"
    return TrainingError(f"out of {where} memory at step {step} with batch size {batch_size}",
                         key="training.batch_size", hint=hint)


def save_after_interrupt(trainer: Any, stop_guard: Any) -> Path | None:
    """Save a checkpoint for the steps completed when training was interrupted at once."""
    from embedtune_core.training.checkpoints import CHECKPOINT_PREFIX

    step = trainer.state.global_step
    if step == 0 or world_size() > 1 or stop_guard.saved_step == step:
        return None
    try:
        trainer._save_checkpoint(trainer.model, trial=None)
    except Exception:  # a second failure while saving must not hide the interrupt
        return None
    folder = Path(trainer.args.output_dir) / f"{CHECKPOINT_PREFIX}{step}"
    return folder if (folder / "trainer_state.json").exists() else None


def free_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
