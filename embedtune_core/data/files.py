"""Reading and validating dataset files for the six dataset types.

Sources: JSON Lines (``.jsonl``/``.ndjson``; ``.json`` holding JSON Lines or one array), CSV and
TSV with a header row, Parquet, a folder written by ``datasets.save_to_disk``, a folder of split
files (``train.jsonl``, ``test.jsonl``...), hub names (through ``datasets.load_dataset``) and, for
type ``ir``, a BEIR-style folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/SPLIT.tsv`` or
``qrels.txt``/``qrels.tsv``).

Every bad record is reported as a :class:`~embedtune_core.errors.DataError` naming the file, the
1-based line (text files) or record number (Parquet, Arrow, hub), the field and what is expected.
Nothing here imports torch; ``datasets``/``pyarrow`` are imported only when a source needs them.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import sys
from collections.abc import Sequence
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from embedtune_core.errors import DataError
from embedtune_core.text import INT_DIGITS, deepest_line, dotted, find_problem, lone_surrogate, long_digit_run, normalise_text
from embedtune_core.types import DATASET_TYPES, NLI_LABELS, IRData

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
SPLIT_NAMES = ("train", "validation", "dev", "test")
EVAL_SPLITS = ("validation", "dev", "test")
HUB_PREFIXES = ("hf:", "hub:")

#: the text fields and value fields each record of a type has (hard-negatives: plus negatives)
RECORD_FIELDS: dict[str, tuple[str, ...]] = {
    "pairs": ("anchor", "positive"),
    "triplets": ("anchor", "positive", "negative"),
    "sts": ("sentence1", "sentence2", "score"),
    "nli": ("premise", "hypothesis", "label"),
    "hard-negatives": ("anchor", "positive", "negatives"),
}
#: names accepted for a field when the file lacks the conventional one and no mapping is given
ALIASES: dict[str, tuple[str, ...]] = {
    "anchor": ("query", "question", "sentence1", "text1"),
    "positive": ("pos", "answer", "document", "passage", "sentence2", "text2"),
    "negative": ("neg", "hard_negative"),
    "sentence1": ("sentence_1", "text1", "s1"),
    "sentence2": ("sentence_2", "text2", "s2"),
    "score": ("similarity", "similarity_score", "relatedness_score", "label"),
    "premise": ("sentence1", "text1"),
    "hypothesis": ("sentence2", "text2"),
    "label": ("gold_label",),
    "negatives": ("hard_negatives", "negs"),
}
NEGATIVE_COLUMN = re.compile(r"^negative_(\d+)$")
SURROGATE_HINT = "a \\uD800-\\uDFFF escape must be one half of a surrogate pair; fix or remove it"
#: a JSON escape of a UTF-16 surrogate (\\uD800-\\uDFFF)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
#: NLI labels that mean "no gold label" (SNLI's "-", HF's -1): such records are skipped
UNLABELLED = {"-", "-1", -1}
#: the longest CSV/TSV field read, in characters (the csv module's default is 131,072)
CSV_FIELD_LIMIT = 16 * 1024 * 1024
#: bytes checked at a time when a text file is checked without holding it
BLOCK_BYTES = 16 * 1024 * 1024
#: records made at a time from an Arrow table
ARROW_BATCH = 8192
BOM = b"\xef\xbb\xbf"
READER_OPTIONS = ("columns", "split", "eval_split", "score_range", "subset", "revision")


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
    if not path.exists():
        raise DataError("file not found", file=path, hint="check the path (relative paths start at the current folder)")
    if path.is_dir():
        raise DataError("expected a file, found a folder", file=path)


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


# -- checking records ---------------------------------------------------------------------------
def resolve_columns(table: Table, fields: Iterable[str], mapping: Mapping[str, str]) -> dict[str, str]:
    """Type field -> the source column that holds it (explicit mapping, the field's own name, or a
    known alias such as ``question`` for ``anchor``)."""
    available = set(table.columns)
    resolved: dict[str, str] = {}
    taken: set[str] = set()
    for field in fields:
        if field in mapping:
            column = mapping[field]
            if column not in available:
                raise DataError(
                    f"column '{column}' (mapped to '{field}') is not in the data",
                    **table.first_where(),
                    key=f"columns.{field}",
                    hint=f"columns found: {', '.join(table.columns) or 'none'}",
                )
        elif field in available and field not in mapping.values():
            column = field
        else:
            column = next((a for a in ALIASES.get(field, ()) if a in available and a not in taken and a not in mapping.values()), None)
            if column is None:
                raise DataError(
                    f"missing field '{field}'",
                    **table.first_where(),
                    key=field,
                    hint=(
                        f"columns found: {', '.join(table.columns) or 'none'}; map yours with "
                        f"columns = {{{field} = \"YOUR_COLUMN\"}}"
                    ),
                )
        resolved[field] = column
        taken.add(column)
    return resolved


def _missing(table: Table, index: int, field: str, column: str) -> DataError:
    label = f"'{column}'" + (f" ({field})" if column != field else "")
    return DataError(f"missing field {label}", **table.where(index), key=column, hint="every record needs this field")


def text_value(table: Table, index: int, row: Mapping[str, Any], field: str, column: str) -> str:
    """The field's value in ``row`` (record ``index``) as validated text."""
    if column not in row:
        raise _missing(table, index, field, column)
    return check_text(table, index, column, row[column])


