"""Every malformed input under tests/bad_inputs/, run through the CLI.

Each category folder holds a manifest, ``cases.toml``, and the files it names:

* ``config/``   config files (``embedtune config validate``)
* ``data/``     data files and IR folders of every dataset type (``embedtune data validate``)
* ``trec/``     TREC qrels and run files (``embedtune metrics``)
* ``pipeline/`` configs that parse but cannot run (``embedtune run``): bad loss, miner and callback
  options, data that does not fit, missing files, an existing run folder...
* ``commands/`` ``embedtune train``, ``mine``, ``eval`` and others with bad files or options

A manifest has a default ``command`` and ``support`` files (relative to its folder, copied beside
every case); each ``[[case]]`` has:

* ``file``: the bad file or folder, copied into a fresh working folder (``{path}`` is the copy;
  a file that does not exist in the corpus stays missing);
* ``command`` (replaces the default) and ``args`` (appended); placeholders ``{path}``,
  ``{type}`` (the case's dataset type), ``{work}`` and ``{tiny_model}``;
* ``expect`` (or ``message``): fragments the error message must contain;
* where the message must point: ``line`` (``FILE:LINE``), ``error_file`` (a file inside the
  case's folder) or ``where`` (exact fragments, for errors about options and relative paths);
* ``env``: environment variables; ``cpu_only``: skipped where a CUDA GPU exists.

For every case: exit code 2; stdout empty; stderr is exactly one message, ``error: ...`` plus at
most a ``hint:`` line (progress lines starting with "» " aside); no traceback; no model is
loaded; the working folder (the cwd, which holds every output path) is byte for byte as it was,
no file or folder created, changed or removed; and the message is listed, with its cause and
fix, in docs/troubleshooting.md.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from doc_messages import AREAS, DOC, documented, templates
from embedtune_core.testing import invoke

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).parent / "bad_inputs"
CASE_KEYS = {"file", "command", "args", "type", "expect", "message", "line", "error_file", "where", "env", "cpu_only"}


def _load_cases() -> list[dict]:
    cases = []
    for manifest in sorted(ROOT.glob("*/cases.toml")):
        spec = tomllib.loads(manifest.read_text(encoding="utf-8"))
        for number, case in enumerate(spec["case"], 1):
            unknown = set(case) - CASE_KEYS
            assert not unknown, f"{manifest}: case {number} has unknown keys {unknown}"
            cases.append({
                **case,
                "category": manifest.parent.name,
                "folder": manifest.parent,
                "command": case.get("command", spec.get("command")),
                "support": spec.get("support", []),
                "expect": list(case.get("expect", [])) + ([case["message"]] if "message" in case else []),
                "number": number,
            })
    return cases


CASES = _load_cases()


def _case_id(case: dict) -> str:
    label = case.get("file") or " ".join(case["command"][:2])
    extra = " ".join(case.get("args", []))
    return f"{case['category']}-{case['number']}:{label}" + (f" {extra}" if extra else "")


class ModelLoaded(Exception):
    """Raised when a bad input got as far as loading a model."""


def snapshot(folder: Path) -> dict[str, str]:
    """Every file (its SHA-256) and folder under ``folder``."""
    found = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        found[rel] = "folder" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _copy(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target)
    elif source.exists():
        shutil.copy2(source, target)


def _fill(text: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        text = text.replace("{" + name + "}", value)
    return text


def test_the_corpus_is_complete():
    by_category = {}
    for case in CASES:
        by_category.setdefault(case["category"], 0)
        by_category[case["category"]] += 1
        if "file" in case and not re.search(r"missing|does_not_exist|nothere", case["file"]):
            assert (case["folder"] / case["file"]).exists(), case["file"]
        assert case["command"], _case_id(case)
        assert case["expect"], _case_id(case)
    assert set(by_category) == {"config", "data", "trec", "pipeline", "commands"}
    assert len(CASES) >= 100, by_category
    assert len({_case_id(c) for c in CASES}) == len(CASES)


def test_the_troubleshooting_guide_covers_every_area():
    text = DOC.read_text(encoding="utf-8")
    headings = {h.strip() for h in re.findall(r"^#{2,3} (.+)$", text, flags=re.M)}
    for area in AREAS:
        assert any(h.startswith(area) for h in headings), area
    listed = templates()
    assert len(listed) == len(set(listed)), "a message is listed twice"
    assert len(listed) >= 100


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_bad_input(case, tmp_path, monkeypatch, request):
    if case.get("cpu_only"):
        import torch

        if torch.cuda.is_available():
            pytest.skip("the input is only bad on a machine without a CUDA GPU")
    work = tmp_path / "work"
    work.mkdir()
    for item in case["support"]:
        _copy(case["folder"] / item, work / Path(item).name)
    values = {"work": str(work), "type": case.get("type", "")}
    target = None
    if "file" in case:
        target = work / Path(case["file"]).name
        _copy(case["folder"] / case["file"], target)
        values["path"] = str(target)
    args = case["command"] + case.get("args", [])
    if any("{tiny_model}" in a for a in args):
        values["tiny_model"] = request.getfixturevalue("tiny_model")
    args = [_fill(a, values) for a in args]

    from embedtune_core.embedding import models
    from embedtune_core.mining import selection as mining

    loads = []

    def no_model(*a, **k):
        loads.append(a)
        raise ModelLoaded(f"a model was loaded for a bad input: {a}")

    monkeypatch.setattr(models, "load_model", no_model)
    monkeypatch.setattr(mining, "load_cross_encoder", no_model)
    monkeypatch.chdir(work)
    before = snapshot(work)

    result = invoke(args, env=case.get("env"))

    assert not loads
    assert result.exit_code == 2, result
    assert "Traceback" not in result.output, result
    assert result.stdout == "", result
    message = "\n".join(line for line in result.stderr.splitlines() if not line.startswith("» ")).strip()
    lines = message.splitlines()
    assert message.startswith("error: ") and message.count("error: ") == 1, message
    assert len(lines) <= 2 and all(line.startswith("  hint: ") for line in lines[1:]), message
    if "where" in case:
        for fragment in case["where"]:
            assert _fill(fragment, values) in message, (fragment, message)
    else:
        named = str(target / case["error_file"]) if "error_file" in case else str(target)
        if "line" in case:
            assert f"{named}:{case['line']}" in message, message
        else:
            assert named in message, message
            assert not re.search(re.escape(named) + r":\d", message), f"unexpected line number in {message!r}"
    for fragment in case["expect"]:
        assert _fill(fragment, values) in message, (fragment, message)
    assert snapshot(work) == before, "the command created, changed or removed files"
    assert documented(message), f"{DOC.name} does not list this message: {message}"
    assert os.getcwd() == str(work)


def test_what_only_the_model_can_tell_fails_before_the_run_folder_exists(tiny_model, tmp_path, monkeypatch):
    """Matryoshka dims larger than the model's embedding: known once the model is loaded, still
    reported before the run folder is created."""
    monkeypatch.chdir(tmp_path)
    pipeline = tmp_path / "pipeline.toml"
    pipeline.write_text(
        f'[model]\nname = "{tiny_model}"\n[data]\nsource = "{Path(__file__).parent / "data" / "pairs.jsonl"}"\n'
        'type = "pairs"\n[loss]\nname = "matryoshka"\noptions = {dims = [64, 32]}\n',
        encoding="utf-8",
    )
    before = snapshot(tmp_path)
    result = invoke(["run", str(pipeline), "-q"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    message = result.stderr.strip()
    assert f"{pipeline}, key 'loss.options.dims'" in message and "exceed the model's embedding size 32" in message
    assert documented(message)
    assert snapshot(tmp_path) == before
