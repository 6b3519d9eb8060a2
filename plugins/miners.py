"""Built-in negative miners: bm25, dense, contradiction, partial-match, domain-confusion and
curriculum.

The retrieval-based ones (bm25, dense, partial-match, domain-confusion) share the guards of
``embedtune_core.mining``; see ``docs/mining.md`` for every option and its default.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import attrs

from embedtune_core import hookimpl
from embedtune_core.mining.guards import GuardOptions
from embedtune_core.mining.miner import RetrievalMiner
from embedtune_core.mining.sources import CandidateSource
from embedtune_core.plugins.options import Range

#: the dataset types `embedtune init` mines for (every type with (anchor, positive) rows)
ROW_TYPES = ("pairs", "triplets", "nli", "ir", "hard-negatives")


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


def _embed(encoder: Any, texts: list[str]) -> Any:
    import numpy as np

    return np.ascontiguousarray(np.asarray(encoder(texts), dtype=np.float32))


def _device(request: Any) -> str:
    if request.device:
        return request.device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


# -- dense --------------------------------------------------------------------------------------
class DenseSource(CandidateSource):
    """Top-k by inner product of normalised embeddings through the shared
    :class:`~embedtune_core.embedding.search.VectorSearch`: exact torch top-k in chunks (GPU when
    there is one), or an approximate faiss IVF index for corpora of ``faiss_min_corpus`` texts
    (``index="auto"``) or always (``index="faiss"``). ``search_recall`` holds the recall of the
    search against exact search on a sample of queries (1.0 when exact), ``extra["search"]`` what
    the search is (:meth:`VectorSearch.describe`)."""

    name = "dense"
    dense = True

    def __init__(self, query_emb: Any, corpus_emb: Any, *, device: str = "cpu", index: str = "auto", faiss_min_corpus: int = 500_000):
        super().__init__()
        from embedtune_core.embedding.search import VectorSearch

        self.query_emb = query_emb
        self.corpus_emb = corpus_emb
        self.device = device
        if index == "faiss" and _faiss() is None:
            from embedtune_core.errors import ConfigError

            raise ConfigError("index=faiss needs the faiss package", key="mining.options.index", hint="pip install faiss-cpu, or use index=torch")
        backend = {"torch": "exact", "faiss": "ivf"}.get(index, "auto")
        if backend == "auto" and _faiss() is None:
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


def gather_scores(queries: Any, corpus_emb: Any, idx: Any, block: int = 64) -> Any:
    """Exact float32 inner products of each query row with the corpus rows ``idx`` (-1: -inf)."""
    from embedtune_core.embedding.search import gather_scores as gather

    return gather(queries, corpus_emb, idx, block)


def _faiss() -> Any:
    from embedtune_core.embedding.search import faiss_module

    return faiss_module()


class DenseMiner(RetrievalMiner):
    """Hardest negatives by the model's cosine similarity, through the guards."""

    name = "dense"

    @attrs.frozen
    class Options(GuardOptions):
        index: Annotated[Literal["auto", "torch", "faiss"],
                         "top-k backend: faiss for corpora of faiss_min_corpus texts when installed"] = "auto"
        faiss_min_corpus: Annotated[int, Range(ge=1), "corpus size from which index=auto uses faiss"] = 500_000

    def source(self, data: Any, request: Any) -> CandidateSource:
        encoder = request_encoder(request, self.name)
        corpus_emb = _embed(encoder, data.corpus)
        query_emb = _embed(encoder, data.queries)
        return DenseSource(query_emb, corpus_emb, device=_device(request), index=self.options.index,
                           faiss_min_corpus=self.options.faiss_min_corpus)


# -- bm25 ---------------------------------------------------------------------------------------
def bm25_tokenize(texts: list[str], stopwords: str | None = "en") -> list[list[str]]:
    """bm25s' tokenizer (lower-cased words of 2+ characters, English stopwords removed)."""
    import bm25s

    return bm25s.tokenize(list(texts), stopwords=stopwords, return_ids=False, show_progress=False)


