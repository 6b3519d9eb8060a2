"""The training step: arguments from config, evaluation, early stopping, callbacks, run folders,
checkpoints and resume."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from embedtune_core.config.schema import TrainingConfig
from embedtune_core.errors import ComponentError, ConfigError, RunFolderError
from embedtune_core.pipeline.rundir import finish_run_dir, prepare_run_dir, replaced_path
from embedtune_core.training.arguments import (
    check_training_config,
    decide_batch_sampler,
    resolve_precision,
    training_arguments,
)
from embedtune_core.training.checkpoints import checkpoints, newest_checkpoint, save_model
from embedtune_core.training.losses import build_loss, loss_traits
from embedtune_core.training.trainer import train
from training_samples import dataset, setup

HERE = Path(__file__).resolve().parent


@pytest.fixture
def model(tiny_model):
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    return SentenceTransformer(tiny_model, device="cpu")


def quick(**overrides):
    values = dict(max_steps=6, batch_size=4, learning_rate=1e-3, warmup_ratio=0.0, logging_steps=1)
    values.update(overrides)
    return TrainingConfig(**values)


def fit(registry, model, data, config, run_dir, *, callbacks=(), **kwargs):
    """``train()`` with MNRL on ``model``, as the pipeline calls it."""
    loss = build_loss(registry, "mnrl", model, {})
    return train(model, data, loss, setup(registry, config, callbacks=callbacks), run_dir, **kwargs)


def state_of(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# -- arguments ----------------------------------------------------------------------------------
def test_training_arguments_carry_every_setting(tmp_path):
    from sentence_transformers.base.sampler import BatchSamplers

    config = TrainingConfig(
        epochs=3, batch_size=48, learning_rate=3e-5, warmup_ratio=0.2, weight_decay=0.05, lr_scheduler="cosine",
        gradient_accumulation_steps=2, max_grad_norm=0.5, seed=7, gradient_checkpointing=True, eval_steps=20,
        save_steps=40, save_total_limit=3, load_best_model_at_end=True, logging_steps=5, dataloader_workers=2,
        batch_sampler="no_duplicates",
    )
    args = training_arguments(config, tmp_path / "run", has_eval=True)
    assert args.output_dir == str(tmp_path / "run" / "checkpoints")
    assert args.num_train_epochs == 3 and args.max_steps == -1
    assert args.per_device_train_batch_size == 48 and args.per_device_eval_batch_size == 48
    assert args.learning_rate == 3e-5 and args.weight_decay == 0.05 and args.lr_scheduler_type == "cosine"
    assert args.get_warmup_steps(1000) == 200
    assert args.gradient_accumulation_steps == 2 and args.max_grad_norm == 0.5 and args.seed == 7
    assert getattr(args, "activation_checkpointing", None) or args.gradient_checkpointing
    assert args.batch_sampler == BatchSamplers.NO_DUPLICATES
    assert args.eval_strategy == "steps" and args.eval_steps == 20
    assert args.save_strategy == "steps" and args.save_steps == 40 and args.save_total_limit == 3
    assert args.load_best_model_at_end and args.metric_for_best_model == "eval_loss" and args.greater_is_better is False
    assert args.logging_steps == 5 and args.dataloader_num_workers == 2
    assert args.report_to in ([], "none", ["none"]) and not args.fp16 and not args.bf16


def test_batch_sampler_auto_follows_what_the_loss_declares(registry):
    for name, options, expected in [("mnrl", {}, "no_duplicates"), ("cached-mnrl", {}, "no_duplicates"),
                                    ("matryoshka", {}, "no_duplicates"), ("matryoshka", {"base": "cosent"}, "batch_sampler"),
                                    ("cosent", {}, "batch_sampler"), ("triplet", {}, "batch_sampler")]:
        traits = loss_traits(registry, name, registry.resolve_options("loss", name, options))
        assert decide_batch_sampler("auto", in_batch_negatives=traits.in_batch_negatives, ordered=False) == expected, name
        assert decide_batch_sampler("auto", in_batch_negatives=traits.in_batch_negatives, ordered=True) == "sequential"
        assert decide_batch_sampler("batch_sampler", in_batch_negatives=True, ordered=True) == "batch_sampler"
    with pytest.raises(ValueError, match="decided batch_sampler"):
        training_arguments(TrainingConfig(), "run", has_eval=False)
    with pytest.raises(ValueError, match="decided learning_rate"):
        training_arguments(TrainingConfig(batch_sampler="no_duplicates"), "run", has_eval=False)


def test_learning_rate_auto_follows_the_model_size_and_the_run_length():
    from embedtune_core.training.advice import SHORT_RUN_STEPS, auto_learning_rate, decide_learning_rate, planned_steps

    assert auto_learning_rate(384, 126) == 2e-4  # MiniLM, a few thousand pairs at batch 32
    assert auto_learning_rate(384, SHORT_RUN_STEPS) == 2e-4 and auto_learning_rate(384, SHORT_RUN_STEPS + 1) == 5e-5
    assert auto_learning_rate(768, 126) == auto_learning_rate(1024, 50) == auto_learning_rate(None, 126) == 2e-5
    assert planned_steps(4004, 32, epochs=1) == 126 and planned_steps(4004, 32, epochs=2) == 252
    assert planned_steps(4004, 32, epochs=1, accumulation=2, processes=2) == 32
    assert planned_steps(10, 32, epochs=1, max_steps=7) == 7
    short = decide_learning_rate(TrainingConfig(), hidden=384, rows=4004)
    long = decide_learning_rate(TrainingConfig(), hidden=384, rows=64_000)
    assert (short.learning_rate, long.learning_rate) == (2e-4, 5e-5)
    fixed = TrainingConfig(learning_rate=3e-5)
    assert decide_learning_rate(fixed, hidden=384, rows=10) is fixed


def test_settings_that_need_evaluation_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="eval_steps needs evaluation data"):
        check_training_config(TrainingConfig(eval_steps=5), has_eval=False)
    with pytest.raises(ConfigError, match="early stopping needs evaluation"):
        check_training_config(TrainingConfig(early_stopping_patience=2), has_eval=True)
    with pytest.raises(ConfigError, match="multiple of eval_steps"):
        check_training_config(TrainingConfig(eval_steps=4, save_steps=6, load_best_model_at_end=True), has_eval=True)
    config = TrainingConfig(eval_steps=4, load_best_model_at_end=True, batch_sampler="no_duplicates", learning_rate=2e-5)
    check_training_config(config, has_eval=True)
    assert training_arguments(config, tmp_path, has_eval=True).save_steps == 4


def test_precision(monkeypatch):
    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("fp32", None) == "fp32"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="needs a CUDA GPU"):
        resolve_precision("fp16", None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("auto", "cuda:0") == "bf16"
    assert resolve_precision("fp16", "cuda:0") == "fp16"
    assert resolve_precision("auto", "cpu") == "fp32"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_precision("auto", "cuda") == "fp16"
    with pytest.raises(ConfigError, match="does not support bf16"):
        resolve_precision("bf16", "cuda")


def test_report_to_needs_the_package(tmp_path, registry):
    import importlib.util

    if importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX"):
        pytest.skip("tensorboard is installed here")
    with pytest.raises(ConfigError) as info:
        check_training_config(TrainingConfig(report_to=["tensorboard"]), has_eval=False)
    assert "pip install tensorboard" in info.value.format()
    with pytest.raises(ComponentError) as info:
        registry.resolve_options("callback", "report-to", {"to": "tensorboard"}, key="training.callback_options.report-to")
    assert "not installed" in info.value.format() and "pip install tensorboard" in info.value.format()
    assert info.value.key == "training.callback_options.report-to.to"
    with pytest.raises(ComponentError, match="tensorboard, wandb"):
        registry.create("callback", "report-to", to="mlflow")


MULTI_PROCESS = """
import json, sys
from embedtune_core.config.schema import TrainingConfig
from embedtune_core.pipeline.rundir import prepare_run_dir
from embedtune_core.training.arguments import training_arguments
config = TrainingConfig(batch_size=24, max_steps=9, learning_rate=4e-5, seed=3, save_steps=3, batch_sampler="no_duplicates")
run = prepare_run_dir(sys.argv[1])
args = training_arguments(config, run, has_eval=False, device="cpu")
data = args.to_dict()
print(json.dumps({"world": args.world_size, "rank": args.process_index, "args": data}, default=str))
"""


def test_multi_process_runs_get_the_same_arguments(tmp_path):
    """What `torchrun --nproc_per_node 2` / `accelerate launch` do: every process builds the same
    arguments from the same config (a real 2-process group on CPU, no training)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    run = tmp_path / "run"
    procs = []
    try:
        for rank in range(2):
            env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", LOCAL_WORLD_SIZE="2",
                       MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1")
            procs.append(subprocess.Popen([sys.executable, "-c", MULTI_PROCESS, str(run)], env=env,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        results = []
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err[-2000:]
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [r["world"] for r in results] == [2, 2] and sorted(r["rank"] for r in results) == [0, 1]
    single = training_arguments(TrainingConfig(batch_size=24, max_steps=9, learning_rate=4e-5, seed=3, save_steps=3,
                                               batch_sampler="no_duplicates"),
                                run, has_eval=False, device="cpu").to_dict()
    # sentence-transformers drops uneven last batches under DDP (so no process waits on another)
    skip = {"local_rank", "logging_dir", "dataloader_drop_last"}
    want = {k: json.loads(json.dumps(v, default=str)) for k, v in single.items() if k not in skip}
    for result in results:
        assert {k: v for k, v in result["args"].items() if k not in skip} == want


def test_only_the_first_process_checks_the_run_folder(tmp_path, monkeypatch):
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoints").mkdir()
    monkeypatch.setenv("RANK", "1")
    assert prepare_run_dir(run) == run  # the first process has already checked (or created) it
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(RunFolderError):
        prepare_run_dir(run)


# -- training, evaluation, early stopping -------------------------------------------------------
def test_evaluation_during_training_and_best_model(registry, model, tmp_path):
    config = quick(max_steps=6, eval_steps=2, load_best_model_at_end=True)
    result = fit(registry, model, dataset("pairs"), config, tmp_path / "run", eval_dataset=dataset("pairs"), quiet=True)
    evals = [row for row in result.log_history if "eval_loss" in row]
    assert [row["step"] for row in evals] == [2, 4, 6]
    assert result.global_step == 6 and not result.stopped_early


def test_early_stopping_callback_and_patience(registry, model, tmp_path):
    # a huge threshold: no evaluation counts as an improvement, so patience 1 stops at the 2nd
    stopper = registry.create("callback", "early-stopping", patience=1, threshold=1000)
    result = fit(registry, model, dataset("pairs"), quick(max_steps=20, eval_steps=2), tmp_path / "run",
                 eval_dataset=dataset("pairs"), callbacks=[stopper], quiet=True)
    assert result.stopped_early and result.global_step == 4 and "early stopping" not in result.reason
    config = quick(max_steps=20, eval_steps=2, early_stopping_patience=1)
    result = fit(registry, model, dataset("pairs"), config, tmp_path / "run2", eval_dataset=dataset("pairs"), quiet=True)
    assert result.global_step <= 20 and "eval_loss" in json.dumps(result.log_history)


def test_a_packs_callback_gets_its_options_and_the_run_folder(model, tmp_path, plugin_set, throwaway_plugin):
    """A pack's callback is any transformers.TrainerCallback; a factory declaring ``run_dir``
    receives the run folder."""
    from transformers import TrainerCallback

    from embedtune_core import hookimpl
    from embedtune_core.plugins.registry import build_registry

    seen = {}

    class Recorder(TrainerCallback):
        def __init__(self, label, *, run_dir=None):
            self.label, self.run_dir = label, run_dir

        def on_train_end(self, args, state, control, **kwargs):
            seen[self.label] = (state.global_step, self.run_dir)

    class Pack:
        @hookimpl
        def register_callbacks(self, register):
            register("recorder", Recorder)

    throwaway_plugin(Pack(), "recorder-pack")
    registry = build_registry(plugin_set)
    run = tmp_path / "run"
    callbacks = [registry.create("callback", name, context={"run_dir": run}, **options)
                 for name, options in [("metrics-log", {}), ("recorder", {"label": "x"})]]
    fit(registry, model, dataset("pairs"), quick(max_steps=3), run, callbacks=callbacks, quiet=True)
    assert seen == {"x": (3, run)}
    rows = [json.loads(line) for line in (run / "training_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3]
    with pytest.raises(ComponentError, match="has no option 'lable'"):
        registry.create("callback", "recorder", lable="x")


def test_progress_bar_unless_quiet(registry, model, tmp_path, capsys):
    bar = registry.create("callback", "progress", context={"quiet": False})
    fit(registry, model, dataset("pairs"), quick(max_steps=2), tmp_path / "a", callbacks=[bar])
    err = capsys.readouterr().err
    assert "training" in err and "2/2" in err
    silent = registry.create("callback", "progress", context={"quiet": True})
    fit(registry, model, dataset("pairs"), quick(max_steps=2), tmp_path / "b", callbacks=[silent], quiet=True)
    captured = capsys.readouterr()
    assert "2/2" not in captured.err and "{'loss'" not in captured.out


def test_empty_training_data_is_an_error(registry, model, tmp_path):
    from embedtune_core.errors import TrainingError

    with pytest.raises(TrainingError, match="empty"):
        fit(registry, model, dataset("pairs").select([]), quick(), tmp_path / "run", quiet=True)


# -- run folders --------------------------------------------------------------------------------
def test_prepare_run_dir_refuses_an_existing_run(tmp_path):
    run = tmp_path / "run"
    assert prepare_run_dir(run) == run and run.is_dir()
    assert prepare_run_dir(run) == run  # empty: fine
    (run / "model").mkdir()
    (run / "model" / "modules.json").write_text("[]")
    with pytest.raises(RunFolderError) as info:
        prepare_run_dir(run)
    message = info.value.format()
    assert str(run) in message and "--overwrite" in message and "--resume" in message
    assert prepare_run_dir(run, resume=True) == run and (run / "model" / "modules.json").exists()
    with pytest.raises(ConfigError, match="cannot be used together"):
        prepare_run_dir(run, overwrite=True, resume=True)


def test_overwrite_keeps_the_old_run_until_the_new_one_finishes(tmp_path):
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "model" / "modules.json").write_text("old")
    prepare_run_dir(run, overwrite=True)
    aside = replaced_path(run)
    assert (aside / "model" / "modules.json").read_text() == "old"
    assert run.is_dir() and not any(run.iterdir())
    # the new run fails before finishing and is overwritten again: the finished old run is kept
    (run / "checkpoints").mkdir()
    prepare_run_dir(run, overwrite=True)
    assert (aside / "model" / "modules.json").read_text() == "old" and not any(run.iterdir())
    (run / "model").mkdir()
    (run / "model" / "modules.json").write_text("new")
    finish_run_dir(run)
    assert not aside.exists() and (run / "model" / "modules.json").read_text() == "new"


def test_save_model_is_atomic_and_safetensors(model, tmp_path, monkeypatch):
    from sentence_transformers import SentenceTransformer

    target = tmp_path / "model"
    save_model(model, target)
    files = {p.name for p in target.rglob("*")}
    assert "model.safetensors" in files and not any(f.endswith((".bin", ".pt", ".pkl")) for f in files)
    loaded = SentenceTransformer(str(target), device="cpu")
    assert torch.allclose(loaded.encode(["a cough"], convert_to_tensor=True), model.encode(["a cough"], convert_to_tensor=True))

    def broken_save(path, **kwargs):
        Path(path).mkdir(parents=True)
        (Path(path) / "modules.json").write_text("[]")
        raise OSError("disk full")

    monkeypatch.setattr(model, "save", broken_save)
    with pytest.raises(OSError):
        save_model(model, target)
    assert "model.safetensors" in {p.name for p in target.rglob("*")}  # the old model is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary left


# -- checkpoints and resume ---------------------------------------------------------------------
class StopAt:
    """A callback raising KeyboardInterrupt once step ``step`` has ended (Ctrl-C pressed twice)."""

    def __new__(cls, step):
        from transformers import TrainerCallback

        class _Stop(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if state.global_step == step:
                    raise KeyboardInterrupt

        return _Stop()


def test_train_refuses_checkpoints_of_an_earlier_run(registry, model, tmp_path):
    fit(registry, model, dataset("pairs"), quick(max_steps=2, save_steps=2), tmp_path / "run", quiet=True)
    with pytest.raises(RunFolderError, match="checkpoints of an earlier run"):
        fit(registry, model, dataset("pairs"), quick(max_steps=2, save_steps=2), tmp_path / "run", quiet=True)


def test_resume_of_finished_training_trains_no_further(registry, tiny_model, tmp_path, capsys):
    """A run killed after its last checkpoint (or resumed once finished) gets the last
    checkpoint's weights and no extra step, whatever the schedule."""
    from sentence_transformers import SentenceTransformer

    config = quick(max_steps=4, save_steps=2, lr_scheduler="constant")
    torch.manual_seed(0)
    model = SentenceTransformer(tiny_model, device="cpu")
    first = fit(registry, model, dataset("pairs"), config, tmp_path / "run", quiet=True)
    trained = state_of(model)
    torch.manual_seed(0)
    again = SentenceTransformer(tiny_model, device="cpu")
    result = fit(registry, again, dataset("pairs"), config, tmp_path / "run", resume=True)
    assert result.global_step == first.global_step == 4
    err = capsys.readouterr().err
    assert "resuming from" in err and "checkpoint-4 (step 4 of 4)" in err
    for key, value in trained.items():
        assert torch.allclose(value, state_of(again)[key], atol=1e-6), key


def test_interrupt_saves_a_checkpoint_and_resume_continues(registry, tiny_model, tmp_path):
    from sentence_transformers import SentenceTransformer

    from embedtune_core.training.trainer import TrainingInterrupted

    config = quick(max_steps=8, save_steps=3, batch_size=4)
    data = dataset("pairs", repeat=2)

    torch.manual_seed(0)
    straight = SentenceTransformer(tiny_model, device="cpu")
    fit(registry, straight, data, config, tmp_path / "straight", quiet=True)

    torch.manual_seed(0)
    model = SentenceTransformer(tiny_model, device="cpu")
    with pytest.raises(TrainingInterrupted) as info:
        fit(registry, model, data, config, tmp_path / "run", callbacks=[StopAt(5)], quiet=True)
    assert info.value.exit_code == 130 and "--resume" in info.value.format() and "step 5" in info.value.format()
    assert newest_checkpoint(tmp_path / "run").name == "checkpoint-5"

    torch.manual_seed(0)
    model = SentenceTransformer(tiny_model, device="cpu")
    result = fit(registry, model, data, config, tmp_path / "run", resume=True, quiet=True)
    assert result.global_step == 8
    steps = [row["step"] for row in result.log_history if "loss" in row]
    assert steps[:4] == [1, 2, 3, 4] and [s for s in steps if s > 5] == [6, 7, 8]
    for key, value in state_of(straight).items():
        assert torch.allclose(value, state_of(model)[key], atol=1e-5), key


def test_first_ctrl_c_stops_cleanly_after_the_step(registry, model, tmp_path):
    import signal

    from transformers import TrainerCallback

    from embedtune_core.training.trainer import TrainingInterrupted

    class PressCtrlC(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == 2:
                os.kill(os.getpid(), signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when the tests run in a background job
    with pytest.raises(TrainingInterrupted) as info:
        fit(registry, model, dataset("pairs"), quick(max_steps=8), tmp_path / "run", callbacks=[PressCtrlC()], quiet=True)
    assert "checkpoint saved" in info.value.format()
    assert newest_checkpoint(tmp_path / "run").name == "checkpoint-3"
    assert signal.getsignal(signal.SIGINT) is before
    result = fit(registry, model, dataset("pairs"), quick(max_steps=8), tmp_path / "run", resume=True, quiet=True)
    assert result.global_step == 8


def test_resume_without_a_checkpoint_starts_from_zero(registry, model, tmp_path, capsys):
    result = fit(registry, model, dataset("pairs"), quick(max_steps=2), tmp_path / "run", resume=True)
    assert result.global_step == 2 and "starting from step 0" in capsys.readouterr().err


def test_incomplete_checkpoints_are_ignored(tmp_path):
    folder = tmp_path / "checkpoints"
    for step, complete in [(2, True), (4, True), (6, False)]:
        (folder / f"checkpoint-{step}").mkdir(parents=True)
        if complete:
            (folder / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    (folder / "checkpoint-x").mkdir()
    assert [p.name for p in checkpoints(tmp_path)] == ["checkpoint-2", "checkpoint-4"]
    assert newest_checkpoint(tmp_path).name == "checkpoint-4"


KILLED_RUN = """
import os, sys, time
import torch
torch.set_num_threads(1)
from sentence_transformers import SentenceTransformer
from transformers import TrainerCallback
from embedtune_core.config.schema import TrainingConfig
from embedtune_core.plugins.registry import load_registry
from embedtune_core.training.losses import build_loss
from embedtune_core.training.trainer import train
from training_samples import dataset, setup

model_path, run_dir, marker = sys.argv[1:4]

class WaitToBeKilled(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        if state.global_step == 4:
            open(marker, "w").write("saved")
            time.sleep(120)

torch.manual_seed(0)
model = SentenceTransformer(model_path, device="cpu")
_, registry = load_registry()
loss = build_loss(registry, "mnrl", model, {})
config = TrainingConfig(max_steps=10, batch_size=4, learning_rate=1e-3, warmup_ratio=0.0, logging_steps=1, save_steps=2)
log = registry.create("callback", "metrics-log", context={"run_dir": run_dir})
train(model, dataset("pairs", repeat=2), loss, setup(registry, config, callbacks=[log, WaitToBeKilled()]), run_dir,
      quiet=True)
"""


def test_killed_run_resumes_from_the_newest_checkpoint(registry, tiny_model, tmp_path):
    """A training process killed with SIGKILL mid-run, then resumed: it continues from the newest
    checkpoint and ends with the same number of steps and the same weights as a run never killed."""
    import signal
    import time

    from sentence_transformers import SentenceTransformer

    run = tmp_path / "run"
    marker = tmp_path / "saved"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, tiny_model, str(run), str(marker)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 180
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.time() < deadline, "the child never saved its checkpoint"
        time.sleep(0.2)
    (run / "checkpoints" / "checkpoint-6").mkdir()  # a checkpoint cut short by the kill
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert newest_checkpoint(run).name == "checkpoint-4"

    config = TrainingConfig(max_steps=10, batch_size=4, learning_rate=1e-3, warmup_ratio=0.0, logging_steps=1, save_steps=2)
    torch.manual_seed(0)
    model = SentenceTransformer(tiny_model, device="cpu")
    log = registry.create("callback", "metrics-log", context={"run_dir": run})
    result = fit(registry, model, dataset("pairs", repeat=2), config, run, callbacks=[log], resume=True, quiet=True)
    assert result.global_step == 10
    assert [row["step"] for row in result.log_history if "loss" in row] == list(range(1, 11))
    rows = [json.loads(line) for line in (run / "training_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows if "loss" in row] == list(range(1, 11))

    torch.manual_seed(0)
    straight = SentenceTransformer(tiny_model, device="cpu")
    fit(registry, straight, dataset("pairs", repeat=2), config, tmp_path / "straight", quiet=True)
    for key, value in state_of(straight).items():
        assert torch.allclose(value, state_of(model)[key], atol=1e-5), key


def test_gradient_checkpointing_is_turned_on(registry, model, tmp_path):
    result = fit(registry, model, dataset("pairs"), quick(max_steps=2, gradient_checkpointing=True), tmp_path / "run",
                 quiet=True)
    inner = model[0].auto_model
    flag = getattr(inner, "is_activation_checkpointing", None)
    assert result.global_step == 2 and (flag if flag is not None else inner.is_gradient_checkpointing)
