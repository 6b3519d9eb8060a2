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
