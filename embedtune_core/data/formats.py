"""Reading and checking text and table files: JSON Lines (``.jsonl``/``.ndjson``; ``.json``
holding JSON Lines or one array), CSV and TSV with a header row, and Parquet, as a :class:`Table`
of records with their line numbers.

Every problem is a :class:`~embedtune_core.errors.DataError` naming the file and the 1-based line
(text files) or record number (Parquet, Arrow). Text files are checked a block at a time and their
records read again one at a time, so nothing holds a dict per record. Nothing here imports torch;
``pyarrow`` is imported only when a source needs it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sys
from collections.abc import Sequence
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Iterator

from embedtune_core.errors import DataError
from embedtune_core.text import INT_DIGITS, deepest_line, dotted, find_problem, long_digit_run

#: file suffix -> format name
FORMATS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
SURROGATE_HINT = "a \\uD800-\\uDFFF escape must be one half of a surrogate pair; fix or remove it"
#: a JSON escape of a UTF-16 surrogate (\\uD800-\\uDFFF)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
#: NLI labels that mean "no gold label" (SNLI's "-", HF's -1): such records are skipped
#: the longest CSV/TSV field read, in characters (the csv module's default is 131,072)
CSV_FIELD_LIMIT = 16 * 1024 * 1024
#: bytes checked at a time when a text file is checked without holding it
BLOCK_BYTES = 16 * 1024 * 1024
#: records made at a time from an Arrow table
ARROW_BATCH = 8192
BOM = b"\xef\xbb\xbf"


# -- small helpers ------------------------------------------------------------------------------
def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _short(value: Any, width: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


class RecordStream(Sequence):
    """The records of a checked source as a sequence of dicts that are made one at a time each
    time it is iterated (a text file is read again), so a large file never holds a dict per
    record. ``records()`` makes the iterator; ``count`` records were found when the source was
    checked. Indexing reads up to the record asked for (meant for a few records, not a loop)."""

    def __init__(self, records: Callable[[], Iterator[dict]], count: int) -> None:
        self.records = records
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[dict]:
        return iter(self.records())

    def __getitem__(self, index: Any) -> Any:
        wanted = range(self.count)[index]
        if isinstance(wanted, range):
            picked = set(wanted)
            found = {i: row for i, row in enumerate(self) if i in picked}
            return [found[i] for i in wanted]
        return next(islice(self, wanted, None))


class Table:
    """Records read from one source: ``rows`` (a sequence of dicts; for text, Parquet and Arrow
    sources a :class:`RecordStream`, read again each time it is iterated), where each came from,
    and the columns seen.

    ``lines[i]`` is the 1-based line of row ``i`` in a text file; for Parquet, Arrow and hub
    sources ``lines`` is None and rows are located by 1-based record number.
    """

    def __init__(self, file: str, rows: Sequence[dict], lines: list[int] | None, columns: list[str]) -> None:
        self.file = file
        self.rows = rows
        self.lines = lines
        self.columns = columns

    def where(self, index: int) -> dict[str, Any]:
        if self.lines is not None:
            return {"file": self.file, "line": self.lines[index]}
        return {"file": self.file, "record": index + 1}

    def first_where(self) -> dict[str, Any]:
        if not self.rows:
            return {"file": self.file}
        return self.where(0)


# -- reading text files -------------------------------------------------------------------------
def _check_path(path: Path) -> None:
    from embedtune_core.io import printable_path

    shown = printable_path(path)
    try:
        if not path.exists():
            raise DataError("file not found", file=shown, hint="check the path (relative paths start at the current folder)")
        if path.is_dir():
            raise DataError("expected a file, found a folder", file=shown)
        if not os.access(path, os.R_OK):
            raise DataError("permission denied: the file cannot be read", file=shown,
                            hint="check the file's permissions (and its folder's)")
    except (OSError, UnicodeError) as exc:  # a name too long, or one the file system cannot hold
        raise DataError(f"the path cannot be used: {getattr(exc, 'strerror', None) or exc}", file=shown,
                        hint="check the path") from None


def _empty(path: Any) -> DataError:
    return DataError("file is empty", file=path, hint="the file has no records")


def _not_utf8(data: bytes, start: int, path: Any, line: int = 1) -> DataError:
    """The error for the byte at ``data[start]``, which does not decode; ``line`` is the line
    ``data`` starts at."""
    line += data.count(b"\n", 0, start)
    column = start - (data.rfind(b"\n", 0, start) + 1) + 1
    return DataError(
        f"not valid UTF-8: byte 0x{data[start]:02x} at column {column}",
        file=path,
        line=line,
        hint="save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8 IN > OUT`)",
    )


def read_text(path: str | os.PathLike) -> str:
    """The file's text, decoded as UTF-8 (a BOM is allowed); clear errors for a missing, empty or
    non-UTF-8 file."""
    path = Path(path)
    _check_path(path)
    data = path.read_bytes()
    if not data.strip():
        raise _empty(path)
    bom = len(BOM) if data.startswith(BOM) else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:  # the column counts from after a BOM
        raise _not_utf8(data[bom:], exc.start, path) from None


class TextSource:
    """A checked UTF-8 text file that can be read more than once, a line at a time: the file
    itself, or for anything that is not a regular file (a pipe) its bytes, read once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = None if path.is_file() else path.read_bytes()

    def binary(self) -> Any:
        return open(self.path, "rb") if self.data is None else io.BytesIO(self.data)

    def lines(self, newline: str) -> Iterator[str]:
        """The lines, a BOM dropped, ends kept: ``newline="\\n"``: only ``\\n`` ends a line;
        ``""``: ``\\n``, ``\\r\\n`` and ``\\r`` do (as :func:`open` reads them)."""
        with io.TextIOWrapper(self.binary(), encoding="utf-8-sig", newline=newline) as text:
            yield from text


