"""Reading TREC qrels and run files: the columnar reader against trec_eval (pytrec_eval) and
against a line-by-line reference reader, on random and fuzzed files."""

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedtune_core.errors import DataError, EmbedtuneError
from embedtune_core.ranking import trec
from embedtune_core.ranking.ranked import RankedRun
from embedtune_core.ranking.trec import format_qrels, format_run, read_qrels_table, read_run_table
from test_metrics import assert_matches_trec, random_case


def write(tmp_path, qrels, run):
    qrels_path, run_path = tmp_path / "qrels.txt", tmp_path / "run.txt"
    qrels_path.write_text(format_qrels(qrels), encoding="utf-8")
    run_path.write_text(format_run(run), encoding="utf-8")
    return qrels_path, run_path


def file_case(seed, **kwargs):
    """A random case as a run file can hold it (no empty rankings)."""
    qrels, run = random_case(seed, **kwargs)
    return {q: j for q, j in qrels.items() if j}, {q: r for q, r in run.items() if r}


@pytest.mark.parametrize("seed, kwargs", [
    (0, {}), (1, {"score_levels": 3}), (2, {"score_levels": 2, "id_alphabet": ["a", "B", "é", "z", "Ω", "語", "_", "1"]}),
])
@pytest.mark.parametrize("all_queries", [False, True])
def test_ranked_from_files_equals_trec_eval(registry, tmp_path, seed, kwargs, all_queries):
    qrels, run = file_case(seed, **kwargs)
    qrels_path, run_path = write(tmp_path, qrels, run)
    ranked = RankedRun.from_tables(read_qrels_table(qrels_path), read_run_table(run_path), all_queries=all_queries)
    if all_queries:
        want = RankedRun.from_run(qrels, run, all_queries=True)
        assert ranked.query_ids == want.query_ids
        for name in ("ndcg", "mrr", "map", "recall"):
            metric = registry.create("metric", name)
            np.testing.assert_array_equal(metric.compute(ranked, 10), metric.compute(want, 10))
    else:
        assert_matches_trec(registry, qrels, run, ranked=ranked)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_blocks_that_split_queries_and_shuffled_lines(registry, tmp_path, monkeypatch, threads):
    """Read one block at a time or several at once in threads: the same tables, the same errors."""
    monkeypatch.setattr(trec, "PARSE_THREADS", threads)
    qrels, run = file_case(5, score_levels=3)
    qrels_path, run_path = write(tmp_path, qrels, run)
    lines = run_path.read_text(encoding="utf-8").splitlines(keepends=True)
    np.random.default_rng(0).shuffle(lines)  # a query's lines anywhere in the file
    run_path.write_text("\n" + "".join(lines) + "\n\n", encoding="utf-8")
    monkeypatch.setattr(trec, "BLOCK_BYTES", 200)  # many blocks, most queries in several
    qrels_table, run_table = read_qrels_table(qrels_path), read_run_table(run_path)
    assert len(run_table.doc_blocks) > 10
    assert_matches_trec(registry, qrels, run, ranked=RankedRun.from_tables(qrels_table, run_table))
    assert trec.read_run(run_path) == run
    assert trec.read_qrels(qrels_path) == qrels
    # a duplicate far from the first occurrence, in another block
    run_path.write_text("".join(lines) + lines[0], encoding="utf-8")
    with pytest.raises(DataError, match=re.escape(f"run.txt:{len(lines) + 1}: document")):
        read_run_table(run_path)


def test_line_numbers_skip_blank_lines(tmp_path):
    path = tmp_path / "qrels.txt"
    path.write_text("\n\nq1 0 d1 1\n \t\nq1 0 d2 1\n\nq2 0 d1 1\n", encoding="utf-8")
    table = read_qrels_table(path)
    assert [table.line_of(i) for i in range(len(table))] == [3, 5, 7]
    path.write_text("\n\nq1 0 d1 1\n \t\nq1 0 d2 1\n\nq1 0 d1 1\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"qrels.txt:7: document 'd1' is judged twice for query 'q1'"):
        read_qrels_table(path)


@pytest.mark.parametrize("content, message", [
    (b"q1 0 d1 9223372036854775808\n", "qrels.txt:1: relevance '9223372036854775808' does not fit in a 64-bit integer"),
    (b"q1 0 d1 1\nq1 0 d2 -9223372036854775809\n", "qrels.txt:2: relevance '-9223372036854775809' does not fit"),
    (b"q1 0 d1 " + b"7" * 5000 + b"\n", "qrels.txt:1: relevance '7777777777777777777777777777777777777...' does not fit"),
    ("q1 0 d1 ١\n".encode(), "qrels.txt:1: relevance '١' is not an integer"),
    (b"q1 0 d1 1_0\n", "qrels.txt:1: relevance '1_0' is not an integer"),
    (b"q1 0 d1 1\nq1 0 d\x002 1\n", "qrels.txt:2: control character U+0000"),
    (b"q1 0 d1 1\nq1\x1f0 d2 1\n", "qrels.txt:2: control character U+001F"),
    (b"q1 0 d1 1\n\nq1 0 \xc3 1\n", "qrels.txt:3: not UTF-8 text"),
    (b"q1 0 d1 1\rq2 0 d2 1\n", "qrels.txt:1: expected 4 fields"),  # CR is whitespace, not a line end
    (b"q1 0 d1 1\nq2 0 d2\t1\nq3 0 d3 1\n", None),  # a tab separates fields as a space does
])
def test_bad_qrels(tmp_path, content, message):
    path = tmp_path / "qrels.txt"
    path.write_bytes(content)
    if message is None:
        assert trec.read_qrels(path) == {"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d3": 1}}
        return
    with pytest.raises(DataError) as info:
        read_qrels_table(path)
    assert message in str(info.value)


