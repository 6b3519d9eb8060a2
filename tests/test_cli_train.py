"""`embedtune train`: the run folder, refusing to overwrite, resume, the five losses on bundled
data, clear errors that leave nothing behind, and a killed run resumed from the command line."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from embedtune_core.testing import invoke
from training_samples import columns

HERE = Path(__file__).resolve().parent


def write_jsonl(path, dataset_type, repeat=2):
    data = columns(dataset_type)
    rows = [dict(zip(data, values)) for values in zip(*data.values())] * repeat
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def train_args(tiny_model, data, run, *extra):
    return ["train", "--model", tiny_model, "--data", str(data), "--output", str(run), "-q",
            "-s", "training.max_steps=3", "-s", "training.batch_size=4", *extra]


def test_train_writes_the_run_folder(tiny_model, tmp_path):
    from sentence_transformers import SentenceTransformer

    data = write_jsonl(tmp_path / "pairs.jsonl", "pairs")
    run = tmp_path / "runs" / "first"
    result = invoke(train_args(tiny_model, data, run, "--type", "pairs", "-s", "training.logging_steps=1"))
    assert result.exit_code == 0, result
    assert "trained 3 steps" in result.stdout and "mnrl" in result.stdout
    assert {"model", "config.toml", "metrics.json", "training_log.jsonl", "checkpoints"} <= {p.name for p in run.iterdir()}
    config = (run / "config.toml").read_text()
    assert 'name = "mnrl"' in config and 'type = "pairs"' in config and "max_steps = 3" in config
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["loss"] == "mnrl" and metrics["training"]["steps"] == 3 and metrics["training"]["examples"] == 16
    assert metrics["training"]["loss"] > 0
    rows = [json.loads(line) for line in (run / "training_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3]
    assert (run / "model" / "model.safetensors").exists()
    assert not list((run / "model").glob("*.bin"))
    card = (run / "model" / "README.md").read_text()
    assert str(data) in card and "pairs, 16 training examples" in card and "MultipleNegativesRankingLoss" in card
    assert SentenceTransformer(str(run / "model"), device="cpu").encode(["a cough"]).shape == (1, 32)


def test_existing_run_folder_is_refused_then_overwritten_or_resumed(tiny_model, tmp_path):
    data = write_jsonl(tmp_path / "pairs.jsonl", "pairs")
    run = tmp_path / "run"
    assert invoke(train_args(tiny_model, data, run, "--type", "pairs")).exit_code == 0
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*")}

    refused = invoke(train_args(tiny_model, data, run, "--type", "pairs"))
    assert refused.exit_code == 2 and "Traceback" not in refused.output
    assert str(run) in refused.stderr and "--overwrite" in refused.stderr and "--resume" in refused.stderr
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*")} == before

    both = invoke(train_args(tiny_model, data, run, "--type", "pairs", "--overwrite", "--resume"))
    assert both.exit_code == 2 and "cannot be used together" in both.stderr

    resumed = invoke(train_args(tiny_model, data, run, "--type", "pairs", "--resume", "-s", "training.max_steps=5"))
    assert resumed.exit_code == 0, resumed
    assert "training.max_steps" in resumed.stderr  # warned: the settings changed since the run started
    assert json.loads((run / "metrics.json").read_text())["training"]["steps"] == 5

    overwritten = invoke(train_args(tiny_model, data, run, "--type", "pairs", "--overwrite"))
    assert overwritten.exit_code == 0, overwritten
    assert json.loads((run / "metrics.json").read_text())["training"]["steps"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs.jsonl", "run"]  # the replaced run is gone


@pytest.mark.parametrize(
    "args,message",
    [
        (["--type", "pairs", "--loss", "cosent"], "loss 'cosent' trains on sts, but the data is pairs; use mnrl"),
        (["--type", "pairs", "--loss", "tripplet"], "did you mean 'triplet'"),
        (["--type", "pairs", "-s", "loss.options.similarity=cos"], "must be one of cosine, dot"),
        (["--type", "pairs", "--loss", "matryoshka", "-s", "loss.options.dims=[64]"], "exceed the model's embedding size 32"),
        (["--type", "pairs", "-s", "training.batch_sise=4"], "did you mean 'training.batch_size'"),
        (["--type", "pairs", "-s", "training.precision=fp16"], "needs a CUDA GPU"),
        (["--type", "pairs", "-s", "training.eval_steps=2", "-s", "data.eval_fraction=0"], "eval"),
        (["--type", "pairs", "-s", "training.callbacks=[no-such-callback]"], "unknown callback 'no-such-callback'"),
        (["--type", "sts"], "missing field 'sentence1'"),
    ],
)
def test_bad_input_is_one_clear_error_and_leaves_nothing(tiny_model, tmp_path, args, message):
    data = write_jsonl(tmp_path / "pairs.jsonl", "pairs")
    run = tmp_path / "out" / "run"
    result = invoke(train_args(tiny_model, data, run, *args))
    assert result.exit_code == 2, result
    assert message in result.stderr and "Traceback" not in result.output
    assert result.stderr.count("error:") == 1
    assert not run.exists()


@pytest.mark.parametrize(
    "data,loss,extra",
    [
        ("builtin:construction-faq", "mnrl", []),
        ("builtin:construction-faq", "cached-mnrl", ["-s", "loss.options.mini_batch_size=2"]),
        ("builtin:lee-sts", "cosent", []),
        ("builtin:hpo-nli", "triplet", ["-s", "loss.options.distance=cosine"]),
        ("builtin:lee-sts", "matryoshka", ["-s", "loss.options.base=cosent", "-s", "loss.options.dims=[32,16]"]),
    ],
)
def test_each_loss_trains_from_the_cli_on_bundled_data(tiny_model, tmp_path, data, loss, extra):
    run = tmp_path / "run"
    result = invoke(train_args(tiny_model, data, run, "--loss", loss, "-s", "data.limit=64", *extra))
    assert result.exit_code == 0, result
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["loss"] == loss and metrics["training"]["steps"] == 3 and metrics["training"]["loss"] > 0


def test_evaluation_during_training_from_the_cli(tiny_model, tmp_path):
    data = write_jsonl(tmp_path / "pairs.jsonl", "pairs", repeat=1)
    run = tmp_path / "run"
    result = invoke(train_args(tiny_model, data, run, "--type", "pairs", "-s", "training.eval_steps=1",
                               "-s", "data.eval_fraction=0.25"))
    assert result.exit_code == 0, result
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["training"]["eval_examples"] == 2 and metrics["training"]["examples"] == 6
    assert metrics["training"]["eval_loss"] is not None


SLEEPER = """
import time
from transformers import TrainerCallback
from embedtune_core import hookimpl

