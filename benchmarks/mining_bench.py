"""Hard-negative mining speed, side by side with the reference tools.

1. Dense: embedtune's ``dense`` miner vs ``sentence_transformers.util.mine_hard_negatives`` on the
   same data, model and settings (num_negatives, relative_margin 0.05, top sampling, n-tuple
   output, anchors short of negatives dropped). Prints both times, the ratio, our time split into encoding and selection, and how
   many rows got the same negatives (exactly, and up to ties in score).
2. BM25: ``bm25s`` (what the ``bm25`` miner uses) vs ``rank_bm25`` (BM25Okapi), same tokens:
   index and top-k times, the ratio, and the overlap of their top-k lists (the two score BM25
   with slightly different IDF formulas, so the overlap is high but not 1). ``rank_bm25`` scores
   every document in Python per query, so it runs on ``--bm25-ref-queries`` queries and its
   per-query time is compared.

Data: the bundled HPO IR set when the bundled reader ``hpo-lay`` is installed (hpo-lay), else synthetic text
(``--synthetic`` forces it). The issue's GPU figure is 20k queries over 100k passages:
``--queries 20000 --corpus 100000 --device cuda``.

    python benchmarks/mining_bench.py --quick
    python benchmarks/mining_bench.py --queries 20000 --corpus 100000 --device cuda
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def synthetic(n_queries: int, n_corpus: int, seed: int = 0) -> tuple[list[str], list[str], list[str]]:
    """Queries, their positives and a corpus from a Zipf-distributed vocabulary of real words;
    each positive repeats about half of its query's words."""
    rnd = random.Random(seed)
    base = (
        "patient heart rhythm fever cough lung kidney liver skin bone muscle nerve brain blood pressure "
        "growth head ear eye hearing vision pain swelling infection chronic acute mild severe early late "
        "child adult infant tenant lease contract seller buyer liability permit building court claim "
        "damage insurance bond yield stock market price rate interest loan credit tax revenue profit loss"
    ).split()
    suffixes = ["", "s", "al", "ity", "ic", "ous", "ing", "ed"]
    vocab = [w + s for w in base for s in suffixes]
    weights = [1.0 / (i + 1) ** 0.8 for i in range(len(vocab))]

    def text(k: int) -> list[str]:
        return rnd.choices(vocab, weights=weights, k=k)

    queries, positives = [], []
    for _ in range(n_queries):
        q = text(rnd.randint(4, 9))
        queries.append(" ".join(q))
        keep = rnd.sample(q, max(2, len(q) // 2))
        positives.append(" ".join(keep + text(rnd.randint(6, 20))))
    corpus = [" ".join(text(rnd.randint(8, 30))) for _ in range(n_corpus)]
    return queries, positives, corpus


def bundled_hpo(registry, n_queries: int, n_corpus: int):
    """(queries, positives, corpus) from the bundled HPO set, or None when it is not installed."""
    if not registry.has("dataset_reader", "hpo-lay") or not registry.get("dataset_reader", "hpo-lay").info.bundled:
        return None
    from embedtune_core.data.loading import load_data, to_training_dataset

    bundle = load_data(registry, "builtin:hpo-lay")
    dataset, _ = to_training_dataset(bundle)
    dataset = dataset.select(range(min(n_queries, len(dataset))))
    corpus = list(bundle.corpus or [])[:n_corpus]
    return list(dataset["anchor"]), list(dataset["positive"]), corpus


class TimedEncoder:
    def __init__(self, encoder):
        self.encoder = encoder
        self.seconds = 0.0

    def __call__(self, texts):
        start = time.perf_counter()
        out = self.encoder(texts)
        self.seconds += time.perf_counter() - start
        return out


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def dense_bench(args, registry, queries, positives, corpus) -> None:
    import datasets
    import numpy as np
    from sentence_transformers.util import mine_hard_negatives

    from embedtune_core.embedding.encode import Encoder
    from embedtune_core.mining.toolkit import run_miner
    from embedtune_core.embedding.models import load_model

    model = load_model(args.model, device=args.device)
    dataset = datasets.Dataset.from_dict({"anchor": queries, "positive": positives})
    model.encode(["warm up"] * 8)
    Encoder(model, precision=args.precision)(["warm up"] * 8)
    half = args.device.startswith("cuda") and args.precision in ("auto", "fp16", "bf16")
    tolerance = args.tie_tolerance if args.tie_tolerance is not None else (2e-3 if half else 1e-5)
    settings = {"relative_margin": args.relative_margin}

    sync(args.device)
    start = time.perf_counter()
    reference = mine_hard_negatives(
        dataset, model, corpus=corpus, num_negatives=args.num_negatives, output_format="n-tuple",
        batch_size=args.batch_size, verbose=False, **settings,
    )
    sync(args.device)
    st_seconds = time.perf_counter() - start

    encoder = TimedEncoder(Encoder(model, batch_size=args.batch_size, precision=args.precision))
    sync(args.device)
    start = time.perf_counter()
    ours = run_miner(
        registry, "dense", dataset, "pairs", num_negatives=args.num_negatives,
        options={**settings, "short": "drop", "device": args.device}, encoder=encoder, corpus=corpus,
    )
    sync(args.device)
    our_seconds = time.perf_counter() - start

    n = args.num_negatives
    ref = {(r["anchor"], r["positive"]): [r[f"negative_{i + 1}"] for i in range(n)] for r in reference}
    got = {(r["anchor"], r["positive"]): [r[f"negative_{i + 1}"] for i in range(n)] for r in ours.dataset}
    common = set(ref) & set(got)
    exact = sum(ref[k] == got[k] for k in common)
    differing = [k for k in common if ref[k] != got[k]]
    tied = 0
    if differing:
        check = Encoder(model, batch_size=args.batch_size, precision="fp32")
        for key in differing:
            a = check([key[0]])[0]
            if np.allclose(check(ref[key]) @ a, check(got[key]) @ a, atol=tolerance):
                tied += 1
    print(f"\n## dense mining: {len(queries)} queries over {len(set(corpus + positives))} texts, "
          f"{n} negatives, relative_margin {args.relative_margin}, device {args.device}"
          + (f", ours in {'fp16' if args.precision == 'auto' else args.precision}" if half else ""))
    print(f"{'':32} {'seconds':>9}")
    print(f"{'sentence-transformers':32} {st_seconds:9.2f}")
    print(f"{'embedtune dense':32} {our_seconds:9.2f}   (encoding {encoder.seconds:.2f}, selection {our_seconds - encoder.seconds:.2f})")
    print(f"ratio sentence-transformers / embedtune: {st_seconds / our_seconds:.2f}x")
    print(f"rows: reference {len(ref)}, ours {len(got)}, both {len(common)}")
    print(f"same negatives: {exact}/{len(common)} exactly, {exact + tied}/{len(common)} up to ties "
          f"(|score difference| <= {tolerance})")
    print(f"dropped as likely false negatives: {ours.stats.dropped_false_negatives}, queries short: {ours.stats.queries_short}")


def bm25_bench(args, queries, corpus) -> None:
    import numpy as np

    import bm25s
    from rank_bm25 import BM25Okapi

    from embedtune_core.mining.lexical import bm25_tokenize

    k = args.top_k
    start = time.perf_counter()
    corpus_tokens = bm25_tokenize(corpus)
    query_tokens = bm25_tokenize(queries)
    tokenize_seconds = time.perf_counter() - start

    warm = bm25s.BM25()  # imports and first-call set-up outside the timings
    warm.index(corpus_tokens[:50], show_progress=False)
    warm.retrieve(query_tokens[:5], k=5, show_progress=False)
    BM25Okapi(corpus_tokens[:50]).get_scores(query_tokens[0])

    start = time.perf_counter()
    retriever = bm25s.BM25()
    retriever.index(corpus_tokens, show_progress=False)
    bm25s_index = time.perf_counter() - start
    start = time.perf_counter()
    docs, _ = retriever.retrieve(query_tokens, k=k, show_progress=False, n_threads=0)
    bm25s_query = time.perf_counter() - start

    start = time.perf_counter()
    reference = BM25Okapi([t if t else [""] for t in corpus_tokens])
    rank_index = time.perf_counter() - start
    sample = query_tokens[: args.bm25_ref_queries]
    start = time.perf_counter()
    ref_top = [np.argsort(-reference.get_scores(q), kind="stable")[:k] for q in sample]
    rank_query = time.perf_counter() - start

    overlap = np.mean([len(set(a.tolist()) & set(b.tolist())) / k for a, b in zip(docs[: len(sample)], ref_top)])
    per_bm25s = bm25s_query / len(queries)
    per_rank = rank_query / len(sample)
    print(f"\n## BM25: {len(queries)} queries over {len(corpus)} texts, top {k} (tokenising both: {tokenize_seconds:.2f} s)")
    print(f"{'':12} {'index s':>9} {'queries':>8} {'query s':>9} {'ms/query':>9}")
    print(f"{'bm25s':12} {bm25s_index:9.2f} {len(queries):8d} {bm25s_query:9.2f} {1000 * per_bm25s:9.3f}")
    print(f"{'rank_bm25':12} {rank_index:9.2f} {len(sample):8d} {rank_query:9.2f} {1000 * per_rank:9.3f}")
    print(f"ratio rank_bm25 / bm25s: index {rank_index / bm25s_index:.2f}x, per query {per_rank / per_bm25s:.1f}x, "
          f"index + all {len(queries)} queries {(rank_index + per_rank * len(queries)) / (bm25s_index + bm25s_query):.1f}x")
    print(f"top-{k} overlap on the {len(sample)} shared queries: {overlap:.3f} (BM25 variants differ in IDF)")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a check that it runs)")
    parser.add_argument("--queries", type=int, default=None, help="queries (default 2000; quick 150)")
    parser.add_argument("--corpus", type=int, default=None, help="corpus texts (default 20000; quick 1500)")
    parser.add_argument("--num-negatives", type=int, default=3)
    parser.add_argument("--relative-margin", type=float, default=0.05)
    parser.add_argument("--batch-size", type=int, default=128, help="encoding batch for both")
    parser.add_argument("--model", default="sentence-transformers/all-MiniLM-L6-v2")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "fp16", "bf16"),
                        help="our encoder's precision (auto: fp16 on CUDA, fp32 on CPU); the reference runs model.encode as is")
    parser.add_argument("--top-k", type=int, default=100, help="BM25 top-k")
    parser.add_argument("--bm25-ref-queries", type=int, default=None, help="queries run through rank_bm25 (default 500; quick 50)")
    parser.add_argument("--synthetic", action="store_true", help="synthetic text even when the HPO set is installed")
    parser.add_argument("--skip-dense", action="store_true")
    parser.add_argument("--skip-bm25", action="store_true")
    parser.add_argument("--tie-tolerance", type=float, default=None,
                        help="score difference counted as a tie (default 1e-5; 2e-3 when ours encodes in half precision)")
    args = parser.parse_args(argv)
    args.queries = args.queries or (150 if args.quick else 2000)
    args.corpus = args.corpus or (1500 if args.quick else 20000)
    args.bm25_ref_queries = args.bm25_ref_queries or (50 if args.quick else 500)
    import torch

    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    print(f"torch threads {torch.get_num_threads()}, device {args.device}"
          + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else ""))

    from embedtune_core.plugins.registry import load_registry

    _, registry = load_registry()
    data = None if args.synthetic else bundled_hpo(registry, args.queries, args.corpus)
    if data is None:
        data = synthetic(args.queries, args.corpus)
        print(f"data: synthetic ({args.queries} queries, {args.corpus} passages)")
    else:
        print(f"data: bundled HPO ({len(data[0])} queries, {len(data[2])} definitions)")
    queries, positives, corpus = data
    if not args.skip_dense:
        dense_bench(args, registry, queries, positives, corpus)
    if not args.skip_bm25:
        bm25_bench(args, queries, list(dict.fromkeys(corpus + positives)))


if __name__ == "__main__":
    sys.exit(main())
