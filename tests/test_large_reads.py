"""Reading data files without holding them: the streamed JSONL and CSV readers against
whole-file references (the same rows, lines and first error), block edges, what a read holds,
and columns to a dataset as ``datasets.Dataset.from_dict`` builds it."""

import csv
import io
import json
import random
import tracemalloc

import pytest

from embedtune_core.data import formats, records
from embedtune_core.data.columns import dataset_from_columns
from embedtune_core.errors import DataError


def reference_jsonl(path):
    """The whole-file reader: decode everything (a BOM allowed), then each line in order."""
    data = path.read_bytes()
    if not data.strip():
        return ("file is empty", None)
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        column = exc.start - (body.rfind(b"\n", 0, exc.start) + 1) + 1
        return (f"not valid UTF-8: byte 0x{body[exc.start]:02x} at column {column}", body.count(b"\n", 0, exc.start) + 1)
    rows, lines = [], []
    for number, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            return (f"invalid JSON: {exc.msg} (column {exc.colno})", number)
        if not isinstance(record, dict):
            return ("expected a JSON object", number)
        try:
            formats.check_record(record, path, raw, line=number)  # lone surrogates: the same check as the reader's
        except DataError as exc:
            return (exc.message, number)
        rows.append(record)
        lines.append(number)
    return rows, lines


def outcome(read, path):
    try:
        table = read(path)
    except DataError as exc:
        return (exc.message, exc.line)
    return list(table.rows), table.lines