class Sleeper(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        if state.global_step == 4:
            time.sleep(120)

@hookimpl
def register_callbacks(register):
    register("sleep-after-step-4", Sleeper)
"""


def test_killed_cli_run_resumes_with_the_same_number_of_steps(tiny_model, tmp_path):
    data = write_jsonl(tmp_path / "pairs.jsonl", "pairs")
    (tmp_path / "sleeper_plugin.py").write_text(SLEEPER)
    run = tmp_path / "run"
    settings = ["-s", "training.max_steps=8", "-s", "training.save_steps=2", "-s", "training.batch_size=4",
                "-s", "training.logging_steps=1"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "embedtune_core", "-p", "sleeper_plugin", "train", "--model", tiny_model,
           "--data", str(data), "--type", "pairs", "--output", str(run), "-q", *settings,
           "-s", "training.callbacks=[metrics-log,sleep-after-step-4]"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    state = run / "checkpoints" / "checkpoint-4" / "trainer_state.json"
    deadline = time.time() + 180
    try:
        while not state.exists():
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.time() < deadline
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert not (run / "model").exists() and not (run / "metrics.json").exists()

    result = invoke(["train", "--model", tiny_model, "--data", str(data), "--type", "pairs", "--output", str(run),
                     "-q", "--resume", *settings])
    assert result.exit_code == 0, result
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["training"]["steps"] == 8
    rows = [json.loads(line) for line in (run / "training_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == list(range(1, 9))
