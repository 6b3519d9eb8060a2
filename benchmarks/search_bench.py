"""Dense top-k search at scale: exact blocked top-k against faiss IVF and HNSW, with the recall
each costs, on the embeddings the dense miner searches (one thread).

Data: the synthetic pairs of ``scale_bench.py`` (N anchors, N positives), encoded with one of
two tiny BERTs (hidden size 32):

- ``tiny``: the model ``scale_bench.py`` mines with (its vocabulary does not hold the synthetic
  words, so texts collapse to a few dozen distinct vectors: 37 at 1M);
- ``tiny-vocab``: the same model with a vocabulary of the synthetic texts and wide word
  embeddings (``build_tiny_model(texts=..., word_embedding_std=0.5)``): every text its own
  vector, texts sharing words closer, as with a trained model.

For each size the corpus is the N positives and a seeded sample of ``--queries`` anchors is
searched as the miner searches them (batches of 1,024); the time per query is scaled to all N
anchors (the miner searches every one). Recall@k is counted as ``VectorSearch.recall`` counts it:
a document found counts when its score reaches the exact k-th best score. Every search runs
through :class:`embedtune_core.embedding.search.VectorSearch` (identical vectors searched once),
timed in CPU seconds of this process.

    python benchmarks/search_bench.py --sizes 100000,300000,1000000 --model tiny-vocab --k 10
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

BATCH = 1024


def model_folder(work: str, name: str) -> str:
    from embedtune_core.testing import build_tiny_model
    from scale_bench import tiny_vocab_model

    if name == "tiny-vocab":
        return tiny_vocab_model(work)
    model = os.path.join(work, "tiny-model", "model")
    if os.path.exists(os.path.join(model, "modules.json")):
        return model
    return str(build_tiny_model(os.path.join(work, "tiny-model")))


def pairs_file(work: str, n: int) -> str:
    from scale_bench import write_pairs

    path = os.path.join(work, f"pairs-{n}.jsonl")
    if not os.path.exists(path):
        write_pairs(path, n, 0)
    return path


def embeddings(work: str, name: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(corpus, queries)``: the positives and anchors of N pairs, encoded once and cached."""
    paths = [os.path.join(work, f"{name}-{n}-{part}.npy") for part in ("corpus", "queries")]
    if not all(os.path.exists(p) for p in paths):
        from embedtune_core.embedding.encode import Encoder
        from embedtune_core.embedding.models import load_model

        encoder = Encoder(load_model(model_folder(work, name)), batch_size=256)
        anchors, positives = [], []
        with open(pairs_file(work, n), encoding="utf-8") as handle:
            for line in handle:
                row = json.loads(line)
                anchors.append(row["anchor"])
                positives.append(row["positive"])
        for path, texts in zip(paths, (positives, anchors)):
            np.save(path, np.ascontiguousarray(encoder(texts), dtype=np.float32))
    return np.load(paths[0]), np.load(paths[1])


def configs(n: int, skip: set[str]) -> list[tuple[str, dict]]:
    """The searches measured at corpus size n."""
    out = [("exact", {"backend": "exact"})]
    if "ivf" not in skip:
        for nlist in sorted({int(np.sqrt(n)), int(4 * np.sqrt(n))}):
            for centre in (False, True):
                for nprobe in (4, 8, 16, 32, 64):
                    out.append((f"ivf nlist={nlist} nprobe={nprobe}" + (" centred" if centre else ""),
                                {"backend": "ivf", "nlist": nlist, "nprobe": nprobe, "centre": centre}))
    if "hnsw" not in skip:
        for ef in (64, 128, 256):
            out.append((f"hnsw M=32 ef={ef}", {"backend": "hnsw", "ef_search": ef}))
    return out


def measure(corpus: np.ndarray, queries: np.ndarray, k: int, options: dict, cache: dict, kth: np.ndarray) -> dict:
    """Build (CPU s), search the sample (CPU s per query) and recall@k against exact search
    (``kth``: each query's exact k-th best score), counted as ``VectorSearch.recall`` counts."""
    from embedtune_core.embedding.search import VectorSearch

    key = tuple(sorted((name, value) for name, value in options.items() if name not in ("nprobe", "ef_search")))
    if key not in cache:
        cache.clear()  # one index alive at a time
        start = time.process_time()
        cache[key] = (VectorSearch(corpus, device="cpu", **options), time.process_time() - start)
    search, built = cache[key]
    search.set_effort(nprobe=options.get("nprobe"), ef_search=options.get("ef_search"))
    found, scores = [], []
    start = time.process_time()
    for first in range(0, len(queries), BATCH):
        s, i = search.search(queries[first : first + BATCH], k)
        scores.append(s)
        found.append(i)
    seconds = time.process_time() - start
    hits = (np.concatenate(found) >= 0) & (np.concatenate(scores) >= kth[:, None] - 1e-6)
    return {"build_s": built, "search_s_per_query": seconds / len(queries), "recall": float(hits.mean()),
            "describe": search.describe()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,300000,1000000")
    parser.add_argument("--model", default="tiny-vocab", choices=["tiny", "tiny-vocab"])
    parser.add_argument("--k", default="10", help="comma-separated depths")
    parser.add_argument("--queries", type=int, default=2000, help="anchors searched per size (a seeded sample)")
    parser.add_argument("--skip", default="", help="comma-separated: ivf, hnsw")
    parser.add_argument("--work", default=None, help="folder for data, models and embeddings (kept)")
    parser.add_argument("--json", dest="json_out", default=None)
    args = parser.parse_args(argv)
    work = args.work or tempfile.mkdtemp(prefix="embedtune-search-")
    os.makedirs(work, exist_ok=True)
    import torch

    torch.set_num_threads(1)
    rows = []
    print(f"model {args.model}; work folder {work}; CPU seconds, one thread", flush=True)
    print("| N | k | search | build s | search s, all N queries | recall@k |")
    print("|---|---|---|---|---|---|")
    for n in (int(s) for s in args.sizes.split(",")):
        corpus, all_queries = embeddings(work, args.model, n)
        rng = np.random.default_rng(0)
        queries = all_queries[np.sort(rng.choice(len(all_queries), min(args.queries, n), replace=False))]
        distinct = len(np.unique(corpus, axis=0))
        cache: dict = {}
        for k in (int(s) for s in args.k.split(",")):
            from embedtune_core.embedding.search import VectorSearch

            exact_scores, _ = VectorSearch(corpus, backend="exact", device="cpu").search(queries, k)
            kth = exact_scores[:, -1]
            for label, options in configs(n, set(filter(None, args.skip.split(",")))):
                got = measure(corpus, queries, k, options, cache, kth)
                row = {"size": n, "distinct": distinct, "k": k, "search": label, **got,
                       "all_queries_s": got["search_s_per_query"] * n}
                rows.append(row)
                print(f"| {n:,} | {k} | {label} | {got['build_s']:.1f} | {row['all_queries_s']:.1f} | "
                      f"{got['recall']:.4f} |", flush=True)
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as handle:
            json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    sys.exit(main())
