"""Speed of embedtune's metrics against pytrec_eval, ranx and ir-measures, in one process.

A run of Q queries x D retrieved documents (default 10,000 x 100) with graded qrels; all six
metrics (ndcg, mrr, map, recall, precision, f1) at K = 1, 10, 100, per query, starting from the
same Python dicts. Each tool's per-query values are checked against embedtune's (1e-6) before
any time is reported. Times are the best of --repeat runs; ranx is warmed up first (numba
compiles on its first call).

What each tool is timed doing:
- embedtune: RankedRun.from_run + the 18 metric computations (registry components).
- pytrec_eval: one evaluator for ndcg_cut, map_cut, P and recall at 1,10,100 and recip_rank
  (= mrr@100 here, every ranking being 100 long). trec_eval has no recip_rank cut-off, so the
  "+ mrr@1,10" line adds what pytrec_eval needs for those: runs truncated to the top 1 and 10 in
  trec_eval's order and evaluated again. F1 comes from P and recall (not timed: negligible).
- ranx: Qrels + Run construction and evaluate() for all 18.
- ir-measures: iter_calc for nDCG, RR, AP, R and P at 1,10,100 (pytrec_eval and its msmarco
  provider underneath); F1 from P and R.

With ``--files`` it compares whole processes instead: the qrels and run are written as TREC
files and ``embedtune metrics QRELS RUN`` is timed against a Python process that reads the same
files with pytrec_eval's ``parse_qrel``/``parse_run`` and evaluates them (ndcg@10, map@100,
recall@10, P@10 and recip_rank, which is mrr@depth); both print their means, which are checked
equal (1e-6). Wall time (best of --repeat, the two run alternately) and peak memory (the child's
``ru_maxrss``) of each.

    python benchmarks/metrics_bench.py            # 10,000 x 100
    python benchmarks/metrics_bench.py --quick    # 1,000 x 100
    python benchmarks/metrics_bench.py --files    # whole processes on TREC files
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

from _timing import best_of  # benchmarks/_timing.py, beside this script

KS = (1, 10, 100)
NAMES = ("ndcg", "mrr", "map", "recall", "precision", "f1")


def make_data(queries: int, depth: int, seed: int):
    """A run with distinct scores (so every tool's tie-breaking agrees) and graded qrels:
    judged documents inside and outside the run, grades 0-3, some queries with nothing relevant."""
    rng = np.random.default_rng(seed)
    qrels, run = {}, {}
    for i in range(queries):
        q = f"q{i}"
        docs = [f"doc{j}" for j in rng.choice(1_000_000, depth, replace=False)]
        scores = rng.normal(size=depth)
        run[q] = dict(zip(docs, scores.tolist()))
        judged = rng.choice(depth, int(rng.integers(1, 11)), replace=False)
        qrels[q] = {docs[j]: int(rng.integers(0, 4)) for j in judged}
        if rng.random() < 0.05:
            qrels[q] = {d: 0 for d in qrels[q]}
        for extra in range(int(rng.integers(0, 4))):
            qrels[q][f"unretrieved{i}_{extra}"] = int(rng.integers(1, 4))
    return qrels, run



# -- the tools --------------------------------------------------------------------------------
def run_embedtune(registry, qrels, run):
    from embedtune_core.ranking.ranked import RankedRun

    metrics = {name: registry.create("metric", name) for name in NAMES}

    def go():
        ranked = RankedRun.from_run(qrels, run)
        values = {f"{n}@{k}": metrics[n].compute(ranked, k) for n in NAMES for k in KS}
        return ranked.query_ids, values

    return go


def f1_of(p, r):
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def run_pytrec(qrels, run, with_mrr_cuts: bool):
    import pytrec_eval

    cuts = ",".join(map(str, KS))
    measures = {f"ndcg_cut.{cuts}", f"map_cut.{cuts}", f"P.{cuts}", f"recall.{cuts}", "recip_rank"}
    depth = max(len(r) for r in run.values())

    def go():
        evaluator = pytrec_eval.RelevanceEvaluator(qrels, measures)
        result = evaluator.evaluate(run)
        rr = {}
        if with_mrr_cuts:
            rr_eval = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"})
            for k in KS:
                if k >= depth:
                    rr[k] = {q: v["recip_rank"] for q, v in result.items()}
                    continue
                cut = {
                    q: dict(sorted(r.items(), key=lambda item: (item[1], item[0]), reverse=True)[:k])
                    for q, r in run.items()
                }
                rr[k] = {q: v["recip_rank"] for q, v in rr_eval.evaluate(cut).items()}
        return result, rr

    def values(output, qids):
        result, rr = output
        out = {}
        for k in KS:
            out[f"ndcg@{k}"] = [result[q][f"ndcg_cut_{k}"] for q in qids]
            out[f"map@{k}"] = [result[q][f"map_cut_{k}"] for q in qids]
            out[f"precision@{k}"] = [result[q][f"P_{k}"] for q in qids]
            out[f"recall@{k}"] = [result[q][f"recall_{k}"] for q in qids]
            out[f"f1@{k}"] = [f1_of(result[q][f"P_{k}"], result[q][f"recall_{k}"]) for q in qids]
            if k in rr:
                out[f"mrr@{k}"] = [rr[k][q] for q in qids]
            elif k >= depth:
                out[f"mrr@{k}"] = [result[q]["recip_rank"] for q in qids]
        return out

    return go, values


def run_ranx(qrels, run):
    import ranx

    metrics = [f"{n}@{k}" for n in NAMES for k in KS]
    small_q = dict(list(qrels.items())[:20])
    small_r = {q: run[q] for q in small_q}
    ranx.evaluate(ranx.Qrels(small_q), ranx.Run(small_r), metrics)  # numba compiles here

    def go():
        ranx_run = ranx.Run(run)
        ranx.evaluate(ranx.Qrels(qrels), ranx_run, metrics)
        return ranx_run.scores

    def values(scores, qids):
        return {m: [float(scores[m][q]) for q in qids] for m in metrics}

    return go, values


def run_ir_measures(qrels, run):
    import ir_measures
    from ir_measures import AP, P, R, RR, nDCG

    measures = [m @ k for m in (nDCG, RR, AP, R, P) for k in KS]
    names = {"nDCG": "ndcg", "RR": "mrr", "AP": "map", "R": "recall", "P": "precision"}

    def go():
        return list(ir_measures.iter_calc(measures, qrels, run))

    def values(rows, qids):
        table = {}
        for row in rows:
            table.setdefault(f"{names[row.measure.NAME]}@{row.measure['cutoff']}", {})[row.query_id] = row.value
        out = {m: [v.get(q, 0.0) for q in qids] for m, v in table.items()}
        for k in KS:
            out[f"f1@{k}"] = [f1_of(p, r) for p, r in zip(out[f"precision@{k}"], out[f"recall@{k}"])]
        return out

    return go, values


def check(tool: str, ours: dict, theirs: dict) -> int:
    checked = 0
    for metric, values in theirs.items():
        diff = np.max(np.abs(np.asarray(values, dtype=np.float64) - ours[metric]))
        if not diff <= 1e-6:
            raise SystemExit(f"{tool}: {metric} differs from embedtune by {diff:.3g}")
        checked += 1
    return checked


PYTREC_PROCESS = """
import json, sys, pytrec_eval
with open(sys.argv[1]) as f:
    qrels = pytrec_eval.parse_qrel(f)
with open(sys.argv[2]) as f:
    run = pytrec_eval.parse_run(f)
measures = {"ndcg_cut.10", "map_cut.100", "recall.10", "P.10", "recip_rank"}
result = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
names = {"ndcg_cut_10": "ndcg@10", "map_cut_100": "map@100", "recall_10": "recall@10", "P_10": "precision@10",
         "recip_rank": "mrr@%s" % sys.argv[3]}
print(json.dumps({ours: sum(v[m] for v in result.values()) / len(result) for m, ours in names.items()}))
"""


def run_child(command: list[str], env: dict | None = None) -> tuple[float, float, float, str]:
    """Wall seconds, CPU seconds (user + system), the child's own peak RSS (MB, from wait4) and
    its output."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    out, err = child.stdout.read().decode(), child.stderr.read().decode()
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{' '.join(command)} failed:\n{err}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out


def files_main(args) -> None:
    """Whole processes: ``embedtune metrics`` against pytrec_eval reading the same files. A third
    process runs ``embedtune metrics`` with only the built-in metrics plugin loaded
    (``EMBEDTUNE_LOAD_PLUGINS=metrics``): the difference is what loading every plugin costs."""
    folder = tempfile.mkdtemp(prefix="metrics-bench-")
    qrels_path, run_path = os.path.join(folder, "qrels.txt"), os.path.join(folder, "run.txt")
    # written by a child, so that this process stays small (a child's peak memory counts what it
    # shares with its parent until it starts its own program)
    subprocess.run([sys.executable, __file__, "--write-files", folder, "--queries", str(args.queries),
                    "--depth", str(args.depth), "--seed", str(args.seed)], check=True)
    specs = f"ndcg@10,map@100,recall@10,precision@10,mrr@{args.depth}"
    embedtune = [os.path.join(os.path.dirname(sys.executable), "embedtune"), "metrics", qrels_path, run_path,
                 "-m", specs, "--json"]
    pytrec = [sys.executable, "-c", PYTREC_PROCESS, qrels_path, run_path, str(args.depth)]
    print(f"{args.queries} queries x {args.depth} documents; run file {os.path.getsize(run_path) / 1e6:.1f} MB; "
          f"best of {args.repeat}, alternating; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    processes = {
        "embedtune metrics": (embedtune, None),
        "  metrics plugin only": (embedtune, dict(os.environ, EMBEDTUNE_LOAD_PLUGINS="metrics")),
        "pytrec_eval process": (pytrec, None),
    }
    wall, cpu = {name: [] for name in processes}, {name: [] for name in processes}
    memory, values = {}, {}
    for _ in range(args.repeat):
        for name, (command, env) in processes.items():
            seconds, cpu_seconds, peak, out = run_child(command, env)
            wall[name].append(seconds)
            cpu[name].append(cpu_seconds)
            memory[name] = peak
            values[name] = json.loads(out)
    theirs = values["pytrec_eval process"]
    for name in ("embedtune metrics", "  metrics plugin only"):
        for spec, value in theirs.items():
            if not abs(values[name][spec] - value) <= 1e-6:
                raise SystemExit(f"{spec}: embedtune {values[name][spec]} != pytrec_eval {value}")
    print(f"{'process':<24}{'wall s':>8}{'CPU s':>8}{'peak MB':>9}{'wall ratio':>12}{'CPU ratio':>11}")
    for name in processes:
        print(f"{name:<24}{min(wall[name]):8.3f}{min(cpu[name]):8.3f}{memory[name]:9.0f}"
              f"{min(wall['pytrec_eval process']) / min(wall[name]):11.2f}x"
              f"{min(cpu['pytrec_eval process']) / min(cpu[name]):10.2f}x")
    print(f"{len(theirs)}/{len(theirs)} means equal; ratio = pytrec_eval process / embedtune process (best of each)")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="1,000 queries, one repeat")
    parser.add_argument("--skip", action="append", default=[], choices=["pytrec_eval", "ranx", "ir_measures"])
    parser.add_argument("--files", action="store_true", help="whole processes on TREC files (see above)")
    parser.add_argument("--write-files", metavar="FOLDER", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.write_files:
        from embedtune_core.ranking.trec import format_qrels, format_run

        qrels, run = make_data(args.queries, args.depth, args.seed)
        for name, text in (("qrels.txt", format_qrels(qrels)), ("run.txt", format_run(run))):
            with open(os.path.join(args.write_files, name), "w", encoding="utf-8") as handle:
                handle.write(text)
        return None
    if args.quick:
        args.queries, args.repeat = 1000, 1
    warnings.filterwarnings("ignore")
    if args.files:
        return files_main(args)

    from embedtune_core.plugins.registry import load_registry

    _, registry = load_registry()
    qrels, run = make_data(args.queries, args.depth, args.seed)
    print(f"{args.queries} queries x {args.depth} documents, {sum(map(len, qrels.values()))} judgements; "
          f"6 metrics x K={','.join(map(str, KS))}; best of {args.repeat}")
    print(f"python {platform.python_version()}, numpy {np.__version__}, "
          f"NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS', 'default')}, {os.cpu_count()} cpus")

    ours_time, (qids, ours) = best_of(args.repeat, run_embedtune(registry, qrels, run))
    rows = [("embedtune", ours_time, 18, "")]

    tools = []
    if "pytrec_eval" not in args.skip:
        tools.append(("pytrec_eval (ndcg/map/P/recall@K, recip_rank)", *run_pytrec(qrels, run, False)))
        tools.append(("pytrec_eval + mrr@1,10 (truncated runs)", *run_pytrec(qrels, run, True)))
    if "ranx" not in args.skip:
        tools.append(("ranx", *run_ranx(qrels, run)))
    if "ir_measures" not in args.skip:
        tools.append(("ir-measures", *run_ir_measures(qrels, run)))
    for name, go, values in tools:
        seconds, output = best_of(args.repeat, go)
        checked = check(name, ours, values(output, qids))
        rows.append((name, seconds, checked, f"{seconds / ours_time:.1f}x"))

    width = max(len(r[0]) for r in rows)
    print(f"{'tool'.ljust(width)}  {'seconds':>8}  {'values equal':>12}  {'vs embedtune':>12}")
    for name, seconds, checked, ratio in rows:
        print(f"{name.ljust(width)}  {seconds:8.3f}  {f'{checked}/18':>12}  {ratio:>12}")
    others = [r for r in rows[1:]]
    if others:
        fastest = min(others, key=lambda r: r[1])
        print(f"embedtune is {fastest[1] / ours_time:.1f}x faster than the fastest other ({fastest[0]})")


if __name__ == "__main__":
    sys.exit(main())