def check_text(table: Table, index: int, column: str, value: Any) -> str:
    """``value`` (of ``column`` in record ``index``) as validated text."""
    if not isinstance(value, str):
        if value is None:
            raise DataError(f"field '{column}' is null, expected text", **table.where(index), key=column, hint="fill it or drop the record")
        raise DataError(
            f"field '{column}' must be text, got {_kind(value)}",
            **table.where(index),
            key=column,
            hint="write the value as a JSON string",
        )
    if not value.strip():
        raise DataError(f"field '{column}' is empty, expected text", **table.where(index), key=column, hint="fill it or drop the record")
    bad = lone_surrogate(value)
    if bad:
        raise DataError(
            f"field '{column}' holds a lone surrogate ({bad}), which is not valid Unicode text",
            **table.where(index),
            key=column,
            hint=SURROGATE_HINT,
        )
    return value


def score_value(table: Table, index: int, row: Mapping[str, Any], column: str, low: float, high: float) -> float:
    if column not in row:
        raise _missing(table, index, "score", column)
    value = row[column]
    number: float | None = None
    if isinstance(value, bool) or value is None:
        number = None
    elif isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None:
        raise DataError(
            f"field '{column}' must be a number from {low:g} to {high:g}, got {_short(value)}",
            **table.where(index),
            key=column,
            hint="scores are similarity judgements (0-5 by default; set score_range for another scale)",
        )
    if math.isnan(number):
        raise DataError(f"field '{column}' is NaN, expected a number from {low:g} to {high:g}", **table.where(index), key=column)
    if not low <= number <= high:
        raise DataError(
            f"field '{column}' is {number:g}, outside the score range {low:g} to {high:g}",
            **table.where(index),
            key=column,
            hint="set the reader option score_range = [MIN, MAX] if your scale differs",
        )
    return (number - low) * 5.0 / (high - low)


def label_value(table: Table, index: int, row: Mapping[str, Any], column: str) -> int | None:
    """0, 1 or 2; None for an unlabelled record (SNLI's '-', -1)."""
    if column not in row:
        raise _missing(table, index, "label", column)
    value = row[column]
    if isinstance(value, str):
        key = value.strip().lower()
        if key in NLI_LABELS:
            return NLI_LABELS[key]
        if key in ("0", "1", "2"):
            return int(key)
        if key in UNLABELLED:
            return None
    elif isinstance(value, int) and not isinstance(value, bool):
        if value in (0, 1, 2):
            return value
        if value == -1:
            return None
    elif isinstance(value, float) and value in (0.0, 1.0, 2.0):
        return int(value)
    raise DataError(
        f"field '{column}' is {_short(value)}, expected an NLI label",
        **table.where(index),
        key=column,
        hint="use 0/entailment, 1/neutral or 2/contradiction ('-' or -1 marks a record without a gold label)",
    )


