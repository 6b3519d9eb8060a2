"""Reading and writing TREC qrels and run files.

qrels: one judgement per line, ``query_id iteration doc_id relevance`` (relevance an integer).
run: one retrieved document per line, ``query_id Q0 doc_id rank score tag``; like trec_eval,
the rank column is not used: documents are ranked by score (ties by document id, descending).

Fields are separated by ASCII whitespace (space, tab, CR, VT, FF), as trec_eval splits them;
lines end at ``\\n``; blank lines and a UTF-8 byte-order mark are skipped. Anything else is a
:class:`~embedtune_core.errors.DataError` naming file and line: a line with the wrong number of
fields, a relevance that is not a decimal integer of int64 range, a score that is not a decimal
number (or is NaN), a document listed twice for one query, bytes that are not UTF-8, a control
character (NUL and the like), or a file with no lines at all.

:func:`read_qrels_table` and :func:`read_run_table` read a file in a few vectorised passes per
block of lines (numpy finds the fields, pyarrow converts numbers and factorises ids; the blocks
of a large file two at a time in threads, taken in file order) into columns: per line a query
code, a document code and the value. Memory is about 16 bytes per line plus the distinct ids; no
Python object is made per line. :func:`read_qrels` and :func:`read_run` give the same content
as nested dicts.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Mapping

from embedtune_core.errors import DataError
from embedtune_core.ranking.arrays import distinct
from embedtune_core.ranking.blocks import line_blocks

#: bytes read per block; a block ends at a line end
BLOCK_BYTES = 1 << 23
#: records per part of a block whose document ids share one dictionary
DOC_PART = 1 << 14
#: blocks of a file parsed at once, in threads (at most the CPUs this process may use)
PARSE_THREADS = min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)

QRELS_FIELDS = "'query_id iteration doc_id relevance'"
RUN_FIELDS = "'query_id Q0 doc_id rank score tag'"
QRELS_HINT = "a qrels line looks like: 101 0 doc42 1"
RUN_HINT = "a run line looks like: 101 Q0 doc42 1 12.7 myrun"

_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)
_NUMBER = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)", re.ASCII | re.IGNORECASE
)
_INT64 = (-(2**63), 2**63 - 1)


@dataclass
class TrecTable:
    """The columns of a TREC qrels or run file, one entry per non-blank line ("record").

    Attributes:
        path: the file.
        query_ids: the distinct query ids, in order of first appearance.
        query: ``int32[records]``, each record's position in ``query_ids``.
        doc_blocks: per part of the file (up to ``DOC_PART`` records), ``(first record, distinct
            document ids of the part as a pyarrow string array)``.
        doc: ``int32[records]``, each record's position in its part's ids.
        values: ``int64[records]`` grades (qrels) or ``float64[records]`` scores (run).
        blank_lines: sorted 1-based numbers of the lines that hold no record.
    """

    path: str
    query_ids: list[str]
    query: Any
    doc_blocks: list
    doc: Any
    values: Any
    blank_lines: Any

    def __len__(self) -> int:
        return len(self.values)

    def line_of(self, record: int) -> int:
        """The 1-based line number of a record."""
        import numpy as np

        before = self.blank_lines - np.arange(1, len(self.blank_lines) + 1)
        return int(record) + 1 + int(np.searchsorted(before, record, side="right"))

    def doc_ids(self, records: Any) -> list[str]:
        """The document ids of ``records`` (record numbers, in any order)."""
        import numpy as np

        records = np.asarray(records, dtype=np.int64)
        starts = np.asarray([start for start, _ in self.doc_blocks], dtype=np.int64)
        block = np.searchsorted(starts, records, side="right") - 1
        out: list[str] = [""] * len(records)
        for b in distinct(block).tolist():
            at = np.flatnonzero(block == b)
            texts = _strings(_call("take", self.doc_blocks[b][1], _int_array(self.doc[records[at]])))
            for i, text in zip(at.tolist(), texts):
                out[i] = text
        return out

    def unified_docs(self) -> tuple[Any, Any]:
        """``(distinct document ids of the whole file, int32[records] positions in them)``."""
        import numpy as np
        import pyarrow as pa

        if len(self.doc_blocks) == 1:
            return self.doc_blocks[0][1], self.doc
        bounds = [start for start, _ in self.doc_blocks] + [len(self.doc)]
        chunks = [pa.DictionaryArray.from_arrays(_int_array(self.doc[start:end]), ids)
                  for (start, ids), end in zip(self.doc_blocks, bounds[1:])]
        unified = pa.chunked_array(chunks).unify_dictionaries()
        return unified.chunk(0).dictionary, np.concatenate([_numpy(c.indices) for c in unified.chunks])

    def find(self, record_rows: Any, rows: Any, doc_codes: Any, doc_ids: Any) -> Any:
        """``int64[pairs]``: the record holding each pair (query row ``rows[i]``, document
        ``doc_ids[doc_codes[i]]``), -1 where none does. ``record_rows`` gives each record's query
        row (-1: none). A block's ids are matched only against the documents of the pairs of the
        rows it holds, so the work stays proportional to the file plus the pairs."""
        import numpy as np

        out = np.full(len(rows), -1, dtype=np.int64)
        by_row = np.argsort(rows, kind="stable")
        sorted_rows = rows[by_row]
        bounds = [start for start, _ in self.doc_blocks] + [len(self.doc)]
        for (start, ids), end in zip(self.doc_blocks, bounds[1:]):
            block_rows = record_rows[start:end]
            present = distinct(block_rows[block_rows >= 0])
            lo, hi = np.searchsorted(sorted_rows, present, "left"), np.searchsorted(sorted_rows, present, "right")
            pairs = by_row[np.repeat(lo, hi - lo) + np.arange(int((hi - lo).sum())) - np.repeat(np.cumsum(hi - lo) - (hi - lo), hi - lo)]
            if not len(pairs):
                continue
            codes = distinct(doc_codes[pairs])
            wanted = _call("take", doc_ids, _int_array(codes))
            local = _numpy(_call("index_in", ids, options=_compute().SetLookupOptions(wanted)))[self.doc[start:end]]
            lines = np.flatnonzero((local >= 0) & (block_rows >= 0))
            line_keys = block_rows[lines] * len(codes) + local[lines]
            order = np.argsort(line_keys)
            line_keys, lines = line_keys[order], lines[order]
            pair_keys = rows[pairs] * len(codes) + np.searchsorted(codes, doc_codes[pairs])
            at = np.minimum(np.searchsorted(line_keys, pair_keys), max(len(line_keys) - 1, 0))
            hit = (line_keys[at] == pair_keys) if len(line_keys) else np.zeros(len(pairs), dtype=bool)
            out[pairs[hit]] = start + lines[at[hit]]
        return out


def _check_bytes(data: bytes, array: Any, space: Any, path: Any, line: int) -> None:
    """Reject bytes that are not UTF-8 and ASCII control characters other than whitespace
    (``space``: the positions of the bytes <= 32)."""
    import numpy as np

    if len(array) and int(array.max()) >= 0x80:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError("not UTF-8 text", file=path, line=line + data.count(b"\n", 0, exc.start),
                            hint="save the file as UTF-8") from None
    low = array[space]
    control = space[(low < 9) | ((low > 13) & (low < 32))]
    delete = np.flatnonzero(array == 127)
    if len(control) or len(delete):
        at = int(min(control[:1].tolist() + delete[:1].tolist()))
        raise DataError(
            f"control character U+{int(array[at]):04X} in the file", file=path, line=line + data.count(b"\n", 0, at),
            hint="ids and numbers are printable text separated by spaces or tabs",
        )


def _tokens(data: bytes, path: Any, line: int, fields: int, names: str, hint: str) -> tuple[Any, Any, Any, Any]:
    """The fields of a block of lines: ``(tokens, first token of each record, line of each
    record, blank lines)``.

    ``tokens`` is a pyarrow string array over ``data`` whose element ``2 i`` is the ``i``-th
    field of the block (odd elements are the whitespace between fields)."""
    import numpy as np
    import pyarrow as pa

    array = np.frombuffer(data, dtype=np.uint8)
    space = np.flatnonzero(array <= 32)
    _check_bytes(data, array, space, path, line)
    bounds = np.empty(len(space) + 2, dtype=np.int64)
    bounds[0], bounds[1:-1], bounds[-1] = -1, space, len(array)
    gap = np.flatnonzero(bounds[1:] - bounds[:-1] > 1)
    starts, ends = bounds[gap] + 1, bounds[gap + 1]
    # newlines before each field: a running count over the whitespace bytes
    newline_count = np.zeros(len(space) + 1, dtype=np.int64)
    np.cumsum(array[space] == 10, out=newline_count[1:])
    lines = int(newline_count[-1]) + (0 if len(array) and array[-1] == 10 else 1) if len(array) else 0
    counts = np.bincount(newline_count[gap], minlength=lines)
    wrong = np.flatnonzero((counts != fields) & (counts != 0))
    if len(wrong):
        at = int(wrong[0])
        raise DataError(f"expected {fields} fields {names}, found {int(counts[at])}", file=path, line=line + at,
                        hint=hint)
    filled = counts > 0
    first = (np.cumsum(counts) - counts)[filled]
    record_lines = np.flatnonzero(filled) + line
    blank = np.flatnonzero(~filled) + line
    offsets = np.empty(2 * len(starts), dtype=np.int64)
    offsets[0::2], offsets[1::2] = starts, ends
    tokens = pa.Array.from_buffers(pa.large_string(), max(len(offsets) - 1, 0),
                                   [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    return tokens, first, record_lines, blank


def _int_array(values: Any) -> Any:
    """A pyarrow int64 array sharing a numpy array's memory (``pa.array`` would import pandas)."""
    import numpy as np
    import pyarrow as pa

    values = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])


