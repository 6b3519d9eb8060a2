"""embedtune's starter pipeline against the plain sentence-transformers script, per data set.

For each set and seed it runs

(a) the starter ``embedtune init --type ir`` writes, with only ``data.source`` filled in and
    ``training.seed`` set, run by ``embedtune run`` (the run folder goes under ``--work``), and
(b) the plain script, ``benchmarks/plain_st.py --data builtin:NAME --seed N --lr LR`` (MiniLM, MNRL,
    batch 32, warmup 10%, one epoch, no hard negatives) at every learning rate of ``--plain-lrs``
    (2e-5, 5e-5, 1e-4, 2e-4) and at the rate the starter's run used,

both trained on the same pairs and scored on the same held-out queries and corpus with the same
NDCG@10. The plain script is compared at its best rate on each set (the highest mean over the
seeds), so the starter's margin is what the pipeline adds, not a learning rate a user could have
typed. Each tuned model is also scored on the retention set (``--retention``, default
``builtin:wordnet-general``: everyday English words -> WordNet glosses), to show what the domain
training cost on general language. It prints a markdown table per set (base NDCG@10, the plain script at
its best rate and the starter as mean ± standard deviation and min-max over the seeds, relative
difference of the means, the plain script's mean at every rate, retention) and writes
everything, including each run's mining statistics and wall time, as JSON to ``--out``.

    python benchmarks/domain_bench.py                                   # every set, seeds 1,2,3
    python benchmarks/domain_bench.py --sets wordnet-plants --seeds 1   # one set, one seed
    python benchmarks/domain_bench.py --reuse                           # keep finished runs, do the rest
    python benchmarks/domain_bench.py --smoke --work /tmp/smoke         # 2 training steps per run
    python benchmarks/domain_bench.py --variant neg3 --set mining.num_negatives=3 --no-plain
                                                # the starter with a change (a screening run)

Each run is a separate process, one at a time. Set ``OMP_NUM_THREADS=1`` on a shared CPU.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SETS = ("hpo-lay", "construction-faq", "wordnet-plants", "wordnet-animals")
SEEDS = (1, 2, 3)
METRIC = "ndcg@10"
TARGET = 0.08  # the goal: embedtune's mean at least 8% above the plain script's at its best rate
#: the plain script's learning rates (the starter's own rate is added when it is not one of them)
LEARNING_RATES = (2e-5, 5e-5, 1e-4, 2e-4)
RETENTION = "builtin:wordnet-general"


# -- the starter config -------------------------------------------------------------------------
def set_key(toml_text: str, section: str, key: str, value: str) -> str:
    """``toml_text`` with ``key = value`` in ``[section]``: the key's line (commented out or not)
    is replaced, or the line is added at the end of the section (a new section at the end)."""
    lines = toml_text.splitlines()
    pattern = re.compile(rf"^#?\s*{re.escape(key)}\s*=")
    current, start, end = "", None, None
    for i, line in enumerate(lines):
        header = re.match(r"^\[([^\]]+)\]\s*$", line.strip())
        if header:
            if current == section and end is None:
                end = i
            current = header.group(1).strip()
            start = i if current == section else start
        elif current == section and pattern.match(line):
            lines[i] = f"{key} = {value}"
            return "\n".join(lines) + "\n"
    if start is None:
        lines += ["", f"[{section}]"]
    end = len(lines) if end is None or start is None else end
    while end > 0 and not lines[end - 1].strip():
        end -= 1
    lines.insert(end, f"{key} = {value}")
    return "\n".join(lines) + "\n"


def starter_config(path: Path, source: str, seed: int, dataset_type: str | None = None) -> Path:
    """Write ``embedtune init --type ir``'s starter to ``path`` and fill in ``data.source`` (and
    ``data.type``) and ``training.seed``; nothing else is changed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    run([embedtune(), "init", "--type", "ir", "-o", str(path), "--force"], log=None)
    text = path.read_text(encoding="utf-8")
    text = set_key(text, "data", "source", json.dumps(source))
    if dataset_type:
        text = set_key(text, "data", "type", json.dumps(dataset_type))
    text = set_key(text, "training", "seed", str(seed))
    path.write_text(text, encoding="utf-8")
    import tomllib

    parsed = tomllib.loads(text)
    assert parsed["data"]["source"] == source and parsed["training"]["seed"] == seed, path
    return path


# -- running ------------------------------------------------------------------------------------
def embedtune() -> str:
    local = Path(sys.executable).parent / "embedtune"
    return str(local) if local.exists() else "embedtune"


