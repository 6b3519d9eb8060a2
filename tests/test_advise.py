"""`embedtune advise`: the guide's rules applied to data."""

import json

import pytest

from embedtune_core.training.advice import max_batch_for_memory
from embedtune_core.testing import invoke

MINILM = {"hidden": 384, "layers": 6, "heads": 12, "parameters": 22_000_000}


def advise(*args):
    result = invoke(["advise", *args, "--json"])
    assert result.exit_code == 0, result
    return json.loads(result.stdout)


def test_small_pairs_file(tiny_model):
    advice = advise("--data", "tests/data/pairs.jsonl", "--type", "pairs", "--model", tiny_model, "--device", "cpu")
    assert advice["loss"] == "mnrl" and advice["warmup_ratio"] == 0.1
    # 10 pairs: the whole set is one batch, and epochs make up the optimizer steps
    assert advice["batch_size"] == advice["examples"] == 10 and advice["epochs"] == 10
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


def test_small_data_keeps_the_in_batch_floor_and_gets_more_epochs(tmp_path, tiny_model):
    from embedtune_core.training.advice import MIN_IN_BATCH, MIN_STEPS

    rows = [{"anchor": f"question {i}", "positive": f"answer {i}"} for i in range(80)]
    path = tmp_path / "pairs80.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    advice = advise("--data", str(path), "--type", "pairs", "--model", tiny_model, "--device", "cpu")
    assert advice["batch_size"] == MIN_IN_BATCH == 16  # not 2: one in-batch negative teaches nothing
    assert advice["epochs"] == 6 and advice["steps"] >= MIN_STEPS
    assert any("too few for both 15+ in-batch negatives" in w and "train 6 epochs" in w for w in advice["warnings"])
    assert any("15 in-batch negatives" in n for n in advice["notes"])
    assert advice["config"]["training"]["epochs"] == 6


def test_score_based_losses_have_no_in_batch_floor(tmp_path, tiny_model):
    rows = [{"sentence1": f"a {i}", "sentence2": f"b {i}", "score": i % 5} for i in range(80)]
    path = tmp_path / "sts80.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    advice = advise("--data", str(path), "--type", "sts", "--model", tiny_model, "--device", "cpu")
    assert advice["batch_size"] == 2 and advice["epochs"] == 1


def test_advise_reads_data_like_data_validate(tmp_path, tiny_model):
    rows = [{"question": f"q {i}", "answer": f"a {i}"} for i in range(40)]
    path = tmp_path / "qa.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    advice = advise("--data", str(path), "-t", "pairs", "-c", "anchor=question", "-c", "positive=answer",
                    "--model", tiny_model, "--device", "cpu")
    assert advice["examples"] == 40
    result = invoke(["advise", "--data", str(path), "-t", "pairs", "-c", "anchor=nope", "--device", "cpu"])
    assert result.exit_code == 2 and "column 'nope' (mapped to 'anchor') is not in the data" in result.stderr


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf", "-inf"])
def test_memory_must_be_a_positive_number(value):
    result = invoke(["advise", "--data", "tests/data/pairs.jsonl", "--type", "pairs", "--memory-gb", value])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "Invalid value for '--memory-gb'" in result.stderr and "is not a positive number of gigabytes" in result.stderr


def test_training_cost_counts_epochs_and_the_text_each_negative_adds():
    from embedtune_core.training.advice import slow_training_note, training_cost

    rows = {"anchor": ["abcd"] * 4, "positive": ["x" * 12] * 4}  # 4 + 12 characters a pair
    assert training_cost(rows, epochs=1) == 1.0
    assert training_cost(rows, epochs=3, negatives=1) == pytest.approx(3 * (4 + 24) / 16)
    assert training_cost(rows, epochs=1, negatives=1, max_seq_length=2) == pytest.approx((4 + 16) / 12)  # cut at 8 chars
    assert slow_training_note(rows, epochs=1, negatives=1, max_seq_length=256) is None  # 1.75x: within 2x
    note = slow_training_note(rows, epochs=3, negatives=1, max_seq_length=256, validation=True)
    assert note.startswith("training will take about 5.2x the time of one epoch over the pairs alone")
    assert "3 epochs (the best one kept on the validation part) and 1 mined hard negative" in note
    assert "-s training.epochs=1 (about 1.8x), or -s mining.miner=null (about 3.0x)" in note