def negatives_of(table: Table, index: int, row: Mapping[str, Any], spec: tuple[str, Any]) -> list[str]:
    kind, value = spec
    if kind == "list":
        column = value
        if column not in row:
            raise _missing(table, index, "negatives", column)
        items = row[column]
        if isinstance(items, str) and table.lines is not None and items.lstrip().startswith("["):
            try:
                items = json.loads(items)
            except (ValueError, RecursionError):  # not JSON after all: reported as not a list below
                pass
        if not isinstance(items, (list, tuple)) or not items:
            raise DataError(
                f"field '{column}' must be a non-empty list of texts, got {_kind(items) if items else 'nothing'}",
                **table.where(index),
                key=column,
                hint='e.g. "negatives": ["first wrong answer", "second wrong answer"]',
            )
        return [check_text(table, index, f"{column}[{i}]", item) for i, item in enumerate(items)]
    return [text_value(table, index, row, "negative", column) for column in value]


def check_negatives(table: Table, index: int, anchor: str, positive: str, columns: list[str], negatives: list[str]) -> None:
    """Refuse a negative that is the same text as the record's positive or anchor (compared
    after Unicode NFKC, case folding and collapsing whitespace): training on such a row pushes
    the positive away from its anchor."""
    same = {normalise_text(anchor): "anchor"}
    same[normalise_text(positive)] = "positive"
    for column, negative in zip(columns, negatives):
        other = same.get(normalise_text(negative))
        if other:
            raise DataError(
                f"field '{column}' is the same text as the {other}",
                **table.where(index),
                key=column,
                hint=f"a negative must be a wrong match for the anchor (compared ignoring case, spacing and Unicode "
                     f"forms); training on this row would push the {other} away. Fix the negative or drop the record",
            )


def negative_spec(table: Table, mapping: Mapping[str, str]) -> tuple[str, Any]:
    """How a hard-negatives source holds its negatives: a list column, numbered columns, or one
    ``negative`` column."""
    if "negatives" in mapping:
        resolve_columns(table, ["negatives"], mapping)
        return ("list", mapping["negatives"])
    numbered = sorted(
        (int(m.group(1)), c) for c in table.columns if (m := NEGATIVE_COLUMN.match(c))
    )
    if numbered:
        return ("columns", [c for _, c in numbered])
    for name in ("negatives",) + ALIASES["negatives"]:
        if name in table.columns:
            return ("list", name)
    for name in ("negative",) + ALIASES["negative"]:
        if name in table.columns or name in mapping:
            column = mapping.get("negative", name)
            return ("columns", [column])
    raise DataError(
        "no negatives found",
        **table.first_where(),
        key="negatives",
        hint="give a 'negatives' list, numbered columns negative_1 ... negative_N, or map yours with columns = {negatives = \"COLUMN\"}",
    )


def check_options(options: Mapping[str, Any], allowed: Iterable[str] = READER_OPTIONS) -> dict[str, Any]:
    allowed = tuple(allowed)
    for key in options:
        if key not in allowed:
            from embedtune_core.errors import did_you_mean

            raise DataError(
                f"unknown reader option '{key}'",
                key=f"data.options.{key}",
                hint=(did_you_mean(key, allowed) + " " if did_you_mean(key, allowed) else "") + f"options: {', '.join(allowed)}",
            )
    columns = options.get("columns") or {}
    if not isinstance(columns, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in columns.items()):
        raise DataError("'columns' must map field names to column names", key="data.columns", hint='e.g. columns = {anchor = "question"}')
    return dict(options)


