"""Bugs planted by hand, one at a time, in the code that decides the reported numbers: does a
test catch each? Each bug is a small edit of the kind a person makes (a comparison turned, an
argument dropped, two values swapped, a constant changed); the script applies it, runs the test
files that exercise that place, reverts it, and prints caught / missed.

    python benchmarks/planted_bugs.py            # every bug
    python benchmarks/planted_bugs.py 3 7        # some of them, by number

It works in a copy of the working tree under a temporary folder (``python -m pytest`` there
imports that copy's ``embedtune_core``), so the tree itself is never changed. Results:
benchmarks/RESULTS.md. Not part of ``make test``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mutation import _copy_repo  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

SIGNIFICANCE = ["tests/test_significance.py"]
FORGETTING = ["tests/test_forgetting.py"]
MINING = ["tests/test_mining.py", "tests/test_mining_guards.py"]
TRAINING = ["tests/test_training.py", "tests/test_training_settings.py", "tests/test_advise.py"]
DISTRIBUTED = ["tests/test_distributed_units.py"]
RANKING = ["tests/test_metrics.py"]
DATA = ["tests/test_readers.py", "tests/test_data_validation.py"]

#: (what the bug does, file, text replaced, replacement, test files)
BUGS = [
    ("bootstrap never resamples the last query", "embedtune_core/pipeline/significance.py",
     "diff[rng.integers(0, n, size=(size, n))]", "diff[rng.integers(0, n - 1, size=(size, n))]", SIGNIFICANCE),
    ("p-value without the +1 correction", "embedtune_core/pipeline/significance.py",
     '"p_value": (extreme + 1) / (resamples + 1)', '"p_value": extreme / resamples', SIGNIFICANCE),
    ("wins counted without the tie tolerance", "embedtune_core/pipeline/significance.py",
     '"wins": int(np.count_nonzero(diff > TIE))', '"wins": int(np.count_nonzero(diff > 0))', SIGNIFICANCE),
    ("rank before and after swapped in the changed queries", "embedtune_core/pipeline/significance.py",
     '"rank_before": before[q].get("rank"), "rank_after": after[q].get("rank")',
     '"rank_before": after[q].get("rank"), "rank_after": before[q].get("rank")', SIGNIFICANCE),
    ("retention tolerance against the best retention, not the base model's", "embedtune_core/pipeline/forgetting.py",
     "    base_retention = retention[0]\n",
     "    base_retention = max((r for r in retention if r is not None), default=None)\n", FORGETTING),
    ("the tuned model (a = 1) left out of the grid", "embedtune_core/pipeline/forgetting.py",
     "grid = sorted({0.0, 1.0, *alphas})", "grid = sorted({0.0, *alphas})", FORGETTING),
    ("integer tensors interpolated too", "embedtune_core/pipeline/forgetting.py",
     "if other is not None and value.is_floating_point() and other.shape == value.shape:",
     "if other is not None and other.shape == value.shape:", FORGETTING),
    ("after = the tuned model's evaluation, whatever a was chosen", "plugins/steps.py",
     'results.after, results.retention_after = found[record["chosen"]]',
     "results.after, results.retention_after = found[1.0]",
     FORGETTING),
    ("retention judged on the last metric, not the first", "plugins/steps.py",
     "retention_metric=next(iter(config.evaluation.metrics), None),",
     "retention_metric=next(reversed(config.evaluation.metrics), None),", FORGETTING),
    ("positive floor lowers strong positives instead of raising weak ones", "embedtune_core/mining/guards.py",
     "np.maximum(positive, floor)", "np.minimum(positive, floor)", MINING),
    ("window ignores range_min", "embedtune_core/mining/selection.py",
     "window = order[:, plan.guards.range_min : plan.range_max]", "window = order[:, : plan.range_max]", MINING),
    ("fill-ins may repeat the anchor's or a positive's text", "embedtune_core/mining/selection.py",
     "ok = ~data.is_known_positive(rows, draws) & ~data.is_same_text(rows, draws)",
     "ok = ~data.is_known_positive(rows, draws)", MINING),
    ("default window forgets the positives in the ranking", "embedtune_core/mining/selection.py",
     "return guards.range_min + num_negatives * (10 if scored else 1) + max_positives",
     "return guards.range_min + num_negatives * (10 if scored else 1)", MINING),
    ("queries short counted after the fill-ins", "embedtune_core/mining/output.py",
     "stats.queries_short = int((mined_counts < n).sum())", "stats.queries_short = int((counts < n).sum())", MINING),
    ("the highest positive score guards, not the lowest", "embedtune_core/mining/selection.py",
     "np.minimum.at(out, pq, pair_scores)", "np.maximum.at(out, pq, pair_scores)", MINING),
    ("BM25 with a model: relative_margin auto left off", "embedtune_core/mining/selection.py",
     'return "encoder", guards.with_relative_margin(True), "model cosine scores"',
     'return "encoder", guards.with_relative_margin(False), "model cosine scores"', MINING),
    ("save_steps prefers eval_steps over an explicit save_steps", "embedtune_core/training/arguments.py",
     "return config.save_steps or config.eval_steps", "return config.eval_steps or config.save_steps", TRAINING),
    ("automatic learning rate ignores the number of processes", "embedtune_core/training/advice.py",
     "accumulation=config.gradient_accumulation_steps, processes=world_size())",
     "accumulation=config.gradient_accumulation_steps, processes=1)", TRAINING),
    ("a second early-stopping callback next to the user's", "embedtune_core/training/trainer.py",
     "if patience and not any(isinstance(c, EarlyStoppingCallback) for c in extra):", "if patience:", TRAINING),
    ("in-batch negatives win over data whose order matters", "embedtune_core/training/arguments.py",
     '    if ordered:\n        return "sequential"\n    return "no_duplicates" if in_batch_negatives else "batch_sampler"',
     '    if in_batch_negatives:\n        return "no_duplicates"\n    return "sequential" if ordered else "batch_sampler"',
     TRAINING),
    ("shards give the extra rows to the last processes", "embedtune_core/distributed.py",
     "start = index * per + min(index, extra)\n    return start, start + per + (1 if index < extra else 0)",
     "start = index * per + max(0, index - (size - extra))\n    return start, start + per + (1 if index >= size - extra else 0)",
     DISTRIBUTED),
    ("gathered parts keep their padding", "embedtune_core/distributed.py",
     "np.concatenate([g[:n].cpu().numpy() for g, n in zip(gathered, sizes)], axis=0)",
     "np.concatenate([g.cpu().numpy() for g, n in zip(gathered, sizes)], axis=0)", DISTRIBUTED),
    ("mean over every process, counting those without a value", "embedtune_core/distributed.py",
     "return total / count if count else None", "return total / world_size() if count else None", DISTRIBUTED),
    ("ideal DCG discounts from rank 1", "embedtune_core/ranking/ranked.py",
     "gains = self._ideal_values[within] / np.log2(ranks[within] + 2.0)",
     "gains = self._ideal_values[within] / np.log2(ranks[within] + 1.0 + (ranks[within] == 0))", RANKING),
    ("held-out documents in the IR training (and mining) corpus", "embedtune_core/data/splits.py",
     "judged = {d for q in train_q for d in qrels[q]}", "judged = {d for q in queries for d in qrels[q]}", DATA),
]

ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1",
       "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}


def main() -> None:
    chosen = [int(a) for a in sys.argv[1:]] or list(range(1, len(BUGS) + 1))
    copy = Path(tempfile.mkdtemp(prefix="embedtune-planted-"))
    try:
        _copy_repo(copy)
        # the copy's plugins/ imported as embedtune_plugins (ahead of the installed one), so a bug
        # planted in a built-in plugin runs in the tests
        (copy / "_import").mkdir()
        (copy / "_import" / "embedtune_plugins").symlink_to(copy / "plugins", target_is_directory=True)
        ENV["PYTHONPATH"] = os.pathsep.join(filter(None, [str(copy / "_import"), os.environ.get("PYTHONPATH")]))
        files = sorted({f for number in chosen for f in BUGS[number - 1][4]})
        clean = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *files], cwd=copy,
                               capture_output=True, text=True, env={**os.environ, **ENV})
        if clean.returncode != 0:  # a failure then would not be the bug's doing
            raise SystemExit("the tests fail without any bug planted:\n" + clean.stdout[-3000:])
        caught = sum(_plant(copy, number) for number in chosen)
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    print(f"caught {caught} of {len(chosen)} ({caught / len(chosen):.0%})")


def _plant(copy: Path, number: int) -> bool:
    """Apply bug ``number`` in ``copy``, run its tests, revert; True when a test failed."""
    what, name, old, new, tests = BUGS[number - 1]
    path = copy / name
    original = path.read_text(encoding="utf-8")
    if original.count(old) != 1:
        raise SystemExit(f"bug {number}: the text to replace is not in {name} exactly once")
    started = time.perf_counter()
    try:
        path.write_text(original.replace(old, new), encoding="utf-8")
        run = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
                             cwd=copy, capture_output=True, text=True, env={**os.environ, **ENV})
    finally:
        path.write_text(original, encoding="utf-8")
    failed = run.returncode != 0
    first = next((line for line in run.stdout.splitlines() if line.startswith("FAILED")), "")
    print(f"{number:>2} {'caught' if failed else 'MISSED':<6} {time.perf_counter() - started:5.0f} s  {what}"
          + (f"\n          {first[:150]}" if first else ""), flush=True)
    return failed


if __name__ == "__main__":
    main()
