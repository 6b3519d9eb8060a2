"""Faults during a run: a crash while a file is written, Ctrl-C during `embedtune run`.

Every file a run writes goes to a temporary name and is renamed into place, so a crash (simulated
here by an error raised in the middle of the write) never leaves a half-written file under the
final name and never spoils the file that was there. Ctrl-C at any step of `embedtune run` leaves
a run folder that `--resume` finishes.

The faults of training itself (SIGKILL then --resume, NaN or infinite loss, out of memory,
Ctrl-C inside the Trainer) are tested in test_training.py, test_training_faults.py and
test_cli_train.py.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import json
import os
import shutil
import signal
import sys
import types
from pathlib import Path

import pytest

from doc_messages import documented
from embedtune_core.testing import invoke

DATA = Path(__file__).parent / "data"


class Crash(BaseException):
    """The simulated crash (power cut, full disk, killed process) in the middle of a write: a
    BaseException, so nothing on the way turns it into an error message, as nothing would a power cut."""


def fingerprint(path: Path) -> str | None:
    """A hash of a file, or of every file in a folder; None when nothing is there."""
    if not path.exists():
        return None
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        digest.update(str(file.relative_to(path if path.is_dir() else path.parent)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def leftovers(folder: Path) -> list[str]:
    """Temporary files or folders (``.NAME.XXXX.tmp``) left anywhere under ``folder``."""
    return [str(p.relative_to(folder)) for p in folder.rglob(".*.tmp")]


def crash_while_writing(monkeypatch, name: str) -> list[str]:
    """From now on, writing a file called ``name`` (or its temporary ``.name.XXXX.tmp``) writes
    half of the first chunk and raises :class:`Crash`. Returns the list of paths it cut."""
    cut: list[str] = []
    real_open = builtins.open

    class Cutting:
        def __init__(self, handle, path):
            self._handle = handle
            self._path = path

        def write(self, data):
            self._handle.write(data[: max(1, len(data) // 2)])
            self._handle.flush()
            cut.append(self._path)
            raise Crash(f"crash while writing {self._path}")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._handle.close()

        def __getattr__(self, attr):
            return getattr(self._handle, attr)

    def cutting_open(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        base = os.path.basename(os.fspath(file)) if isinstance(file, (str, os.PathLike)) else ""
        writing = any(c in mode for c in "wax+")
        if writing and (base == name or (base.startswith(f".{name}.") and base.endswith(".tmp"))):
            return Cutting(handle, os.fspath(file))
        return handle

    monkeypatch.setattr(builtins, "open", cutting_open)
    monkeypatch.setattr(io, "open", cutting_open)
    return cut


def crash_while_saving_the_model(monkeypatch) -> list[str]:
    """Saving a model writes all its files, then truncates the weights and raises :class:`Crash`."""
    from sentence_transformers import SentenceTransformer

    real_save = SentenceTransformer.save
    cut: list[str] = []

    def cut_save(self, path, *args, **kwargs):
        real_save(self, path, *args, **kwargs)
        weights = max(Path(path).rglob("*.safetensors"), key=lambda p: p.stat().st_size)
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
        cut.append(str(path))
        raise Crash(f"crash while saving the model to {path}")

    monkeypatch.setattr(SentenceTransformer, "save", cut_save)
    return cut


# -- a finished run to crash into ----------------------------------------------------------------
PIPELINE = """
name = "run"
output_dir = "runs"
[model]
name = "{model}"
[data]
source = "{data}"
type = "pairs"
eval_fraction = 0.3
[mining]
miner = "bm25"
options = {{guard_scores = "retrieval"}}  # the tiny random model's cosines would make the guards random
[training]
max_steps = 4
batch_size = 2
save_steps = 2
logging_steps = 1
[evaluation]
batch_size = 16
metrics = ["ndcg@10", "mrr@10"]
"""


def write_pipeline(folder: Path, model: str) -> Path:
    path = folder / "pipeline.toml"
    path.write_text(PIPELINE.format(model=model, data=DATA / "pairs.jsonl"), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def finished_run(tiny_model, tmp_path_factory):
    """A finished `embedtune run` (mining, evaluations, 4 training steps): its working folder."""
    folder = tmp_path_factory.mktemp("finished")
    pipeline = write_pipeline(folder, tiny_model)
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        result = invoke(["run", str(pipeline), "-q"])
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result
    return folder


@pytest.fixture(scope="module")
def finished_training(tiny_model, tmp_path_factory):
    """A finished `embedtune train` run folder."""
    folder = tmp_path_factory.mktemp("trained")
    result = invoke(TRAIN_ARGS(tiny_model, folder / "run"))
    assert result.exit_code == 0, result
    return folder / "run"


def TRAIN_ARGS(model, run):
    return ["train", "--model", model, "--data", str(DATA / "pairs.jsonl"), "--type", "pairs", "--output", str(run),
            "-q", "-s", "training.max_steps=2", "-s", "training.batch_size=4", "-s", "training.save_steps=2"]


RUN_FILES = ["config.toml", "state.json", "mined.jsonl", "training_log.jsonl", "metrics.json", "report.md",
             "report.html"]


@pytest.mark.parametrize("name", RUN_FILES + ["model"])
def test_a_crash_while_a_run_file_is_written_leaves_the_old_file(name, finished_run, tmp_path, monkeypatch):
    """`embedtune run --resume` over a finished run rewrites every file; a crash in the middle of
    writing one leaves the previous file whole under its name and no temporary behind."""
    work = tmp_path / "work"
    shutil.copytree(finished_run, work)
    run = work / "runs" / "run"
    if name in ("mined.jsonl", "state.json"):  # make the resumed run mine again (and save its state)
        state = json.loads((run / "state.json").read_text())
        state["steps"]["mine"].pop("mining")
        (run / "state.json").write_text(json.dumps(state))
    before = fingerprint(run / name)
    assert before is not None
    monkeypatch.chdir(work)
    cut = crash_while_saving_the_model(monkeypatch) if name == "model" else crash_while_writing(monkeypatch, name)

    with pytest.raises(Crash):
        invoke(["run", str(work / "pipeline.toml"), "--resume", "-q"])

    assert cut, f"{name} was not written"
    assert all(os.path.basename(p) != name for p in cut), f"{name} was written under its final name: {cut}"
    assert fingerprint(run / name) == before
    assert leftovers(work) == []


def test_a_run_that_crashed_while_saving_resumes(finished_run, tmp_path, monkeypatch):
    work = tmp_path / "work"
    shutil.copytree(finished_run, work)
    shutil.rmtree(work / "runs" / "run" / "model")
    (work / "runs" / "run" / "metrics.json").unlink()
    monkeypatch.chdir(work)
    with monkeypatch.context() as patch:
        crash_while_saving_the_model(patch)
        with pytest.raises(Crash):
            invoke(["run", str(work / "pipeline.toml"), "--resume", "-q"])
    assert not (work / "runs" / "run" / "model").exists() and leftovers(work) == []

    result = invoke(["run", str(work / "pipeline.toml"), "--resume", "--json"])
    assert result.exit_code == 0, result
    assert json.loads(result.stdout)["training"]["steps"] == 4
    assert (work / "runs" / "run" / "model" / "model.safetensors").exists()


@pytest.mark.parametrize("name", ["config.toml", "metrics.json", "model"])
def test_a_crash_while_train_writes_leaves_the_old_file(name, finished_training, tiny_model, tmp_path, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(finished_training, run)
    before = fingerprint(run / name)
    assert before is not None
    cut = crash_while_saving_the_model(monkeypatch) if name == "model" else crash_while_writing(monkeypatch, name)

    with pytest.raises(Crash):
        invoke(TRAIN_ARGS(tiny_model, run) + ["--resume"])

    assert cut and all(os.path.basename(p) != name for p in cut)
    assert fingerprint(run / name) == before
    assert leftovers(tmp_path) == []


def test_a_crash_while_mine_writes_leaves_the_old_output(tmp_path, monkeypatch):
    out = tmp_path / "mined.jsonl"
    out.write_text('{"anchor": "old", "positive": "row", "negative_1": "kept"}\n', encoding="utf-8")
    before = fingerprint(out)
    monkeypatch.chdir(tmp_path)
    cut = crash_while_writing(monkeypatch, "mined.jsonl")

    with pytest.raises(Crash):
        invoke(["mine", "--data", str(DATA / "pairs.jsonl"), "--type", "pairs", "--miner", "bm25", "-o", str(out),
                "--overwrite"])

    assert cut and all(os.path.basename(p) != "mined.jsonl" for p in cut)
    assert fingerprint(out) == before
    assert leftovers(tmp_path) == []


# -- Ctrl-C during `embedtune run` -----------------------------------------------------------------
def ctrl_c_plugin(at_step: int) -> types.ModuleType:
    """A throwaway pack (loaded with -p) whose callback presses Ctrl-C (SIGINT) at a step."""
    from transformers import TrainerCallback

    from embedtune_core import hookimpl

    class PressCtrlC(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == at_step:
                os.kill(os.getpid(), signal.SIGINT)

    module = types.ModuleType("ctrl_c_pack")

    @hookimpl
    def register_callbacks(register):
        register("press-ctrl-c", PressCtrlC)

    module.register_callbacks = register_callbacks
    return module


def run_args(work: Path, *extra: str) -> list[str]:
    return ["run", str(work / "pipeline.toml"), *extra]


def test_ctrl_c_during_training_leaves_a_run_that_resume_finishes(tiny_model, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    write_pipeline(work, tiny_model)
    monkeypatch.chdir(work)
    monkeypatch.setitem(sys.modules, "ctrl_c_pack", ctrl_c_plugin(at_step=2))

    result = invoke(["-p", "ctrl_c_pack", *run_args(work, "-s", "training.callbacks=[metrics-log,press-ctrl-c]")])
    assert result.exit_code == 130, result
    assert "interrupted at step 3" in result.stderr and "--resume" in result.stderr and "Traceback" not in result.output
    assert documented(result.stderr)
    run = work / "runs" / "run"
    assert (run / "checkpoints" / "checkpoint-3" / "trainer_state.json").exists()
    assert not (run / "metrics.json").exists() and not (run / "model").exists()
    state = json.loads((run / "state.json").read_text())
    steps = state["steps"]
    assert "mining" in steps["mine"] and "before" in steps["evaluate-before"] and "finished" not in state

    result = invoke(run_args(work, "--resume", "--json"))
    assert result.exit_code == 0, result
    assert "reusing mined negatives" in result.stderr or json.loads(result.stdout)["mining"] == steps["mine"]["mining"]
    metrics = json.loads(result.stdout)
    assert metrics["training"]["steps"] == 4 and metrics["before"] == steps["evaluate-before"]["before"]["results"]["full"]
    steps = [json.loads(line)["step"] for line in (run / "training_log.jsonl").read_text().splitlines()
             if "loss" in json.loads(line)]
    assert steps == [1, 2, 3, 4]
    assert json.loads((run / "state.json").read_text())["finished"] is True


@pytest.mark.parametrize("where", ["mining", "evaluate-after"])
def test_ctrl_c_outside_training_leaves_a_run_that_resume_finishes(where, tiny_model, tmp_path, monkeypatch):
    from embedtune_core.mining import miner as mining
    from embedtune_core.pipeline import evaluation

    work = tmp_path / "work"
    work.mkdir()
    write_pipeline(work, tiny_model)
    monkeypatch.chdir(work)
    calls = []
    with monkeypatch.context() as patch:
        if where == "mining":
            def interrupted(*args, **kwargs):
                raise KeyboardInterrupt

            patch.setattr(mining, "run_miner", interrupted)
        else:
            real = evaluation.evaluate_model

            def interrupted(*args, **kwargs):
                calls.append(1)
                if len(calls) == 2:  # the tuned model's evaluation
                    raise KeyboardInterrupt
                return real(*args, **kwargs)

            patch.setattr(evaluation, "evaluate_model", interrupted)
        result = invoke(run_args(work, "-q"))
    assert result.exit_code == 2, result
    assert "interrupted; the run in runs/run can be continued" in result.stderr
    assert "--resume" in result.stderr and "Traceback" not in result.output
    assert documented(result.stderr)
    run = work / "runs" / "run"
    assert not (run / "metrics.json").exists()

    result = invoke(run_args(work, "--resume", "--json"))
    assert result.exit_code == 0, result
    metrics = json.loads(result.stdout)
    assert metrics["training"]["steps"] == 4
    assert metrics["before"] is not None and metrics["after"] is not None
    assert (run / "model" / "model.safetensors").exists() and (run / "report.html").exists()
