"""Every malformed input in tests/bad_inputs/cases.toml, run through the CLI: exit code 2, one
clear message naming the file (and line or key), no traceback, nothing created or changed."""

import hashlib
import pathlib
import shutil
import tomllib

import pytest

from embedtune_core.testing import invoke

ROOT = pathlib.Path(__file__).parent / "bad_inputs"
CASES = tomllib.loads((ROOT / "cases.toml").read_text(encoding="utf-8"))["case"]
DEFAULT_ARGS = {"config": ["config", "validate", "{path}"]}


def _snapshot(folder):
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_there_are_enough_cases():
    assert len(CASES) >= 20


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_bad_input(case, tmp_path, monkeypatch):
    source = ROOT / case["file"]
    work = tmp_path / "work"
    work.mkdir()
    target = work / source.name
    shutil.copy(source, target)
    monkeypatch.chdir(work)
    before = _snapshot(work)
    args = case.get("args") or DEFAULT_ARGS[case["file"].split("/")[0]]
    result = invoke([a.replace("{path}", str(target)) for a in args])
    message = result.stderr
    assert result.exit_code == 2, result
    assert "Traceback" not in result.output
    assert message.startswith("error: "), message
    assert str(target) in message or target.name in message, message
    for fragment in case["expect"]:
        assert fragment in message, (fragment, message)
    if "line" in case:
        assert f"{target.name}:{case['line']}" in message, message
    assert _snapshot(work) == before, "the command created or changed files"