def records_to_columns(table: Table, dataset_type: str, options: Mapping[str, Any]) -> tuple[dict[str, list], dict[str, Any]]:
    """Validate every record of ``table`` as ``dataset_type`` and return the columns in the type's
    conventional order, plus notes (columns used, skipped records)."""
    mapping = dict(options.get("columns") or {})
    fields = RECORD_FIELDS[dataset_type]
    allowed = set(fields) | ({"negative"} if dataset_type == "hard-negatives" else set())
    for key in mapping:
        if key not in allowed:
            raise DataError(
                f"'{key}' is not a field of type '{dataset_type}'",
                key=f"columns.{key}",
                hint=f"fields: {', '.join(sorted(allowed))}",
            )
    notes: dict[str, Any] = {"rows_read": len(table.rows)}
    if dataset_type == "hard-negatives":
        return _hard_negative_columns(table, mapping, notes)
    resolved = resolve_columns(table, fields, mapping)
    notes["columns"] = resolved
    text_fields = [f for f in fields if f not in ("score", "label")]
    out: dict[str, list] = {f: [] for f in fields}
    if dataset_type == "sts":
        low, high = _score_range(options)
    skipped = 0
    for index, row in enumerate(table.rows):
        label = None
        if dataset_type == "nli":
            label = label_value(table, index, row, resolved["label"])
            if label is None:
                skipped += 1
                continue
        texts = [text_value(table, index, row, f, resolved[f]) for f in text_fields]
        if dataset_type == "triplets":
            check_negatives(table, index, texts[0], texts[1], [resolved["negative"]], texts[2:])
        for f, t in zip(text_fields, texts):
            out[f].append(t)
        if dataset_type == "sts":
            out["score"].append(score_value(table, index, row, resolved["score"], low, high))
        elif dataset_type == "nli":
            out["label"].append(label)
    if skipped:
        notes["skipped_unlabelled"] = skipped
    if not out[fields[0]]:
        raise DataError("no labelled records", file=table.file, hint="every record has '-' or -1 as its label")
    return out, notes


def _hard_negative_columns(table: Table, mapping: Mapping[str, str], notes: dict[str, Any]) -> tuple[dict[str, list], dict[str, Any]]:
    """:func:`records_to_columns` for hard negatives: anchor, positive, negative_1 ... negative_N."""
    resolved = resolve_columns(table, ("anchor", "positive"), mapping)
    spec = negative_spec(table, mapping)
    out: dict[str, list] = {"anchor": [], "positive": []}
    negatives: list[list[str]] = []
    labels = None if spec[0] == "list" else spec[1]
    for index, row in enumerate(table.rows):
        anchor = text_value(table, index, row, "anchor", resolved["anchor"])
        positive = text_value(table, index, row, "positive", resolved["positive"])
        found = negatives_of(table, index, row, spec)
        check_negatives(table, index, anchor, positive, labels or [f"{spec[1]}[{i}]" for i in range(len(found))], found)
        if index == 0:
            negatives = [[] for _ in found]
        elif len(found) != len(negatives):
            raise DataError(
                f"record has {len(found)} negatives, the first record has {len(negatives)}",
                **table.where(index),
                key="negatives",
                hint="give every record the same number of negatives",
            )
        out["anchor"].append(anchor)
        out["positive"].append(positive)
        for column, text in zip(negatives, found):
            column.append(text)
    for n, column in enumerate(negatives):
        out[f"negative_{n + 1}"] = column
    notes["columns"] = {**resolved, "negatives": spec[1]}
    return out, notes


def _score_range(options: Mapping[str, Any]) -> tuple[float, float]:
    value = options.get("score_range", (0.0, 5.0))
    ok = (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
        and value[0] < value[1]
    )
    if not ok:
        raise DataError(f"score_range must be [MIN, MAX] with MIN < MAX, got {value!r}", key="data.options.score_range")
    return float(value[0]), float(value[1])


def to_dataset(columns: dict[str, list]) -> Any:
    from embedtune_core.data.columns import dataset_from_columns

    return dataset_from_columns(columns)


# -- sources ------------------------------------------------------------------------------------
def is_saved_dataset(folder: Path) -> bool:
    return any((folder / name).exists() for name in ("dataset_info.json", "state.json", "dataset_dict.json"))


def split_files(folder: Path) -> dict[str, Path]:
    """``train.jsonl``, ``test.csv``... in a folder: split name -> file."""
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in FORMATS and path.stem.lower() in SPLIT_NAMES:
            name = path.stem.lower()
            if name in found:
                raise DataError(f"two files for split '{name}': {found[name].name} and {path.name}", file=folder)
            found[name] = path
    return found


def looks_like_path(source: str) -> bool:
    return (
        source.startswith((".", "/", "~"))
        or os.sep in source.rstrip(os.sep) and Path(source).suffix != ""
        or Path(source).suffix.lower() in FORMATS
        or bool(re.search(r"\.[A-Za-z0-9]{1,8}$", source))
    )