class BM25Source(CandidateSource):
    """BM25 top-k with bm25s' scores. A text that shares no term with the query is no candidate.
    The index is built a block of texts at a time (:mod:`embedtune_plugins.bm25_index`): term ids
    in flat arrays, never a Python list of tokens per text.

    Each query is answered from the postings of its terms in bm25s' term-document score matrix
    with MaxScore pruning: a first threshold comes from the texts of its strongest terms; the
    weakest terms whose summed best scores stay below it cannot put a text in the top-k on their
    own, so only texts holding one of the other terms are scored. The work grows with the
    postings of a query's rarer terms, not with the corpus. The result is exact: scores are
    bm25s' own to the bit (each text's term scores added in float32 in the query's token order,
    as bm25s adds them), ties by lower corpus position. Methods with a non-occurrence score
    (bm25l, bm25+) give every text a score and use bm25s' retrieve."""

    name = "bm25"

    def __init__(self, data: Any, *, k1: float = 1.5, b: float = 0.75, method: str = "lucene", stopwords: str | None = "en", backend: str = "numpy"):
        super().__init__()
        import bm25s
        import numpy as np

        from embedtune_plugins.bm25_index import bm25_postings, token_ids

        self.retriever = bm25s.BM25(k1=k1, b=b, method=method, backend=backend)
        vocab: dict[str, int] = {}
        corpus_tokens = token_ids(data.corpus, vocab, stopwords)
        queries = token_ids(data.queries, vocab, stopwords, grow=False)  # one entry per token, in token order
        n_terms = len(vocab)
        if method not in self.retriever.methods_requiring_nonoccurrence:
            vocab.clear()  # only bm25s' retrieve needs the terms themselves
        doc_term = bm25_postings(self.retriever, corpus_tokens, n_terms)
        del corpus_tokens
        self.term_doc = doc_term.tocsc().T  # (terms x texts) CSR: each term's texts, ascending
        del doc_term
        self.posting_lengths = postings = np.diff(self.term_doc.indptr)
        self.best = np.zeros(n_terms, dtype=np.float64)  # each term's highest score in any text
        filled = np.flatnonzero(postings)
        if len(filled):
            self.best[filled] = np.maximum.reduceat(self.term_doc.data, self.term_doc.indptr[filled])
        # one entry per query token, in token order (not summed), as bm25s adds them
        self.query_tokens_matrix = queries.matrix(n_terms)
        if self.retriever.nonoccurrence_array is not None:
            self._keep_for_retrieve(vocab)

    def search(self, query_ids: Any, depth: int) -> tuple[Any, Any]:
        """Each query's top ``depth`` texts; under several processes (the pipeline's mining
        step) each process answers its share of the queries."""
        from embedtune_core.distributed import split_rows

        return split_rows(len(query_ids), lambda start, stop: self._search(query_ids[start:stop], depth))

    def _search(self, query_ids: Any, depth: int) -> tuple[Any, Any]:
        import numpy as np

        if self.retriever.nonoccurrence_array is not None:
            return self._retrieve(query_ids, depth)
        out_s = np.full((len(query_ids), depth), -np.inf, dtype=np.float32)
        out_i = np.full((len(query_ids), depth), -1, dtype=np.int64)
        tokens_of = self.query_tokens_matrix
        for row, q in enumerate(query_ids.tolist()):
            tokens = tokens_of.indices[tokens_of.indptr[q] : tokens_of.indptr[q + 1]]
            if len(tokens):
                docs, scores = top_of_row(*self._candidates(tokens, depth), depth)
                out_s[row, : len(docs)] = scores
                out_i[row, : len(docs)] = docs
        return out_s, out_i

    def _postings(self, terms: Any) -> Any:
        """The sorted distinct texts holding any of ``terms``."""
        import numpy as np

        indptr, indices = self.term_doc.indptr, self.term_doc.indices
        return np.unique(np.concatenate([indices[indptr[t] : indptr[t + 1]] for t in terms.tolist()]))

    def _scores(self, tokens: Any, docs: Any) -> Any:
        """bm25s' float32 scores of the sorted ``docs`` for the query ``tokens``, added in token
        order as bm25s adds them."""
        import numpy as np

        indptr, indices, data = self.term_doc.indptr, self.term_doc.indices, self.term_doc.data
        out = np.zeros(len(docs), dtype=np.float32)
        zero = np.float32(0)
        for t in tokens.tolist():
            lo, hi = int(indptr[t]), int(indptr[t + 1])
            if hi == lo:
                continue
            at = np.searchsorted(indices[lo:hi], docs)
            np.minimum(at, hi - lo - 1, out=at)
            at += lo
            out += np.where(indices[at] == docs, data[at], zero)  # + 0 leaves a float32 as it is
        return out

    def _candidates(self, tokens: Any, depth: int) -> tuple[Any, Any]:
        """Texts that may be in the query's top ``depth`` and their scores (MaxScore)."""
        import numpy as np

        terms, counts = np.unique(tokens, return_counts=True)
        bound = self.best[terms] * counts  # the most a term adds to any text's score
        postings = self.posting_lengths[terms]
        strongest = np.argsort(-bound, kind="stable")
        enough = int(np.searchsorted(np.cumsum(postings[strongest]), depth)) + 1
        first = self._postings(terms[strongest[:enough]])
        threshold = 0.0
        if len(first) >= depth:
            scores = self._scores(tokens, first)
            threshold = float(np.partition(scores, len(scores) - depth)[len(scores) - depth])
        # the weakest terms, together, cannot reach the threshold (with room for float32 rounding)
        weakest = np.argsort(bound, kind="stable")
        alone = int(np.searchsorted(np.cumsum(bound[weakest]) * (1 + 1e-5), threshold, side="left"))
        essential = terms[np.sort(weakest[alone:])]
        docs = self._postings(essential) if len(essential) else first[:0]
        return docs, self._scores(tokens, docs)

    def _keep_for_retrieve(self, vocab: dict[str, int]) -> None:
        """bm25s' retrieve (methods with a non-occurrence score) reads the index, the vocabulary
        and the query terms from the retriever, as its own index would leave them."""
        td = self.term_doc
        vocab.setdefault("", len(vocab))  # bm25s' empty token, after the corpus terms
        self.retriever.scores = {"data": td.data, "indices": td.indices, "indptr": td.indptr, "num_docs": td.shape[1]}
        self.retriever.vocab_dict = vocab
        self.retriever.unique_token_ids_set = set(vocab.values())
        self.terms = list(vocab)  # term id -> term

    def _retrieve(self, query_ids: Any, depth: int) -> tuple[Any, Any]:
        """bm25s' retrieve of the queries that have a corpus term; the others have no candidate."""
        import numpy as np

        tokens_of = self.query_tokens_matrix
        tokens = [[self.terms[t] for t in tokens_of.indices[tokens_of.indptr[q] : tokens_of.indptr[q + 1]].tolist()]
                  for q in query_ids.tolist()]
        out_s = np.zeros((len(tokens), depth), dtype=np.float32)
        out_i = np.full((len(tokens), depth), -1, dtype=np.int64)
        rows = [r for r, t in enumerate(tokens) if t]
        if rows:
            docs, scores = self.retriever.retrieve([tokens[r] for r in rows], k=depth, show_progress=False, n_threads=0)
            scores = np.asarray(scores, dtype=np.float32)
            out_s[rows] = scores
            out_i[rows] = np.where(scores > 0, np.asarray(docs, dtype=np.int64), -1)
        return out_s, out_i

    def score(self, query_ids: Any, doc_ids: Any, block: int = 65536) -> Any:
        """bm25s' scores of the (query, text) pairs, to the bit: a text's term scores added in
        float32 in the query's token order (then the non-occurrence sum of bm25l and bm25+), as
        bm25s adds them; ``block`` pairs at a time."""
        import numpy as np

        query_ids, doc_ids = np.asarray(query_ids, dtype=np.int64), np.asarray(doc_ids, dtype=np.int64)
        out = np.zeros(len(query_ids), dtype=np.float32)
        tokens_of = self.query_tokens_matrix
        counts = np.diff(tokens_of.indptr)
        for start in range(0, len(query_ids), block):
            queries, docs = query_ids[start : start + block], doc_ids[start : start + block]
            first, lengths = tokens_of.indptr[queries], counts[queries]
            scores = np.zeros(len(queries), dtype=np.float32)
            for k in range(int(lengths.max(initial=0))):
                has = np.flatnonzero(lengths > k)
                scores[has] += self._lookup(tokens_of.indices[first[has] + k], docs[has])
            extra = self.retriever.nonoccurrence_array
            if extra is not None:
                scores += np.array([extra[tokens_of.indices[tokens_of.indptr[q] : tokens_of.indptr[q + 1]]].sum()
                                    for q in queries.tolist()], dtype=np.float32)
            out[start : start + block] = scores
        return out

    def _lookup(self, terms: Any, docs: Any) -> Any:
        """The score of term ``terms[i]`` in text ``docs[i]`` for every ``i`` (0 where the text
        does not hold the term): a bisection in each term's sorted postings, all at once."""
        import numpy as np

        indptr, indices, data = self.term_doc.indptr, self.term_doc.indices, self.term_doc.data
        lo, hi = indptr[terms].astype(np.int64), indptr[terms + 1].astype(np.int64)
        end, last = hi.copy(), max(len(indices) - 1, 0)
        active = lo < hi
        while active.any():
            mid = (lo + hi) // 2
            right = indices[np.minimum(mid, last)] < docs
            lo = np.where(active & right, mid + 1, lo)
            hi = np.where(active & ~right, mid, hi)
            active = lo < hi
        found = lo < end
        found[found] = indices[lo[found]] == docs[found]
        return np.where(found, data[np.minimum(lo, last)], np.float32(0))