def run(command: list[str], log: Path | None, stdout: Path | None = None) -> float:
    """Run ``command`` with its output in ``log`` (its standard output in ``stdout`` when given);
    its wall time in seconds. A failure stops the bench."""
    start = time.perf_counter()
    if log is None:
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        return round(time.perf_counter() - start, 1)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w", encoding="utf-8") as handle:
        handle.write("$ " + shlex.join(command) + "\n")
        handle.flush()
        if stdout is None:
            done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT)
        else:
            with open(stdout, "w", encoding="utf-8") as out:
                done = subprocess.run(command, stdout=out, stderr=handle)
    if done.returncode:
        raise SystemExit(f"failed (exit {done.returncode}): {shlex.join(command)}; see {log}")
    return round(time.perf_counter() - start, 1)


def lr_tag(lr: float) -> str:
    """``2e-05`` -> ``2e-5``, ``0.0002`` -> ``2e-4``: a learning rate in a file name."""
    mantissa, exponent = f"{lr:e}".split("e")
    return f"{float(mantissa):g}e{int(exponent)}"


def plain_run(name: str, seed: int, lr: float, work: Path, reuse: bool, smoke: bool, retention: str | None) -> dict:
    out = work / name / f"plain-lr{lr_tag(lr)}-seed{seed}.json"
    if reuse and out.exists():
        return json.loads(out.read_text(encoding="utf-8"))
    command = [sys.executable, str(HERE / "plain_st.py"), "--data", f"builtin:{name}", "--seed", str(seed),
               "--lr", repr(lr), "--out", str(out)] + (["--retention", retention] if retention else []) + \
              (["--max-steps", "2"] if smoke else [])
    wall = run(command, work / name / f"plain-lr{lr_tag(lr)}-seed{seed}.log")
    result = json.loads(out.read_text(encoding="utf-8"))
    result["wall_seconds"] = wall
    result["command"] = shlex.join(command)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def embedtune_run(name: str, seed: int, work: Path, reuse: bool, smoke: bool, retention: str | None,
                  variant: str | None = None, overrides: tuple[str, ...] = ()) -> dict:
    """The starter's run on ``name`` (with ``-s`` ``overrides`` under the name ``variant``: a
    screening run of a change to the starter)."""
    folder = work / name
    config = folder / f"starter-seed{seed}.toml"
    label = f"embedtune-{variant}-seed{seed}" if variant else f"embedtune-seed{seed}"
    run_dir = folder / label
    summary = folder / f"{label}.json"
    if reuse and summary.exists():
        return json.loads(summary.read_text(encoding="utf-8"))
    command = [embedtune(), "run", str(config), "-s", f"output_dir={folder}", "-s", f"name={label}",
               "--overwrite"] + [a for o in overrides for a in ("-s", o)] + (["-s", "training.max_steps=2"] if smoke else [])
    if reuse and config.exists() and _finished(run_dir / "metrics.json"):
        wall = None  # a run that finished without this script (e.g. the bench was stopped after it)
    else:
        starter_config(config, f"builtin:{name}", seed)
        wall = run(command, folder / f"{label}.log")
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    result = {"data": f"builtin:{name}", "seed": seed, "config": str(config), "run_dir": str(run_dir),
              "variant": variant, "overrides": list(overrides), "learning_rate": learning_rate_of(run_dir),
              "command": shlex.join(command), "before": metrics["before"], "after": metrics["after"],
              "dims": metrics.get("dims"), "training": metrics["training"], "mining": metrics["mining"],
              "interpolation": metrics.get("interpolation"), "wall_seconds": wall}
    same = metrics.get("retention") or {}
    if retention and same.get("data") == retention and same.get("after"):
        result["retention"] = {retention: same["after"]}  # the run evaluated it already
    elif retention:
        scored = folder / f"{label}-retention.json"
        command = [embedtune(), "eval", "--model", str(run_dir / "model"), "--data", retention, "--json"]
        run(command, folder / f"{label}-retention.log", stdout=scored)
        result["retention"] = {retention: json.loads(scored.read_text(encoding="utf-8"))["results"]["full"]}
    summary.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def learning_rate_of(run_dir: Path) -> float | None:
    """The learning rate a run trained with (its resolved config.toml: ``auto`` decided)."""
    import tomllib

    try:
        value = tomllib.loads((run_dir / "config.toml").read_text(encoding="utf-8"))["training"]["learning_rate"]
    except (OSError, ValueError, KeyError):
        return None
    return float(value) if isinstance(value, (int, float)) else None


def _finished(metrics_path: Path) -> bool:
    """Whether ``metrics_path`` is the metrics.json of a finished run."""
    try:
        return bool(json.loads(metrics_path.read_text(encoding="utf-8")).get("finished"))
    except (OSError, ValueError):
        return False