def test_largest_grades_are_read_exactly(tmp_path):
    path = tmp_path / "qrels.txt"
    path.write_text("q1 0 d1 9223372036854775807\nq1 0 d2 -9223372036854775808\nq1 0 d3 +2\n", encoding="utf-8")
    assert trec.read_qrels(path) == {"q1": {"d1": 2**63 - 1, "d2": -(2**63), "d3": 2}}


@pytest.mark.parametrize("content, message", [
    (b"q1 Q0 d1 1 " + b"9" * 3000 + b" t\n", None),  # a long number is a number (inf)
    ("q1 Q0 d1 1 ١.٥ t\n".encode(), "run.txt:1: score '١.٥' is not a number"),
    (b"q1 Q0 d1 1 0.5 t\nq1 Q0 d2 1 \x7f t\n", "run.txt:2: control character U+007F"),
    (b"q1 Q0 d1 1 0.5 t\nq1 Q0 d2 1 0.4 t\xff\n", "run.txt:2: not UTF-8 text"),
])
def test_bad_runs(tmp_path, content, message):
    path = tmp_path / "run.txt"
    path.write_bytes(content)
    if message is None:
        assert trec.read_run(path) == {"q1": {"d1": float("inf")}}
        return
    with pytest.raises(DataError) as info:
        read_run_table(path)
    assert message in str(info.value)


# -- property-based: mutated valid files -----------------------------------------------------
ASCII_SPACE = b" \t\r\x0b\x0c"
INTEGER = re.compile(rb"[+-]?[0-9]+")
NUMBER = re.compile(rb"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)", re.IGNORECASE)


def reference_read(content: bytes, qrels: bool):
    """The documented format, one line at a time: ``{query: {doc: value}}`` or DataError."""
    if content.startswith(b"\xef\xbb\xbf"):
        content = content[3:]
    out: dict = {}
    for number, raw in enumerate(content.split(b"\n"), 1):
        raw.decode("utf-8")  # UnicodeDecodeError: not UTF-8
        if any(b < 9 or 13 < b < 32 or b == 127 for b in raw):
            raise DataError("control character", line=number)
        fields = raw.split()
        if not fields:
            continue
        if len(fields) != (4 if qrels else 6):
            raise DataError("fields", line=number)
        query, doc, text = fields[0].decode(), fields[2].decode(), fields[3 if qrels else 4]
        if qrels:
            if not INTEGER.fullmatch(text) or not -(2**63) <= int(text) < 2**63:
                raise DataError("relevance", line=number)
            value = int(text)
        else:
            if not NUMBER.fullmatch(text) or float(text) != float(text):
                raise DataError("score", line=number)
            value = float(text)
        if doc in out.setdefault(query, {}):
            raise DataError("twice", line=number)
        out[query][doc] = value
    if not out:
        raise DataError("empty")
    return out


def reference(content: bytes, qrels: bool):
    try:
        return reference_read(content, qrels)
    except UnicodeDecodeError:
        return "error"
    except DataError:
        return "error"


VALID_QRELS = format_qrels({"q1": {"d1": 1, "d2": 0, "é": 3}, "q2": {"d1": 2, "x語": -1}}).encode()
VALID_RUN = format_run({"q1": {"d1": 0.5, "d2": 0.25, "é": 1e-3}, "q2": {"d1": 2.0, "x語": -1.5}}).encode()
PIECES = [b"", b" ", b"\t", b"\n", b"\r\n", b"\x00", b"\x1f", b"\x7f", b"\xff", b"\xc3", b"\xef\xbb\xbf",
          "é".encode(), "١".encode(), "\u00a0".encode(), "\u2028".encode(), b"nan", b"-inf", b"1e400",
          b"9" * 25, b"9" * 3000, b"-9223372036854775809", b"9223372036854775807", b"+1", b"1_0",
          b"0x1", b".", b"e5", b"q1 0 d1 1", b"q1 Q0 d1 1 0.5 t", b"d1", b"q2"]