def top_of_row(docs: Any, scores: Any, depth: int) -> tuple[Any, Any]:
    """The ``depth`` best positive ``scores`` of one sparse row and their ``docs``, best first,
    ties by lower document position; O(nonzeros) plus a sort of the kept ones."""
    import numpy as np

    positive = scores > 0
    if not positive.all():
        docs, scores = docs[positive], scores[positive]
    if len(scores) > depth:
        threshold = np.partition(scores, len(scores) - depth)[len(scores) - depth]
        keep = scores >= threshold
        docs, scores = docs[keep], scores[keep]
    order = np.lexsort((docs, -scores))[:depth]
    return docs[order].astype(np.int64), scores[order]


class BM25Miner(RetrievalMiner):
    """Lexical hard negatives: BM25 top-k (bm25s), through the guards."""

    name = "bm25"

    @attrs.frozen
    class Options(GuardOptions):
        k1: Annotated[float, Range(ge=0), "BM25 term-frequency saturation"] = 1.5
        b: Annotated[float, Range(ge=0, le=1), "BM25 length normalisation"] = 0.75
        method: Annotated[Literal["lucene", "robertson", "atire", "bm25l", "bm25+"], "BM25 variant (bm25s)"] = "lucene"
        stopwords: Annotated[str | None, "stopword list for bm25s' tokenizer (none: keep all words)"] = "en"
        backend: Annotated[Literal["numpy", "numba", "auto"], "bm25s retrieval backend"] = "numpy"

    def source(self, data: Any, request: Any) -> CandidateSource:
        o = self.options
        return BM25Source(data, k1=o.k1, b=o.b, method=o.method, stopwords=o.stopwords, backend=o.backend)


