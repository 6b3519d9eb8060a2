"""Failures of the machine and the environment as one clear message: a full disk, the import of
``embedtune_core`` before the working-folder guard."""

import errno
import os
import subprocess
import sys

import pytest

from doc_messages import documented
from embedtune_core import io as eio
from embedtune_core.testing import invoke


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


# -- a full disk --------------------------------------------------------------------------------
@pytest.mark.parametrize("write", [
    lambda path: eio.write_text(path, "new"),
    lambda path: eio.write_json(path, {"new": 1}),
    lambda path: eio.write_jsonl(path, [{"new": 1}]),
])
def test_a_full_disk_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch, write):
    target = tmp_path / "metrics.json"
    target.write_text("old", encoding="utf-8")
    monkeypatch.setattr(eio.os, "fsync", _no_space)
    with pytest.raises(eio.DiskFullError) as info:
        write(target)
    assert info.value.file == str(tmp_path) and "'metrics.json'" in info.value.message
    assert "partial file was removed" in info.value.message and "free space" in info.value.hint
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]
    assert target.read_text(encoding="utf-8") == "old"


def test_a_full_disk_while_creating_the_temporary(tmp_path, monkeypatch):
    monkeypatch.setattr(eio.tempfile, "mkstemp", _no_space)
    with pytest.raises(eio.DiskFullError):
        eio.write_text(tmp_path / "a.txt", "x")
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_inside_a_folder_written_in_place(tmp_path, monkeypatch):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "old.bin").write_text("old")
    with pytest.raises(eio.DiskFullError) as info:
        with eio.atomic_path(tmp_path / "model") as tmp:
            tmp.mkdir()
            (tmp / "part").write_text("half")
            raise RuntimeError("Error while serializing: IoError(Os { code: 28, kind: StorageFull })")
    assert "'model'" in info.value.message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"] and os.listdir(tmp_path / "model") == ["old.bin"]


def test_disk_full_error_reads_the_exception_chain_and_ignores_other_errors(tmp_path):
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("PytorchStreamWriter failed writing file data/0") from inner
    except RuntimeError as outer:
        error = eio.disk_full_error(outer, tmp_path / "checkpoints", "checkpoint-120")
    assert isinstance(error, eio.DiskFullError) and error.file == str(tmp_path / "checkpoints")
    assert "'checkpoint-120'" in error.message
    assert eio.disk_full_error(OSError(errno.EACCES, "Permission denied"), tmp_path) is None
    assert eio.disk_full_error(ValueError("bad"), tmp_path) is None


