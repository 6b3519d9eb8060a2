"""Top-k retrieval by inner product, shared by evaluation and dense mining.

:class:`VectorSearch` searches a fixed corpus: exact, chunked matrix product + top-k (torch, GPU
when there is one; memory O(query chunk x corpus chunk)) while the corpus is smaller than
``approximate_from`` vectors, and past it a faiss index (IVF by default, HNSW on request; on the
GPU when faiss has one). An approximate search measures what it costs: its recall@k against
exact search on a seeded sample of queries (:meth:`VectorSearch.recall`).

Whatever the backend, :meth:`VectorSearch.search` returns exact float32 inner products, best
first, ties by the lower corpus index, -1 where fewer than k documents were found.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from embedtune_core.embedding.duplicates import ordered

BACKENDS = ("auto", "exact", "ivf", "hnsw")
#: corpus size from which ``backend="auto"`` uses an approximate faiss index
APPROXIMATE_FROM = 1_000_000
#: queries of the sample on which the recall of an approximate search is measured
RECALL_SAMPLE = 1000
#: queries from which ``backend="auto"`` builds an HNSW graph rather than IVF lists: measured on
#: one thread (32 dims), the graph costs 160 us a vector to build, as much as 36,000 exact
#: query-document products (4.4 ns each), and then reaches a recall@10 in 1.4x (300k) to 3.5x
#: (1M) less time than IVF (``benchmarks/search_bench.py``, RESULTS.md "Search")
HNSW_FROM_QUERIES = 36_000


def top_k(
    queries: np.ndarray,
    corpus: np.ndarray,
    k: int,
    *,
    query_chunk: int = 1024,
    corpus_chunk: int = 16384,
    device: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Scores and indices of the ``k`` highest inner products for each query row (exact).

    Inputs are float arrays (normalise them first for cosine). Runs on torch (GPU when
    ``device`` is a CUDA device or, when None, when one is available). Ties keep the lower
    corpus index first. Returns ``(scores[nq, k], indices[nq, k])`` with ``k`` capped at the
    corpus size.
    """
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    nq, nd = len(queries), len(corpus)
    k = min(k, nd)
    out_scores = np.empty((nq, k), dtype=np.float32)
    out_idx = np.empty((nq, k), dtype=np.int64)
    if nq == 0 or k == 0:
        return out_scores, out_idx
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    corpus_t = [
        torch.as_tensor(np.asarray(corpus[s : s + corpus_chunk]), device=device).to(dtype)
        for s in range(0, nd, corpus_chunk)
    ]
    for qs in range(0, nq, query_chunk):
        q = torch.as_tensor(np.asarray(queries[qs : qs + query_chunk]), device=device).to(dtype)
        best_s, best_i = None, None
        offset = 0
        for chunk in corpus_t:
            scores = (q @ chunk.T).float()
            kk = min(k, chunk.shape[0])
            s, i = torch.topk(scores, kk, dim=1, sorted=True)
            i = i + offset
            offset += chunk.shape[0]
            if best_s is None:
                best_s, best_i = s, i
            else:
                cat_s = torch.cat([best_s, s], dim=1)
                cat_i = torch.cat([best_i, i], dim=1)
                s2, pos = torch.topk(cat_s, min(k, cat_s.shape[1]), dim=1, sorted=True)
                best_s, best_i = s2, torch.gather(cat_i, 1, pos)
        out_scores[qs : qs + len(q)] = best_s.cpu().numpy()
        out_idx[qs : qs + len(q)] = best_i.cpu().numpy()
    return out_scores, out_idx


def gather_scores(queries: Any, corpus: Any, idx: Any, block: int = 64) -> np.ndarray:
    """Exact float32 inner products of each query row with the corpus rows ``idx`` (-1: -inf),
    a block of queries at a time (memory O(block x k x dim))."""
    out = np.full(idx.shape, -np.inf, dtype=np.float32)
    for start in range(0, len(idx), block):
        part = idx[start : start + block]
        safe = np.where(part >= 0, part, 0)
        values = np.einsum(
            "bd,bkd->bk",
            np.asarray(queries[start : start + block], dtype=np.float32),
            np.asarray(corpus[safe], dtype=np.float32),
        )
        out[start : start + block] = np.where(part >= 0, values, -np.inf)
    return out


def faiss_module() -> Any:
    """The faiss module, or None when it is not installed."""
    try:
        import faiss
    except ImportError:
        return None
    return faiss