# -- partial match ------------------------------------------------------------------------------
_WORD = re.compile(r"(?u)\b\w\w+\b")


def entity_terms(text: str) -> set[str]:
    """Words that look like names or codes: capitalised after the first word, all capitals, or
    containing a digit (lower-cased)."""
    out = set()
    for i, match in enumerate(_WORD.finditer(text)):
        word = match.group(0)
        if any(c.isdigit() for c in word) or (len(word) > 1 and word.isupper()) or (i > 0 and word[0].isupper()):
            out.add(word.lower())
    return out


class OverlapSource(CandidateSource):
    """Candidates sharing key terms with the query, ranked by the share of the query's key-term
    weight they cover (IDF-weighted content words, entity-like words weighted up).

    Texts covering more than ``max_overlap`` of it are likely relevant and are dropped
    (reason ``max_overlap``); texts sharing fewer than ``min_shared`` terms are no candidates."""

    name = "overlap"

    def __init__(self, data: Any, *, stopwords: str | None = "en", entity_weight: float = 2.0, min_shared: int = 1, max_overlap: float = 0.8, block: int = 64):
        super().__init__()
        import numpy as np
        import scipy.sparse as sp

        self.data = data
        self.min_shared = min_shared
        self.max_overlap = max_overlap
        self.block = block
        doc_tokens = bm25_tokenize(data.corpus, stopwords)
        query_tokens = bm25_tokenize(data.queries, stopwords)
        vocab: dict[str, int] = {}
        rows, cols = [], []
        for d, tokens in enumerate(doc_tokens):
            for t in set(tokens) - {""}:
                rows.append(d)
                cols.append(vocab.setdefault(t, len(vocab)))
        n_docs, n_terms = len(data.corpus), max(len(vocab), 1)
        self.doc_term = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n_docs, n_terms))
        df = np.bincount(np.asarray(cols, dtype=np.int64), minlength=n_terms)
        idf = np.log1p((n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
        q_rows, q_cols, q_vals = [], [], []
        for q, tokens in enumerate(query_tokens):
            entities = entity_terms(data.queries[q])
            for t in set(tokens):
                if t in vocab:
                    q_rows.append(q)
                    q_cols.append(vocab[t])
                    q_vals.append(idf[vocab[t]] * (entity_weight if t in entities else 1.0))
        self.query_weight = sp.csr_matrix((np.asarray(q_vals, dtype=np.float32), (q_rows, q_cols)), shape=(len(data.queries), n_terms))
        self.query_binary = self.query_weight.copy()
        self.query_binary.data[:] = 1.0
        self.query_total = np.asarray(self.query_weight.sum(axis=1)).ravel().astype(np.float32)
        self.doc_size = np.maximum(np.diff(self.doc_term.indptr), 1).astype(np.float32)
        self.dropped = {"max_overlap": 0}

    def search(self, query_ids: Any, depth: int) -> tuple[Any, Any]:
        import numpy as np

        out_s = np.full((len(query_ids), depth), -np.inf, dtype=np.float32)
        out_i = np.full((len(query_ids), depth), -1, dtype=np.int64)
        doc_t = self.doc_term.T.tocsr()
        for start in range(0, len(query_ids), self.block):
            qids = query_ids[start : start + self.block]
            weight = (self.query_weight[qids] @ doc_t).tocsr()
            shared = (self.query_binary[qids] @ doc_t).tocsr()
            for r, q in enumerate(qids.tolist()):
                lo, hi = weight.indptr[r], weight.indptr[r + 1]
                docs = weight.indices[lo:hi].astype(np.int64)
                if not len(docs) or self.query_total[q] <= 0:
                    continue
                overlap = weight.data[lo:hi] / self.query_total[q]
                count = np.asarray(shared[r, docs].todense()).ravel()
                ok = count >= self.min_shared
                docs, overlap, count = docs[ok], overlap[ok], count[ok]
                over = overlap > self.max_overlap + 1e-6
                if over.any():
                    positive = self.data.is_known_positive(np.full(int(over.sum()), q), docs[over])
                    self.dropped["max_overlap"] += int((~positive).sum())
                    self.seen_extra += int((~positive).sum())
                docs, overlap, count = docs[~over], overlap[~over], count[~over]
                focus = count / self.doc_size[docs]
                order = np.lexsort((docs, -focus, -overlap))[:depth]
                out_s[r, : len(order)] = overlap[order]
                out_i[r, : len(order)] = docs[order]
        return out_s, out_i

    def score(self, query_ids: Any, doc_ids: Any) -> Any:
        import numpy as np

        query_ids, doc_ids = np.asarray(query_ids), np.asarray(doc_ids)
        if len(query_ids) == 0:
            return np.zeros(0, dtype=np.float32)
        weight = np.asarray(self.doc_term[doc_ids].multiply(self.query_weight[query_ids]).sum(axis=1)).ravel()
        total = self.query_total[query_ids]
        return np.where(total > 0, weight / np.where(total > 0, total, 1), 0).astype(np.float32)


class PartialMatchMiner(RetrievalMiner):
    """Negatives that share key terms or names with the query without covering it, through the guards."""

    name = "partial-match"

    @attrs.frozen
    class Options(GuardOptions):
        stopwords: Annotated[str | None, "stopword list for bm25s' tokenizer"] = "en"
        entity_weight: Annotated[float, Range(ge=0), "weight factor of name- or code-like query words"] = 2.0
        min_shared: Annotated[int, Range(ge=1), "a candidate shares at least this many key terms with the query"] = 1
        max_overlap: Annotated[float, Range(gt=0, le=1),
                               "drop candidates covering more than this share of the query's key-term weight"] = 0.8

    def source(self, data: Any, request: Any) -> CandidateSource:
        o = self.options
        return OverlapSource(data, stopwords=o.stopwords, entity_weight=o.entity_weight, min_shared=o.min_shared,
                             max_overlap=o.max_overlap)


# -- domain confusion ---------------------------------------------------------------------------
class PoolSource(CandidateSource):
    """Dense top-k of each query within its own pool of corpus texts (``pool_of[q]`` names a
    pool of ``pools``)."""

    name = "dense"
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

    faiss = _faiss()
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


class DomainConfusionMiner(RetrievalMiner):
    """Negatives from the nearest other category (or k-means cluster of the corpus embeddings)."""

    name = "domain-confusion"

    @attrs.frozen
    class Options(GuardOptions):
        clusters: Annotated[int | None, Range(ge=2),
                            "k-means clusters when there are no categories (default: sqrt(corpus/2), 2 to 100)"] = None
        neighbours: Annotated[int, Range(ge=1), "how many nearest other categories negatives come from"] = 1

    def source(self, data: Any, request: Any) -> CandidateSource:
        import numpy as np

        from embedtune_core.errors import ConfigError, DataError

        encoder = request_encoder(request, self.name)
        corpus_emb = _embed(encoder, data.corpus)
        query_emb = _embed(encoder, data.queries)
        if data.categories is not None and any(c is not None for c in data.categories):
            names = list(dict.fromkeys(c for c in data.categories if c is not None))
            index = {c: i for i, c in enumerate(names)}
            labels = np.array([index.get(c, -1) if c is not None else -1 for c in data.categories], dtype=np.int64)
            if len(names) < 2:
                raise DataError(f"domain-confusion needs at least 2 categories, the data has {len(names)}")
            centroids = np.stack([corpus_emb[labels == i].mean(axis=0) for i in range(len(names))])
            centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
            how = "categories"
        else:
            k = self.options.clusters or int(min(100, max(2, round((len(data.corpus) / 2) ** 0.5))))
            if k < 2 or k > len(data.corpus):
                raise ConfigError(f"clusters must be between 2 and the corpus size ({len(data.corpus)}), got {k}", key="mining.options.clusters")
            labels, centroids = kmeans(corpus_emb, k, request.seed)
            names = [f"cluster-{i}" for i in range(k)]
            how = "k-means"
        n_groups = len(names)
        neighbours = max(1, min(self.options.neighbours, n_groups - 1))
        similarity = centroids @ centroids.T
        np.fill_diagonal(similarity, -np.inf)
        nearest = np.argsort(-similarity, axis=1, kind="stable")[:, :neighbours]
        # each query belongs to the group of its positives (the most common), else its nearest centroid
        group_of = np.empty(len(data.queries), dtype=np.int64)
        for q, positives in enumerate(data.query_positives):
            found = labels[positives]
            found = found[found >= 0]
            group_of[q] = np.bincount(found).argmax() if len(found) else int(np.argmax(centroids @ query_emb[q]))
        pools = {g: np.flatnonzero(np.isin(labels, nearest[g])) for g in range(n_groups)}
        self.groups = {
            "groups": how,
            "group_count": n_groups,
            "nearest": {names[g]: [names[h] for h in nearest[g].tolist()] for g in range(min(n_groups, 50))},
        }
        return PoolSource(query_emb, corpus_emb, group_of, pools, device=_device(request))

    def mine(self, request: Any) -> Any:
        result = super().mine(request)
        result.stats.extra.update(getattr(self, "groups", {}))
        return result


# -- contradiction ------------------------------------------------------------------------------
NLI_LABEL_NAMES = {"entailment": 0, "neutral": 1, "contradiction": 2}


def _nli_label(value: Any, record: int) -> int:
    from embedtune_core.errors import DataError

    if isinstance(value, str) and value.strip().lower() in NLI_LABEL_NAMES:
        return NLI_LABEL_NAMES[value.strip().lower()]
    if isinstance(value, (int,)) and not isinstance(value, bool) and value in (0, 1, 2):
        return int(value)
    raise DataError(
        f"NLI label must be 0/1/2 or entailment/neutral/contradiction, got {value!r}", record=record, key="label"
    )


class ContradictionMiner:
    """NLI: a premise's contradiction hypotheses are its negatives, its entailments its positives.

    Takes NLI records (premise, hypothesis, label), or rows whose negatives are already
    labelled (the (anchor, positive, negative) triplets training data is built from NLI): then
    all labelled negatives of an anchor are pooled as its candidates.

    Options: ``sampling`` (top: the first n contradictions in data order; random: a seeded
    sample), ``short`` (fill, the default, with random hypotheses of other premises; or drop). Contradictions
    are labelled negatives, so no score margin applies; a contradiction whose text equals one of
    the premise's entailments (or the premise) is dropped as a likely false negative.
    """

    name = "contradiction"

    def __init__(
        self,
        sampling: Annotated[Literal["top", "random"], "top: the first n contradictions; random: a seeded sample"] = "top",
        short: Annotated[Literal["fill", "drop"], "premises with fewer contradictions than asked: fill with other "
                                                  "premises' hypotheses, or drop"] = "fill",
    ) -> None:
        self.sampling, self.short = sampling, short

    @staticmethod
    def group(dataset: Any) -> tuple[dict, dict, dict, int]:
        """``(premise by key, entailments by key, contradictions by key, neutral count)`` from NLI
        records, or from (anchor, positive, negative...) rows whose negatives are labelled ones
        (the triplets training data built from NLI)."""
        from embedtune_core.data.loading import normalise_text
        from embedtune_core.errors import DataError

        columns = list(getattr(dataset, "column_names", []) or [])
        premises: dict[str, str] = {}
        entail: dict[str, list[str]] = {}
        contra: dict[str, list[str]] = {}
        neutral = 0
        if {"premise", "hypothesis", "label"} <= set(columns):
            records = zip(dataset["premise"], dataset["hypothesis"], dataset["label"])
            for i, (premise, hypothesis, label) in enumerate(records):
                if not isinstance(premise, str) or not isinstance(hypothesis, str) or not premise.strip() or not hypothesis.strip():
                    raise DataError("premise and hypothesis must be non-empty text", record=i + 1)
                key = normalise_text(premise)
                premises.setdefault(key, premise)
                label = _nli_label(label, i + 1)
                if label == 0:
                    entail.setdefault(key, []).append(hypothesis)
                elif label == 2:
                    contra.setdefault(key, []).append(hypothesis)
                else:
                    neutral += 1
            return premises, entail, contra, neutral
        negative_columns = [c for c in columns if c == "negative" or re.fullmatch(r"negative_\d+", c)]
        if {"anchor", "positive"} <= set(columns) and negative_columns:
            rows = zip(dataset["anchor"], dataset["positive"], *[dataset[c] for c in negative_columns])
            for i, (anchor, positive, *negatives) in enumerate(rows):
                if not all(isinstance(t, str) and t.strip() for t in (anchor, positive, *negatives)):
                    raise DataError("anchor, positive and negatives must be non-empty text", record=i + 1)
                key = normalise_text(anchor)
                premises.setdefault(key, anchor)
                entail.setdefault(key, []).append(positive)
                contra.setdefault(key, []).extend(negatives)
            return premises, entail, contra, neutral
        raise DataError(
            "the contradiction miner needs NLI data (premise, hypothesis, label) or rows with labelled negatives",
            hint=f"columns found: {', '.join(columns) or 'none'}; use --type nli",
        )

    def mine(self, request: Any) -> Any:
        import attrs
        import datasets
        import numpy as np

        from embedtune_core.data.loading import normalise_text
        from embedtune_core.errors import DataError
        from embedtune_core.mining.miner import check_request
        from embedtune_core.mining.output import build_result
        from embedtune_core.mining.pairs import prepare_pairs
        from embedtune_core.mining.selection import Selection, fill_short
        from embedtune_core.types import MiningStats

        check_request(request)
        premises, entail, contra, neutral = self.group(request.dataset)
        keys = [k for k in premises if k in entail]
        if not keys:
            raise DataError("the data has no entailment (positive): no (premise, positive) pair to add negatives to")
        pairs = datasets.Dataset.from_dict(
            {
                "anchor": [premises[k] for k in keys for _ in dict.fromkeys(entail[k])],
                "positive": [h for k in keys for h in dict.fromkeys(entail[k])],
            }
        )
        hypotheses = list(dict.fromkeys(h for k in premises for h in contra.get(k, []) + entail.get(k, [])))
        corpus = list(dict.fromkeys(hypotheses + list(request.corpus or [])))
        data = prepare_pairs(attrs.evolve(request, dataset=pairs, corpus=corpus, categories=None))
        where = {t: i for i, t in enumerate(data.corpus)}
        n = request.num_negatives
        stats = MiningStats()
        dropped = {"known_positive": 0, "same_text": 0}
        negatives = np.full((len(data.queries), n), -1, dtype=np.int64)
        rng = np.random.default_rng(request.seed)
        for q, anchor in enumerate(data.queries):
            candidates = np.array([where[h] for h in dict.fromkeys(contra.get(normalise_text(anchor), []))], dtype=np.int64)
            stats.candidates_seen += len(candidates)
            if not len(candidates):
                continue
            qs = np.full(len(candidates), q)
            known = data.is_known_positive(qs, candidates)
            same = ~known & data.is_same_text(qs, candidates)
            dropped["known_positive"] += int(known.sum())
            dropped["same_text"] += int(same.sum())
            candidates = candidates[~known & ~same]
            if self.sampling == "random" and len(candidates) > n:
                candidates = candidates[np.sort(rng.choice(len(candidates), size=n, replace=False))]
            negatives[q, : min(n, len(candidates))] = candidates[:n]
        stats.extra["dropped"] = dropped
        selection = Selection(negatives=negatives, scores=None, positive_scores=np.zeros(len(data.queries), dtype=np.float32))
        if self.short == "fill":
            zero = lambda qs, ds: np.zeros(len(ds), dtype=np.float32)  # noqa: E731
            pool = np.array([where[h] for h in corpus], dtype=np.int64)
            selection.scores = np.zeros(negatives.shape, dtype=np.float32)
            fill_short(data, selection, GuardOptions(relative_margin=None), zero, rng, np.arange(len(data.queries)), stats, pool=pool)
        result = build_result(data, selection, request, stats, score_gaps=False)
        if request.encoder is not None:
            result.stats.mean_score_gap = _encoder_gap(request.encoder, result.dataset)
        result.stats.extra.update(
            {
                "premises": len(premises),
                "premises_without_entailment": len(premises) - len(keys),
                "neutral_ignored": neutral,
                "score": "labels (no scores)" if request.encoder is None else "model cosine scores",
            }
        )
        return result


def _row_scores(encoder: Any, dataset: Any) -> tuple[Any, Any]:
    """``(positive score per row, negative scores per row [rows, n])`` by the encoder's cosine."""
    import numpy as np

    columns = [c for c in dataset.column_names if c.startswith("negative")]
    texts = list(dict.fromkeys(list(dataset["anchor"]) + list(dataset["positive"]) + [t for c in columns for t in dataset[c]]))
    if not texts:
        return np.zeros(0, dtype=np.float32), np.zeros((0, len(columns)), dtype=np.float32)
    emb = _embed(encoder, texts)
    at = {t: i for i, t in enumerate(texts)}
    a = emb[[at[t] for t in dataset["anchor"]]]
    pos = np.einsum("ij,ij->i", a, emb[[at[t] for t in dataset["positive"]]])
    neg = np.stack([np.einsum("ij,ij->i", a, emb[[at[t] for t in dataset[c]]]) for c in columns], axis=1)
    return pos.astype(np.float32), neg.astype(np.float32)


def _encoder_gap(encoder: Any, dataset: Any) -> float | None:
    if len(dataset) == 0:
        return None
    pos, neg = _row_scores(encoder, dataset)
    return float((pos[:, None] - neg).mean())


# -- curriculum ---------------------------------------------------------------------------------
class CachingEncoder:
    """Wraps an encoder so that each distinct text is encoded once."""

    def __init__(self, encoder: Any) -> None:
        self.encoder = encoder
        self.index: dict[str, int] = {}
        self.blocks: list[Any] = []
        self._stacked = None

    def __call__(self, texts: Any) -> Any:
        import numpy as np

        texts = list(texts)
        missing = [t for t in dict.fromkeys(texts) if t not in self.index]
        if missing:
            emb = np.asarray(self.encoder(missing), dtype=np.float32)
            base = len(self.index)
            for i, t in enumerate(missing):
                self.index[t] = base + i
            self.blocks.append(emb)
            self._stacked = None
        if self._stacked is None:
            if not self.blocks:
                return np.zeros((0, 0), dtype=np.float32)
            self._stacked = np.concatenate(self.blocks) if len(self.blocks) > 1 else self.blocks[0]
            self.blocks = [self._stacked]
        return self._stacked[[self.index[t] for t in texts]]


class CurriculumMiner:
    """Wraps another miner and orders its rows from easy to hard negatives, by score band.

    Each row's hardness is the mean cosine of its negatives to the anchor minus the positive's
    (by the model); rows are cut into ``bands`` equal-size bands of hardness. ``schedule``:
    ``sequential`` writes band 1 (easiest) to band N once each; ``cumulative`` writes N stages,
    stage k holding bands 1..k (easy rows repeat, the data grows harder stage by stage). Rows
    are shuffled within a band (stage) unless ``shuffle_within`` is false. It is registered with
    ``ordered=True``, so the pipeline trains its rows in this order (a sequential sampler).
    """

    name = "curriculum"

    @attrs.frozen
    class Options:
        base: Annotated[str, "the miner whose negatives are ordered"] = "dense"
        base_options: Annotated[dict, "options of the base miner"] = attrs.field(factory=dict)
        bands: Annotated[int, Range(ge=1), "number of hardness bands"] = 3
        schedule: Annotated[Literal["sequential", "cumulative"], "bands once each, or growing stages"] = "sequential"
        shuffle_within: Annotated[bool, "shuffle rows within a band (else sort them by hardness)"] = True

    def __init__(self, *, registry: Any, **options: Any) -> None:
        self.options = self.Options(**options)
        self.base = registry.create("negative_miner", self.options.base, **dict(self.options.base_options))

    def mine(self, request: Any) -> Any:
        import attrs
        import numpy as np

        from embedtune_core.mining.miner import check_request

        check_request(request)
        encoder = CachingEncoder(request_encoder(request, self.name))
        result = self.base.mine(attrs.evolve(request, encoder=encoder))
        dataset, stats = result.dataset, result.stats
        bands = self.options.bands
        if len(dataset) == 0:
            stats.extra.update({"base": self.options.base, "bands": []})
            return result
        pos, neg = _row_scores(encoder, dataset)
        hardness = neg.mean(axis=1) - pos
        rng = np.random.default_rng(request.seed)
        rank = np.empty(len(hardness), dtype=np.int64)
        rank[np.argsort(hardness, kind="stable")] = np.arange(len(hardness))
        band = np.minimum(rank * bands // len(hardness), bands - 1)

        def arrange(rows: Any) -> Any:
            if self.options.shuffle_within:
                return rng.permutation(rows)
            return rows[np.argsort(hardness[rows], kind="stable")]

        order = []
        summary = []
        for b in range(bands):
            rows = np.flatnonzero(band == b)
            summary.append(
                {
                    "band": b + 1,
                    "rows": int(len(rows)),
                    "hardness_min": float(hardness[rows].min()) if len(rows) else None,
                    "hardness_max": float(hardness[rows].max()) if len(rows) else None,
                }
            )
            if self.options.schedule == "cumulative":
                order.append(arrange(np.flatnonzero(band <= b)))
            else:
                order.append(arrange(rows))
        order = np.concatenate(order) if order else np.zeros(0, dtype=np.int64)
        result.dataset = dataset.select(order.tolist())
        stats.extra.update(
            {
                "base": self.options.base,
                "schedule": self.options.schedule,
                "bands": summary,
                "rows_out": len(order),
            }
        )
        if result.stats.mean_score_gap is None:
            result.stats.mean_score_gap = float(-hardness.mean())
        return result


@hookimpl
def register_negative_miners(register):
    register("bm25", BM25Miner, description="lexical top-k with BM25 (bm25s), through the false-negative guards",
             model="guards")
    register("dense", DenseMiner, description="top-k by the model's cosine similarity, through the false-negative guards",
             model="required", default_for=ROW_TYPES)
    register("contradiction", ContradictionMiner,
             description="NLI: a premise's contradiction hypotheses (or labelled negatives) as its negatives",
             model="no", input="nli", accepts=("nli", "triplets", "hard-negatives"))
    register("partial-match", PartialMatchMiner,
             description="texts sharing key terms or names with the query without covering it", model="guards")
    register("domain-confusion", DomainConfusionMiner,
             description="negatives from the nearest other category or k-means cluster", model="required")
    register("curriculum", CurriculumMiner, description="wraps a miner and orders its rows from easy to hard negatives",
             model="required", ordered=True, wraps="base")