def check_text_file(path: str | os.PathLike) -> tuple[TextSource, int | None]:
    """:func:`read_text`'s checks, reading the file a block at a time instead of holding it: a
    missing, empty or non-UTF-8 file is refused with the same errors. Returns the source and the
    line of the first NUL character (None: there is none)."""
    path = Path(path)
    _check_path(path)
    source = TextSource(path)
    blank, line, nul_line = True, 1, None
    with source.binary() as handle:
        skip = len(BOM) if handle.read(len(BOM)) == BOM else 0
        handle.seek(skip)
        while True:
            block = handle.read(BLOCK_BYTES)
            if not block:
                break
            block += handle.readline()  # a block ends at a line end: no character spans two blocks
            blank = blank and not block.strip()
            try:
                block.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _not_utf8(block, exc.start, path, line) from None
            if nul_line is None and b"\x00" in block:
                nul_line = line + block.count(b"\n", 0, block.index(b"\x00"))
            line += block.count(b"\n")
    if blank:
        raise _empty(path)
    return source, nul_line


def _parse_json(text: str, path: Any, line: int | None = None) -> Any:
    """``json.loads(text)`` with clear errors: invalid JSON, nesting beyond the parser's depth
    and integers beyond Python's digit limit. ``line`` is the line of ``text`` in the file (JSON
    Lines); without it the line is found in ``text``."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"invalid JSON: {exc.msg} (column {exc.colno})",
            file=path,
            line=line if line is not None else exc.lineno,
            hint="each line must be one complete JSON object" if line is not None else "check the JSON syntax at this line",
        ) from None
    except RecursionError:
        raise _too_deep(path, line if line is not None else deepest_line(text)) from None
    except ValueError:  # an integer beyond Python's conversion limit
        raise DataError(
            f"a number has more than {INT_DIGITS} digits",
            file=path,
            line=line if line is not None else long_digit_run(text),
            hint="no field takes a number that long; fix the value (quote it if it is meant as text)",
        ) from None


def _too_deep(path: Any, line: int | None) -> DataError:
    return DataError(
        "JSON values nested too deeply to read",
        file=path,
        line=line,
        hint="records hold texts, numbers and lists of texts; check for unclosed or repeated brackets",
    )


def check_record(value: Any, path: Any, raw: str, **where: Any) -> None:
    """Refuse a lone surrogate anywhere in a parsed JSON record (a ``\\ud800`` escape without
    its pair: Python holds it, but it cannot be written as UTF-8, so ``datasets`` and every
    output file would fail on it). ``raw`` is the JSON text the record came from: only text
    with such an escape is searched."""
    if not _SURROGATE_ESCAPE.search(raw):
        return
    found = find_problem(value, max_depth=sys.maxsize)
    if found is None:
        return
    field = dotted(found[0])
    raise DataError(
        f"field '{field}' {found[1]}",
        file=path,
        **where,
        key=field,
        hint=SURROGATE_HINT,
    )



def _jsonl_records(source: TextSource, path: Any) -> Iterator[tuple[int, dict]]:
    """(line, record) of each non-blank line, checked: one JSON object without a lone surrogate."""
    for number, raw in enumerate(source.lines("\n"), start=1):
        if raw.endswith("\n"):
            raw = raw[:-1]
        if not raw.strip():
            continue
        record = _parse_json(raw, path, number)
        if not isinstance(record, dict):
            raise DataError(
                f"expected a JSON object, got {_kind(record)}",
                file=path,
                line=number,
                hint='each line must be an object such as {"anchor": "...", "positive": "..."}',
            )
        check_record(record, path, raw, line=number)
        yield number, record


def read_jsonl(path: str | os.PathLike) -> Table:
    """A JSON Lines file, every line checked here; its rows are read again, a record at a time,
    when they are used."""
    source, _ = check_text_file(path)
    lines: list[int] = []
    columns: list[str] = []
    for number, record in _jsonl_records(source, path):
        if not lines:
            columns = list(record)
        lines.append(number)
    if not lines:
        raise _empty(path)
    rows = RecordStream(lambda: (record for _, record in _jsonl_records(source, path)), len(lines))
    return Table(str(path), rows, lines, columns)


def read_json(path: str | os.PathLike) -> Table:
    """A ``.json`` file: one JSON array of objects, or JSON Lines."""
    text = read_text(path)
    if not text.lstrip().startswith("["):
        return read_jsonl(path)
    data = _parse_json(text, path)
    rows = []
    for index, record in enumerate(data):
        if not isinstance(record, dict):
            raise DataError(f"expected a JSON object, got {_kind(record)}", file=path, record=index + 1)
        check_record(record, path, text, record=index + 1)
        rows.append(record)
    if not rows:
        raise DataError("file is empty", file=path, hint="the JSON array has no records")
    return Table(str(path), rows, None, list(rows[0]))




def _csv_records(source: TextSource, path: Any, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(first line, fields) of each record, the header first; a record the csv module refuses is
    one error naming the line it starts at."""
    what = "TSV" if delimiter == "\t" else "CSV"
    # only \n, \r\n and \r end a line (str.splitlines would also split at U+2028, U+0085, form feed...)
    reader = csv.reader(source.lines(""), delimiter=delimiter, strict=True)
    previous_end = 0
    while True:
        start = previous_end + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _csv_error(exc, f"{what} header" if start == 1 else f"{what} record", path, start) from None
        previous_end = reader.line_num
        yield start, fields


