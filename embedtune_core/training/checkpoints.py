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


#: what a checkpoint's trainer_state.json must hold for a resume to read it: key -> (types, what)
TRAINER_STATE = {"global_step": ((int,), "an integer"), "epoch": ((int, float, type(None)), "a number"),
                 "log_history": ((list,), "a list"), "max_steps": ((int,), "an integer")}


def checkpoint_problem(checkpoint: str | os.PathLike) -> str | None:
    """What is wrong with a checkpoint's ``trainer_state.json`` for a resume (None: nothing): it
    must be UTF-8 JSON, a table whose ``global_step`` is the folder's step, with the types the
    Trainer writes."""
    path = Path(checkpoint) / "trainer_state.json"
    try:
        state = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    except (UnicodeError, ValueError):
        return "is not valid JSON"
    if not isinstance(state, dict):
        return f"holds {type(state).__name__}, not a table"
    for key, (types, what) in TRAINER_STATE.items():
        if key in state and (not isinstance(state[key], types) or isinstance(state[key], bool)):
            return f"has '{key}' = {str(state[key])[:30]!r}, not {what}"
    if state.get("global_step") != checkpoint_step(checkpoint):
        return f"says step {state.get('global_step')!r} in the folder of step {checkpoint_step(checkpoint)}"
    return None


def check_checkpoint(checkpoint: str | os.PathLike) -> None:
    """Refuse to resume from a damaged checkpoint, naming its file and what to do."""
    from embedtune_core.errors import RunFolderError

    problem = checkpoint_problem(checkpoint)
    if problem is not None:
        raise RunFolderError(f"the checkpoint's trainer_state.json {problem}", file=Path(checkpoint) / "trainer_state.json",
                             hint=f"delete {Path(checkpoint).name} to resume from the checkpoint before it, or start "
                                  "again with --overwrite")


def trim_log(path: Path, last_step: int) -> int:
    """Keep the log rows up to ``last_step`` (rows logged after the checkpoint a resumed run
    starts from would otherwise appear twice). Lines that are not a JSON row with an integer step
    (cut short by a crash, or damaged) are dropped; returns how many."""
    from embedtune_core.io import write_text

    if not path.exists():
        return 0
    kept, dropped = [], 0
    for line in path.read_bytes().decode("utf-8", "replace").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        step = row.get("step") if isinstance(row, dict) else None
        if not isinstance(step, int) or isinstance(step, bool) or "\ufffd" in line:
            dropped += bool(line.strip())
            continue
        if step <= last_step:
            kept.append(line)
    write_text(path, "".join(line + "\n" for line in kept))
    return dropped


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
