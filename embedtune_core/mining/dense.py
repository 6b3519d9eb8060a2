"""Dense candidate sources for miners: the model's top-k over the corpus (:class:`DenseSource`),
top-k within pools of the corpus (:class:`PoolSource`, e.g. the nearest other category), spherical
k-means, and the model's cosine of each row's positive and negatives (:func:`row_scores`).
Built-in miners and packs use them alike."""

from __future__ import annotations

from typing import Any

from embedtune_core.data.shapes import negative_columns
from embedtune_core.embedding.search import faiss_module, gather_scores
from embedtune_core.mining.sources import CandidateSource


def request_encoder(request: Any, miner: str) -> Any:
    """The request's encoder; a clear error when the request brings none."""
    if request.encoder is None:
        from embedtune_core.errors import ComponentError

        raise ComponentError(
            f"negative miner '{miner}' encodes with a model, but the request brings none",
            hint="run it through embedtune (which passes the model being tuned, or mining.model), or give "
                 "MiningRequest(encoder=embedtune_core.embedding.encode.Encoder(model))",
        )
    return request.encoder


def embed(encoder: Any, texts: list[str]) -> Any:
    import numpy as np

    return np.ascontiguousarray(np.asarray(encoder(texts), dtype=np.float32))


def search_device(request: Any) -> str:
    if request.device:
        return request.device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class DenseSource(CandidateSource):
    """Top-k by inner product of normalised embeddings through the shared
    :class:`~embedtune_core.embedding.search.VectorSearch`: exact torch top-k in chunks (GPU when
    there is one), or an approximate faiss IVF index for corpora of ``faiss_min_corpus`` texts
    (``index="auto"``) or always (``index="faiss"``). ``search_recall`` holds the recall of the
    search against exact search on a sample of queries (1.0 when exact), ``extra["search"]`` what
    the search is (:meth:`VectorSearch.describe`)."""

    name = "cosine"
    dense = True

    def __init__(self, query_emb: Any, corpus_emb: Any, *, device: str = "cpu", index: str = "auto", faiss_min_corpus: int = 500_000):
        super().__init__()
        from embedtune_core.embedding.search import VectorSearch

        self.query_emb = query_emb
        self.corpus_emb = corpus_emb
        self.device = device
        if index == "faiss" and faiss_module() is None:
            from embedtune_core.errors import ConfigError

            raise ConfigError("index=faiss needs the faiss package", key="mining.options.index", hint="pip install faiss-cpu, or use index=torch")
        backend = {"torch": "exact", "faiss": "ivf"}.get(index, "auto")
        if backend == "auto" and faiss_module() is None:
            backend = "exact"
        self.searcher = VectorSearch(corpus_emb, backend=backend, approximate_from=faiss_min_corpus, device=device)
        self.backend = "faiss" if self.searcher.approximate else "torch"
        self.search_recall = None

    def search(self, query_ids: Any, depth: int) -> tuple[Any, Any]:
        q = self.query_emb[query_ids]
        if self.search_recall is None:
            measured = self.searcher.recall(self.query_emb, depth)
            self.search_recall = 1.0 if measured is None else measured  # an exact search finds every one
            self.extra[f"search_recall@{depth}"] = round(float(self.search_recall), 4)
            self.extra["search"] = self.searcher.describe()
        return self.searcher.search(q, depth)

    def score(self, query_ids: Any, doc_ids: Any) -> Any:
        import numpy as np

        return np.einsum("ij,ij->i", self.query_emb[query_ids], self.corpus_emb[doc_ids]).astype(np.float32)


class PoolSource(CandidateSource):
    """Dense top-k of each query within its own pool of corpus texts (``pool_of[q]`` names a
    pool of ``pools``)."""

    name = "cosine"
    dense = True

    def __init__(self, query_emb: Any, corpus_emb: Any, pool_of: Any, pools: dict[int, Any], *, device: str = "cpu"):
        super().__init__()
        self.query_emb, self.corpus_emb = query_emb, corpus_emb
        self.pool_of, self.pools = pool_of, pools
        self.device = device

    def search(self, query_ids: Any, depth: int) -> tuple[Any, Any]:
        import numpy as np

        from embedtune_core.embedding.search import top_k

        out_s = np.full((len(query_ids), depth), -np.inf, dtype=np.float32)
        out_i = np.full((len(query_ids), depth), -1, dtype=np.int64)
        keys = self.pool_of[query_ids]
        for key in np.unique(keys).tolist():
            rows = np.flatnonzero(keys == key)
            pool = self.pools.get(key)
            if pool is None or not len(pool):
                continue
            s, i = top_k(self.query_emb[query_ids[rows]], self.corpus_emb[pool], min(depth, len(pool)), device=self.device)
            if self.device.startswith("cuda"):
                s = gather_scores(self.query_emb[query_ids[rows]], self.corpus_emb, pool[i])
                order = np.lexsort((i, -s), axis=1)
                s, i = np.take_along_axis(s, order, axis=1), np.take_along_axis(i, order, axis=1)
            out_s[rows, : s.shape[1]] = s
            out_i[rows, : i.shape[1]] = pool[i]
        return out_s, out_i

    def score(self, query_ids: Any, doc_ids: Any) -> Any:
        import numpy as np

        return np.einsum("ij,ij->i", self.query_emb[query_ids], self.corpus_emb[doc_ids]).astype(np.float32)


def kmeans(embeddings: Any, clusters: int, seed: int) -> tuple[Any, Any]:
    """``(labels, unit-length centroids)`` of spherical k-means: faiss when installed, else
    scikit-learn."""
    import numpy as np

    faiss = faiss_module()
    if faiss is not None:
        km = faiss.Kmeans(embeddings.shape[1], clusters, niter=25, seed=seed, spherical=True, verbose=False)
        km.train(embeddings)
        _, labels = km.index.search(embeddings, 1)
        labels, centroids = labels.ravel().astype(np.int64), km.centroids
    else:
        from sklearn.cluster import KMeans

        km = KMeans(n_clusters=clusters, n_init=1, random_state=seed).fit(embeddings)
        labels, centroids = km.labels_.astype(np.int64), km.cluster_centers_
    centroids = np.asarray(centroids, dtype=np.float32)
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    return labels, centroids


def row_scores(encoder: Any, dataset: Any) -> tuple[Any, Any]:
    """``(positive score per row, negative scores per row [rows, n])`` of (anchor, positive,
    negatives...) rows by the encoder's cosine."""
    import numpy as np

    columns = negative_columns(dataset.column_names)
    texts = list(dict.fromkeys(list(dataset["anchor"]) + list(dataset["positive"]) + [t for c in columns for t in dataset[c]]))
    if not texts:
        return np.zeros(0, dtype=np.float32), np.zeros((0, len(columns)), dtype=np.float32)
    emb = embed(encoder, texts)
    at = {t: i for i, t in enumerate(texts)}
    a = emb[[at[t] for t in dataset["anchor"]]]
    pos = np.einsum("ij,ij->i", a, emb[[at[t] for t in dataset["positive"]]])
    neg = np.stack([np.einsum("ij,ij->i", a, emb[[at[t] for t in dataset[c]]]) for c in columns], axis=1)
    return pos.astype(np.float32), neg.astype(np.float32)


def encoder_gap(encoder: Any, dataset: Any) -> float | None:
    """The mean of (positive score - negative score) over the rows and their negatives."""
    if len(dataset) == 0:
        return None
    pos, neg = row_scores(encoder, dataset)
    return float((pos[:, None] - neg).mean())