def _numpy(array: Any, missing: Any = -1) -> Any:
    """The values of a pyarrow array of integers or floats as a numpy array, ``missing`` where
    null (``to_numpy`` would import pandas)."""
    import numpy as np
    import pyarrow as pa

    kind = "f" if pa.types.is_floating(array.type) else "i"
    dtype = np.dtype(f"{kind}{array.type.bit_width // 8}")

    buffers = array.buffers()
    lo, hi = array.offset, array.offset + len(array)
    values = np.frombuffer(buffers[1], dtype=dtype)[lo:hi] if len(array) else np.zeros(0, dtype=dtype)
    if array.null_count:
        valid = np.unpackbits(np.frombuffer(buffers[0], dtype=np.uint8), bitorder="little")[lo:hi].astype(bool)
        values = np.where(valid, values, missing)
    return values


def _strings(array: Any) -> list[str]:
    """The values of a pyarrow (large) string array without nulls as Python strings."""
    import numpy as np

    buffers = array.buffers()
    width = np.int64 if array.type.equals(_large_string()) else np.int32
    offsets = np.frombuffer(buffers[1], dtype=width)[array.offset : array.offset + len(array) + 1].tolist()
    data = memoryview(buffers[2]) if buffers[2] is not None else memoryview(b"")
    return [str(data[a:b], "utf-8") for a, b in zip(offsets, offsets[1:])]