def load_tables(source: str, options: Mapping[str, Any]) -> tuple[Table, Table | None, str]:
    """The train table, the eval table (or None) and a description of the source."""
    split = options.get("split")
    eval_split = options.get("eval_split")
    if source.startswith(HUB_PREFIXES):
        name = source.split(":", 1)[1]
        return _hub_tables(name, options), _hub_eval(name, options), f"hub dataset {name}"
    path = Path(os.path.expanduser(source))
    if path.is_dir():
        if is_saved_dataset(path):
            return _saved_tables(path, split, eval_split)
        files = split_files(path)
        if not files:
            raise DataError(
                "folder has no data",
                file=path,
                hint="expected a folder written by datasets.save_to_disk, or split files such as train.jsonl / test.jsonl",
            )
        train_name = split or ("train" if "train" in files else next(iter(files)))
        if train_name not in files:
            raise DataError(f"no split '{train_name}' in the folder", file=path, key="split", hint=f"splits: {', '.join(files)}")
        eval_name = eval_split or next((s for s in EVAL_SPLITS if s in files and s != train_name), None)
        if eval_name is not None and eval_name not in files:
            raise DataError(f"no split '{eval_name}' in the folder", file=path, key="eval_split", hint=f"splits: {', '.join(files)}")
        return read_table(files[train_name]), (read_table(files[eval_name]) if eval_name else None), f"folder {path}"
    if path.exists() or looks_like_path(source):
        return read_table(path), None, str(path)
    return _hub_tables(source, options), _hub_eval(source, options), f"hub dataset {source}"


def _saved_tables(path: Path, split: str | None, eval_split: str | None) -> tuple[Table, Table | None, str]:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:  # damaged folders raise assorted errors
        raise DataError(f"cannot read the saved dataset: {str(exc).splitlines()[0]}", file=path) from None
    if isinstance(loaded, datasets.DatasetDict):
        names = list(loaded)
        train_name = split or ("train" if "train" in loaded else names[0])
        if train_name not in loaded:
            raise DataError(f"no split '{train_name}' in the saved dataset", file=path, key="split", hint=f"splits: {', '.join(names)}")
        eval_name = eval_split or next((s for s in EVAL_SPLITS if s in loaded and s != train_name), None)
        if eval_name is not None and eval_name not in loaded:
            raise DataError(f"no split '{eval_name}' in the saved dataset", file=path, key="eval_split", hint=f"splits: {', '.join(names)}")
        train = _arrow_table(f"{path}[{train_name}]", loaded[train_name].data.table)
        evaluation = _arrow_table(f"{path}[{eval_name}]", loaded[eval_name].data.table) if eval_name else None
        return train, evaluation, f"saved dataset {path}"
    return _arrow_table(str(path), loaded.data.table), None, f"saved dataset {path}"


def _hub_load(name: str, options: Mapping[str, Any], split: str) -> Any:
    import datasets

    kwargs = {"split": split}
    if options.get("subset"):
        kwargs["name"] = options["subset"]
    if options.get("revision"):
        kwargs["revision"] = options["revision"]
    try:
        return datasets.load_dataset(name, **kwargs)
    except Exception as exc:  # network, missing split, unknown name...
        raise DataError(
            f"could not load '{name}' from the hub: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
            hint="if you meant a local file, check the path; hub names need network access (and no HF_DATASETS_OFFLINE)",
        ) from None


def _hub_tables(name: str, options: Mapping[str, Any]) -> Table:
    dataset = _hub_load(name, options, options.get("split") or "train")
    return _arrow_table(f"hub:{name}", dataset.data.table if hasattr(dataset, "data") else dataset)


def _hub_eval(name: str, options: Mapping[str, Any]) -> Table | None:
    if not options.get("eval_split"):
        return None
    dataset = _hub_load(name, options, options["eval_split"])
    return _arrow_table(f"hub:{name}[{options['eval_split']}]", dataset.data.table)


