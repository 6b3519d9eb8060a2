"""Writing files so that a crash never leaves a half-written file that looks complete.

Every file a run writes goes to a temporary name in the same folder and is renamed into place.
A full disk while writing is one :class:`DiskFullError` naming the folder (see
:func:`disk_full_error`), with the temporary removed and the previous file untouched.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from embedtune_core.errors import EmbedtuneError

#: errno values that mean the disk (or the user's quota on it) is full
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})
#: how libraries that do not raise OSError (safetensors, torch's zip writer) report a full disk
DISK_FULL_TEXTS = ("no space left on device", "disk quota exceeded", "storagefull", "os error 28")


class DiskFullError(EmbedtuneError):
    """A file could not be written because the disk is full."""


def disk_full_error(exc: BaseException, folder: str | os.PathLike, name: str | None = None) -> DiskFullError | None:
    """The error to show when ``exc`` means the disk holding ``folder`` is full, else None.

    Recognises ``OSError`` with errno ``ENOSPC``/``EDQUOT`` anywhere in the exception's chain
    (``__cause__`` / ``__context__``) and the messages of libraries that wrap it in another
    type (safetensors, torch's zip writer). ``name`` is the file (or folder) being written.
    Callers remove their partial file first; the message says so and that the previous
    version is kept::

        try:
            save_checkpoint(folder)
        except Exception as exc:
            error = disk_full_error(exc, folder, "checkpoint-120")
            if error is not None:
                raise error from None
            raise
    """
    seen = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in DISK_FULL_ERRNOS:
            break
        if any(text in str(current).lower() for text in DISK_FULL_TEXTS):
            break
        current = current.__cause__ or current.__context__
    else:
        return None
    what = f"'{name}'" if name else "a file"
    return DiskFullError(
        f"the disk is full: could not write {what}; the partial file was removed and the previous version, "
        "if any, is unchanged",
        file=folder,
        hint="free space on this disk (or set output_dir to a folder on another disk) and run the command again; "
             "an interrupted run continues with --resume",
    )



@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``.

    Works for files and folders. On error the temporary is removed and ``path`` is untouched.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
    except OSError as exc:
        _raise_disk_full(exc, path)
        raise
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()
    try:
        yield tmp
        if tmp.is_dir() and path.is_dir():
            old = path.with_name(f".{path.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except Exception as exc:
        _remove(tmp)
        _raise_disk_full(exc, path)
        raise
    finally:
        _remove(tmp)


def _remove(tmp: Path) -> None:
    if tmp.is_dir():
        shutil.rmtree(tmp, ignore_errors=True)
    elif tmp.exists():
        tmp.unlink()


def _raise_disk_full(exc: BaseException, path: Path) -> None:
    error = disk_full_error(exc, path.parent, path.name)
    if error is not None:
        raise error from None


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    return Path(path)


def write_json(path: str | os.PathLike, data: Any) -> Path:
    return write_text(path, json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")


def write_jsonl(path: str | os.PathLike, rows) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False, default=_json_default) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
    return Path(path)


def _json_default(value: Any) -> Any:
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def text_table(rows: list[list[Any]], headers: list[str]) -> str:
    """A plain aligned text table (floats with four decimals, None as an empty cell)."""
    cells = [[str(h) for h in headers]] + [[_cell(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cells[0], widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "" if value is None else str(value)


def dataset_rows(dataset: Any, batch: int = 8192) -> Any:
    """The rows of a ``datasets.Dataset`` as dicts, read a batch at a time (``to_list`` would
    hold every row as a dict at once); a plain list of dicts as it is."""
    if not hasattr(dataset, "iter"):
        yield from (dataset.to_list() if hasattr(dataset, "to_list") else dataset)
        return
    for columns in dataset.iter(batch_size=batch):
        names = list(columns)
        yield from (dict(zip(names, values)) for values in zip(*(columns[n] for n in names)))
