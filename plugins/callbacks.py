"""Built-in training callbacks: a JSONL metrics log and a progress bar (both attached by default),
early stopping, the NaN guard and a bridge to the Trainer's reporting integrations
(tensorboard, wandb).

Any ``transformers.TrainerCallback`` works as a callback; a pack registers a factory that
returns one. A factory that declares ``run_dir`` or ``quiet`` receives the run folder and
whether the run is quiet.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import attrs

from embedtune_core import hookimpl
from embedtune_core.plugins.options import OptionError, Range


def metrics_log(path: Annotated[str | None, "file to append to (default: RUN/training_log.jsonl)"] = None, *,
                run_dir: Any = None) -> Any:
    """Append every logged value (loss, learning rate, eval metrics) to a JSONL file."""
    from transformers import TrainerCallback

    from embedtune_core.training.checkpoints import TRAINING_LOG

    target = path or (str(Path(run_dir) / TRAINING_LOG) if run_dir is not None else None)

    class MetricsLogCallback(TrainerCallback):
        def __init__(self, path: str | None) -> None:
            self.path = path

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs:
                return
            target = self.path or os.path.join(args.output_dir, TRAINING_LOG)
            os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
            row = {"step": state.global_step, "epoch": state.epoch, **logs}
            with open(target, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(row, default=float) + "\n")

    return MetricsLogCallback(target)


def progress(show_eval: Annotated[bool, "print each eval loss under the bar"] = True, *, quiet: bool = False) -> Any:
    """A progress bar over the training steps with the latest loss (--quiet hides it)."""
    from transformers import TrainerCallback

    from embedtune_core.training.guards import make_progress

    return TrainerCallback() if quiet else make_progress(show_eval=show_eval)


def early_stopping(patience: Annotated[int, Range(ge=1), "evaluations without improvement before stopping"] = 3,
                   threshold: Annotated[float, Range(ge=0), "smallest improvement that counts"] = 0.0) -> Any:
    """Stop when the eval loss has not improved for `patience` evaluations (needs eval_steps)."""
    from transformers import EarlyStoppingCallback

    return EarlyStoppingCallback(early_stopping_patience=patience, early_stopping_threshold=threshold)


def nan_guard() -> Any:
    """Stop training when the loss is NaN or infinite, keeping the last good checkpoint (always on)."""
    from embedtune_core.training.guards import make_nan_guard

    return make_nan_guard()


@attrs.frozen
class ReportToOptions:
    """The options of ``report-to``: the integration must be installed."""

    to: Annotated[Literal["tensorboard", "wandb"], "where the logs go"] = "tensorboard"
    log_dir: Annotated[str | None, "tensorboard folder (default: the Trainer's)"] = None

    def __attrs_post_init__(self) -> None:
        from embedtune_core.training.arguments import missing_report_package

        missing = missing_report_package(self.to)
        if missing:
            raise OptionError(f"reporting to {self.to} needs the '{missing}' package, which is not installed",
                              option="to", hint=f"pip install {missing}")


def report_to(options: ReportToOptions) -> Any:
    """Send the training logs to tensorboard or wandb (the package must be installed)."""
    to, log_dir = options.to, options.log_dir
    if to == "wandb":
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


@hookimpl
def register_callbacks(register):
    register("metrics-log", metrics_log, default=True)
    register("progress", progress, default=True)
    register("early-stopping", early_stopping, needs_eval=True)
    register("nan-guard", nan_guard)
    register("report-to", report_to)
