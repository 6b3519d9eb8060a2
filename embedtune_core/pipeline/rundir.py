"""The run folder: created (or continued, or replaced) only once a run has passed its checks,
with ``state.json`` recording the finished steps so ``--resume`` reuses them.

    RUN/config.toml       the resolved settings: the file alone reproduces the run
    RUN/metrics.json      before/after metrics, training and mining statistics
    RUN/report.md, .html  the report
    RUN/mined.jsonl       the mined training data (when a mine step ran)
    RUN/state.json        finished steps of an interrupted run
    RUN/model/, RUN/checkpoints/, RUN/training_log.jsonl   see embedtune_core.training.checkpoints
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from embedtune_core.errors import ConfigError, RunFolderError
from embedtune_core.distributed import is_main_process

#: Where ``prepare_run_dir(..., overwrite=True)`` keeps the previous run until the new one finishes.
REPLACED_SUFFIX = ".replaced"
STATE_FILE = "state.json"
MINED_FILE = "mined.jsonl"


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
    if not is_main_process():
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
    if not is_main_process():
        path.mkdir(parents=True, exist_ok=True)
        return path
    if resume and path.is_dir():
        remove_leftovers(path)
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
    if is_main_process() and aside.exists():
        shutil.rmtree(aside, ignore_errors=True)



def remove_leftovers(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files (``.NAME.*.tmp``) an interrupted write left in a run folder."""
    removed = []
    for leftover in Path(path).glob(".*.tmp"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
        removed.append(leftover)
    return removed


def load_state(run_dir: Path) -> dict[str, Any]:
    """The finished steps an interrupted run recorded (empty when none)."""
    path = run_dir / STATE_FILE
    if path.exists():
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            return state if isinstance(state, dict) else {}
        except ValueError:
            return {}
    return {}


def save_state(run_dir: Path, state: dict[str, Any]) -> None:
    from embedtune_core import io as eio

    if is_main_process():
        eio.write_json(run_dir / STATE_FILE, state)


def abandon_run_dir(path: str | os.PathLike) -> None:
    """Undo :func:`prepare_run_dir` for a run that failed before doing anything: delete the new
    folder and put back the run it replaced (if any)."""
    path = Path(path)
    if not is_main_process():
        return
    shutil.rmtree(path, ignore_errors=True)
    aside = replaced_path(path)
    if aside.exists():
        os.replace(aside, path)