# -- IR folders ---------------------------------------------------------------------------------
def _id_value(table: Table, index: int, row: Mapping[str, Any], column: str = "_id") -> str:
    if column not in row:
        raise _missing(table, index, column, column)
    value = row[column]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataError(f"field '{column}' must be a text or integer id, got {_kind(value)}", **table.where(index), key=column)
    value = str(value).strip()
    if not value:
        raise DataError(f"field '{column}' is empty, expected an id", **table.where(index), key=column)
    return value


def read_corpus(path: Path) -> tuple[dict[str, str], dict[str, int]]:
    """BEIR ``corpus.jsonl``: ``_id``, optional ``title``, ``text`` -> {id: "title text"}."""
    table = read_jsonl(path)
    corpus: dict[str, str] = {}
    where: dict[str, int] = {}
    for index, row in enumerate(table.rows):
        doc_id = _id_value(table, index, row)
        if doc_id in corpus:
            raise DataError(
                f"duplicate document id '{doc_id}' (first on line {where[doc_id]})",
                **table.where(index),
                key="_id",
                hint="document ids must be unique",
            )
        title = row.get("title") or ""
        if not isinstance(title, str):
            raise DataError(f"field 'title' must be text, got {_kind(title)}", **table.where(index), key="title")
        if "text" not in row:
            raise _missing(table, index, "text", "text")
        body = row["text"]
        if body is None or not isinstance(body, str):
            raise DataError(f"field 'text' must be text, got {_kind(body)}", **table.where(index), key="text")
        text = f"{title.strip()} {body.strip()}".strip()
        if not text:
            raise DataError("document has neither title nor text", **table.where(index), key="text", hint="fill it or drop the document")
        corpus[doc_id] = text
        where[doc_id] = table.lines[index]
    return corpus, where


def read_queries(path: Path) -> tuple[dict[str, str], dict[str, int]]:
    table = read_jsonl(path)
    queries: dict[str, str] = {}
    where: dict[str, int] = {}
    for index, row in enumerate(table.rows):
        query_id = _id_value(table, index, row)
        if query_id in queries:
            raise DataError(
                f"duplicate query id '{query_id}' (first on line {where[query_id]})",
                **table.where(index),
                key="_id",
                hint="query ids must be unique",
            )
        queries[query_id] = text_value(table, index, row, "text", "text")
        where[query_id] = table.lines[index]
    return queries, where


def read_qrels(path: Path) -> tuple[dict[str, dict[str, int]], dict[tuple[str, str], int]]:
    """Graded judgements: TREC ``qid 0 docid grade`` or BEIR ``query-id corpus-id score`` (a
    header line is allowed). Returns qrels and the line of each judgement."""
    text = read_text(path)
    qrels: dict[str, dict[str, int]] = {}
    lines: dict[tuple[str, str], int] = {}
    first = True
    for number, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        parts = raw.split("\t") if "\t" in raw else raw.split()
        parts = [p.strip() for p in parts]
        if first:
            first = False
            if len(parts) in (3, 4) and not _is_int(parts[-1]):
                continue  # header such as query-id	corpus-id	score
        if len(parts) == 4:
            query_id, _, doc_id, grade_text = parts
        elif len(parts) == 3:
            query_id, doc_id, grade_text = parts
        else:
            raise DataError(
                f"expected 3 or 4 fields, got {len(parts)}",
                file=path,
                line=number,
                hint="TREC qrels: 'QUERY_ID 0 DOC_ID GRADE'; BEIR: 'query-id<TAB>corpus-id<TAB>score'",
            )
        if not _is_int(grade_text):
            raise DataError(
                f"relevance grade must be an integer, got {grade_text!r}",
                file=path,
                line=number,
                key="score",
                hint="grades are integers: 0 not relevant, 1 relevant, 2+ more relevant",
            )
        if not query_id or not doc_id:
            raise DataError("empty query or document id", file=path, line=number)
        if doc_id in qrels.get(query_id, {}):
            raise DataError(
                f"duplicate judgement for query '{query_id}' and document '{doc_id}' (first on line {lines[(query_id, doc_id)]})",
                file=path,
                line=number,
                hint="judge each (query, document) pair once",
            )
        qrels.setdefault(query_id, {})[doc_id] = int(float(grade_text))
        lines[(query_id, doc_id)] = number
    if not qrels:
        raise DataError("qrels file has no judgements", file=path)
    return qrels, lines