def test_a_full_disk_through_the_cli_is_one_message(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pipeline.toml").write_text("old = true\n", encoding="utf-8")
    monkeypatch.setattr(eio.os, "fsync", _no_space)
    result = invoke(["init", "-o", "pipeline.toml", "--force"])
    assert result.exit_code == 2 and "Traceback" not in result.output and result.stdout == ""
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 2
    assert "the disk is full" in result.stderr and documented(result.stderr)
    assert os.listdir(tmp_path) == ["pipeline.toml"]
    assert (tmp_path / "pipeline.toml").read_text(encoding="utf-8") == "old = true\n"


# -- importing embedtune_core -----------------------------------------------------------------
def test_importing_the_package_imports_no_third_party_module():
    code = (
        "import sys; import embedtune_core; "
        "loaded = {m.split('.')[0] for m in sys.modules}; "
        "print(sorted(loaded & {'pluggy', 'click', 'attrs', 'yaml', 'torch', 'numpy', 'datasets'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr


def test_hookimpl_is_still_importable_from_the_package():
    import pluggy

    from embedtune_core import hookimpl
    from embedtune_core.plugins.hookspecs import hookimpl as marker

    assert hookimpl is marker and isinstance(hookimpl, pluggy.HookimplMarker)
    with pytest.raises(ImportError):
        from embedtune_core import no_such_name  # noqa: F401


# -- plugins ------------------------------------------------------------------------------------
def _module(folder, name, text):
    (folder / f"{name}.py").write_text(text, encoding="utf-8")


@pytest.mark.parametrize("name, text, fragment", [
    ("embedtune_no_such_module", None, "plugin module 'embedtune_no_such_module' could not be imported: ModuleNotFoundError"),
    ("embedtune_exiting_pack", "import sys\nsys.exit(0)\n", "plugin module 'embedtune_exiting_pack' called sys.exit(0)"),
    ("embedtune_failing_pack", "import missing_dependency_xyz\n", "No module named 'missing_dependency_xyz'"),
    ("embedtune_typo_pack", "from embedtune_core import hookimpl\n@hookimpl\ndef register_lossez(register):\n    pass\n",
     "plugin module 'embedtune_typo_pack' failed: PluginValidationError"),
])
@pytest.mark.parametrize("command", [["components", "loss"], ["init", "-o", "pipeline.toml"]])
def test_a_module_named_with_p_must_load(tmp_path, monkeypatch, name, text, fragment, command):
    if text is not None:
        _module(tmp_path, name, text)
    monkeypatch.syspath_prepend(str(tmp_path))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    result = invoke(["-p", name, *command])
    assert result.exit_code == 2 and "Traceback" not in result.output and result.stdout == "", result
    assert result.stderr.startswith("error: ") and fragment in result.stderr and documented(result.stderr)
    assert len(result.stderr.strip().splitlines()) == 2 and "warning" not in result.stderr
    assert os.listdir(work) == []


def _dist(site, folder, name, entry_points):
    info = site / folder
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[embedtune]\n" + entry_points, encoding="utf-8")


def test_a_distribution_named_like_embedtune_hides_no_builtin(tmp_path, monkeypatch):
    from importlib import metadata

    from embedtune_core.plugins.manager import load_plugins

    _dist(tmp_path, "embedtune-evil.dist-info", "embedtune-evil", "evilpack = embedtune_evil_module\n")
    _dist(tmp_path, "embedtune_copy-0.1.0.dist-info", "embedtune", "losses = embedtune_plugins.losses\n")
    _module(tmp_path, "embedtune_evil_module", "")
    monkeypatch.syspath_prepend(str(tmp_path))
    # what importlib.metadata.entry_points() alone gives: one "embedtune" distribution, the wrong one
    assert "readers" not in {ep.name for ep in metadata.entry_points(group="embedtune")}
    plugin_set = load_plugins(strict=False)
    builtins = {r.name for r in plugin_set.loaded() if r.builtin}
    assert {"readers", "miners", "losses", "metrics", "callbacks"} <= builtins
    assert plugin_set.records["evilpack"].error is None and not plugin_set.records["evilpack"].builtin
    assert plugin_set.broken() == []  # the second copy of the built-in losses counts once


def test_builtin_is_decided_by_the_module_not_the_distribution(fake_entry_points):
    from conftest import FakeEntryPoint, make_module

    from embedtune_core.plugins.manager import load_plugins

    mimic = FakeEntryPoint("mimic", make_module("mimic"), dist="embedtune", value="evil_pack.plugins")
    moved = FakeEntryPoint("builtin-copy", make_module("copy"), dist="something-else", value="embedtune_plugins.metrics")
    clash = FakeEntryPoint("losses", make_module("losses"), dist="aaa-first", value="evil_pack.losses")
    fake_entry_points(mimic, moved, clash)
    plugin_set = load_plugins(strict=False)
    assert not plugin_set.records["mimic"].builtin and plugin_set.records["builtin-copy"].builtin
    # a third-party entry point named like a built-in loses the clash, whatever its order
    assert plugin_set.records["losses"].builtin and plugin_set.records["losses"].error is None
    assert any("already used" in r.error for r in plugin_set.broken())


# -- model files and hub names ------------------------------------------------------------------
def _copy_model(source, target):
    import shutil

    shutil.copytree(source, target)
    return target


def test_a_truncated_safetensors_file_fails_before_the_run_folder_exists(tiny_model, tmp_path, monkeypatch):
    from pathlib import Path

    model = _copy_model(tiny_model, tmp_path / "model")
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    pipeline = tmp_path / "pipeline.toml"
    data = Path(__file__).parent / "data" / "pairs.jsonl"
    pipeline.write_text(f'[model]\nname = "{model}"\n[data]\nsource = "{data}"\ntype = "pairs"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = invoke(["run", str(pipeline), "-q"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"model file '{weights}' is truncated" in result.stderr and documented(result.stderr)
    assert not (tmp_path / "runs").exists()


def test_pickle_only_weights_are_refused_with_a_conversion_that_works(tiny_model, tmp_path):
    import torch
    from safetensors.torch import load_file

    from embedtune_core.embedding.models import check_model
    from embedtune_core.errors import EmbedtuneError

    model = _copy_model(tiny_model, tmp_path / "model")
    torch.save(load_file(model / "model.safetensors"), model / "pytorch_model.bin")
    (model / "model.safetensors").unlink()
    with pytest.raises(EmbedtuneError, match="are a pickle") as info:
        check_model(str(model))
    command = info.value.hint.split('python -c "', 1)[1].split('"', 1)[0]
    subprocess.run([sys.executable, "-c", command], check=True, timeout=120)
    check_model(str(model))  # converted: accepted


def test_an_unreachable_hub_is_reported_within_seconds(monkeypatch):
    import socket
    import time

    from embedtune_core.embedding import models
    from embedtune_core.errors import EmbedtuneError

    def hang(*args, **kwargs):  # a name lookup that hangs, then gives up as the real one would
        time.sleep(30)
        raise socket.timeout("timed out")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(socket, "create_connection", hang)
    start = time.perf_counter()
    with pytest.raises(EmbedtuneError, match="the hub cannot be reached") as info:
        models.check_model("sentence-transformers/all-MiniLM-L6-v3")
    assert time.perf_counter() - start < models.HUB_TIMEOUT + 1.5
    assert "did you mean 'sentence-transformers/all-MiniLM-L6-v2' (bundled)?" in info.value.hint


def test_hub_names_are_left_to_the_hub_when_it_answers(monkeypatch):
    from embedtune_core.embedding import models

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(models, "hub_reachable", lambda timeout=models.HUB_TIMEOUT: True)
    models.check_model("BAAI/bge-small-en-v1.5")  # no error: loading is the hub's business
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert models._hub_address() == ("proxy.example", 3128)


@pytest.mark.parametrize("name, suggestion", [
    ("sentence-transformers/all-MiniLM-L6-v3", "sentence-transformers/all-MiniLM-L6-v2"),
    ("all-MiniLM-L6v2", "all-MiniLM-L6-v2"),
    ("all-minilm-l6-v2", "all-MiniLM-L6-v2"),
    ("BAAI/bge-small-en-v1.5", None),
])
def test_did_you_mean_the_bundled_model(name, suggestion):
    from embedtune_core.embedding.models import did_you_mean_model

    hint = did_you_mean_model(name)
    assert (f"'{suggestion}'" in hint) if suggestion else hint == ""
