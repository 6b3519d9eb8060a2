"""Documented commands read the right way round: held-out row data is ranked against the whole
file, -s values are read as numbers and errors name the -s value, quiet runs print nothing but
the result, relative_margin 0 and none mean what the docs say, and text variants are one
negative."""

import json


from embedtune_core.testing import invoke
from training_samples import ANCHORS, POSITIVES


def write_pairs(path, n=80):
    rows = [{"anchor": f"{ANCHORS[i % 8]} case {i}", "positive": f"{POSITIVES[i % 8]} number {i}"} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_held_out_pairs_are_ranked_against_every_text_of_the_file(tiny_model, tmp_path):
    data = write_pairs(tmp_path / "pairs.jsonl")
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(f'name = "r"\noutput_dir = "{tmp_path / "runs"}"\nsteps = ["evaluate-before"]\n'
                        f'[model]\nname = "{tiny_model}"\n[data]\nsource = "{data}"\ntype = "pairs"\n', encoding="utf-8")
    result = invoke(["run", str(pipeline), "--json", "-s", 'steps=["evaluate-before", "train"]',
                     "-s", "training.max_steps=1"])
    assert result.exit_code == 0, result
    evaluation = json.loads(result.stdout)["evaluation"]
    assert evaluation["queries"] == 8 and evaluation["corpus"] == 80  # 10% of the anchors, every positive
    assert json.loads((tmp_path / "runs" / "r" / "metrics.json").read_text())["evaluation"] == evaluation
    assert "corpus" in (tmp_path / "runs" / "r" / "report.md").read_text()
    alone = json.loads(invoke(["eval", "--model", tiny_model, "--data", str(data), "--type", "pairs", "--json"]).stdout)
    assert alone["evaluation"] == {"type": "ir", "part": "all data", "queries": 80, "corpus": 80}


def test_numbers_from_s_overrides_and_errors_that_name_them(tiny_model, tmp_path):
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(f'[model]\nname = "{tiny_model}"\n', encoding="utf-8")
    for value in ("2e-5", "1E-4", "5e-05"):
        result = invoke(["config", "show", str(pipeline), "--json", "-s", f"training.learning_rate={value}"])
        assert result.exit_code == 0 and json.loads(result.stdout)["training"]["learning_rate"] == float(value)
    bad = invoke(["config", "show", str(pipeline), "-s", "training.learning_rate=fast"])
    assert bad.exit_code == 2 and "error: -s training.learning_rate=fast: must be a number" in bad.stderr
    assert str(pipeline) not in bad.stderr
    option = invoke(["run", str(pipeline), "-s", "loss.options.scael=2"])
    assert option.exit_code == 2 and "error: -s loss.options.scael=2: " in option.stderr and str(pipeline) not in option.stderr


def test_a_quiet_run_prints_only_its_result(tiny_model, tmp_path):
    data = write_pairs(tmp_path / "pairs.jsonl", 24)
    result = invoke(["train", "--model", tiny_model, "--data", str(data), "--type", "pairs", "--output",
                     str(tmp_path / "run"), "-q", "-s", "training.max_steps=2", "-s", "training.batch_size=8"])
    assert result.exit_code == 0, result
    assert result.stderr.strip() == "" and result.stdout.startswith("trained 2 steps")


def test_relative_margin_zero_keeps_up_to_the_positive_and_none_turns_it_off(registry):
    import numpy as np
    from datasets import Dataset

    from embedtune_core.mining import run_miner

    angles = {"q": 0, "p": 30, "above": 20, "below": 40, "far": 80}

    def encoder(texts):
        return np.array([[np.cos(np.radians(angles[t])), np.sin(np.radians(angles[t]))] for t in texts])

    rows = Dataset.from_dict({"anchor": ["q"], "positive": ["p"]})

    def mine(margin):
        result = run_miner(registry, "dense", rows, "pairs", num_negatives=1, encoder=encoder,
                           corpus=["above", "below", "far"], options={"relative_margin": margin, "short": "drop"})
        return result.dataset[0]["negative_1"], result.stats.extra["dropped"]["relative_margin"]

    assert mine(0) == ("below", 1)  # "above" scores above the positive
    assert mine("none") == ("above", 0) and mine(False) == ("above", 0)
    assert mine(0.5) == ("far", 2)


def test_case_and_punctuation_variants_are_one_negative(registry):
    import numpy as np
    from datasets import Dataset

    from embedtune_core.mining import run_miner

    corpus = ["Mitral stenosis.", "mitral  STENOSIS", "aortic stenosis", "a rash", "joint pain"]
    vectors = {"heart valve narrowing": [1, 0], "narrowed mitral valve": [0.95, 0.31]}

    def encoder(texts):
        out = [vectors.get(t, [0.9 - 0.1 * i, 0.4 + 0.1 * i]) for i, t in enumerate(texts)]
        return np.array(out) / np.linalg.norm(out, axis=1, keepdims=True)

    rows = Dataset.from_dict({"anchor": ["heart valve narrowing"], "positive": ["narrowed mitral valve"]})
    result = run_miner(registry, "dense", rows, "pairs", num_negatives=3, encoder=encoder, corpus=corpus,
                       options={"relative_margin": None})
    negatives = [result.dataset[0][f"negative_{i}"] for i in (1, 2, 3)]
    variants = [n for n in negatives if "stenosis" in n.lower() and "mitral" in n.lower()]
    assert len(variants) == 1 and len(set(negatives)) == 3
    assert result.stats.extra["dropped"]["duplicate"] >= 1
