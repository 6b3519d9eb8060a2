"""Data checks beyond the bad-input corpus.

Every case of tests/bad_inputs/data/cases.toml runs through `embedtune data validate` in
tests/test_bad_inputs.py (exit 2, file and line named, no traceback, nothing written). Here:
`data stats` rejects the same input, Parquet and saved datasets (binary, named by record),
reader options and column mappings given on the command line.
"""

import os
import shutil
import sys
from pathlib import Path

import pytest

from embedtune_core.testing import invoke

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

BAD = Path(__file__).parent / "bad_inputs" / "data"
CASES = tomllib.loads((BAD / "cases.toml").read_text(encoding="utf-8"))["case"]


@pytest.mark.parametrize("case", [c for c in CASES if c["type"] == "pairs"][:6], ids=lambda c: c["file"])
def test_stats_rejects_the_same_input(case, tmp_path):
    target = tmp_path / case["file"]
    if (BAD / case["file"]).exists():
        shutil.copy2(BAD / case["file"], target)
    result = invoke(["data", "stats", str(target), "--type", "pairs", "--no-tokens", *case.get("args", [])])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert case["message"] in result.stderr


def test_parquet_bad_record_is_named_by_record_number(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"anchor": ["q1", "q2", None], "positive": ["a1", "a2", "a3"]}), path)
    result = invoke(["data", "validate", str(path), "--type", "pairs"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"{path}, record 3" in result.stderr and "field 'anchor' is null" in result.stderr


def test_damaged_parquet(tmp_path):
    path = tmp_path / "damaged.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    result = invoke(["data", "validate", str(path), "--type", "pairs"])
    assert result.exit_code == 2 and "not a readable Parquet file" in result.stderr and "Traceback" not in result.output


def test_saved_dataset_with_bad_score(tmp_path):
    import datasets

    datasets.Dataset.from_dict({"sentence1": ["a", "b"], "sentence2": ["c", "d"], "score": [1.0, float("nan")]}).save_to_disk(
        str(tmp_path / "saved")
    )
    result = invoke(["data", "validate", str(tmp_path / "saved"), "--type", "sts"])
    assert result.exit_code == 2 and "record 2" in result.stderr and "NaN" in result.stderr


def test_unknown_option_and_field_mapping():
    sample = os.path.join(os.path.dirname(__file__), "data", "pairs.jsonl")
    result = invoke(["data", "validate", sample, "--type", "pairs", "-o", "colums={}"])
    assert result.exit_code == 2 and "dataset reader 'pairs' has no option 'colums'" in result.stderr and "did you mean 'columns'" in result.stderr
    result = invoke(["data", "validate", sample, "--type", "pairs", "-c", "answer=positive"])
    assert result.exit_code == 2 and "'answer' is not a field of type 'pairs'" in result.stderr
    result = invoke(["data", "validate", sample, "--type", "pairs", "-c", "anchor"])
    assert result.exit_code == 2 and "must be KEY=VALUE" in result.stderr


def test_missing_type_is_explained():
    sample = os.path.join(os.path.dirname(__file__), "data", "pairs.jsonl")
    result = invoke(["data", "validate", sample])
    assert result.exit_code == 2 and "cannot tell the type" in result.stderr and "pairs" in result.stderr