def _string_array(texts: list[str]) -> Any:
    """A pyarrow large string array of ``texts`` (``pa.array`` would import pandas)."""
    import numpy as np
    import pyarrow as pa

    encoded = [t.encode("utf-8") for t in texts]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    return pa.Array.from_buffers(pa.large_string(), len(encoded),
                                 [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))])


def _large_string() -> Any:
    import pyarrow as pa

    return pa.large_string()


def _compute() -> Any:
    """pyarrow's compute functions from its compiled module: importing ``pyarrow.compute`` first
    writes a Python wrapper for each of its 280 functions (0.1 s, a quarter of `embedtune
    metrics` on 10k queries)."""
    try:
        import pyarrow._compute as compute
    except ImportError:  # a pyarrow without the module: the public one has the same names
        import pyarrow.compute as compute
    return compute


def _call(name: str, *args: Any, options: Any = None) -> Any:
    """The pyarrow compute function ``name`` applied to ``args``."""
    return _compute().call_function(name, list(args), options)


def _field(tokens: Any, first: Any, index: int) -> Any:
    return _call("take", tokens, _int_array(2 * (first + index)))


def _numbers(column: Any, integer: bool, path: Any, lines: Any) -> Any:
    """The numbers of a column of fields: int64 grades or float64 scores; the first field that is
    not one is an error at its line (``lines(i)`` gives the line of field ``i``)."""
    import numpy as np
    import pyarrow as pa

    try:
        return _numpy(_call("cast", column, options=_compute().CastOptions.safe(pa.int64() if integer else pa.float64())))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    texts = _strings(column)
    grammar = _INTEGER if integer else _NUMBER
    for i, text in enumerate(texts):
        shown = text if len(text) <= 40 else text[:37] + "..."
        if not grammar.fullmatch(text):
            what = "relevance" if integer else "score"
            kind = "an integer" if integer else "a number"
            raise DataError(f"{what} '{shown}' is not {kind}", file=path, line=lines(i))
        if integer and (len(text) > 20 or not _INT64[0] <= int(text) <= _INT64[1]):
            raise DataError(f"relevance '{shown}' does not fit in a 64-bit integer", file=path, line=lines(i),
                            hint="grades are small integers such as 0, 1, 2, 3")
    if integer:
        return np.asarray([int(t) for t in texts], dtype=np.int64)
    return np.asarray([float(t) for t in texts], dtype=np.float64)


