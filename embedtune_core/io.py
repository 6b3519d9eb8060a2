"""Writing files so that a crash never leaves a half-written file that looks complete, and the
operating system's refusals said in words.

Every file a run writes goes to a temporary name in the same folder and is renamed into place.
A full disk while writing is one :class:`DiskFullError` naming the folder (see
:func:`disk_full_error`), with the temporary removed and the previous file untouched. The other
refusals a user can fix (permission denied, a name too long for the file system, a read-only
disk, a file where a folder is needed, a name the file system cannot hold) become one
:class:`~embedtune_core.errors.EmbedtuneError` naming the path (:func:`os_refusal`).
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



#: errno -> (what went wrong, how to fix it) for the refusals a user can act on
REFUSALS = {
    errno.EACCES: ("permission denied", "check the permissions of the folder (and its parents), or choose another "
                                        "place (--output / output_dir / -o)"),
    errno.EPERM: ("the operation is not permitted", "check the permissions, or choose another place"),
    errno.ENAMETOOLONG: ("a name in the path is too long for the file system",
                         "use a shorter run name (name), output folder or file name"),
    errno.EROFS: ("the file system is read-only", "choose a folder on a writable disk"),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "remove or rename that file, or choose another path"),
    errno.EISDIR: ("the path is a folder, where a file is needed", "give a file name"),
    errno.EEXIST: ("something is already at the path", "remove it or choose another path"),
    errno.ELOOP: ("the path has a loop of symbolic links", "fix the links or choose another path"),
}


def os_refusal(exc: BaseException, path: str | os.PathLike, doing: str) -> EmbedtuneError | None:
    """The error to show when ``exc`` is the operating system refusing something the user can fix
    (see :data:`REFUSALS`; a full disk is :func:`disk_full_error`), while ``doing`` ("writing the
    run folder") at ``path``; None otherwise."""
    full = disk_full_error(exc, Path(path).parent if Path(path).suffix else path)
    if full is not None:
        return full
    if isinstance(exc, UnicodeError):
        return EmbedtuneError(f"the file system cannot hold this name while {doing}", file=printable_path(path),
                              hint="use a name in plain characters (the file system's encoding refused it)")
    if isinstance(exc, OSError) and exc.errno in REFUSALS:
        what, hint = REFUSALS[exc.errno]
        where = exc.filename if isinstance(exc.filename, str) and exc.filename else path
        return EmbedtuneError(f"{what} while {doing}", file=printable_path(where), hint=hint)
    return None


def printable_path(path: Any) -> str:
    """A path as text, whatever bytes its name holds (undecodable bytes shown escaped)."""
    from embedtune_core.errors import shown_path

    return shown_path(path)


def exists(path: Path) -> bool:
    """``path.exists()`` that answers False, not raises, for a path the system refuses to look at
    (a name too long, a loop of links): the checks that follow then say what is wrong."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def check_path_fits(path: str | os.PathLike, what: str, *, hint: str, room: int = 0,
                    keys: tuple[str | None, str | None] = (None, None)) -> None:
    """Every name in ``path`` fits the file system (its name length in bytes, and encodable), and
    so does the whole path with ``room`` bytes to spare; one error naming ``what`` otherwise.
    ``keys`` are the config keys that set the last name and the folder above it: an error names
    the key (and the path in its message) instead of the path as a file."""
    path = Path(path)

    def refuse(message: str, last: bool, hint: str = hint) -> EmbedtuneError:
        key = keys[0] if last else keys[1]
        if key:
            return EmbedtuneError(f"{message} ({printable_path(path)[:80]})", key=key, hint=hint)
        return EmbedtuneError(message, file=printable_path(path), hint=hint)

    try:
        encoded = os.fsencode(path)
    except UnicodeError:
        raise refuse(f"{what} has a name the file system cannot hold", True, "use a name in plain characters") from None
    anchor = next((p for p in [path, *path.parents] if exists(p)), Path("."))
    try:
        name_max, path_max = os.pathconf(anchor, "PC_NAME_MAX"), os.pathconf(anchor, "PC_PATH_MAX")
    except (OSError, ValueError):
        name_max, path_max = 255, 4096
    for index, part in enumerate(path.parts):
        size = len(os.fsencode(part))
        if size > name_max - room:
            raise refuse(f"{what}: the name '{printable_path(part)[:40]}...' is {size} bytes, more than the file "
                         f"system's {name_max}" + (f" less {room} for its side files" if room else ""),
                         index == len(path.parts) - 1)
    if len(os.fsencode(os.path.abspath(encoded))) + room > path_max:
        raise refuse(f"{what}: the path is longer than the file system's {path_max} bytes", False)


def blocking_file(path: str | os.PathLike) -> Path | None:
    """The first part of ``path`` (a parent, or itself) that exists and is not a folder."""
    path = Path(path)
    for part in [*reversed(path.parents), path]:
        if exists(part) and not part.is_dir():
            return part
    return None


def check_writable(path: str | os.PathLike, what: str, *, hint: str) -> None:
    """``path`` can be created or written: the nearest part of it that exists is a folder this
    process may write (a file is checked itself); one error naming ``what`` otherwise."""
    path = Path(path)
    existing = next((p for p in [path, *path.parents] if exists(p)), None)
    if existing is None:
        return
    mode = os.W_OK if existing.is_file() else os.W_OK | os.X_OK
    if not os.access(existing, mode):
        raise EmbedtuneError(f"permission denied: {what} cannot be written here", file=printable_path(existing),
                             hint=hint)


@contextlib.contextmanager
def refused(path: str | os.PathLike, doing: str) -> Iterator[None]:
    """Turn the operating system's refusals (see :func:`os_refusal`) inside the block into one
    error naming ``path`` and what was being done."""
    try:
        yield
    except (OSError, UnicodeError) as exc:
        error = os_refusal(exc, path, doing)
        if error is None:
            raise
        raise error from None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``.

    Works for files and folders. On error the temporary is removed and ``path`` is untouched.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
    except (OSError, UnicodeError) as exc:
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
    error = disk_full_error(exc, path.parent, path.name) or os_refusal(exc, path, f"writing {path.name}")
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
