"""A text file as blocks of whole lines, for the column readers of large files (TREC qrels and
runs): slices of a memory map where the file can be mapped, read a block at a time where not
(a pipe), with a UTF-8 byte-order mark blanked out."""

from __future__ import annotations

import os
from typing import Any

from embedtune_core.errors import DataError


def open_binary(path: str | os.PathLike) -> Any:
    """``path`` opened for reading bytes; a missing file, a folder or a refusal is one DataError."""
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise DataError("file not found", file=path) from None
    except IsADirectoryError:
        raise DataError("is a folder, not a file", file=path) from None
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror}", file=path) from None


def line_blocks(path: str | os.PathLike, block_bytes: int) -> Any:
    """``(block, odd_free)`` for blocks of whole lines (the last may lack its line end): buffers
    that are slices of a memory map of the file, with no copy, or bytes read a block at a time
    where the file cannot be mapped (a pipe, an empty file); ``odd_free``: the block holds no CR
    and no DEL byte (a memory search). A block stays valid while it is referenced."""
    import mmap

    with open_binary(path) as handle:
        try:
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            yield from _read_blocks(handle, block_bytes)
            return
        try:
            yield from _mapped_blocks(mapped, block_bytes)
        finally:
            try:
                mapped.close()
            except BufferError:  # an array still refers to a block: the map closes with it
                pass


def _mapped_blocks(mapped: Any, block_bytes: int) -> Any:
    """Blocks of a memory-mapped file; the pages of the blocks already read are given back, so
    the process holds about one block of the file at a time."""
    import mmap

    view, start, size = memoryview(mapped), 0, len(mapped)
    page = mmap.PAGESIZE
    while start < size:
        end = min(start + block_bytes, size)
        if end < size:
            cut = mapped.rfind(b"\n", start, end)
            if cut < 0:  # a line longer than a block
                cut = mapped.find(b"\n", end)
            end = size if cut < 0 else cut + 1
        odd_free = mapped.find(b"\r", start, end) < 0 and mapped.find(b"\x7f", start, end) < 0
        if start == 0 and mapped[:3] == b"\xef\xbb\xbf":  # a UTF-8 byte-order mark is not part of the id
            yield b"   " + bytes(view[3:end]), odd_free
        else:
            yield view[start:end], odd_free
        done = (end // page) * page
        if done and hasattr(mapped, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
            mapped.madvise(mmap.MADV_DONTNEED, 0, done)
        start = end


def _read_blocks(handle: Any, block_bytes: int) -> Any:
    """Blocks of whole lines read from an open file."""
    carry = b""
    first = True
    while True:
        chunk = handle.read(block_bytes)
        if first:
            first = False
            if chunk.startswith(b"\xef\xbb\xbf"):
                chunk = b"   " + chunk[3:]
        if not chunk:
            break
        data = carry + chunk
        end = data.rfind(b"\n") + 1
        if end == 0:
            carry = data
            continue
        carry = data[end:]
        yield data[:end], _odd_free(data, end)
    if carry:
        yield carry, _odd_free(carry, len(carry))


def _odd_free(data: bytes, end: int) -> bool:
    return data.find(b"\r", 0, end) < 0 and data.find(b"\x7f", 0, end) < 0
