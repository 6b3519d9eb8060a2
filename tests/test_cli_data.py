"""`embedtune data validate|stats|list`."""

import json
import os

import pytest

from embedtune_core.testing import invoke
from embedtune_core.types import MINIMUM_SIZES

DATA = os.path.join(os.path.dirname(__file__), "data")


def sample(name):
    return os.path.join(DATA, name)


@pytest.mark.parametrize(
    "name,dataset_type,expected",
    [
        ("pairs.jsonl", "pairs", "valid pairs data: train 10 records"),
        ("pairs.csv", "pairs", "valid pairs data: train 10 records"),
        ("triplets.jsonl", "triplets", "valid triplets data: train 10 records"),
        ("sts.tsv", "sts", "valid sts data: train 10 records"),
        ("nli.csv", "nli", "valid nli data: train 12 records"),
        ("hard_negatives.jsonl", "hard-negatives", "valid hard-negatives data: train 10 records"),
        ("ir", "ir", "valid ir data: train 4 queries, 5 judgements, 6 documents; eval 2 queries, 3 judgements, 6 documents"),
        ("ir_trec", "ir", "valid ir data: train 6 queries, 7 judgements, 6 documents"),
        ("pairs_splits", "pairs", "valid pairs data: train 8 records; eval 2 records"),
    ],
)
def test_validate_prints_one_line(name, dataset_type, expected):
    result = invoke(["data", "validate", sample(name), "--type", dataset_type])
    assert result.exit_code == 0, result
    assert result.stdout.strip() == f"{sample(name)}: {expected}"


def test_validate_with_column_mapping(tmp_path):
    path = tmp_path / "faq.jsonl"
    path.write_text(json.dumps({"q_text": "a question", "a_text": "an answer"}) + "\n", encoding="utf-8")
    result = invoke(["data", "validate", str(path), "-t", "pairs", "-c", "anchor=q_text", "-c", "positive=a_text"])
    assert result.exit_code == 0 and "train 1 records" in result.stdout, result


def test_validate_builtin_without_type():
    result = invoke(["data", "validate", "builtin:construction-faq"])
    assert result.exit_code == 0 and result.stdout.startswith("builtin:construction-faq: valid ir data"), result


def test_list_shows_bundled_sets():
    result = invoke(["data", "list", "--json"])
    assert result.exit_code == 0, result
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert {"hpo-lay", "construction-faq", "lee-sts", "hpo-nli"} <= set(rows)
    assert rows["hpo-lay"]["type"] == "ir" and rows["lee-sts"]["type"] == "sts" and rows["hpo-nli"]["type"] == "nli"
    assert rows["construction-faq"]["licence"] == "CC-BY-4.0"
    assert all(r["size"] for r in rows.values())
    assert "pairs" not in rows  # type readers are not bundled sets
    text = invoke(["data", "list"])
    assert text.exit_code == 0 and "hpo-lay" in text.stdout and "licence" in text.stdout


def test_stats_counts_tokens_with_the_models_tokenizer(tiny_model):
    from transformers import AutoTokenizer

    result = invoke(["data", "stats", sample("pairs.jsonl"), "-t", "pairs", "--model", tiny_model, "--json"])
    assert result.exit_code == 0, result
    stats = json.loads(result.stdout)
    reference = AutoTokenizer.from_pretrained(tiny_model)
    rows = [json.loads(line) for line in open(sample("pairs.jsonl"), encoding="utf-8")]
    lengths = [len(reference(r["anchor"])["input_ids"]) for r in rows]
    tokens = stats["splits"]["train"]["tokens"]["anchor"]
    assert tokens["max"] == max(lengths) and tokens["min"] == min(lengths)
    assert tokens["mean"] == pytest.approx(sum(lengths) / len(lengths), abs=0.01)
    assert stats["max_seq_length"] == 64
    assert stats["splits"]["train"]["records"] == 10
    assert stats["minimum"] == {"size": 10, "unit": "records", "required": MINIMUM_SIZES["pairs"], "meets": False}


