"""Mutation testing of the modules that decide the numbers a run reports.

For each group below, mutmut (``pip install -e ".[mutation]"``) mutates the group's modules one
small change at a time (a comparison turned, a constant changed, an argument dropped...) and runs
the group's fast test files against each mutant; a mutant no test fails on "survived". The script
prints the share of mutants killed per module, and the survivors with ``--survivors``.

    python benchmarks/mutation.py                      # every group (over an hour on 2 cores)
    python benchmarks/mutation.py significance mining  # some groups
    python benchmarks/mutation.py --list               # the groups, their modules and tests

Each group runs in a fresh copy of the repository under a temporary folder (mutmut writes its
``mutants/`` folder and reads its settings from ``setup.cfg`` there), so the working tree is never
touched. It is not part of ``make test``: the results, the command and the survivors judged
equivalent are in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: group -> (modules mutated, test files run against them, extra pytest arguments)
GROUPS: dict[str, tuple[list[str], list[str], list[str]]] = {
    "significance": (["embedtune_core/pipeline/significance.py"], ["tests/test_significance.py"],
                     ["-k", "not a_run_reports"]),
    "forgetting": (["embedtune_core/pipeline/forgetting.py"], ["tests/test_forgetting.py"],
                   ["-k", "not a_run and not saved_model and not refused and not come_from and not against_a_baseline"]),
    "mining": (["embedtune_core/mining/selection.py", "embedtune_core/mining/guards.py",
                "embedtune_core/mining/output.py"], ["tests/test_mining_guards.py"], []),
    "mining-pairs": (["embedtune_core/mining/pairs.py"], ["tests/test_mining_guards.py"], []),
    "training": (["embedtune_core/training/arguments.py", "embedtune_core/training/advice.py"],
                 ["tests/test_training_settings.py", "tests/test_advise.py"], ["-k", "not resum"]),
    "ranking": (["embedtune_core/ranking/metrics.py", "embedtune_core/ranking/ranked.py"],
                ["tests/test_metrics.py", "tests/test_trec_files.py"], []),
    "distributed": (["embedtune_core/distributed.py"], ["tests/test_distributed_units.py", "tests/test_distributed.py"],
                    ["-k", "not two_processes and not resolved_config and not shared_encoding"]),
}

ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1",
       "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}


def _copy_repo(target: Path) -> None:
    """The tracked and untracked (not ignored) files of the working tree, without .venv."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def _setup_cfg(modules: list[str], tests: list[str], extra: list[str]) -> str:
    lines = ["[mutmut]", "source_paths=embedtune_core", "only_mutate="]
    lines += [f"    {m}" for m in modules]
    lines += ["pytest_add_cli_args_test_selection="] + [f"    {t}" for t in tests]
    lines += ["pytest_add_cli_args=", "    -p", "    no:cacheprovider", "    -x", "    -q"]
    lines += [f"    {a}" for a in extra]
    lines += ["use_git_change_detection=false", ""]
    return "\n".join(lines)


def _results(folder: Path) -> dict[str, dict[str, str]]:
    """mutant name -> status, per module, from ``mutmut results --all true``."""
    out = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], cwd=folder,
                         capture_output=True, text=True, env={**os.environ, **ENV})
    statuses: dict[str, dict[str, str]] = {}
    for line in out.stdout.splitlines():
        match = re.match(r"\s*([\w.]+__mutmut_\d+): (.+)$", line)
        if match:
            name, status = match.groups()
            module = name.split(".x", 1)[0].split(".x\u01c1", 1)[0]
            statuses.setdefault(module, {})[name] = status.strip()
    return statuses


def _diff(folder: Path, mutant: str) -> str:
    """The changed lines of one mutant (``mutmut show``)."""
    out = subprocess.run([sys.executable, "-m", "mutmut", "show", mutant], cwd=folder, capture_output=True, text=True,
                         env={**os.environ, **ENV}).stdout
    return "\n".join(line for line in out.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---"))


def run_group(name: str, keep: bool, jobs: int, diffs: bool = False) -> dict[str, dict[str, str]]:
    modules, tests, extra = GROUPS[name]
    folder = Path(tempfile.mkdtemp(prefix=f"embedtune-mutation-{name}-"))
    try:
        _copy_repo(folder)
        (folder / "setup.cfg").write_text(_setup_cfg(modules, tests, extra), encoding="utf-8")
        started = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs)], cwd=folder,
                             capture_output=True, text=True, env={**os.environ, **ENV})
        if run.returncode != 0:
            print(run.stdout[-3000:], run.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"mutmut failed on group {name}")
        statuses = _results(folder)
        print(f"[{name}] {time.perf_counter() - started:.0f} s", file=sys.stderr)
        if diffs:
            for module in statuses.values():
                for mutant, status in sorted(module.items()):
                    if status != "killed":
                        print(f"--- {status}: {mutant}\n{_diff(folder, mutant)}")
        return statuses
    finally:
        if keep:
            print(f"[{name}] kept {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="*", help="groups to run (default: all)")
    parser.add_argument("--list", action="store_true", help="print the groups and exit")
    parser.add_argument("--survivors", action="store_true", help="list every mutant that survived")
    parser.add_argument("--diffs", action="store_true", help="print the change each surviving mutant makes")
    parser.add_argument("--keep", action="store_true", help="keep each group's folder (mutmut show NAME there)")
    parser.add_argument("--jobs", type=int, default=1, help="mutants tested at once (default 1)")
    parser.add_argument("--json", type=Path, help="also write the statuses to this file")
    args = parser.parse_args()
    if args.list:
        for name, (modules, tests, extra) in GROUPS.items():
            print(f"{name}: {', '.join(modules)}  <-  {' '.join(tests + extra)}")
        return
    unknown = [g for g in args.groups if g not in GROUPS]
    if unknown:
        raise SystemExit(f"unknown group {unknown[0]}; groups: {', '.join(GROUPS)}")
    everything: dict[str, dict[str, str]] = {}
    for group in args.groups or list(GROUPS):
        everything.update(run_group(group, args.keep, args.jobs, args.diffs))
    # score: killed / (killed + survived + not run by any test); timeouts are left out of it
    print(f"{'module':<42} {'mutants':>8} {'killed':>7} {'survived':>9} {'no tests':>9} {'other':>6} {'score':>7}")
    for module, statuses in sorted(everything.items()):
        values = list(statuses.values())
        killed = sum(v == "killed" for v in values)
        survived = sum(v == "survived" for v in values)
        untested = sum(v == "no tests" for v in values)
        other = len(values) - killed - survived - untested
        scored = killed + survived + untested
        score = f"{killed / scored:.1%}" if scored else "-"
        print(f"{module:<42} {len(values):>8} {killed:>7} {survived:>9} {untested:>9} {other:>6} {score:>7}")
    if args.survivors:
        for module, statuses in sorted(everything.items()):
            for name, status in sorted(statuses.items()):
                if status != "killed":
                    print(f"{status:>10}  {name}")
    if args.json:
        args.json.write_text(json.dumps(everything, indent=1, sort_keys=True), encoding="utf-8")


if __name__ == "__main__":
    main()