@st.composite
def mutated(draw, valid: bytes):
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "duplicate"]))
        at = draw(st.integers(0, len(data)))
        if kind == "truncate":
            del data[at:]
        elif kind == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            piece = draw(st.one_of(st.sampled_from(PIECES), st.binary(max_size=6),
                                   st.text(max_size=4).map(lambda t: t.encode("utf-8", "surrogatepass"))))
            data[at:at] = piece
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 5))]
        elif kind == "duplicate":
            lines = bytes(data).split(b"\n")
            data = bytearray(b"\n".join(lines + [draw(st.sampled_from(lines))]))
    return bytes(data)


FUZZ = settings(max_examples=1500, derandomize=True, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


ASCII_QRELS = format_qrels({"q1": {"d1": 1, "d2": 0, "d3": 3}, "q2": {"d1": 2, "x9": -1}}).encode()
ASCII_RUN = format_run({"q1": {"d1": 0.5, "d2": 0.25, "d3": 1e-3}, "q2": {"d1": 2.0, "x9": -1.5}}).encode()


@pytest.mark.parametrize("qrels, valid", [(True, VALID_QRELS), (False, VALID_RUN), (True, ASCII_QRELS),
                                          (False, ASCII_RUN)], ids=["qrels", "run", "ascii-qrels", "ascii-run"])
def test_fuzzed_files_are_read_or_one_error(tmp_path, qrels, valid):
    """Files with non-ASCII ids go through the field-by-field reader; ASCII ones mostly through
    the CSV reader, and out of it when a mutation makes a block anything but plain."""
    path = tmp_path / ("qrels.txt" if qrels else "run.txt")
    read = trec.read_qrels if qrels else trec.read_run

    @FUZZ
    @given(mutated(valid))
    def check(content):
        path.write_bytes(content)
        want = reference(content, qrels)
        try:
            got = read(path)
        except EmbedtuneError as exc:
            assert want == "error", (content, str(exc))
            assert exc.file == str(path)
            return
        assert want == got, content

    check()


def test_grades_past_32_bits_keep_their_value(registry, tmp_path):
    qrels_path, run_path = tmp_path / "qrels.txt", tmp_path / "run.txt"
    qrels_path.write_text("q1 0 d1 4294967296\nq1 0 d2 1\n", encoding="utf-8")
    run_path.write_text("q1 Q0 d2 1 0.9 t\nq1 Q0 d1 2 0.5 t\n", encoding="utf-8")
    ranked = RankedRun.from_tables(read_qrels_table(qrels_path), read_run_table(run_path))
    assert ranked.grades.tolist() == [[1, 2**32]]
    # trec_eval's own qrels grade is a C int, so the formula is the reference here
    dcg = 1 / np.log2(2) + 2**32 / np.log2(3)
    ideal = 2**32 / np.log2(2) + 1 / np.log2(3)
    assert registry.create("metric", "ndcg").compute(ranked, 2)[0] == pytest.approx(dcg / ideal, abs=1e-12)


PLAIN_TOKENS = ["0", "7", "+1", "-0", "+-1", "1.", ".5", ".", "1e5", "1E+5", "1e", "e5", "1e400", "-1e-400", "inf",
                "-inf", "+inf", "Inf", "INFINITY", "infinity", "nan", "NaN", "-nan", "0x10", "1_0", "1,5", "1.5.2",
                "00012", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
                "-9223372036854775809", "9" * 25, "9" * 400, "true", "false", "null", "NA", "N/A", "#", "abc",
                "1d", "1f", "- 1"]


@pytest.mark.parametrize("qrels", [True, False], ids=["qrels", "run"])
@pytest.mark.parametrize("token", PLAIN_TOKENS)
def test_plain_blocks_read_as_the_field_by_field_reader(tmp_path, monkeypatch, qrels, token):
    """The CSV reader takes a plain block; the result (or the error) is what the field-by-field
    reader gives for the same bytes."""
    line = f"q1 0 d1 {token}\n" if qrels else f"q1 Q0 d1 1 {token} t\n"
    path = tmp_path / "file.txt"
    path.write_text(("q0 0 d0 1\n" if qrels else "q0 Q0 d0 1 0.5 t\n") + line, encoding="ascii")
    read = read_qrels_table if qrels else read_run_table

    def outcome():
        try:
            table = read(path)
        except DataError as exc:
            return str(exc)
        return table.query_ids, table.values.tolist(), table.doc_ids(range(len(table)))

    plain = outcome()
    monkeypatch.setattr(trec, "_plain_block", lambda *args: None)
    assert plain == outcome()


def test_plain_blocks_use_the_csv_reader(tmp_path, monkeypatch):
    qrels, run = file_case(3, score_levels=3)
    qrels_path, run_path = write(tmp_path, qrels, run)
    monkeypatch.setattr(trec, "BLOCK_BYTES", 300)

    def refuse(*args):
        raise AssertionError("a plain block went to the field-by-field reader")

    monkeypatch.setattr(trec, "_block_fields", refuse)
    assert trec.read_run(run_path) == run and trec.read_qrels(qrels_path) == qrels
