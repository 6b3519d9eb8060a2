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

import contextlib
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


def _blocking_file(path: Path) -> Path | None:
    from embedtune_core.io import blocking_file

    return blocking_file(path)


def _check_writable(path: Path) -> None:
    from embedtune_core.io import check_writable

    check_writable(path, "the run folder", hint="check the folder's permissions, or choose another --output / output_dir")


def check_run_dir(path: str | os.PathLike, *, overwrite: bool = False, resume: bool = False,
                  keys: tuple[str | None, str | None] = (None, None)) -> None:
    """Raise what :func:`prepare_run_dir` would raise, without creating or changing anything:
    names the file system cannot hold, a file where a folder is needed, a folder that cannot be
    written, a run already in the folder, another run writing it. ``keys`` name the config keys
    that set the folder's name and its parent, for the errors about them."""
    path = Path(path)
    if overwrite and resume:
        raise ConfigError("--overwrite and --resume cannot be used together",
                          hint="--resume continues the run in the folder; --overwrite starts a new one")
    from embedtune_core.io import check_path_fits

    check_path_fits(path, "the run folder", hint="use a shorter run name (name), --output or output_dir",
                    room=len(".NAME.replaced"), keys=keys)
    blocking = _blocking_file(path)
    if blocking is not None:
        what = "the run folder path is a file" if blocking == path else "a part of the run folder's path is a file"
        raise RunFolderError(what, file=blocking, hint="choose another --output / output_dir, or move the file")
    aside = replaced_path(path)
    if aside.exists() and not aside.is_dir():
        raise RunFolderError(f"a file named {aside.name} is where --overwrite keeps the previous run", file=aside,
                             hint="remove or rename that file")
    if not is_main_process():
        return
    _check_writable(path)
    check_not_locked(path)
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
    from embedtune_core.io import refused

    path = Path(path)
    check_run_dir(path, overwrite=overwrite, resume=resume)
    with refused(path, "creating the run folder"):
        if not is_main_process():
            path.mkdir(parents=True, exist_ok=True)
            return path
        lock_run_dir(path)
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
    """The run in ``path`` has finished: delete the run it replaced (if any) and release the
    folder."""
    aside = replaced_path(path)
    if is_main_process() and aside.exists():
        shutil.rmtree(aside, ignore_errors=True)
    unlock_run_dir(path)


# -- one run at a time per folder ---------------------------------------------------------------
#: open lock files of the run folders this process writes, by path
_LOCKS: dict[str, Any] = {}


def lock_path(path: str | os.PathLike) -> Path:
    """The lock file of a run folder: ``.NAME.lock`` beside it (so it stays put when --overwrite
    moves the folder aside)."""
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


def _holder(lock: Path) -> str:
    try:
        return lock.read_text(encoding="utf-8").strip() or "another process"
    except (OSError, UnicodeError):
        return "another process"


