"""`embedtune mine`: every miner from the command line, valid JSONL out, no silent overwrite."""

import json
import pathlib
import random

import pytest

from embedtune_core.text import loose_text_key
from embedtune_core.testing import TINY_CORPUS, invoke

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Pairs whose positives share most words with their anchors (so the untrained tiny model
    ranks them first), and a corpus file with a category per text."""
    folder = tmp_path_factory.mktemp("mine")
    rnd = random.Random(7)
    words = sorted({w for t in TINY_CORPUS for w in t.split()})
    with open(folder / "pairs.jsonl", "w", encoding="utf-8") as out:
        for _ in range(24):
            w = rnd.sample(words, 5)
            out.write(json.dumps({"anchor": " ".join(w), "positive": " ".join(w[::-1][:4] + rnd.sample(words, 1))}) + "\n")
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as out:
        for i in range(120):
            out.write(json.dumps({"text": " ".join(rnd.sample(words, rnd.randint(3, 8))), "category": f"c{i % 4}"}) + "\n")
    return folder


def mine(*args, model=None):
    argv = ["mine", *map(str, args)]
    if model:
        argv += ["--model", model]
    return invoke(argv)


def read_jsonl(path):
    return [json.loads(line) for line in pathlib.Path(path).read_text(encoding="utf-8").splitlines()]


def assert_hard_negatives(path, n, registry):
    from embedtune_core.data.loading import load_data

    rows = read_jsonl(path)
    assert rows
    for row in rows:
        assert list(row) == ["anchor", "positive"] + [f"negative_{i + 1}" for i in range(n)]
        negatives = [row[f"negative_{i + 1}"] for i in range(n)]
        assert all(isinstance(t, str) and t for t in negatives)
        assert loose_text_key(row["positive"]) not in {loose_text_key(t) for t in negatives}
    bundle = load_data(registry, str(path), dataset_type="hard-negatives")  # the reader accepts it
    assert len(bundle.train) == len(rows)
    return rows


@pytest.mark.parametrize(
    "miner, extra",
    [
        ("dense", ["-O", "relative_margin=0.02"]),
        ("bm25", []),
        ("partial-match", []),
        ("domain-confusion", ["-O", "relative_margin=0.01"]),
        ("curriculum", ["-O", "base=dense", "-O", "base_options.relative_margin=0.02"]),
    ],
)
def test_every_retrieval_miner_from_the_cli(files, tiny_model, registry, tmp_path, miner, extra):
    out = tmp_path / f"{miner}.jsonl"
    result = mine("--data", files / "pairs.jsonl", "--type", "pairs", "--miner", miner, "-n", 2,
                  "--corpus", files / "corpus.jsonl", "-o", out, "--json", *extra, model=tiny_model)
    assert result.exit_code == 0, result
    report = json.loads(result.stdout)
    rows = assert_hard_negatives(out, 2, registry)
    assert report["rows"] == len(rows) and report["output"] == str(out)
    assert report["stats"]["negatives_written"] == 2 * len(rows)
    if miner == "curriculum":
        assert report["stats"]["extra"]["bands"] and registry.get("negative_miner", miner).info.ordered


def test_contradiction_from_the_cli(tmp_path, registry):
    out = tmp_path / "nli-negatives.jsonl"
    result = mine("--data", DATA / "nli.jsonl", "--type", "nli", "--miner", "contradiction", "-o", out)
    assert result.exit_code == 0, result
    assert "queries with fewer negatives than asked" in result.stdout and f"to {out}" in result.stdout
    rows = assert_hard_negatives(out, 1, registry)
    assert {"anchor": "Abnormally small head circumference.", "positive": "The head is smaller than expected.",
            "negative_1": "The head is larger than expected."} in rows
    wrong = mine("--data", DATA / "pairs.jsonl", "--type", "pairs", "--miner", "contradiction", "-o", tmp_path / "x.jsonl")
    assert wrong.exit_code == 2 and "works on nli, triplets, hard-negatives data, but the data is pairs" in wrong.stderr and "Traceback" not in wrong.output


def test_ir_data_mines_over_its_corpus_and_writes_triplets(tmp_path, registry):
    out = tmp_path / "ir-triplets.jsonl"
    result = mine("--data", DATA / "ir", "--type", "ir", "--miner", "bm25", "-n", 2, "--output-format", "triplets",
                  "-O", "guard_scores=retrieval", "-o", out, "--json")
    assert result.exit_code == 0, result
    rows = read_jsonl(out)
    assert rows and all(list(r) == ["anchor", "positive", "negative"] for r in rows)
    assert json.loads(result.stdout)["stats"]["extra"]["score"].startswith("BM25 scores")
    from embedtune_core.data.loading import load_data

    assert len(load_data(registry, str(out), dataset_type="triplets").train) == len(rows)


def test_refuses_to_overwrite_and_overwrites_when_asked(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text("keep me\n", encoding="utf-8")
    args = ["--data", DATA / "nli.jsonl", "--type", "nli", "--miner", "contradiction", "-o", out]
    refused = mine(*args)
    assert refused.exit_code == 2 and "exists" in refused.stderr and "--overwrite" in refused.stderr
    assert out.read_text(encoding="utf-8") == "keep me\n"
    done = mine(*args, "--overwrite")
    assert done.exit_code == 0, done
    assert read_jsonl(out)[0]["anchor"]


def test_nothing_mined_is_an_error_and_writes_nothing(tmp_path):
    out = tmp_path / "none.jsonl"
    result = mine("--data", DATA / "nli.jsonl", "--type", "nli", "--miner", "contradiction", "-n", 5, "-O", "short=drop", "-o", out)
    assert result.exit_code == 2 and "mining with 'contradiction' kept no training rows" in result.stderr
    assert "key '-O'" in result.stderr and not out.exists()


def test_bad_input_is_one_clear_message(tmp_path):
    base = ["--data", DATA / "pairs.jsonl", "--type", "pairs", "-o", tmp_path / "o.jsonl"]
    unknown = mine(*base, "--miner", "dence")
    assert unknown.exit_code == 2 and "did you mean 'dense'" in unknown.stderr
    bad_option = mine(*base, "--miner", "bm25", "-O", "range_min")
    assert bad_option.exit_code == 2 and "KEY=VALUE" in bad_option.stderr
    bad_value = mine(*base, "--miner", "bm25", "-O", "sampling=best", "-O", "guard_scores=retrieval")
    assert bad_value.exit_code == 2 and "key '-O sampling'" in bad_value.stderr
    assert "option 'sampling' must be one of top, random, got 'best'" in bad_value.stderr
    missing = mine("--data", tmp_path / "nope.jsonl", "--type", "pairs", "--miner", "bm25")
    assert missing.exit_code == 2 and "not found" in missing.stderr
    for result in (unknown, bad_option, bad_value, missing):
        assert "Traceback" not in result.output


def test_option_parsing():
    from embedtune_core.cli.cmd_mine import collect_options

    assert collect_options(("range_min=5", "relative_margin=none", "sampling=random", "base_options.max_score=0.9", "base_options.short=fill")) == {
        "range_min": 5, "relative_margin": None, "sampling": "random", "base_options": {"max_score": 0.9, "short": "fill"},
    }


def test_corpus_file_formats(tmp_path):
    from embedtune_core.data.loading import read_corpus_file
    from embedtune_core.errors import DataError

    (tmp_path / "c.txt").write_text("first text\n\nsecond text\n", encoding="utf-8")
    assert read_corpus_file(str(tmp_path / "c.txt")) == (["first text", "second text"], None)
    (tmp_path / "c.jsonl").write_text('{"title": "T", "text": "body", "category": "x"}\n{"text": "other"}\n', encoding="utf-8")
    assert read_corpus_file(str(tmp_path / "c.jsonl")) == (["T body", "other"], ["x", None])
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{"body": "no text"}\n', encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_corpus_file(str(tmp_path / "bad.jsonl"))
    assert info.value.line == 2


@pytest.mark.slow
def test_dense_mining_with_the_bundled_minilm(tmp_path, registry):
    out = tmp_path / "minilm.jsonl"
    result = mine("--data", DATA / "pairs.jsonl", "--type", "pairs", "--miner", "dense", "-n", 2, "-o", out, "--json")
    assert result.exit_code == 0, result
    rows = assert_hard_negatives(out, 2, registry)
    stats = json.loads(result.stdout)["stats"]
    assert stats["mean_score_gap"] > 0 and len(rows) == stats["rows_out"]


@pytest.mark.parametrize("miner", ["dense", "bm25", "partial-match", "domain-confusion", "curriculum", "contradiction"])
def test_every_miner_on_bundled_data(miner, tiny_model, registry, tmp_path):
    out = tmp_path / f"{miner}.jsonl"
    if miner == "contradiction":
        args = ["--data", "builtin:hpo-nli", "--miner", miner, "-n", 2]
    else:
        args = ["--data", "builtin:construction-faq", "--miner", miner, "-n", 2]
    result = mine(*args, "-o", out, "--json", model=None if miner == "contradiction" else tiny_model)
    assert result.exit_code == 0, result
    rows = assert_hard_negatives(out, 2, registry)
    assert len(rows) == json.loads(result.stdout)["rows"]


def test_cuda_device_without_a_gpu_is_a_clear_error(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    result = mine("--data", DATA / "pairs.jsonl", "--type", "pairs", "--miner", "dense", "--device", "cuda", "-o", tmp_path / "o.jsonl")
    assert result.exit_code == 2 and "no CUDA device" in result.stderr and "Traceback" not in result.output


def test_a_run_of_mostly_fill_ins_warns_and_still_prints_its_table(tmp_path, tiny_model):
    out = tmp_path / "mined.jsonl"
    result = invoke(["mine", "--data", DATA / "pairs.jsonl", "--type", "pairs", "--miner", "bm25", "-n", "8",
                     "--model", tiny_model, "-O", "relative_margin=null", "-o", out])
    assert result.exit_code == 0, result
    assert "are random fill-ins, not hard negatives" in result.stderr
    assert "negatives filled" in result.stdout and out.exists()
    as_json = invoke(["mine", "--data", DATA / "pairs.jsonl", "--type", "pairs", "--miner", "bm25", "-n", "8",
                      "--model", tiny_model, "-O", "relative_margin=null", "-o", tmp_path / "again.jsonl", "--json"])
    assert "random fill-ins" in json.loads(as_json.stdout)["stats"]["warning"]
