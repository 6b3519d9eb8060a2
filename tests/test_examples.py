"""Every example pipeline runs end to end on a slice, with the tiny model."""

import json
import pathlib

import pytest

from embedtune_core.testing import invoke

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))


def test_one_example_per_dataset_type():
    import tomllib

    types = set()
    for path in EXAMPLES:
        source = tomllib.loads(path.read_text(encoding="utf-8"))["data"]
        types.add(source.get("type") or {"builtin:hpo-lay": "ir", "builtin:construction-faq": "ir",
                                          "builtin:lee-sts": "sts", "builtin:hpo-nli": "nli"}[source["source"]])
    assert types == {"pairs", "triplets", "sts", "nli", "ir", "hard-negatives"}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_on_a_slice(path, tiny_model, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    overrides = [
        f"model.name={tiny_model}", "model.max_seq_length=32", f"output_dir={tmp_path}",
        "data.limit=48", "data.eval_limit=24", "training.max_steps=2", "training.batch_size=8",
        "evaluation.batch_size=64",
    ]
    args = ["run", str(path), "--quiet"] + [a for o in overrides for a in ("-s", o)]
    if "cached-mnrl" in path.read_text():
        args += ["-s", "loss.options.mini_batch_size=4"]
    if "matryoshka" in path.read_text():
        args += ["-s", "loss.options.dims=[32, 16, 8]"]
        if "weights = [" in path.read_text():
            args += ["-s", "loss.options.weights=[1, 1, 2]"]
    if 'miner = "dense"' in path.read_text():  # the untrained tiny model scores everything alike
        args += ["-s", "mining.options.relative_margin=0"]
    exports = '"export"' in path.read_text()
    if exports:
        args += ["-s", "step_options.export.speed_rounds=1", "-s", "step_options.export.speed_texts=40"]
    result = invoke(args)
    assert result.exit_code == 0, result
    assert "report:" in result.stdout
    run_dir = next(p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith("."))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["before"] and metrics["after"]
    assert set(metrics["before"]) == set(metrics["after"])
    assert metrics["training"]["steps"] == 2
    for name in ("config.toml", "report.md", "report.html", "model/model.safetensors", "model/modules.json"):
        assert (run_dir / name).exists(), name
    assert "<svg" in (run_dir / "report.html").read_text()
    if "matryoshka" in path.read_text():
        assert set(metrics["dims"]) == {"32", "16", "8"}
    if exports:  # the quickstart exports the tuned model: the table in metrics.json, the summary and the report
        deployment = metrics["deployment"]
        assert deployment == json.loads((run_dir / "deployment.json").read_text())
        assert deployment["model"] == str(run_dir / "model")
        names = {v["name"] for v in deployment["variants"]}
        assert {"pytorch-fp32-32d-float32", "onnx-int8-32d-float32", "onnx-int8-8d-binary"} <= names
        assert all((run_dir / v["name"]).is_dir() for v in deployment["variants"])
        assert "bytes/vector" in result.stdout and "Deployment" in (run_dir / "report.html").read_text()
    if 'interpolate = "auto"' in path.read_text():  # the quickstart reports all three
        assert metrics["significance"]["ndcg@10"]["wins"] + metrics["significance"]["ndcg@10"]["losses"] \
            + metrics["significance"]["ndcg@10"]["ties"] == metrics["significance"]["ndcg@10"]["queries"]
        assert metrics["retention"]["data"] == "builtin:wordnet-general" and metrics["retention"]["after"]
        assert metrics["interpolation"]["alphas"][0] == 0.0 and metrics["interpolation"]["alphas"][-1] == 1.0
        assert metrics["interpolation"]["chosen"] in metrics["interpolation"]["alphas"]