def _is_int(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return math.isfinite(value) and value == int(value)


def qrels_files(folder: Path) -> dict[str, Path]:
    """Split name -> qrels file: ``qrels/SPLIT.tsv`` (BEIR) or a top-level ``qrels.txt``/``.tsv``
    (split ``test``)."""
    found: dict[str, Path] = {}
    sub = folder / "qrels"
    if sub.is_dir():
        for path in sorted(sub.iterdir()):
            if path.is_file() and path.suffix.lower() in (".tsv", ".txt", ".trec", ".qrels"):
                found[path.stem] = path
    for name in ("qrels.txt", "qrels.tsv", "qrels.trec"):
        if (folder / name).is_file():
            found.setdefault("test", folder / name)
    return found


def read_ir_folder(folder: str | os.PathLike, options: Mapping[str, Any]) -> tuple[IRData, IRData | None, dict[str, Any]]:
    """A BEIR-style folder -> (train split, eval split or None, notes)."""
    folder = Path(os.path.expanduser(str(folder)))
    if not folder.exists():
        raise DataError("folder not found", file=folder, hint="an IR source is a folder with corpus.jsonl, queries.jsonl and qrels")
    if not folder.is_dir():
        raise DataError(
            "an IR source is a folder, got a file",
            file=folder,
            hint="the folder holds corpus.jsonl, queries.jsonl and qrels/SPLIT.tsv or qrels.txt; for (query, document) pairs use type 'pairs'",
        )
    for name in ("corpus.jsonl", "queries.jsonl"):
        if not (folder / name).is_file():
            raise DataError(f"{name} not found", file=folder / name, hint="an IR folder holds corpus.jsonl, queries.jsonl and qrels")
    files = qrels_files(folder)
    if not files:
        raise DataError("no qrels found", file=folder, hint="add qrels/SPLIT.tsv (BEIR) or qrels.txt (TREC: 'QUERY_ID 0 DOC_ID GRADE')")
    split = options.get("split")
    train_name = split or ("train" if "train" in files else next((s for s in ("test", "dev", "validation") if s in files), next(iter(files))))
    if train_name not in files:
        raise DataError(f"no qrels for split '{train_name}'", file=folder, key="split", hint=f"splits: {', '.join(files)}")
    eval_name = options.get("eval_split") or next((s for s in EVAL_SPLITS if s in files and s != train_name), None)
    if eval_name is not None and eval_name not in files:
        raise DataError(f"no qrels for split '{eval_name}'", file=folder, key="eval_split", hint=f"splits: {', '.join(files)}")
    corpus, _ = read_corpus(folder / "corpus.jsonl")
    queries, _ = read_queries(folder / "queries.jsonl")
    train = _ir_split(files[train_name], corpus, queries)
    evaluation = _ir_split(files[eval_name], corpus, queries) if eval_name else None
    return train, evaluation, {"train_split": train_name, "eval_split": eval_name}


def _ir_split(path: Path, corpus: dict[str, str], queries: dict[str, str]) -> IRData:
    qrels, lines = read_qrels(path)
    for (query_id, doc_id), number in lines.items():
        if query_id not in queries:
            raise DataError(
                f"qrels name query '{query_id}', which is not in queries.jsonl",
                file=path,
                line=number,
                hint="every judged query must be in queries.jsonl",
            )
        if doc_id not in corpus:
            raise DataError(
                f"qrels name document '{doc_id}', which is not in corpus.jsonl",
                file=path,
                line=number,
                hint="every judged document must be in corpus.jsonl",
            )
    for query_id, judged in qrels.items():
        if not any(grade > 0 for grade in judged.values()):
            number = min(lines[(query_id, d)] for d in judged)
            raise DataError(
                f"query '{query_id}' has no relevant document (every grade is 0 or less)",
                file=path,
                line=number,
                hint="give the query a judgement with grade 1 or more, or remove its judgements",
            )
    return IRData(corpus=corpus, queries={q: queries[q] for q in qrels}, qrels=qrels)