def check_not_locked(path: str | os.PathLike) -> None:
    """Refuse a run folder another live embedtune process is writing. The lock is an OS lock on
    ``.NAME.lock``: it goes with the process, so one left by a killed run is no obstacle."""
    import fcntl

    lock = lock_path(path)
    if str(lock) in _LOCKS or not lock.exists():
        return
    try:
        with open(lock, "a+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(handle, fcntl.LOCK_UN)
    except BlockingIOError:
        raise RunFolderError(f"another run is writing this run folder ({_holder(lock)})", file=path,
                             hint="wait for it to finish, or give this run another name or --output") from None
    except OSError:
        return  # a lock file we cannot open is no sign of a live run; writing the folder will tell


def lock_run_dir(path: str | os.PathLike) -> None:
    """Take the run folder's lock for this process (see :func:`check_not_locked`)."""
    import fcntl

    lock = lock_path(path)
    if str(lock) in _LOCKS:
        return
    lock.parent.mkdir(parents=True, exist_ok=True)
    handle = open(lock, "a+", encoding="utf-8")  # noqa: SIM115 - held until the run ends
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise RunFolderError(f"another run is writing this run folder ({_holder(lock)})", file=path,
                             hint="wait for it to finish, or give this run another name or --output") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {os.uname().nodename}")
    handle.flush()
    _LOCKS[str(lock)] = handle


def unlock_run_dir(path: str | os.PathLike) -> None:
    """Release the run folder's lock (and remove the lock file)."""
    import fcntl

    lock = lock_path(path)
    handle = _LOCKS.pop(str(lock), None)
    if handle is None:
        return
    with contextlib.suppress(OSError):
        lock.unlink()
    with contextlib.suppress(OSError):
        fcntl.flock(handle, fcntl.LOCK_UN)
    handle.close()



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
    """The finished steps an interrupted run recorded (empty when none), checked: a damaged
    ``state.json`` is one error naming it and what to do, never a guess."""
    path = run_dir / STATE_FILE
    if not path.exists():
        return {}
    try:
        state = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise damaged_state(path, f"cannot be read ({exc.strerror or exc})") from None
    except (UnicodeError, ValueError):
        raise damaged_state(path, "is not valid UTF-8 JSON") from None
    if not isinstance(state, dict):
        raise damaged_state(path, f"holds {type(state).__name__}, not a table")
    steps = state.get("steps", {})
    if not isinstance(steps, dict) or not all(isinstance(v, dict) for v in steps.values()):
        raise damaged_state(path, "has 'steps' that is not a table of tables")
    if not isinstance(state.get("finished", False), bool):
        raise damaged_state(path, "has 'finished' that is not true or false")
    return state


def damaged_state(path: Path, problem: str) -> RunFolderError:
    """The error for a run folder's ``state.json`` that a resume cannot read."""
    return RunFolderError(f"{STATE_FILE} {problem}", file=path,
                          hint="delete it to redo the run's finished steps with --resume (checkpoints are kept), or "
                               "start again with --overwrite")


def save_state(run_dir: Path, state: dict[str, Any]) -> None:
    from embedtune_core import io as eio

    if is_main_process():
        eio.write_json(run_dir / STATE_FILE, state)


def abandon_run_dir(path: str | os.PathLike) -> None:
    """Undo :func:`prepare_run_dir` for a run that failed: delete the new folder and put back the
    run it replaced (if any)."""
    path = Path(path)
    if not is_main_process():
        return
    shutil.rmtree(path, ignore_errors=True)
    aside = replaced_path(path)
    if aside.exists():
        os.replace(aside, path)
    unlock_run_dir(path)


# -- a resumed run that fails leaves the folder as it was -----------------------------------------
#: files copied (not linked) into a snapshot: small ones, and logs that are appended to in place
COPY_BELOW_BYTES = 1 << 20


def snapshot_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(f".{path.name}.before")


def snapshot_run_dir(path: str | os.PathLike) -> Path | None:
    """Keep the run folder as it is now, to put it back if the command fails: a hidden sibling
    folder holding hard links to its files (everything a run writes is written to a new file and
    renamed into place, so a link keeps the old content) and copies of its small files and logs
    (which may be appended to). None when nothing could be kept (the folder does not exist)."""
    from embedtune_core.training.checkpoints import TRAINING_LOG

    path = Path(path)
    if not path.is_dir() or not is_main_process():
        return None
    snapshot = snapshot_path(path)
    if snapshot.exists():
        shutil.rmtree(snapshot)
    for source in sorted(path.rglob("*")):
        target = snapshot / source.relative_to(path)
        if source.is_dir() and not source.is_symlink():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.name == TRAINING_LOG or source.stat().st_size < COPY_BELOW_BYTES:
            shutil.copy2(source, target)
        else:
            try:
                os.link(source, target)
            except OSError:  # a file system without hard links
                shutil.copy2(source, target)
    snapshot.mkdir(parents=True, exist_ok=True)
    return snapshot


def restore_run_dir(path: str | os.PathLike, snapshot: Path) -> None:
    """Put the run folder back as :func:`snapshot_run_dir` kept it."""
    path = Path(path)
    shutil.rmtree(path, ignore_errors=True)
    os.replace(snapshot, path)
    unlock_run_dir(path)


def drop_snapshot(snapshot: Path | None) -> None:
    if snapshot is not None and snapshot.exists():
        shutil.rmtree(snapshot, ignore_errors=True)
