"""Contain what you let in: a pack's bug, the operating system's refusals and a damaged run folder
end in one message (exit 2, the plugin, file or key named, no traceback) and nothing half-written."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from embedtune_core.testing import invoke

HOSTILE = '''
from embedtune_core import hookimpl
from embedtune_core.types import DataBundle, MiningResult, MiningStats


class Miner:
    """A miner with one bug, chosen by its option."""

    def __init__(self, bug: str = "raises"):
        self.bug = bug

    def mine(self, request):
        rows = request.dataset.select_columns(["anchor", "positive"])
        if self.bug == "raises":
            raise IndexError("list index out of range")
        if self.bug == "exits":
            raise SystemExit(0)
        if self.bug == "nulls":
            negatives = [None] * len(rows)
        else:  # "positive": each negative is its row's positive, in capitals
            negatives = [p.upper() for p in rows["positive"]]
        return MiningResult(rows.add_column("negative_1", negatives), MiningStats(queries=len(rows)))


def vector_loss(model):
    import torch

    class Vector(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, features, labels):
            return self.model(features[0])["sentence_embedding"].sum(dim=1)

    return Vector()


def function_loss(model):
    return lambda features, labels: 0.0


def ints_reader(source, rows: int = 4):
    import datasets

    return DataBundle(dataset_type="pairs", train=datasets.Dataset.from_dict(
        {"anchor": list(range(rows)), "positive": [f"p{i}" for i in range(rows)]}))


def failing_reader(source):
    raise ValueError("could not parse line 2")


class NanMetric:
    def compute(self, ranked, k):
        import numpy as np

        return np.full(len(ranked), np.nan)


class TextMetric:
    def compute(self, ranked, k):
        return ["high"] * len(ranked)


def end_raises():
    from transformers import TrainerCallback

    class EndRaises(TrainerCallback):
        def on_train_end(self, args, state, control, **kwargs):
            raise RuntimeError("could not upload the model card")

    return EndRaises()


@hookimpl
def register_negative_miners(register):
    register("buggy", Miner)


@hookimpl
def register_losses(register):
    register("vector-loss", vector_loss, accepts=("pairs", "ir"))
    register("function-loss", function_loss, accepts=("pairs", "ir"))


@hookimpl
def register_dataset_readers(register):
    register("ints", ints_reader, dataset_type="pairs", bundled=True)
    register("failing", failing_reader, dataset_type="pairs", bundled=True)


@hookimpl
def register_metrics(register):
    register("nan-metric", NanMetric)
    register("text-metric", TextMetric)


@hookimpl
def register_callbacks(register):
    register("end-raises", end_raises)
'''

LIFECYCLE = '''
import sys
from embedtune_core import hookimpl


@hookimpl
def run_started(run_dir):
    sys.exit(0)
'''


@pytest.fixture
def hostile(tmp_path, monkeypatch):
    folder = tmp_path / "hostile-packs"
    folder.mkdir()
    (folder / "hostile_pack.py").write_text(textwrap.dedent(HOSTILE), encoding="utf-8")
    (folder / "exiting_pack.py").write_text(textwrap.dedent(LIFECYCLE), encoding="utf-8")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def pairs_file(folder: Path, rows: int = 24) -> Path:
    path = folder / "pairs.jsonl"
    path.write_text("".join(json.dumps({"anchor": f"question {i} about topic {i % 6}",
                                        "positive": f"answer {i} on topic {i % 6}"}) + "\n" for i in range(rows)))
    return path


def train_args(tiny_model, folder, *extra):
    return ["train", "--model", tiny_model, "--data", str(pairs_file(folder)), "--type", "pairs",
            "--output", str(folder / "run"), "-s", "training.max_steps=2", "-s", "training.batch_size=8", *extra]


def refused(result, *fragments, run: Path | None = None):
    assert result.exit_code == 2, result
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)
    assert "Traceback" not in result.output
    if run is not None:
        assert not run.exists(), list(run.iterdir())


# -- a pack's component misbehaves ------------------------------------------------------------------
@pytest.mark.parametrize("bug,fragments", [
    ("raises", ["negative miner 'buggy' from plugin 'hostile_pack' failed while mining", "IndexError"]),
    ("exits", ["failed while mining", "called sys.exit(0)"]),
    ("nulls", ["returned row 1: 'negative_1' is missing, not text"]),
    ("positive", ["returned row 1: 'negative_1' is the same text as the positive"]),
])
def test_a_pack_miners_bug_is_one_message_and_no_file(hostile, bug, fragments):
    out = hostile / "mined.jsonl"
    result = invoke(["-p", "hostile_pack", "mine", "--data", str(pairs_file(hostile)), "--type", "pairs",
                     "--miner", "buggy", "-O", f"bug={bug}", "-o", str(out)])
    refused(result, *fragments)
    assert not out.exists() and not list(hostile.glob(".mined*"))


@pytest.mark.parametrize("loss,fragment", [
    ("vector-loss", "loss 'vector-loss' from plugin 'hostile_pack' returned (4,) for a batch, not a single number"),
    ("function-loss", "loss 'function-loss' from plugin 'hostile_pack' built a function, not a torch.nn.Module"),
])
def test_a_broken_loss_is_refused_before_anything_runs(hostile, tiny_model, loss, fragment):
    result = invoke(["-p", "hostile_pack", *train_args(tiny_model, hostile, "--loss", loss,
                                                         "-s", "mining.miner=bm25")])
    refused(result, fragment, run=hostile / "run")
    assert "mining hard negatives" not in result.stderr  # found before the mining step ran


@pytest.mark.parametrize("reader,fragments", [
    ("ints", ["dataset reader 'ints' from plugin 'hostile_pack' gave train row 1: 'anchor' is int 0, not text"]),
    ("failing", ["dataset reader 'failing' from plugin 'hostile_pack' failed while", "could not parse line 2"]),
])
def test_a_broken_reader_is_named_and_validate_agrees(hostile, reader, fragments):
    refused(invoke(["-p", "hostile_pack", "data", "validate", f"builtin:{reader}"]), *fragments)
    refused(invoke(["-p", "hostile_pack", "data", "stats", f"builtin:{reader}"]), *fragments)


@pytest.mark.parametrize("metric,fragment", [
    ("nan-metric", "returned 2 value(s) that are not finite numbers"),
    ("text-metric", "returned list ['high', 'high'], not numbers"),
])
def test_a_metric_giving_nan_or_text_is_refused_not_printed(hostile, metric, fragment):
    qrels, run = hostile / "qrels.txt", hostile / "run.txt"
    qrels.write_text("q1 0 d1 1\nq2 0 d2 1\n")
    run.write_text("q1 Q0 d1 1 2.0 r\nq2 Q0 d2 1 1.0 r\n")
    result = invoke(["-p", "hostile_pack", "metrics", str(qrels), str(run), "-m", f"{metric}@10", "--json"])
    refused(result, f"metric '{metric}' from plugin 'hostile_pack' {fragment}")
    assert "NaN" not in result.stdout


def test_a_callback_failing_at_the_end_leaves_no_half_run(hostile, tiny_model):
    result = invoke(["-p", "hostile_pack", *train_args(tiny_model, hostile, "-s", "training.callbacks=[end-raises]")])
    refused(result, "callback 'end-raises' from plugin 'hostile_pack' failed while handling on_train_end",
            "could not upload the model card", f"nothing of this run was kept: {hostile / 'run'} was removed",
            run=hostile / "run")


def test_a_lifecycle_hook_that_exits_zero_fails_the_run(hostile, tiny_model):
    result = invoke(["-p", "exiting_pack", *train_args(tiny_model, hostile)])
    refused(result, "plugin 'exiting_pack' failed in run_started: called sys.exit(0)", run=hostile / "run")


def test_a_registry_hook_that_exits_skips_its_pack_with_a_warning(plugin_set, throwaway_plugin):
    from embedtune_core import hookimpl
    from embedtune_core.plugins.registry import build_registry

    class Exits:
        @hookimpl
        def register_metrics(self, register):
            raise SystemExit(0)

    throwaway_plugin(Exits(), "exits")
    registry = build_registry(plugin_set)
    assert "ndcg" in registry.names("metric") and "called sys.exit(0)" in plugin_set.records["exits"].error


# -- a run is all or nothing on disk ------------------------------------------------------------------
def listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_failed_overwrite_puts_the_previous_run_back(hostile, tiny_model):
    assert invoke(train_args(tiny_model, hostile)).exit_code == 0
    before = listing(hostile / "run")
    result = invoke(["-p", "hostile_pack", *train_args(tiny_model, hostile, "--overwrite",
                                                         "-s", "training.callbacks=[end-raises]")])
    refused(result, "failed while handling on_train_end", f"the previous run in {hostile / 'run'} is back as it was")
    assert listing(hostile / "run") == before
    assert not (hostile / ".run.replaced").exists()


def test_a_failed_resume_leaves_the_folder_as_it_was(hostile, tiny_model):
    first = invoke(train_args(tiny_model, hostile, "-s", "training.save_steps=1"))
    assert first.exit_code == 0, first
    before = listing(hostile / "run")
    result = invoke(["-p", "hostile_pack", *train_args(tiny_model, hostile, "--resume", "-s", "training.save_steps=1",
                                                         "-s", "training.max_steps=4",
                                                         "-s", "training.callbacks=[end-raises]")])
    refused(result, "failed while handling on_train_end", f"the run folder {hostile / 'run'} is as it was before")
    assert listing(hostile / "run") == before
    assert not list(hostile.glob(".run.before"))


# -- the run folder's state, checked before a resume reads it ----------------------------------------
@pytest.fixture
def checkpointed(hostile, tiny_model):
    result = invoke(train_args(tiny_model, hostile, "-s", "training.save_steps=1"))
    assert result.exit_code == 0, result
    return hostile / "run"


@pytest.mark.parametrize("damage,fragments", [
    (lambda run: (run / "checkpoints/checkpoint-2/trainer_state.json").write_text("[1, 2]"),
     ["checkpoint-2/trainer_state.json", "holds list, not a table", "delete checkpoint-2"]),
    (lambda run: (run / "checkpoints/checkpoint-2/trainer_state.json").write_text("{}"),
     ["says step None in the folder of step 2"]),
    (lambda run: (run / "state.json").write_text('{"steps": {"train": {"training": "done"}}}'),
     ["state.json has a 'training' of step 'train' that cannot be read"]),
    (lambda run: (run / "state.json").write_text('{"steps": [1]}'),
     ["state.json has 'steps' that is not a table of tables"]),
    (lambda run: (run / "state.json").write_bytes(b'{"steps": "\xff"}'),
     ["state.json is not valid UTF-8 JSON"]),
])
def test_damaged_run_state_is_named_before_a_resume_uses_it(checkpointed, tiny_model, damage, fragments):
    damage(checkpointed)
    before = listing(checkpointed)
    result = invoke(train_args(tiny_model, checkpointed.parent, "--resume", "-s", "training.save_steps=1",
                               "-s", "training.max_steps=3"))
    refused(result, *fragments)
    assert listing(checkpointed) == before


def test_a_damaged_training_log_is_trimmed_with_a_warning(checkpointed, tiny_model):
    log = checkpointed / "training_log.jsonl"
    log.write_bytes(log.read_bytes() + b'{"step": 1, "loss": \xff}\n')
    shutil.rmtree(checkpointed / "checkpoints" / "checkpoint-2")
    result = invoke(train_args(tiny_model, checkpointed.parent, "--resume", "-s", "training.save_steps=1"))
    assert result.exit_code == 0, result
    assert "damaged line(s) of the training log were dropped" in result.stderr
    steps = [json.loads(line)["step"] for line in log.read_text(encoding="utf-8").splitlines()]
    assert steps == sorted(steps)


def test_a_second_run_on_the_same_folder_is_refused_while_the_first_runs(hostile, tiny_model):
    from embedtune_core.pipeline.rundir import lock_path

    run = hostile / "run"
    lock = lock_path(run)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import fcntl, sys, time
        handle = open({str(lock)!r}, "a+")
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write("pid 4242 on another machine"); handle.flush()
        print("locked", flush=True)
        time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        refused(invoke(train_args(tiny_model, hostile, "--overwrite")), "another run is writing this run folder",
                "pid 4242 on another machine", run=run)
        refused(invoke(["config", "validate", "-s", f"output_dir={hostile}", "-s", "name=run", str(config_file(hostile))]),
                "another run is writing this run folder")
    finally:
        holder.kill()
        holder.wait()
    result = invoke(train_args(tiny_model, hostile))  # the lock went with its process
    assert result.exit_code == 0, result
    assert not lock.exists()


def config_file(folder: Path) -> Path:
    path = folder / "pipeline.toml"
    path.write_text(f'[data]\nsource = "{pairs_file(folder)}"\ntype = "pairs"\n', encoding="utf-8")
    return path


# -- the operating system's refusals ------------------------------------------------------------------
def test_names_too_long_for_the_file_system_are_refused_before_anything_runs(hostile, tiny_model):
    long = "n" * 300
    refused(invoke(["config", "validate", str(config_file(hostile)), "-s", f"name={long}"]),
            "is 300 bytes, more than the file system's 255", "use a shorter run name")
    refused(invoke(train_args(tiny_model, hostile)[:-4] + ["--output", str(hostile / long)]), "is 300 bytes")
    refused(invoke(["mine", "--data", str(pairs_file(hostile)), "--type", "pairs", "--miner", "bm25",
                    "-o", str(hostile / f"{long}.jsonl")]), "is 306 bytes", "use a shorter -o")
    refused(invoke(["data", "validate", str(hostile / f"{long}.jsonl"), "--type", "pairs"]),
            "a name in the path is too long for the file system")


def test_a_file_in_the_way_of_a_folder_is_named(hostile, tiny_model):
    (hostile / "afile").write_text("x")
    refused(invoke(["config", "validate", str(config_file(hostile)), "-s", f"output_dir={hostile / 'afile'}"]),
            "afile", "a part of the run folder's path is a file")
    refused(invoke(["mine", "--data", str(pairs_file(hostile)), "--type", "pairs", "--miner", "bm25",
                    "-o", str(hostile / "afile" / "out.jsonl")]), "a part of the output file's path is a file")
    (hostile / "runs").mkdir()
    (hostile / "runs" / ".run.replaced").write_text("x")
    refused(invoke(["config", "validate", str(config_file(hostile)), "-s", f"output_dir={hostile / 'runs'}",
                    "-s", "name=run", "--overwrite"]), "a file named .run.replaced is where --overwrite keeps")


def test_a_data_file_with_a_non_utf8_name_is_named_readably(hostile):
    path = Path(os.fsdecode(bytes(hostile / "data") + b"\xff.jsonl"))
    path.write_text('{"anchor": "q", "positive": "p"}\n{"anchor": 3, "positive": "p"}\n')
    result = invoke(["data", "validate", str(path), "--type", "pairs"])
    refused(result, "data\\xff.jsonl:2")


NOBODY = shutil.which("setpriv") is not None and hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.mark.skipif(not NOBODY, reason="needs root (to run a command as an unprivileged user) and setpriv")
def test_permission_denied_as_an_unprivileged_user(tmp_path, tiny_model):
    """Run as the user nobody: a run folder, a mine -o folder and a model file it may not write or
    read are each one message."""
    work = tmp_path / "work"
    shutil.copytree(Path(tiny_model), work / "model")
    pairs_file(work)
    (work / "locked").mkdir()
    os.chmod(work / "locked", 0o555)
    os.chmod(work / "model" / "model.safetensors", 0o000)
    for folder in [tmp_path, *tmp_path.parents]:
        os.chmod(folder, os.stat(folder).st_mode | 0o011)
    os.chmod(work, 0o777)
    embedtune = str(Path(sys.executable).parent / "embedtune")
    env = {**os.environ, "HOME": str(work), "HF_HOME": str(work / "hf")}

    def as_nobody(*args):
        return subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", embedtune, *args],
                              capture_output=True, text=True, cwd=work, env=env, timeout=300)

    for args, fragment in (
        (["train", "--data", "pairs.jsonl", "--type", "pairs", "--output", "locked/run"], "permission denied"),
        (["mine", "--data", "pairs.jsonl", "--type", "pairs", "--miner", "bm25", "-o", "locked/out.jsonl"],
         "permission denied"),
        (["eval", "--model", "model", "--data", "pairs.jsonl", "--type", "pairs"], "cannot be read: permission denied"),
    ):
        result = as_nobody(*args)
        assert result.returncode == 2 and fragment in result.stderr and "Traceback" not in result.stderr, result
    assert list((work / "locked").iterdir()) == []


# -- options a run gave wrongly --------------------------------------------------------------------------
@pytest.mark.parametrize("override,fragment", [
    ("training.learning_rate=-1e-5", "must be at least 0, got -1e-05"),
    ('model.trust_remote_code="yes"', "must be true or false written as such"),
    ("evaluation.retention=missing.jsonl", "the retention set's file or folder 'missing.jsonl' is not found"),
    ("loss.name=gist", None),
])
def test_option_values_are_checked_with_what_they_mean(hostile, override, fragment):
    result = invoke(["config", "validate", str(config_file(hostile)), "-s", override])
    if fragment is None:
        assert result.exit_code == 0, result
    else:
        refused(result, fragment)


def test_a_toml_inline_table_override_sets_the_options(hostile):
    result = invoke(["config", "show", str(config_file(hostile)), "-s", "loss.options={scale = 30}", "--json"])
    assert result.exit_code == 0, result
    assert json.loads(result.stdout)["loss"]["options"]["scale"] == 30.0


def test_a_guide_model_that_is_missing_is_named_under_its_option(hostile):
    result = invoke(["config", "validate", str(config_file(hostile)), "-s", "loss.name=gist",
                     "-s", "loss.options.guide=./no-such-model"])
    refused(result, "loss.options.guide")


def test_a_retention_file_of_pairs_is_read_as_pairs(hostile, tiny_model):
    retention = hostile / "general.jsonl"
    retention.write_text("".join(json.dumps({"anchor": f"word {i}", "positive": f"meaning {i}"}) + "\n" for i in range(8)))
    result = invoke(["eval", "--model", tiny_model, "--data", str(pairs_file(hostile)), "--type", "pairs",
                     "--retention", str(retention), "--json"])
    assert result.exit_code == 0, result


def test_an_unset_value_with_a_set_default_survives_the_config_file(hostile):
    from embedtune_core.config.schema import RunConfig

    result = invoke(["config", "show", str(config_file(hostile)), "-s", "evaluation.approximate_from=none",
                     "-s", "evaluation.retention=none", "-s", "mining.miner=bm25",
                     "-s", "mining.options.stopwords=none"])
    assert result.exit_code == 0, result
    (hostile / "resolved.toml").write_text(result.stdout)
    again = RunConfig.from_file(hostile / "resolved.toml")
    assert again.evaluation.approximate_from is None and again.evaluation.retention is None
    assert again.mining.options["stopwords"] in (None, "none")


def test_a_model_config_with_a_null_hidden_size_is_an_unknown_shape(tmp_path):
    from embedtune_core.training.advice import model_shape

    (tmp_path / "config.json").write_text('{"hidden_size": null, "num_hidden_layers": "six"}')
    assert model_shape(str(tmp_path)) == {}
    (tmp_path / "config.json").write_text('[1, 2]')
    assert model_shape(str(tmp_path)) == {}


# -- results that are silently wrong -----------------------------------------------------------------------
def test_the_relative_change_of_a_negative_baseline_has_the_sign_of_the_gain():
    from embedtune_core.pipeline.results import Row

    assert Row("spearman", None, -0.2, -0.1).relative == pytest.approx(50.0)
    assert Row("spearman", None, -0.2, -0.3).relative == pytest.approx(-50.0)
    assert Row("ndcg@10", None, 0.5, 0.25).relative == pytest.approx(-50.0)


def test_training_on_identical_rows_says_it_learned_nothing():
    from datasets import Dataset

    from embedtune_plugins.steps import learned_nothing

    rows = Dataset.from_dict({"anchor": ["a"] * 5, "positive": ["b"] * 5})
    assert "all 5 training rows are the same row" in learned_nothing([], rows)
    varied = Dataset.from_dict({"anchor": ["a", "c"], "positive": ["b", "d"]})
    assert "loss was 0 at every logged step" in learned_nothing([{"loss": 0.0}, {"loss": 0.0}], varied)
    assert learned_nothing([{"loss": 0.0}, {"loss": 0.3}], varied) is None


@pytest.mark.parametrize("dropped,why", [(0, "the search found too few candidates"),
                                         (7, "the guards dropped the rest as likely false negatives")])
def test_the_fill_in_note_says_why_the_negatives_were_guessed(dropped, why):
    from embedtune_plugins.steps import filled_warning

    note = filled_warning({"negatives_filled": 5, "negatives_written": 10, "dropped_false_negatives": dropped})
    assert "5 of 10 negatives (50%) are random fill-ins" in note and why in note
    assert filled_warning({"negatives_filled": 1, "negatives_written": 10}) is None
