"""Built-in training callbacks: a JSONL metrics log (more in later modules of this file)."""

from __future__ import annotations

import json
import os
from typing import Any

from embedtune_core import hookimpl


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


@hookimpl
def register_callbacks(register):
    register("metrics-log", metrics_log)