def same(found, expected):
    if isinstance(expected[0], str):  # an error: the reference's message starts the reader's
        return found[0].startswith(expected[0]) and found[1] == expected[1]
    return found == expected


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of a few bytes, so every file crosses many block edges."""
    monkeypatch.setattr(formats, "BLOCK_BYTES", 7)


def random_jsonl(rng):
    pieces = ["q", "é", "\u2028", "日本", "\\ud83d\\ude00", "\\n", " ", "\r", "x" * 20]
    lines = []
    for i in range(rng.randint(1, 12)):
        kind = rng.random()
        if kind < 0.15:
            lines.append(rng.choice(["", "  ", "\t", "\r"]))
            continue
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 6)))
        lines.append('{"anchor": "%s%d", "positive": "p%s"}' % (text.replace("\r", ""), i, text) + rng.choice(["", "\r"]))
    return ("\ufeff" if rng.random() < 0.3 else "") + "\n".join(lines) + rng.choice(["", "\n"])


def test_jsonl_rows_and_lines_match_the_whole_file_reader(tmp_path, small_blocks):
    rng = random.Random(7)
    for case in range(200):
        path = tmp_path / f"r{case}.jsonl"
        text = random_jsonl(rng)
        if text and rng.random() < 0.4:  # damage one byte: invalid JSON or UTF-8, somewhere
            data = bytearray(text.encode("utf-8"))
            data[rng.randrange(len(data))] = rng.choice(b"\xff\xc3{}\"x\n")
            path.write_bytes(bytes(data))
        else:
            path.write_text(text, encoding="utf-8", newline="")
        expected, found = reference_jsonl(path), outcome(formats.read_jsonl, path)
        assert same(found, expected), (path.read_bytes(), found, expected)


@pytest.mark.parametrize("content, message, line", [
    # a UTF-8 error is reported before a JSON error on an earlier line, as when the whole file was decoded first
    (b'{"anchor": "q", "positive": "p"}\n{"anchor": \n{"anchor": "q", "positive": "p"}\n{"a": "\xff"}\n',
     "not valid UTF-8: byte 0xff at column 8", 4),
    # the column counts from after a BOM
    (b'\xef\xbb\xbf{"a\xc3": 1}\n', "not valid UTF-8: byte 0xc3 at column 4", 1),
    (b"\xef\xbb\xbf \n\t\n", "file is empty", None),
    (b'\n\n{"anchor": "q", "positive": "p"}\n[1, 2]\n', "expected a JSON object, got a list", 4),
])
def test_jsonl_errors_name_the_first_problem_as_before(tmp_path, small_blocks, content, message, line):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        formats.read_table(path)
    assert info.value.message == message and info.value.line == line and info.value.file == str(path)
    assert outcome(formats.read_jsonl, path) == (message, line)


def test_csv_rows_match_the_csv_module_and_errors_keep_their_order(tmp_path, small_blocks):
    text = 'anchor,positive\r\n"multi\nline",a1\rq2,"a,2"\n\nq3,\u00e9\u2028x\n'
    path = tmp_path / "rows.csv"
    path.write_text(text, encoding="utf-8", newline="")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    expected = [dict(zip(header, fields)) for fields in reader if fields]
    table = formats.read_table(path)
    assert list(table.rows) == expected and table.lines == [2, 4, 6]
    assert list(table.rows) == expected  # read again, the same
    # a NUL byte before a UTF-8 error: the UTF-8 error is the one reported (the file is decoded first)
    path.write_bytes(b"anchor,positive\nq,a\x00\nq2,a2\nq3,\xff\n")
    with pytest.raises(DataError, match="not valid UTF-8") as info:
        formats.read_table(path)
    assert info.value.line == 4
    path.write_bytes(b"anchor,positive\nq,a\nq2,a2\x00\n")
    with pytest.raises(DataError, match="NUL byte") as info:
        formats.read_table(path)
    assert info.value.line == 3


def test_rows_index_and_slice_like_a_list(tmp_path):
    path = tmp_path / "rows.jsonl"
    records = [{"anchor": f"q{i}", "positive": f"p{i}"} for i in range(10)]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    rows = formats.read_table(path).rows
    assert len(rows) == 10 and rows[0] == records[0] and rows[-1] == records[-1]
    assert rows[2:8:3] == records[2:8:3] and rows[::-1] == records[::-1]
    with pytest.raises(IndexError):
        rows[10]


def test_parquet_rows_come_a_batch_at_a_time(tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    monkeypatch.setattr(formats, "ARROW_BATCH", 3)
    records = [{"anchor": f"q{i}", "positive": f"p{i}", "score": i / 2} for i in range(10)]
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "rows.parquet")
    table = formats.read_table(tmp_path / "rows.parquet")
    assert list(table.rows) == records and len(table.rows) == 10 and table.lines is None


def test_reading_holds_no_record_per_line(tmp_path, monkeypatch):
    """A 20,000-record file is checked and its columns built while at most a fraction of its
    size is held besides the columns (a dict per record would hold several times the file)."""
    monkeypatch.setattr(formats, "BLOCK_BYTES", 1 << 16)
    path = tmp_path / "big.jsonl"
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(20_000):
            handle.write(json.dumps({"anchor": f"question {i} " * 5, "positive": f"answer {i} " * 20}) + "\n")
    size = path.stat().st_size
    tracemalloc.start()
    try:
        table = formats.read_table(path)
        _, read_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        columns, _ = records.records_to_columns(table, "pairs")
        held, columns_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert read_peak < size / 4, (read_peak, size)
    assert columns_peak - held < size / 4, (columns_peak, held, size)
    assert columns["anchor"][19_999] == "question 19999 " * 5


@pytest.mark.parametrize("columns", [
    {"anchor": ["q1", "q2", "q3"], "positive": ["p1", "p2", "p3"]},
    {"sentence1": ["a", "b"], "sentence2": ["c", "d"], "score": [0.5, 5.0]},
    {"premise": ["a", "b"], "hypothesis": ["c", "d"], "label": [0, 2]},
    {"mixed": [1, 2.5], "maybe": ["x", None]},
])
def test_dataset_from_columns_is_what_from_dict_builds(columns):
    import datasets

    built, reference = dataset_from_columns(columns, block=1), datasets.Dataset.from_dict(columns)
    assert built.features == reference.features and built.to_dict() == reference.to_dict()
    again = dataset_from_columns(columns, block=1)
    assert built._fingerprint == again._fingerprint and len(built._fingerprint) == 16
    changed = {name: list(values) for name, values in columns.items()}
    first = next(iter(changed))
    changed[first][0] = "other" if isinstance(changed[first][0], str) else 7
    assert dataset_from_columns(changed)._fingerprint != built._fingerprint
    assert built.map(lambda row: row).to_dict() == reference.to_dict()
