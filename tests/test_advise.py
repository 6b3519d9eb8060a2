"""`embedtune advise`: the guide's rules applied to data."""

import json

from embedtune_core.training.advice import max_batch_for_memory
from embedtune_core.testing import invoke

MINILM = {"hidden": 384, "layers": 6, "heads": 12, "parameters": 22_000_000}


def advise(*args):
    result = invoke(["advise", *args, "--json"])
    assert result.exit_code == 0, result
    return json.loads(result.stdout)


def test_small_pairs_file(tiny_model):
    advice = advise("--data", "tests/data/pairs.jsonl", "--type", "pairs", "--model", tiny_model, "--device", "cpu")
    assert advice["epochs"] == 1 and advice["loss"] == "mnrl" and advice["warmup_ratio"] == 0.1
    assert advice["batch_size"] <= advice["examples"]
    assert any("minimum for pairs is 1,000" in w for w in advice["warnings"])
    assert any("in-batch negatives" in n for n in advice["notes"])


def test_sts_gets_cosent_and_bundled_ir_gets_a_memory_sized_batch(tiny_model):
    assert advise("--data", "tests/data/sts.jsonl", "--type", "sts", "--model", tiny_model, "--device", "cpu")["loss"] == "cosent"
    big = advise("--data", "builtin:hpo-lay", "--model", tiny_model, "--memory-gb", "80", "--device", "gpu")
    small = advise("--data", "builtin:hpo-lay", "--model", tiny_model, "--memory-gb", "0.05", "--device", "gpu")
    assert big["batch_size"] > small["batch_size"]
    assert big["steps"] >= 30  # capped so the small set still makes enough steps


def test_memory_model_grows_with_memory_and_shrinks_with_length():
    assert max_batch_for_memory(MINILM, 128, 2, 80) > max_batch_for_memory(MINILM, 128, 2, 16)
    assert max_batch_for_memory(MINILM, 512, 2, 16) < max_batch_for_memory(MINILM, 128, 2, 16)
    assert max_batch_for_memory({}, 128, 2, 16) is None


def test_duplicates_and_leakage_are_reported(tmp_path, tiny_model):
    rows = [{"anchor": f"q{i % 5}", "positive": f"d{i % 5}"} for i in range(20)]
    path = tmp_path / "dups.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    advice = advise("--data", str(path), "--type", "pairs", "--model", tiny_model, "--device", "cpu")
    assert any("duplicate records" in w for w in advice["warnings"])


def test_bad_data_is_a_clear_error():
    result = invoke(["advise", "--data", "tests/data/does-not-exist.jsonl", "--type", "pairs"])
    assert result.exit_code == 2 and "does-not-exist.jsonl" in result.stderr and "Traceback" not in result.output