def _csv_header(fields: list[str], path: Any, delimiter: str) -> list[str]:
    what = "TSV" if delimiter == "\t" else "CSV"
    header = [h.strip() for h in fields]
    if not any(header):
        raise DataError(f"{what} header is empty", file=path, line=1, hint="the first line names the columns")
    seen: dict[str, int] = {}
    for position, name in enumerate(header, start=1):
        if not name:
            raise DataError(f"{what} header column {position} has no name", file=path, line=1)
        if name in seen:
            raise DataError(f"{what} header names column '{name}' twice", file=path, line=1, key=name)
        seen[name] = position
    if delimiter == "," and len(header) == 1 and "\t" in header[0]:
        raise DataError("the header has tabs but the file is read as CSV", file=path, line=1, hint="name the file .tsv")
    return header


def _csv_rows(source: TextSource, path: Any, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """The header, then (line, fields) of each non-blank record, checked to have the header's
    width."""
    records = _csv_records(source, path, delimiter)
    header = _csv_header(next(records, (1, []))[1], path, delimiter)
    yield 1, header
    for start, fields in records:
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue
        if len(fields) != len(header):
            raise DataError(
                f"record has {len(fields)} fields, the header has {len(header)}",
                file=path,
                line=start,
                hint=f"quote fields that contain the delimiter ({'a tab' if delimiter == chr(9) else 'a comma'})",
            )
        yield start, fields


def read_delimited(path: str | os.PathLike, delimiter: str) -> Table:
    """A CSV or TSV file with a header row, every record checked here; its rows are read again,
    a record at a time, when they are used."""
    source, nul_line = check_text_file(path)
    if nul_line is not None:
        raise DataError("file contains a NUL byte (binary data?)", file=path, line=nul_line)
    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)
    records = _csv_rows(source, path, delimiter)
    header = next(records)[1]
    lines = [start for start, _ in records]
    if not lines:
        raise DataError("file has a header but no records", file=path, line=1)

    def rows() -> Iterator[dict]:
        found = _csv_rows(source, path, delimiter)
        next(found)
        return (dict(zip(header, fields)) for _, fields in found)

    return Table(str(path), RecordStream(rows, len(lines)), lines, header)