def _read_table(path: str | os.PathLike, qrels: bool) -> TrecTable:
    import numpy as np

    query_index: dict[str, int] = {}
    queries, docs, values, blanks = [], [], [], []
    doc_blocks: list = []
    line = 1  # of the block's first line
    for data, block in _parsed_blocks(path, qrels):
        block = block or _block_fields(bytes(data), path, line, qrels)
        del data
        blanks.append(block.blank + line)
        line += block.newlines
        if not len(block.values):
            continue
        if not qrels:
            nan = np.flatnonzero(np.isnan(block.values))
            if len(nan):
                raise DataError("score is NaN", file=path, line=block.line_of(int(nan[0]), line - block.newlines))
        values.append(block.values)
        local = np.asarray([query_index.setdefault(q, len(query_index)) for q in _strings(block.queries.dictionary)],
                           dtype=np.int32)
        queries.append(local[_numpy(block.queries.indices)])
        first_record = sum(map(len, values[:-1]))
        for offset, encoded in block.docs:
            doc_blocks.append((first_record + offset, encoded.dictionary))
            docs.append(_numpy(encoded.indices))
    if not values:
        if qrels:
            raise DataError("no judgements in the qrels file", file=path)
        raise DataError("no ranked documents in the run file", file=path, hint=RUN_HINT)
    table = TrecTable(
        path=str(path),
        query_ids=list(query_index),
        query=_joined(queries),
        doc_blocks=doc_blocks,
        doc=_joined(docs).astype(np.int32, copy=False),
        values=_joined(values),
        blank_lines=_joined(blanks),
    )
    _check_unique(table, qrels)
    return table


def _parsed_blocks(path: str | os.PathLike, qrels: bool) -> Any:
    """``(block data, its _Block or None)`` in file order: each plain block parsed by
    :func:`_plain_block` (None: not plain, for the field-by-field reader), up to
    :data:`PARSE_THREADS` blocks at a time in threads when the file has several (pyarrow's CSV
    reader, its hashing and numpy release the GIL). A block's pages that the map gives back are
    read again from the file if a thread still parses it."""
    import itertools
    from collections import deque

    blocks = line_blocks(path, BLOCK_BYTES)
    head = list(itertools.islice(blocks, 2))
    if len(head) < 2 or PARSE_THREADS < 2:
        for data, odd_free in itertools.chain(head, blocks):
            yield data, _plain_block(data, qrels, odd_free)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=PARSE_THREADS) as pool:
        pending: deque = deque()
        for data, odd_free in itertools.chain(head, blocks):
            pending.append((data, pool.submit(_plain_block, data, qrels, odd_free)))
            if len(pending) > PARSE_THREADS:
                data, parsed = pending.popleft()
                yield data, parsed.result()
        while pending:
            data, parsed = pending.popleft()
            yield data, parsed.result()