def test_stats_duplicates_and_leakage_against_another_split(tmp_path, tiny_model):
    train = tmp_path / "train.jsonl"
    other = tmp_path / "other.jsonl"
    rows = [("q1", "a1"), ("q1", "a1"), ("q2", "a2"), ("Q3", "a3")]
    train.write_text("\n".join(json.dumps({"anchor": a, "positive": p}) for a, p in rows) + "\n", encoding="utf-8")
    other.write_text(json.dumps({"anchor": "q3", "positive": "x"}) + "\n" + json.dumps({"anchor": "q9", "positive": "y"}) + "\n", encoding="utf-8")
    result = invoke(["data", "stats", str(train), "-t", "pairs", "-m", tiny_model, "--against", str(other), "--json"])
    assert result.exit_code == 0, result
    stats = json.loads(result.stdout)
    assert stats["splits"]["train"]["duplicate_records"] == 1
    assert stats["splits"]["train"]["distinct_anchors"] == 3
    assert stats["leakage"]["against"]["count"] == 1 and stats["leakage"]["against"]["examples"] == ["Q3"]
    text = invoke(["data", "stats", str(train), "-t", "pairs", "-m", tiny_model, "--against", str(other)])
    assert "leakage against" in text.stdout and "1 shared anchor" in text.stdout
    assert "is below the minimum of 1,000 for pairs" in text.stdout


def test_stats_ir_and_nli_and_sts(tiny_model):
    ir = json.loads(invoke(["data", "stats", sample("ir"), "-t", "ir", "-m", tiny_model, "--json"]).stdout)
    assert ir["splits"]["train"]["queries"] == 4 and ir["splits"]["train"]["grades"] == {"0": 1, "1": 2, "2": 2}
    assert ir["leakage"]["train_vs_eval"]["count"] == 0
    assert set(ir["splits"]["train"]["tokens"]) == {"query", "document"}
    nli = json.loads(invoke(["data", "stats", sample("nli.jsonl"), "-t", "nli", "--no-tokens", "--json"]).stdout)
    assert nli["splits"]["train"]["labels"] == {"entailment": 5, "neutral": 3, "contradiction": 4}
    assert "tokens" not in nli["splits"]["train"]
    sts = json.loads(invoke(["data", "stats", sample("sts.jsonl"), "-t", "sts", "--no-tokens", "--json"]).stdout)
    assert sts["splits"]["train"]["score"]["max"] == 4.8
    hard = json.loads(invoke(["data", "stats", sample("hard_negatives.jsonl"), "-t", "hard-negatives", "-m", tiny_model, "--json"]).stdout)
    assert hard["splits"]["train"]["tokens"]["negatives"]["count"] == 20


def test_stats_bundled_meets_minimum(tiny_model):
    result = invoke(["data", "stats", "builtin:hpo-lay", "-m", tiny_model, "--json"])
    assert result.exit_code == 0, result
    stats = json.loads(result.stdout)
    assert stats["minimum"]["meets"] is True and stats["minimum"]["unit"] == "queries"
    assert stats["leakage"]["train_vs_eval"]["count"] == 0
    assert stats["splits"]["eval"]["documents"] == 4000


def test_stats_unknown_model_is_a_clear_error():
    result = invoke(["data", "stats", sample("pairs.jsonl"), "-t", "pairs", "-m", "./no/such/model"])
    assert result.exit_code == 2 and "does not exist" in result.stderr and "Traceback" not in result.output


@pytest.mark.slow
def test_stats_default_model_is_the_bundled_minilm():
    result = invoke(["data", "stats", sample("pairs.jsonl"), "-t", "pairs", "--json"])
    assert result.exit_code == 0, result
    stats = json.loads(result.stdout)
    assert stats["model"] == "sentence-transformers/all-MiniLM-L6-v2" and stats["max_seq_length"] == 256


def test_data_help_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys\nfrom embedtune_core.cli.main import main\n"
        "for args in (['data', '--help'], ['data', 'stats', '--help'], ['data', 'validate', '--help']):\n"
        "    try:\n        main(args)\n    except SystemExit:\n        pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NOTORCH')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("NOTORCH")
