"""Lexical candidate sources for miners: BM25 with bm25s' exact scores over a block-wise index
(:class:`BM25Source`, see :mod:`embedtune_core.mining.bm25_index`), and key-term overlap
(:class:`OverlapSource`: texts sharing names, codes or rare words with the query without covering
it). Built-in miners and packs use them alike."""

from __future__ import annotations

import re
from typing import Any

from embedtune_core.mining.sources import CandidateSource


def bm25_tokenize(texts: list[str], stopwords: str | None = "en") -> list[list[str]]:
    """bm25s' tokenizer (lower-cased words of 2+ characters, English stopwords removed)."""
    import bm25s

    return bm25s.tokenize(list(texts), stopwords=stopwords, return_ids=False, show_progress=False)


class BM25Source(CandidateSource):
    """BM25 top-k with bm25s' scores. A text that shares no term with the query is no candidate.
    The index is built a block of texts at a time (:mod:`embedtune_core.mining.bm25_index`): term ids
    in flat arrays, never a Python list of tokens per text.

    Each query is answered from the postings of its terms in bm25s' term-document score matrix
    with MaxScore pruning: a first threshold comes from the texts of its strongest terms; the
    weakest terms whose summed best scores stay below it cannot put a text in the top-k on their
    own, so only texts holding one of the other terms are scored. The work grows with the
    postings of a query's rarer terms, not with the corpus. The result is exact: scores are
    bm25s' own to the bit (each text's term scores added in float32 in the query's token order,
    as bm25s adds them), ties by lower corpus position. Methods with a non-occurrence score
    (bm25l, bm25+) give every text a score and use bm25s' retrieve."""

    name = "BM25"

    def __init__(self, data: Any, *, k1: float = 1.5, b: float = 0.75, method: str = "lucene", stopwords: str | None = "en", backend: str = "numpy"):
        super().__init__()
        import bm25s
        import numpy as np

        from embedtune_core.mining.bm25_index import bm25_postings, token_ids

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