@dataclass
class _Block:
    """The columns of one block of lines: query ids dictionary-encoded (pyarrow), document ids
    too, in parts (:func:`_encoded_parts`), the values (numpy), the block's blank lines and each
    record's line (both 0-based within the block; ``record_lines`` None: record ``i`` is on line
    ``i``), and its line ends."""

    queries: Any
    docs: Any
    values: Any
    blank: Any
    newlines: int
    record_lines: Any = None

    def line_of(self, record: int, first_line: int) -> int:
        return first_line + (record if self.record_lines is None else int(self.record_lines[record]))


def _plain_block(data: Any, qrels: bool, odd_free: bool = True) -> _Block | None:
    """A block read by pyarrow's CSV reader, when the block is plain: printable ASCII fields
    separated by single spaces, one record on every line. Such a block reads to the same columns
    as :func:`_block_fields` gives, and the same numbers (the CSV reader converts with the parser
    a cast uses). None for any other block, and for one the CSV reader refuses: the
    field-by-field reader then reads it and names the problem. ``odd_free``: the block holds no
    CR (a line end to the CSV reader, whitespace to trec_eval) and no DEL byte."""
    import numpy as np

    array = np.frombuffer(data, dtype=np.uint8)
    if not len(array):
        return None
    separator = array.view(np.int8) < 33  # whitespace, control characters and non-ASCII bytes
    if separator[0] or (separator[-1] and array[-1] != 10) or (separator[1:] & separator[:-1]).any() \
            or not odd_free:
        return None  # an empty field, a blank line, whitespace at either end, a CR (a line end to the CSV reader), DEL
    import pyarrow as pa
    import pyarrow.csv as csv

    fields, value_field = (4, 3) if qrels else (6, 4)
    names = [str(i) for i in range(fields)]
    try:
        table = csv.read_csv(
            pa.BufferReader(data),
            read_options=csv.ReadOptions(column_names=names, use_threads=False, block_size=len(data) + 1),
            parse_options=csv.ParseOptions(delimiter=" ", quote_char=False, double_quote=False, escape_char=False,
                                           newlines_in_values=False, ignore_empty_lines=False),
            convert_options=csv.ConvertOptions(
                column_types={"0": pa.string(), "2": pa.string(),
                              names[value_field]: pa.int64() if qrels else pa.float64()},
                include_columns=["0", "2", names[value_field]], null_values=[], true_values=[], false_values=[],
                strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    newlines = table.num_rows - int(array[-1] != 10)
    if np.count_nonzero(separator) != table.num_rows * (fields - 1) + newlines:
        return None  # other whitespace, control characters or non-ASCII bytes than the spaces and line ends
    columns = [table.column(i).chunk(0) if table.column(i).num_chunks == 1 else table.column(i).combine_chunks()
               for i in range(3)]
    return _Block(queries=_call("dictionary_encode", columns[0]), docs=_encoded_parts(columns[1]),
                  values=_numpy(columns[2]), blank=np.zeros(0, dtype=np.int64), newlines=newlines)


def _encoded_parts(ids: Any) -> list:
    """``[(first record, dictionary-encoded ids)]`` for the document ids of a block, a part of
    ``DOC_PART`` records at a time: documents are mostly distinct, and hashing them in parts whose
    tables stay in the CPU's cache is three times faster than the block at once."""
    return [(start, _call("dictionary_encode", ids.slice(start, DOC_PART))) for start in range(0, len(ids), DOC_PART)]


def _block_fields(data: bytes, path: Any, line: int, qrels: bool) -> _Block:
    """A block read field by field (any whitespace between fields, blank lines, UTF-8 ids),
    every problem an error naming its line."""
    import numpy as np

    fields, names, hint = (4, QRELS_FIELDS, QRELS_HINT) if qrels else (6, RUN_FIELDS, RUN_HINT)
    tokens, first, records, blank = _tokens(data, path, line, fields, names, hint)
    newlines = data.count(b"\n")
    if not len(first):
        return _Block(queries=None, docs=None, values=np.zeros(0), blank=blank - line, newlines=newlines)
    values = _numbers(_field(tokens, first, 3 if qrels else 4), qrels, path, lambda i: int(records[i]))
    return _Block(queries=_call("dictionary_encode", _field(tokens, first, 0)),
                  docs=_encoded_parts(_field(tokens, first, 2)),
                  values=values, blank=blank - line, newlines=newlines, record_lines=records - line)


def _joined(parts: list) -> Any:
    """The blocks' arrays as one, the list emptied so that only one copy is alive at a time."""
    import numpy as np

    joined = np.concatenate(parts)
    parts.clear()
    return joined


def _check_unique(table: TrecTable, qrels: bool) -> None:
    """A document judged (or listed) twice for one query is an error at the second line."""
    import numpy as np

    bounds = [start for start, _ in table.doc_blocks] + [len(table.doc)]
    for (start, ids), end in zip(table.doc_blocks, bounds[1:]):
        if len(ids) == end - start:
            continue  # no document twice in the part
        codes = table.doc[start:end]
        repeated = np.flatnonzero(np.bincount(codes, minlength=len(ids))[codes] > 1)  # only these can repeat
        keys = table.query[start + repeated].astype(np.int64) * len(ids) + codes[repeated]
        _first_repeat(keys, table, qrels, 0, start + repeated)
    if len(table.doc_blocks) > 1:
        # A query whose lines lie in several blocks: compare its documents across the blocks.
        blocks_of = np.zeros(len(table.query_ids), dtype=np.int64)
        for start, end in zip(bounds[:-1], bounds[1:]):
            blocks_of[distinct(table.query[start:end])] += 1
        split = np.flatnonzero(blocks_of[table.query] > 1)
        if len(split):
            codes = _numpy(_call("dictionary_encode", _string_array(table.doc_ids(split))).indices)
            keys = table.query[split].astype(np.int64) * (int(codes.max()) + 1) + codes
            _first_repeat(keys, table, qrels, 0, split)


def _first_repeat(keys: Any, table: TrecTable, qrels: bool, offset: int, records: Any = None) -> None:
    import numpy as np

    ordered = np.sort(keys)
    if not (ordered[1:] == ordered[:-1]).any():
        return
    _, firsts = np.unique(keys, return_index=True)
    seen = np.zeros(len(keys), dtype=bool)
    seen[firsts] = True
    at = int(np.flatnonzero(~seen)[0])
    record = int(records[at]) if records is not None else offset + at
    doc = table.doc_ids([record])[0]
    query = table.query_ids[int(table.query[record])]
    what = "judged" if qrels else "listed"
    raise DataError(f"document '{doc}' is {what} twice for query '{query}'", file=table.path,
                    line=table.line_of(record))


def read_qrels_table(path: str | os.PathLike) -> TrecTable:
    """The columns of a TREC qrels file (``values``: int64 grades)."""
    return _read_table(path, qrels=True)


def read_run_table(path: str | os.PathLike) -> TrecTable:
    """The columns of a TREC run file (``values``: float64 scores)."""
    return _read_table(path, qrels=False)


def _nested(table: TrecTable) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    docs = table.doc_ids(range(len(table)))
    for q, d, v in zip(table.query.tolist(), docs, table.values.tolist()):
        out.setdefault(table.query_ids[q], {})[d] = v
    return out


def read_qrels(path: str | os.PathLike) -> dict[str, dict[str, int]]:
    """``{query_id: {doc_id: relevance}}`` from a TREC qrels file."""
    return _nested(read_qrels_table(path))


def read_run(path: str | os.PathLike) -> dict[str, dict[str, float]]:
    """``{query_id: {doc_id: score}}`` from a TREC run file."""
    return _nested(read_run_table(path))


def format_run(run: Mapping[str, Mapping[str, float]], tag: str = "embedtune") -> str:
    """A run as TREC run text, each query's documents in trec_eval's order, ranks from 1."""
    lines = []
    for query in sorted(run):
        ranked = sorted(run[query].items(), key=lambda item: (item[1], item[0]), reverse=True)
        for rank, (doc, score) in enumerate(ranked, 1):
            lines.append(f"{query} Q0 {doc} {rank} {score!r} {tag}")
    return "\n".join(lines) + ("\n" if lines else "")


def format_qrels(qrels: Mapping[str, Mapping[str, int]]) -> str:
    """Qrels as TREC qrels text."""
    lines = [f"{query} 0 {doc} {int(grade)}" for query in sorted(qrels) for doc, grade in qrels[query].items()]
    return "\n".join(lines) + ("\n" if lines else "")
