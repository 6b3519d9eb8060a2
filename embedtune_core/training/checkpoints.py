"""The files training writes into a run folder: checkpoints, the training log and the model.

    RUN/checkpoints/checkpoint-N/   every ``save_steps`` (or once an epoch), resumable
    RUN/training_log.jsonl          one JSON row per logged step (the ``metrics-log`` callback)
    RUN/model/                      the trained model (:func:`save_model`)
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Iterator

CHECKPOINTS = "checkpoints"
CHECKPOINT_PREFIX = "checkpoint-"
TRAINING_LOG = "training_log.jsonl"


def checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """The complete checkpoints of a run, oldest first. A checkpoint is complete once its
    ``trainer_state.json`` exists (the Trainer writes it last)."""
    folder = Path(run_dir) / CHECKPOINTS
    if not folder.is_dir():
        return []
    found = []
    for child in folder.iterdir():
        suffix = child.name[len(CHECKPOINT_PREFIX):]
        if child.name.startswith(CHECKPOINT_PREFIX) and suffix.isascii() and suffix.isdigit() \
                and (child / "trainer_state.json").exists():
            found.append((int(suffix), child))
    return [p for _, p in sorted(found)]


def remove_incomplete_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """Delete checkpoint folders cut short (no ``trainer_state.json``), e.g. by a full disk."""
    import shutil

    folder = Path(run_dir) / CHECKPOINTS
    removed = [c for c in folder.glob(f"{CHECKPOINT_PREFIX}*") if c.is_dir() and not (c / "trainer_state.json").exists()]
    for checkpoint in removed:
        shutil.rmtree(checkpoint, ignore_errors=True)
    return removed


def newest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    found = checkpoints(run_dir)
    return found[-1] if found else None


def checkpoint_step(checkpoint: str | os.PathLike) -> int:
    return int(Path(checkpoint).name[len(CHECKPOINT_PREFIX):])


def trim_log(path: Path, last_step: int) -> None:
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


@contextlib.contextmanager
def hf_progress_bars(enabled: bool) -> Iterator[None]:
    """Turn transformers' own progress bars (weight loading, shard writing) on or off for a block."""
    from transformers.utils import logging as hf_logging

    before = hf_logging.is_progress_bar_enabled()
    (hf_logging.enable_progress_bar if enabled else hf_logging.disable_progress_bar)()
    try:
        yield
    finally:
        (hf_logging.enable_progress_bar if before else hf_logging.disable_progress_bar)()


def save_model(model: Any, path: str | os.PathLike) -> Path:
    """Save ``model`` in sentence-transformers format with safetensors weights, written to a
    temporary folder and renamed into place."""
    from embedtune_core.io import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp, hf_progress_bars(False):
        model.save(str(tmp), safe_serialization=True)
    return path
