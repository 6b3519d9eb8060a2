"""Built-in training callbacks: a JSONL metrics log, a progress bar, early stopping, the NaN guard
and a bridge to the Trainer's reporting integrations (tensorboard, wandb).

Any ``transformers.TrainerCallback`` works as a callback; a pack registers a factory that
returns one.
"""

from __future__ import annotations

import json
import os
from typing import Any

from embedtune_core import hookimpl
from embedtune_core.errors import ComponentError


def metrics_log(path: str | None = None) -> Any:
    """Append every logged value (loss, learning rate, eval metrics) to a JSONL file."""
    from transformers import TrainerCallback

    class MetricsLogCallback(TrainerCallback):
        def __init__(self, path: str | None) -> None:
            self.path = path

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs:
                return
            target = self.path or os.path.join(args.output_dir, "training_log.jsonl")
            os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
            row = {"step": state.global_step, "epoch": state.epoch, **logs}
            with open(target, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(row, default=float) + "\n")

    return MetricsLogCallback(path)


def progress(show_eval: Any = True) -> Any:
    """A progress bar over the training steps with the latest loss (on by default; --quiet hides it)."""
    from embedtune_core.training.trainer import make_progress

    return make_progress(show_eval=_flag("progress", "show_eval", show_eval))


def early_stopping(patience: Any = 3, threshold: Any = 0.0) -> Any:
    """Stop when the eval loss has not improved for `patience` evaluations (needs eval_steps)."""
    from transformers import EarlyStoppingCallback

    patience_value, threshold_value = _early_stopping_values(patience, threshold)
    return EarlyStoppingCallback(early_stopping_patience=patience_value, early_stopping_threshold=threshold_value)


def _early_stopping_values(patience: Any = 3, threshold: Any = 0.0) -> tuple[int, float]:
    key = "training.callback_options.early-stopping"
    try:
        patience_value = int(patience)
        threshold_value = float(threshold)
    except (TypeError, ValueError):
        raise ComponentError(
            f"callback 'early-stopping' options must be numbers: patience={patience!r}, threshold={threshold!r}",
            key=key,
        ) from None
    if patience_value < 1 or threshold_value < 0:
        raise ComponentError("callback 'early-stopping' needs patience >= 1 and threshold >= 0", key=key)
    return patience_value, threshold_value


def _check_early_stopping(patience: Any = 3, threshold: Any = 0.0) -> None:
    _early_stopping_values(patience, threshold)


def _check_progress(show_eval: Any = True) -> None:
    _flag("progress", "show_eval", show_eval)


def _check_report_to(to: str = "tensorboard", log_dir: str | None = None) -> None:
    from embedtune_core.training.trainer import check_report_to

    check_report_to(to, key="training.callback_options.report-to.to", error=ComponentError)


def nan_guard() -> Any:
    """Stop training when the loss is NaN or infinite, keeping the last good checkpoint (always on)."""
    from embedtune_core.training.trainer import make_nan_guard

    return make_nan_guard()


def report_to(to: str = "tensorboard", log_dir: str | None = None) -> Any:
    """Send the training logs to tensorboard or wandb (the package must be installed)."""
    from embedtune_core.training.trainer import check_report_to

    name = check_report_to(to, key="training.callback_options.report-to.to", error=ComponentError)
    if name == "wandb":
        from transformers.integrations import WandbCallback

        return WandbCallback()
    from transformers.integrations import TensorBoardCallback

    writer = None
    if log_dir:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboardX only
            from tensorboardX import SummaryWriter
        writer = SummaryWriter(log_dir=str(log_dir))
    return TensorBoardCallback(tb_writer=writer)


def _flag(callback: str, option: str, value: Any) -> bool:
    from embedtune_core.config.schema import parse_flag

    try:
        return parse_flag(value)
    except ValueError:
        pass
    raise ComponentError(f"callback '{callback}' option '{option}' must be true or false, got {value!r}",
                         key=f"training.callback_options.{callback}.{option}")


@hookimpl
def register_callbacks(register):
    register("metrics-log", metrics_log)
    register("progress", progress, check=_check_progress)
    register("early-stopping", early_stopping, check=_check_early_stopping)
    register("nan-guard", nan_guard)
    register("report-to", report_to, check=_check_report_to)
