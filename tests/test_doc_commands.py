"""Every command line shown in README.md, docs/*.md and the packs' READMEs runs as written.

The command lines are those in fenced code blocks that start with ``embedtune``, ``torchrun``,
``accelerate launch`` or ``python -m embedtune_core`` (``\\`` continuations joined, a trailing
``# comment`` removed). Each document's lines run in order in a folder of their own that holds the
files they name (``my_pairs.jsonl``, ``qrels.txt``, ``hpo/`` ...), so a line may use what an earlier
one wrote. To keep them small, the models are a tiny 384-dim model and ``run``/``train`` get
``-s`` settings for a few steps on a slice of the data; every argument written in the docs is kept.

Not run, with the reason as the skip message: usage synopses (placeholders such as ``M``,
``[--json]`` or ``...``) and lines whose comment says they need GPUs or the network.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from embedtune_core.testing import build_tiny_model, invoke
from tests.conftest import DATA

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "contrib").glob("*/README.md"))]
STARTS = ("embedtune ", "torchrun ", "accelerate launch ", "python -m embedtune_core ")
BUNDLED_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
NEEDS = re.compile(r"\bneeds\b[^#]*?\b(GPUs?|network|hub|machines)\b", re.I)


@dataclass(frozen=True)
class DocCommand:
    doc: Path
    line: int
    text: str
    comment: str

    @property
    def id(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"

    def skip_reason(self) -> str | None:
        need = NEEDS.search(self.comment)
        if need:
            return f"{self.id} {need.group(0)}"
        if any(_placeholder(token) for token in shlex.split(self.text)):
            return f"{self.id} is a usage synopsis"
        return None


def _placeholder(token: str) -> bool:
    return token.startswith("[") or "..." in token or bool(re.fullmatch(r"[A-Z][A-Z_@0-9]*", token))


def _split_comment(line: str) -> tuple[str, str]:
    parts = re.split(r"\s+#\s?", line, maxsplit=1)
    return parts[0].strip(), (parts[1].strip() if len(parts) > 1 else "")


def doc_commands(doc: Path) -> list[DocCommand]:
    """The runnable command lines of the fenced code blocks of ``doc``."""
    out, fence, pending, start = [], None, "", 0
    for number, raw in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith("```"):
            fence = None if fence is not None else stripped
            pending = ""
            continue
        if fence is None:
            continue
        if not pending:
            start = number
        text = stripped[2:] if stripped.startswith("$ ") else stripped
        if text.endswith("\\"):
            pending += text[:-1] + " "
            continue
        text, pending = pending + text, ""
        command, comment = _split_comment(text)
        if command.startswith(STARTS):
            out.append(DocCommand(doc, start, command, comment))
    return out


COMMANDS = [c for doc in DOCS for c in doc_commands(doc)]


def test_the_docs_show_the_commands_this_test_runs():
    ids = {c.id for c in COMMANDS}
    assert len(COMMANDS) >= 40
    # lines of each kind the collector must find
    assert any(i.startswith("README.md:") for i in ids)
    assert any(c.text.startswith("embedtune train --data big.jsonl") and "mini_batch_size" in c.text
               for c in COMMANDS), "a continued (\\) line is joined"
    assert any(c.text.startswith("torchrun ") and c.skip_reason() is None for c in COMMANDS), \
        "a multi-process line that runs on CPU"


# -- the folder the commands run in ---------------------------------------------------------------
def _pairs(count: int) -> list[dict]:
    from embedtune_core.data.loading import load_data
    from embedtune_core.plugins.manager import load_plugins
    from embedtune_core.plugins.registry import build_registry

    ir = load_data(build_registry(load_plugins()), "builtin:construction-faq").train
    rows = []
    for qid, query in ir.queries.items():
        relevant = [d for d, grade in ir.qrels.get(qid, {}).items() if grade > 0 and d in ir.corpus]
        if relevant:
            rows.append({"anchor": query, "positive": ir.corpus[relevant[0]]})
        if len(rows) == count:
            break
    return rows


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """The files the documented commands name, and a tiny 384-dim model."""
    base = tmp_path_factory.mktemp("docs")
    rows = _pairs(96)
    texts = [text for row in rows for text in row.values()]
    tiny = build_tiny_model(base / "_tiny", texts=texts, hidden_size=384, layers=1, word_embedding_std=0.5)
    files = base / "files"
    files.mkdir()
    for name in ("my_pairs.jsonl", "pairs.jsonl", "train.jsonl", "big.jsonl"):
        _write_jsonl(files / name, rows[:80])
    _write_jsonl(files / "test.jsonl", rows[80:])
    sts = [json.loads(line) for line in open(os.path.join(DATA, "sts.jsonl"), encoding="utf-8")]
    (files / "sts.csv").write_text("sentence1,sentence2,score\n" + "".join(
        f'"{r["sentence1"]}","{r["sentence2"]}",{r["score"]}\n' for r in sts), encoding="utf-8")
    shutil.copy(os.path.join(DATA, "snli_sample.jsonl"), files / "snli.jsonl")
    shutil.copytree(os.path.join(DATA, "ir"), files / "hpo")
    shutil.copy(os.path.join(DATA, "ir_trec", "qrels.txt"), files / "qrels.txt")
    qrels = [line.split() for line in (files / "qrels.txt").read_text().splitlines() if line.strip()]
    (files / "run.txt").write_text("".join(f"{q} Q0 {d} {i + 1} {10 - i} doc-test\n"
                                           for i, (q, _, d, _) in enumerate(qrels)), encoding="utf-8")
    shutil.copytree(tiny, files / "runs/quickstart/model")  # what `make quickstart` trains
    (files / "contrib").symlink_to(ROOT / "contrib")
    return {"files": files, "tiny": str(tiny), "folders": {}, "ran": {}}


def _folder(workspace, doc: Path) -> Path:
    folders = workspace["folders"]
    if doc not in folders:
        folder = workspace["files"].parent / ("run-" + re.sub(r"\W", "_", str(doc.relative_to(ROOT))))
        shutil.copytree(workspace["files"], folder, symlinks=True)
        if not any(c.text.startswith("embedtune init") for c in doc_commands(doc)):
            _write_pipeline(folder)  # "your pipeline", for a document that does not write one
        folders[doc] = folder
    return folders[doc]


def _write_pipeline(folder: Path) -> None:
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        assert invoke(["init", "--type", "pairs", "--data", "pairs.jsonl", "-o", "pipeline.toml"]).exit_code == 0
    finally:
        os.chdir(cwd)


SMALL = ["-s", "training.max_steps=2", "-s", "training.batch_size=8", "-s", "data.limit=32",
         "-s", "data.eval_limit=16", "-s", "evaluation.batch_size=64"]


def _smaller(argv: list[str], tiny: str) -> list[str]:
    """The documented command with the tiny model and, for training, a few steps on a slice."""
    argv = [tiny if a == BUNDLED_MODEL else a for a in argv]
    command = next((a for a in argv[1:] if not a.startswith("-") and a in _COMMANDS), None)
    if command in ("run", "train"):
        argv += ["-s", f"model.name={tiny}", "-s", f"mining.model={tiny}", *SMALL]
    elif command in ("mine", "advise") and "--model" not in argv:
        argv += ["--model", tiny]
    return argv


_COMMANDS = {"run", "train", "eval", "mine", "advise", "data", "metrics", "init", "plugins", "components",
             "config", "new-pack"}


def _run(command: DocCommand, folder: Path, tiny: str) -> tuple[list[str], int, str, str]:
    pipeline = command.text.split(" | ")
    argv = _smaller(shlex.split(pipeline[0]), tiny)
    env = {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        if argv[0] == "embedtune":
            result = invoke(argv[1:], env=env)
            code, out, err = result.exit_code, result.stdout, result.stderr
        else:
            launcher = {"torchrun": [sys.executable, "-m", "torch.distributed.run"],
                        "python": [sys.executable]}.get(argv[0])
            assert launcher, f"{command.id}: no way to run {argv[0]}"
            proc = subprocess.run(launcher + argv[1:], capture_output=True, text=True, timeout=900,
                                  env={**os.environ, **env, "PYTHONPATH": os.pathsep.join(
                                      p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)})
            code, out, err = proc.returncode, proc.stdout, proc.stderr
    finally:
        os.chdir(cwd)
    for stage in pipeline[1:]:
        words = shlex.split(stage)
        assert words[0] == "grep", f"{command.id}: only '| grep WORD' is understood after a command"
        assert words[-1] in out, f"{command.id}: the output has no line with {words[-1]!r}:\n{out[-2000:]}"
    return argv, code, out, err


@pytest.mark.parametrize("command", COMMANDS, ids=[c.id for c in COMMANDS])
def test_documented_command_runs(command: DocCommand, workspace):
    reason = command.skip_reason()
    if reason:
        pytest.skip(reason)
    folder = _folder(workspace, command.doc)
    # the lines above it in its document first (they may write what it reads)
    for earlier in doc_commands(command.doc):
        if earlier.line >= command.line:
            break
        if earlier.skip_reason() is None and earlier.id not in workspace["ran"]:
            workspace["ran"][earlier.id] = _run(earlier, folder, workspace["tiny"])
    if command.id not in workspace["ran"]:
        workspace["ran"][command.id] = _run(command, folder, workspace["tiny"])
    argv, code, out, err = workspace["ran"][command.id]
    assert code == 0, f"{command.id}: `{command.text}` exited {code}\n{err[-3000:]}"
    assert "Traceback" not in err
    check = CHECKS.get(argv[1] if argv[0] == "embedtune" else "")
    if check:
        check(argv, out)


# -- what the output of some commands must say ------------------------------------------------------
def _check_eval(argv: list[str], out: str) -> None:
    if "--against" in argv and "--json" not in argv:
        # before is the baseline, after is --model, whatever their order on the line
        assert f"before: {argv[argv.index('--against') + 1]}\n" in out, out[-2000:]
        assert f"after:  {argv[argv.index('--model') + 1]}\n" in out, out[-2000:]


def _check_metrics(argv: list[str], out: str) -> None:
    names = [n for i, a in enumerate(argv) if a in ("-m", "--metrics") for n in argv[i + 1].split(",")]
    if "--json" in argv:
        assert sorted(json.loads(out)) == sorted(names)
    else:
        for name in names:
            assert name in out


CHECKS = {"eval": _check_eval, "metrics": _check_metrics}
