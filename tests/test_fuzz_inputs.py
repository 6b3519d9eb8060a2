"""Property-based fuzzing of every dataset reader format and the config loader.

Valid files are mutated (truncated, bytes replaced, unicode and control characters inserted, huge
numbers, deep nesting, values of the wrong type, YAML aliases) and read with the same functions
the CLI uses. Each must be accepted, with columns that can be written as UTF-8, or rejected with
an :class:`~embedtune_core.errors.EmbedtuneError` of at most two lines (message and hint): never
another exception, never a hang. A few mutations go through the CLI as well. Hypothesis runs
derandomised, so every run tries the same cases.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedtune_core.config.files import apply_overrides
from embedtune_core.config.schema import RunConfig
from embedtune_core.config.writer import to_toml
from embedtune_core.data import formats, records
from embedtune_core.errors import EmbedtuneError
from embedtune_core.testing import invoke

FUZZ = settings(derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))


def fuzz(examples: int) -> settings:
    return settings(FUZZ, max_examples=examples)
#: the longest one case may take: far above a real parse, far below a hang
SLOW = 10.0

SEEDS: dict[str, tuple[str, bytes]] = {
    "pairs.jsonl": ("pairs", b'{"anchor": "high fever", "positive": "elevated body temperature"}\n'
                             b'{"anchor": "cough", "positive": "a sudden expulsion of air", "id": 7}\n'),
    "hard.jsonl": ("hard-negatives", b'{"anchor": "rash", "positive": "skin eruption", "negatives": ["low blood pressure", "x"]}\n'
                                     b'{"anchor": "cough", "positive": "expulsion of air", "negatives": ["a fever", "y"]}\n'),
    "nli.json": ("nli", b'[{"premise": "a man sleeps", "hypothesis": "a person rests", "label": 0},\n'
                        b' {"premise": "a man sleeps", "hypothesis": "a man runs", "label": "contradiction"}]\n'),
    "triplets.csv": ("triplets", b'anchor,positive,negative\n"high, fever",elevated temperature,low pressure\n'
                                 b'cough,"a sudden\nexpulsion of air",sneeze\n'),
    "sts.tsv": ("sts", b"sentence1\tsentence2\tscore\na cat sits\ta cat is sitting\t4.5\na dog runs\ta man cooks\t0.2\n"),
    "hard.csv": ("hard-negatives", b'anchor,positive,negatives\nq1,a1,"[""n1"", ""n2""]"\nq2,a2,"[""n3"", ""n4""]"\n'),
}
CONFIGS: dict[str, bytes] = {
    "pipeline.toml": b'name = "fuzz"\nsteps = ["train"]\n[data]\nsource = "pairs.jsonl"\ntype = "pairs"\n'
                     b'columns = { anchor = "q" }\n[training]\nbatch_size = 16\nlearning_rate = 2e-5\n'
                     b'[loss]\nname = "matryoshka"\noptions = { dims = [32, 16], base_options = { scale = 20 } }\n'
                     b'[evaluation]\nmetrics = ["ndcg@10", "map@100"]\ndims = [32]\n',
    "pipeline.yaml": b'name: fuzz\nsteps: [train]\ndata:\n  source: pairs.jsonl\n  type: pairs\n  columns: {anchor: q}\n'
                     b'training:\n  batch_size: 16\n  learning_rate: 2.0e-5\nloss:\n  name: matryoshka\n'
                     b'  options: {dims: &d [32, 16]}\nevaluation:\n  metrics: [ndcg@10, map@100]\n  dims: *d\n',
}
#: pieces inserted or swapped in: separators, quotes, brackets, escapes, control and
#: format characters, non-ASCII digits, invalid UTF-8, huge numbers, deep nesting, YAML syntax
PIECES = [
    b"\x00", b"\x0b", b"\x0c", b"\x1c", b"\x7f", b"\xc2\x85", b"\xe2\x80\xa8", b"\xe2\x80\xa9", b"\xef\xbb\xbf",
    b'"', b"'", b",", b"\t", b"\n", b"\r", b"\r\n", b"[", b"]", b"{", b"}", b":", b"=", b"#", b"\\", b"-",
    b"\\ud800", b"\\udfff", b"\\ud83d\\ude00", b"\\u", b"\\x", b"\xff", b"\xed\xa0\x80", b"\xc3", b"\xc2\xb2",
    b"\xef\xbc\x91", b"\xf0\x9f\x98\x80", b"1" * 5000, b"-" + b"9" * 4400, b"0x" + b"f" * 5000, b"1e999", b"nan",
    b"[" * 3000, b"{" * 3000, b"[" * 70 + b"]" * 70, b"&a [*a]", b"*a", b"&x", b"!!python/object/apply:os.system",
    b"null", b"true", b"[]", b"{}", b"[1, 2]", b'{"a": 1}', b"1.5", b'""', b"  ", b"negative", b"anchor",
]


def _mutations(seed: bytes):
    size = len(seed)
    position = st.integers(0, size)
    piece = st.one_of(st.sampled_from(PIECES), st.binary(max_size=8))
    return st.lists(
        st.one_of(
            st.tuples(st.just("truncate"), position, st.just(b"")),
            st.tuples(st.just("insert"), position, piece),
            st.tuples(st.just("replace"), position, piece),
            st.tuples(st.just("delete"), position, st.just(b"")),
        ),
        min_size=1,
        max_size=4,
    )


def _apply(seed: bytes, edits) -> bytes:
    data = seed
    for kind, at, piece in edits:
        at = min(at, len(data))
        if kind == "truncate":
            data = data[:at]
        elif kind == "insert":
            data = data[:at] + piece + data[at:]
        elif kind == "replace":
            data = data[:at] + piece + data[at + max(1, len(piece)):]
        else:
            data = data[:at] + data[at + 1:]
    return data


def _check_error(exc: EmbedtuneError) -> None:
    text = exc.format()
    assert text.strip() and len(text.splitlines()) <= 2, text
    text.encode("utf-8")  # printable as it is


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory(prefix="embedtune-fuzz-") as name:
        yield Path(name)


def _read_data(path: Path, dataset_type: str) -> None:
    table = formats.read_table(path)
    columns, _ = records.records_to_columns(table, dataset_type)
    # what datasets and every output file need: the values serialise as UTF-8 text
    json.dumps(columns, ensure_ascii=False).encode("utf-8")


def _fuzz_file(folder: Path, name: str, seed: bytes, read) -> None:
    """Read ``seed`` (valid), then 350 mutations of it, each accepted or refused clearly."""
    read(_write(folder, name, seed))

    @fuzz(350)
    @given(edits=_mutations(seed))
    def run(edits):
        path = _write(folder, name, _apply(seed, edits))
        start = time.perf_counter()
        try:
            read(path)
        except EmbedtuneError as exc:
            _check_error(exc)
        assert time.perf_counter() - start < SLOW

    run()


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_mutated_data_files_are_read_or_refused_clearly(folder, name):
    dataset_type, seed = SEEDS[name]
    _fuzz_file(folder, name, seed, lambda path: _read_data(path, dataset_type))


def _load_config(path: Path, overrides=()) -> None:
    config = RunConfig.from_file(path, overrides)
    to_toml(config.to_dict())  # what `config show` prints and a run writes to config.toml
    json.dumps(config.to_dict(), ensure_ascii=False, default=str).encode("utf-8")


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_mutated_config_files_are_read_or_refused_clearly(folder, name):
    _fuzz_file(folder, name, CONFIGS[name], _load_config)


KEYS = ["name", "training.batch_size", "training.learning_rate", "loss.options.dims", "evaluation.metrics",
        "data.columns", "training.callbacks", "a.b.c", "steps"]


@fuzz(400)
@given(key=st.sampled_from(KEYS + [""]), value=st.one_of(
    st.sampled_from([p.decode("utf-8", "surrogateescape") for p in PIECES]),
    st.text(max_size=30),
    st.lists(st.sampled_from(["[", "]", "{", "}", "&a", "*a", ",", "1", "x", ":", " ", "\\ud800", '"']), max_size=40).map("".join),
))
def test_mutated_overrides_are_applied_or_refused_clearly(key, value):
    path = Path(__file__).parent / "bad_inputs" / "pipeline" / "valid.toml"
    start = time.perf_counter()
    try:
        apply_overrides({}, [f"{key}={value}"])
        _load_config(path, [f"{key}={value}"])
    except EmbedtuneError as exc:
        _check_error(exc)
    assert time.perf_counter() - start < SLOW


@fuzz(12)
@given(edits=_mutations(SEEDS["pairs.jsonl"][1]), config_edits=_mutations(CONFIGS["pipeline.yaml"]))
def test_mutations_through_the_cli_are_one_message_or_success(edits, config_edits):
    with tempfile.TemporaryDirectory(prefix="embedtune-fuzz-cli-") as name:
        folder = Path(name)
        data = _write(folder, "pairs.jsonl", _apply(SEEDS["pairs.jsonl"][1], edits))
        config = _write(folder, "pipeline.yaml", _apply(CONFIGS["pipeline.yaml"], config_edits))
        for args in (["data", "validate", str(data), "--type", "pairs"], ["config", "show", str(config)]):
            result = invoke(args)
            assert "Traceback" not in result.output, result
            if result.exit_code != 0:
                assert result.exit_code == 2 and result.stdout == "", result
                assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) <= 2, result