def _csv_error(exc: csv.Error, what: str, path: Any, line: int) -> DataError:
    """A clear error for what the csv module refuses in the record starting at ``line``."""
    text = str(exc)
    if "field limit" in text:
        return DataError(
            f"bad {what}: a field is longer than {CSV_FIELD_LIMIT:,} characters",
            file=path,
            line=line,
            hint="check the quoting (a quote that is never closed makes the rest of the file one field); "
                 "a text this long is cut to the model's max_seq_length anyway, so shorten it",
        )
    if "end of data" in text or "EOF" in text:
        return DataError(
            f"bad {what}: a quoted field is never closed",
            file=path,
            line=line,
            hint='a quote opened in this record has no closing quote; write a quote inside a quoted field as ""',
        )
    return DataError(
        f"bad {what}: {text}",
        file=path,
        line=line,
        hint='a quote inside a quoted field is written twice (""), and a closing quote is followed by the delimiter',
    )


def read_parquet(path: str | os.PathLike) -> Table:
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        raise DataError("file not found", file=path, hint="check the path")
    if path.stat().st_size == 0:
        raise DataError("file is empty", file=path)
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise DataError(f"not a readable Parquet file: {str(exc).splitlines()[0]}", file=path) from None
    return _arrow_table(str(path), table)


def _arrow_table(file: str, table: Any) -> Table:
    """An Arrow table's records, made a batch at a time when they are used."""
    if not table.num_rows:
        raise DataError("the data has no records", file=file)

    def rows() -> Iterator[dict]:
        return (row for batch in table.to_batches(max_chunksize=ARROW_BATCH) for row in batch.to_pylist())

    return Table(file, RecordStream(rows, table.num_rows), None, list(table.column_names))


def read_table(path: str | os.PathLike) -> Table:
    """Read one data file by its suffix."""
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        if not path.exists():
            raise DataError("file not found", file=path, hint="check the path")
        raise DataError(
            f"unknown file type '{path.suffix or path.name}'",
            file=path,
            hint="use .jsonl, .json, .csv, .tsv or .parquet, or a folder written by datasets.save_to_disk",
        )
    if fmt == "jsonl":
        return read_jsonl(path)
    if fmt == "json":
        return read_json(path)
    if fmt == "csv":
        return read_delimited(path, ",")
    if fmt == "tsv":
        return read_delimited(path, "\t")
    return read_parquet(path)