class VectorSearch:
    """Top-k inner-product search over ``corpus`` (rows; normalise them for cosine).

    ``backend``: "exact", "ivf", "hnsw", or "auto": exact below ``approximate_from`` distinct
    vectors (None: always exact); from there an HNSW graph, or IVF lists where
    ``expected_queries`` says fewer than ``HNSW_FROM_QUERIES`` queries will be searched (the
    graph's build would not pay). ``nlist`` (IVF lists, default 4 sqrt(n)), ``nprobe`` (lists
    searched per query, default max(16, nlist / 64)) and ``ef_search`` (HNSW) trade speed for
    recall, which :meth:`recall` measures; ``centre`` partitions the IVF lists over the corpus
    less its mean (the ranking is the same; off by default: it measured lower recall).
    ``device``: "cpu" or a CUDA device for the exact search and, when faiss has GPUs, the index
    (None: a GPU when present).

    Identical rows are searched once (``dedupe``, :mod:`embedtune_core.embedding.duplicates`): the
    index holds the distinct corpus vectors, each distinct query of a batch is searched once, and
    results are expanded to every copy in corpus order, as a search of every row orders them.
    """

    def __init__(
        self,
        corpus: Any,
        *,
        backend: str = "auto",
        approximate_from: int | None = APPROXIMATE_FROM,
        device: str | None = None,
        nlist: int | None = None,
        nprobe: int | None = None,
        ef_search: int = 128,
        recall_sample: int = RECALL_SAMPLE,
        seed: int = 0,
        dedupe: bool = True,
        centre: bool = False,
        expected_queries: int | None = None,
    ) -> None:
        from embedtune_core.embedding.duplicates import Groups

        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        self.corpus = corpus
        self.dedupe = dedupe
        self.groups = Groups.of(corpus) if dedupe and len(corpus) > 1 else None
        self.vectors = corpus if self.groups is None else np.asarray(corpus)[self.groups.first]
        if backend == "auto":
            big = approximate_from is not None and len(self.vectors) >= approximate_from
            few = expected_queries is not None and expected_queries < HNSW_FROM_QUERIES
            backend = ("ivf" if few else "hnsw") if big else "exact"
        self.backend = backend
        self.device = device
        self.recall_sample = recall_sample
        self.seed = seed
        self.centre = centre
        self._recall: dict[int, float] = {}
        self.index = None
        if backend == "ivf":
            self.index = self._ivf(nlist, nprobe)
        elif backend == "hnsw":
            self.index = self._hnsw(ef_search)

    @property
    def approximate(self) -> bool:
        return self.index is not None

    def _faiss(self) -> Any:
        faiss = faiss_module()
        if faiss is None:
            from embedtune_core.errors import EmbedtuneError

            raise EmbedtuneError(f"the {self.backend} search needs the faiss package",
                                 hint="pip install faiss-cpu (or faiss-gpu), or search exactly")
        return faiss

    def _add(self, index: Any, shift: Any = 0.0, block: int = 65536) -> None:
        for start in range(0, len(self.vectors), block):
            index.add(np.ascontiguousarray(self.vectors[start : start + block] - shift, dtype=np.float32))

    def _on_gpu(self, index: Any, faiss: Any) -> Any:
        wants_gpu = self.device is None or str(self.device).startswith("cuda")
        if wants_gpu and hasattr(faiss, "index_cpu_to_all_gpus") and faiss.get_num_gpus() > 0:
            return faiss.index_cpu_to_all_gpus(index)
        return index

    def _ivf(self, nlist: int | None, nprobe: int | None) -> Any:
        faiss = self._faiss()
        n, dim = self.vectors.shape
        nlist = min(nlist, n) if nlist else max(1, min(int(4 * np.sqrt(n)), n // 39 or 1))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.niter = 10  # k-means iterations: past a few the lists barely move
        rng = np.random.default_rng(self.seed)
        train = np.sort(rng.choice(n, min(n, 40 * nlist), replace=False))
        # With ``centre`` the lists partition the corpus less its mean (embeddings share a common
        # direction); a query's ranking is unchanged, as q.(d - m) differs from q.d by q.m, the
        # same for every document.
        shift = np.mean(self.vectors[train], axis=0, dtype=np.float64).astype(np.float32) if self.centre else 0.0
        index.train(np.ascontiguousarray(self.vectors[train] - shift, dtype=np.float32))
        self._add(index, shift)
        index.nprobe = min(nlist, nprobe or max(16, nlist // 64))
        self.nlist, self.nprobe = nlist, index.nprobe
        self._quantizer = quantizer  # the index refers to it
        return self._on_gpu(index, faiss)

    def _hnsw(self, ef_search: int) -> Any:
        faiss = self._faiss()
        index = faiss.IndexHNSWFlat(self.vectors.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
        self._add(index)
        index.hnsw.efSearch = ef_search
        return index

    def describe(self) -> str:
        """What this search is, for statistics: the backend, its settings, distinct vectors."""
        if self.backend == "ivf":
            text = f"ivf nlist={self.nlist} nprobe={self.nprobe}" + (" centred" if self.centre else "")
        elif self.backend == "hnsw":
            text = f"hnsw M=32 efSearch={self.index.hnsw.efSearch}"
        else:
            text = "exact"
        if self.groups is not None:
            text += f", {len(self.vectors):,} distinct vectors of {len(self.corpus):,}"
        return text

    def set_effort(self, nprobe: int | None = None, ef_search: int | None = None) -> None:
        """Search more or fewer IVF lists (``nprobe``) or HNSW candidates (``ef_search``) from
        now on; recall already measured is forgotten."""
        if nprobe is not None and self.backend == "ivf":
            self.index.nprobe = self.nprobe = min(self.nlist, int(nprobe))
        if ef_search is not None and self.backend == "hnsw":
            self.index.hnsw.efSearch = int(ef_search)
        self._recall.clear()

    def _exact(self, queries: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k over the corpus (through its distinct vectors)."""
        scores, idx = top_k(queries, self.vectors, min(k, len(self.vectors)), device=self.device)
        if not _cpu_exact(self.device):  # the GPU search runs in float16
            scores = gather_scores(queries, self.vectors, idx)
        return self._to_corpus(scores, idx, k)

    def _to_corpus(self, scores: np.ndarray, idx: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self.groups is not None:
            return self.groups.expand(scores, idx, k)
        return ordered(scores, idx, k)

    def search(self, queries: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(scores[nq, k] float32, indices[nq, k] int64)``: exact inner products of the k
        documents found, best first, ties by lower corpus index; -inf / -1 pad. Under several
        processes, inside :func:`embedtune_core.distributed.sharing`, each searches its shard of
        the queries and every process gets all the results."""
        from embedtune_core.distributed import split_rows

        return split_rows(len(queries), lambda start, stop: self._search(queries[start:stop], k))

    def _search(self, queries: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        from embedtune_core.embedding.duplicates import distinct_rows

        k = int(k)
        if len(queries) == 0 or len(self.corpus) == 0:
            return ordered(np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64), k)
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        same = distinct_rows(queries) if self.dedupe else None
        if same is not None:  # each distinct query once
            first, group = same
            scores, idx = self._search_distinct(queries[first], k)
            return scores[group], idx[group]
        return self._search_distinct(queries, k)

    def _search_distinct(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self.index is None:
            return self._exact(queries, k)
        _, idx = self.index.search(queries, min(k, len(self.vectors)))
        idx = idx.astype(np.int64, copy=False)
        return self._to_corpus(gather_scores(queries, self.vectors, idx), idx, k)

    def recall(self, queries: Any, k: int) -> float | None:
        """Recall@k of this search against exact search, on up to ``recall_sample`` of
        ``queries`` (seeded); None for an exact search. Measured once per k.

        A document found counts when its score reaches the exact k-th best score (to 1e-6), so
        documents that tie with the exact top k count as much as they do: without ties this is
        the share of the exact top k found."""
        if self.index is None or len(queries) == 0:
            return None
        k = min(int(k), len(self.corpus))
        if k not in self._recall:
            rng = np.random.default_rng(self.seed)
            sample = np.sort(rng.choice(len(queries), min(len(queries), self.recall_sample), replace=False))
            picked = np.asarray(queries[sample], dtype=np.float32)
            found_scores, found = self.search(picked, k)
            _, exact = self._exact(picked, k)
            kth = gather_scores(picked, self.corpus, exact[:, -1:])
            hits = (found >= 0) & (found_scores >= kth - 1e-6)
            self._recall[k] = float(hits.sum()) / max(exact.size, 1)
        return self._recall[k]


def _cpu_exact(device: str | None) -> bool:
    """Whether the exact search runs on the CPU in float32 (its scores are then exact)."""
    if device is not None:
        return not str(device).startswith("cuda")
    import torch

    return not torch.cuda.is_available()
