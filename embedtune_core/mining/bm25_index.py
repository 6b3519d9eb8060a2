"""BM25 postings for the bm25 miner in bounded memory, equal to bm25s' own index.

``bm25s.BM25.index`` takes a Python list of token lists (a str or an int object per token) and
counts with a set and a dict over the whole vocabulary: at a million texts that holds gigabytes.
Here texts are tokenized with bm25s' tokenizer a block at a time into flat int32 term ids
(:class:`TokenIds`), each text's term frequencies are counted with numpy, and bm25s' own
formulas (its idf and term-frequency functions, on whole blocks) give the scores, so every score
is the float32 bm25s computes, bit for bit. Only the term ids differ: here they number the terms
in the order they are first seen.
"""

from __future__ import annotations

from typing import Any

#: texts tokenized, or counted, at a time
BLOCK = 8192


class TokenIds:
    """Term ids of texts, flat: text ``i``'s are ``ids[indptr[i]:indptr[i + 1]]`` (int32), in
    the text's token order."""

    def __init__(self, ids: Any, indptr: Any) -> None:
        self.ids = ids
        self.indptr = indptr

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def lengths(self) -> Any:
        import numpy as np

        return np.diff(self.indptr)

    def matrix(self, n_terms: int) -> Any:
        """A (texts x terms) float32 CSR matrix with a 1 per token, in token order (a term
        repeated in a text is repeated here, not summed)."""
        import numpy as np
        import scipy.sparse as sp

        ones = np.ones(len(self.ids), dtype=np.float32)
        return sp.csr_matrix((ones, self.ids, self.indptr), shape=(len(self), n_terms))


def token_ids(texts: Any, vocab: dict[str, int], stopwords: str | None = "en", *, grow: bool = True,
              block: int = BLOCK) -> TokenIds:
    """bm25s' tokens of ``texts`` (lower-cased words of 2+ characters, ``stopwords`` removed) as
    ids of ``vocab`` (term -> id), a block of texts at a time. With ``grow`` a term not in
    ``vocab`` gets the next id; without, it is left out."""
    import itertools

    import bm25s
    import numpy as np

    parts, counts = [], []
    for start in range(0, len(texts), block):
        tokenized = bm25s.tokenize(list(texts[start : start + block]), stopwords=stopwords, show_progress=False)
        if grow:
            remap = [vocab.setdefault(term, len(vocab)) for term in tokenized.vocab]
        else:
            remap = [vocab.get(term, -1) for term in tokenized.vocab]
        lengths = np.fromiter(map(len, tokenized.ids), dtype=np.int64, count=len(tokenized.ids))
        flat = np.fromiter(itertools.chain.from_iterable(tokenized.ids), dtype=np.int64, count=int(lengths.sum()))
        flat = np.asarray(remap, dtype=np.int64)[flat]
        if not grow:
            known = flat >= 0
            rows = np.repeat(np.arange(len(lengths)), lengths)
            lengths = np.bincount(rows[known], minlength=len(lengths))
            flat = flat[known]
        parts.append(flat.astype(np.int32))
        counts.append(lengths)
    indptr = np.zeros(len(texts) + 1, dtype=np.int64)
    if counts:
        np.cumsum(np.concatenate(counts), out=indptr[1:])
    return TokenIds(np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32), indptr)


def _term_frequencies(corpus: TokenIds, start: int, stop: int, n_terms: int) -> tuple[Any, Any, Any]:
    """Texts ``start:stop``: each text's distinct terms (ascending), their frequencies (float32,
    as bm25s counts them) and how many distinct terms each text has."""
    import numpy as np

    ids = corpus.ids[corpus.indptr[start] : corpus.indptr[stop]].astype(np.int64)
    rows = np.repeat(np.arange(stop - start, dtype=np.int64), np.diff(corpus.indptr[start : stop + 1]))
    keys, tf = np.unique(rows * n_terms + ids, return_counts=True)
    distinct = np.bincount(keys // n_terms, minlength=stop - start)
    return (keys % n_terms).astype(np.int32), tf.astype(np.float32), distinct


def _idf(retriever: Any, df: Any, n_docs: int) -> Any:
    """bm25s' idf of every term (float64, 0 where a term is in no text), its function called once
    per distinct document frequency."""
    import numpy as np
    from bm25s.scoring import _select_idf_scorer

    idf_of = _select_idf_scorer(retriever.idf_method)
    values, inverse = np.unique(df, return_inverse=True)
    idf = np.array([idf_of(int(v), N=n_docs) if v else 0.0 for v in values.tolist()], dtype=np.float64)
    return idf[inverse]


def bm25_postings(retriever: Any, corpus: TokenIds, n_terms: int, block: int = BLOCK) -> Any:
    """The (texts x terms) CSR matrix of bm25s' float32 BM25 scores of ``corpus`` with the
    settings of ``retriever`` (a ``bm25s.BM25``), terms ascending in each row; sets
    ``retriever.nonoccurrence_array`` as ``retriever.index`` would."""
    import numpy as np
    import scipy.sparse as sp
    from bm25s.scoring import _select_tfc_scorer

    n_docs = len(corpus)
    lengths = corpus.lengths()
    avg_doc_len = lengths.mean() if n_docs else np.float64(0)
    parts = [_term_frequencies(corpus, start, min(start + block, n_docs), n_terms) for start in range(0, n_docs, block)]
    terms = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, dtype=np.int32)
    distinct = np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, dtype=np.int64)
    parts = [p[1] for p in parts]  # the frequencies, block by block
    idf = _idf(retriever, np.bincount(terms, minlength=n_terms), n_docs)
    tfc = _select_tfc_scorer(retriever.method)
    k1, b, delta = retriever.k1, retriever.b, retriever.delta
    nonoccurrence = None
    if retriever.method in retriever.methods_requiring_nonoccurrence:
        tfc_absent = tfc(tf_array=0, l_d=avg_doc_len, l_avg=avg_doc_len, k1=k1, b=b, delta=delta)
        nonoccurrence = (idf * tfc_absent).astype(retriever.dtype)
    retriever.nonoccurrence_array = nonoccurrence
    idf = idf.astype(retriever.dtype)
    data, at = np.empty(len(terms), dtype=retriever.dtype), 0
    for i, tf in enumerate(parts):
        where, texts = slice(at, at + len(tf)), slice(i * block, (i + 1) * block)
        doc_len = np.repeat(lengths[texts], distinct[texts])  # per (text, term): the text's length in tokens
        values = idf[terms[where]] * tfc(tf_array=tf, l_d=doc_len, l_avg=avg_doc_len, k1=k1, b=b, delta=delta)
        if nonoccurrence is not None:
            values -= nonoccurrence[terms[where]]
        data[where] = values  # float64 to bm25s' float32, as bm25s stores it
        parts[i], at = None, at + len(tf)
    indptr = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(distinct, out=indptr[1:])
    return sp.csr_matrix((data, terms, indptr), shape=(n_docs, n_terms))