def base_score(source: str, work: Path, reuse: bool) -> float:
    """The base model's NDCG@10 on ``source``'s held-out part (``embedtune eval``)."""
    scored = work / "retention-base.json"
    if not (reuse and scored.exists()):
        run([embedtune(), "eval", "--model", "sentence-transformers/all-MiniLM-L6-v2", "--data", source, "--json"],
            work / "retention-base.log", stdout=scored)
    return json.loads(scored.read_text(encoding="utf-8"))["results"]["full"][METRIC]


# -- the table ----------------------------------------------------------------------------------
def spread(values: list[float]) -> dict:
    return {"values": values, "mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values)}


def best_rate(plain: dict[float, list[dict]]) -> float:
    """The plain script's best learning rate: the highest mean over the seeds."""
    return max(plain, key=lambda lr: statistics.fmean(r["after"][METRIC] for r in plain[lr]))


def summarise(name: str, plain: dict[float, list[dict]], ours: list[dict]) -> dict:
    """One set's row: the starter's runs against the plain script's at its best rate
    (``plain`` maps each learning rate to its runs, one per seed)."""
    bases = sorted({round(r["before"][METRIC], 6) for r in ours if r.get("before")})
    best = best_rate(plain)
    p = spread([r["after"][METRIC] for r in plain[best]])
    e = spread([r["after"][METRIC] for r in ours])
    relative = e["mean"] / p["mean"] - 1.0
    row = {"set": name, "base": bases[0] if len(bases) == 1 else bases, "best_lr": best, "plain": p, "embedtune": e,
           "plain_by_lr": {lr_tag(lr): spread([r["after"][METRIC] for r in runs]) for lr, runs in sorted(plain.items())},
           "relative": relative, "target_met": relative >= TARGET,
           "mining": [r["mining"] for r in ours], "runs": {"plain": plain[best], "embedtune": ours}}
    runs = plain[best] + ours
    sources = [s for s in (plain[best][0].get("retention") or {}) if all(s in (r.get("retention") or {}) for r in runs)]
    if sources:
        source = sources[0]
        row["retention"] = {"source": source,
                            "plain": spread([r["retention"][source][METRIC] for r in plain[best]]),
                            "embedtune": spread([r["retention"][source][METRIC] for r in ours])}
    return row


def _cell(s: dict) -> str:
    return f"{s['mean']:.4f} ± {s['std']:.4f} ({s['min']:.4f}–{s['max']:.4f})"


def markdown(rows: list[dict], seeds: list[int], retention_base: float | None = None) -> str:
    out = [f"| set | base {METRIC} | plain script at its best rate | embedtune starter | starter vs best plain | "
           f"≥ +{TARGET:.0%} |", "|---|---|---|---|---|---|"]
    for r in rows:
        base = f"{r['base']:.4f}" if isinstance(r["base"], float) else "/".join(f"{b:.4f}" for b in r["base"])
        out.append(f"| {r['set']} | {base} | {lr_tag(r['best_lr'])}: {_cell(r['plain'])} | {_cell(r['embedtune'])} | "
                   f"{r['relative']:+.1%} | {'yes' if r['target_met'] else 'no'} |")
    out += ["", f"mean ± standard deviation (min–max) of {METRIC} over seeds {', '.join(map(str, seeds))}."]
    rates = sorted({tag for r in rows for tag in r["plain_by_lr"]}, key=float)
    out += ["", f"The plain script's {METRIC} at each learning rate (mean ± sd over the seeds; best in bold):", "",
            "| set | " + " | ".join(rates) + " |", "|---|" + "---|" * len(rates)]
    for r in rows:
        cells = []
        for tag in rates:
            s = r["plain_by_lr"].get(tag)
            text = f"{s['mean']:.4f} ± {s['std']:.4f}" if s else ""
            cells.append(f"**{text}**" if s and tag == lr_tag(r["best_lr"]) else text)
        out.append(f"| {r['set']} | " + " | ".join(cells) + " |")
    kept = [r for r in rows if r.get("retention")]
    if kept:
        source = kept[0]["retention"]["source"]
        base = f"{retention_base:.4f}" if retention_base is not None else "?"
        out += ["", f"Retention: {METRIC} on {source}'s held-out part (base model {base}) after training on each set:", "",
                "| trained on | plain script at its best rate | embedtune starter |", "|---|---|---|"]
        for r in kept:
            out.append(f"| {r['set']} | {_cell(r['retention']['plain'])} | {_cell(r['retention']['embedtune'])} |")
    out += ["",
            f"| set | seed | plain {METRIC} (best rate) | embedtune {METRIC} | plain wall s | embedtune wall s | "
            f"embedtune training s | steps | negatives written | dropped as false negatives |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        for p, e in zip(r["runs"]["plain"], r["runs"]["embedtune"]):
            mining, training = e.get("mining") or {}, e.get("training") or {}
            out.append(f"| {r['set']} | {e['seed']} | {p['after'][METRIC]:.4f} | {e['after'][METRIC]:.4f} | "
                       f"{p.get('wall_seconds') or ''} | {e.get('wall_seconds') or ''} | {training.get('seconds', '')} | "
                       f"{training.get('steps', '')} | {mining.get('negatives_written', '')} | "
                       f"{mining.get('dropped_false_negatives', '')} |")
    return "\n".join(out)


def screening(rows: list[tuple[str, str, list[dict]]]) -> str:
    """Screening runs (no plain script): set, variant, mean ± sd of the starter's runs."""
    out = [f"| set | variant | {METRIC} | seeds | training s |", "|---|---|---|---|---|"]
    for name, variant, ours in rows:
        seconds = [r["training"]["seconds"] for r in ours if (r.get("training") or {}).get("seconds")]
        out.append(f"| {name} | {variant} | {_cell(spread([r['after'][METRIC] for r in ours]))} | "
                   f"{','.join(str(r['seed']) for r in ours)} | {f'{statistics.fmean(seconds):.0f}' if seconds else ''} |")
    return "\n".join(out)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    return f"{cpu}, {os.cpu_count()} cores, OMP_NUM_THREADS={threads}, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(SETS), help="comma-separated bundled IR sets")
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)), help="comma-separated seeds")
    parser.add_argument("--plain-lrs", default=",".join(lr_tag(lr) for lr in LEARNING_RATES),
                        help="comma-separated learning rates of the plain script (the starter's own rate is added)")
    parser.add_argument("--work", type=Path, default=Path("runs/domain-bench"), help="folder for configs, runs and logs")
    parser.add_argument("--out", type=Path, default=None, help="JSON results (default: WORK/results.json)")
    parser.add_argument("--reuse", action="store_true", help="reuse finished runs found in --work")
    parser.add_argument("--retention", default=RETENTION,
                        help=f"also score every tuned model on this set's held-out part ('' for none; default {RETENTION})")
    parser.add_argument("--smoke", action="store_true", help="2 training steps per run: checks the harness, not quality")
    parser.add_argument("--variant", default=None, help="name of a change to the starter (with --set), for screening")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="an -s override of the starter for --variant (repeatable)")
    parser.add_argument("--no-plain", action="store_true", help="run the starter only (screening)")
    args = parser.parse_args(argv)
    if args.overrides and not args.variant:
        parser.error("--set needs --variant NAME (the runs are named after it)")
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    rates = [float(r) for r in args.plain_lrs.split(",") if r.strip()]
    out = args.out or args.work / "results.json"
    started = dt.datetime.now()
    retention = args.retention or None
    retention_base = base_score(retention, args.work, args.reuse) if retention and not args.no_plain else None
    rows, screened = [], []
    for name in sets:
        plain: dict[float, list[dict]] = {}
        ours = []
        for seed in seeds:
            print(f"[{dt.datetime.now():%H:%M}] {name} seed {seed}: embedtune starter {args.variant or ''}",
                  file=sys.stderr, flush=True)
            ours.append(embedtune_run(name, seed, args.work, args.reuse, args.smoke, retention, args.variant,
                                      tuple(args.overrides)))
            if args.no_plain:
                continue
            own = ours[-1].get("learning_rate")
            for lr in rates + ([own] if own and not any(math.isclose(own, r) for r in rates) else []):
                print(f"[{dt.datetime.now():%H:%M}] {name} seed {seed}: plain script, lr {lr_tag(lr)}",
                      file=sys.stderr, flush=True)
                plain.setdefault(lr, []).append(plain_run(name, seed, lr, args.work, args.reuse, args.smoke, retention))
        if args.no_plain:
            screened.append((name, args.variant or "starter", ours))
        else:
            plain = {lr: runs for lr, runs in plain.items() if len(runs) == len(seeds)}
            rows.append(summarise(name, plain, ours))
        payload = {"started": f"{started:%Y-%m-%d %H:%M}", "finished": f"{dt.datetime.now():%Y-%m-%d %H:%M}",
                   "machine": machine(), "metric": METRIC, "seeds": seeds, "smoke": args.smoke,
                   "variant": args.variant, "overrides": args.overrides,
                   "retention": {"source": retention, "base": retention_base},
                   "command": shlex.join([sys.executable, *sys.argv]), "sets": rows,
                   "screening": [{"set": n, "variant": v, "runs": r} for n, v, r in screened]}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(screening(screened) if args.no_plain else markdown(rows, seeds, retention_base))
    return 0


if __name__ == "__main__":
    sys.exit(main())
