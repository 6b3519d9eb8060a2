"""The bm25 miner's index, built a block of texts at a time: bm25s' own tokens and float32
scores, bit for bit, for every BM25 variant, across block edges."""

import numpy as np
import pytest

METHODS = ["lucene", "robertson", "atire", "bm25l", "bm25+"]


def texts(seed, n, length):
    """Zipf-distributed words with stopwords, punctuation, case and repeats; some texts are only
    stopwords (no token at all)."""
    rng = np.random.default_rng(seed)
    words = [f"W{i}x" if i % 7 else f"w{i}y," for i in range(400)] + ["the", "and", "of"]
    out = []
    for i in range(n):
        if i % 17 == 3:
            out.append("the and of")
            continue
        picks = np.minimum(rng.zipf(1.4, int(rng.integers(1, length))) - 1, len(words) - 1)
        out.append(" ".join(words[p] for p in picks))
    return out


def by_term(matrix, terms):
    """{(text, term): score} of a (texts x term ids) sparse matrix, explicit zeros kept."""
    coo = matrix.tocoo()
    return {(int(d), terms[t]): float(v) for d, t, v in zip(coo.row, coo.col, coo.data)}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("stopwords", ["en", None])
def test_postings_equal_bm25s_index(method, stopwords):
    import bm25s
    import scipy.sparse as sp

    from embedtune_core.mining.bm25_index import bm25_postings, token_ids

    corpus = texts(1, 300, 40)
    vocab = {}
    tokens = token_ids(corpus, vocab, stopwords, block=7)
    ours = bm25s.BM25(method=method)
    matrix = bm25_postings(ours, tokens, len(vocab), block=5)
    reference = bm25s.BM25(method=method)
    reference.index(bm25s.tokenize(corpus, stopwords=stopwords, show_progress=False), show_progress=False)
    s = reference.scores
    n_terms = len(s["indptr"]) - 1
    ref_matrix = sp.csc_matrix((s["data"], s["indices"], s["indptr"]), shape=(len(corpus), n_terms))
    ref_terms = {i: t for t, i in reference.vocab_dict.items()}
    terms = list(vocab)
    assert len(terms) == n_terms
    assert matrix.data.dtype == np.float32 and matrix.has_sorted_indices
    assert by_term(matrix, terms) == by_term(ref_matrix, ref_terms)  # every score, to the bit
    if reference.nonoccurrence_array is None:
        assert ours.nonoccurrence_array is None
    else:
        expected = reference.nonoccurrence_array[[reference.vocab_dict[t] for t in terms]]
        np.testing.assert_array_equal(ours.nonoccurrence_array, expected)


def test_token_ids_are_bm25s_tokens_in_order():
    import bm25s

    from embedtune_core.mining.bm25_index import token_ids

    corpus, queries = texts(2, 120, 30), texts(3, 50, 12) + ["unseen words only", ""]
    vocab = {}
    corpus_tokens = token_ids(corpus, vocab, block=11)
    size = len(vocab)
    query_tokens = token_ids(queries, vocab, grow=False, block=4)
    assert len(vocab) == size  # queries add no term
    terms = list(vocab)
    expected = bm25s.tokenize(corpus, stopwords="en", return_ids=False, show_progress=False)
    assert [[terms[t] for t in corpus_tokens.ids[a:b]] for a, b in zip(corpus_tokens.indptr, corpus_tokens.indptr[1:])] == expected
    expected = [[t for t in q if t in vocab] for q in bm25s.tokenize(queries, stopwords="en", return_ids=False, show_progress=False)]
    got = [[terms[t] for t in query_tokens.ids[a:b]] for a, b in zip(query_tokens.indptr, query_tokens.indptr[1:])]
    assert got == expected
    assert got[-2:] == [[], []]


@pytest.mark.parametrize("method", ["bm25l", "bm25+"])
def test_nonoccurrence_methods_retrieve_as_bm25s(method):
    """bm25l and bm25+ go through bm25s' retrieve on the index built here: the same texts and
    scores as bm25s' retrieve on its own index; a query with no corpus term has no candidate."""
    import bm25s

    from embedtune_core.mining.pairs import PairData
    from embedtune_plugins.miners import BM25Source

    corpus, queries = texts(4, 200, 30), texts(5, 40, 10) + ["zzz qqq"]
    data = PairData(anchors=queries, positives=corpus[: len(queries)], queries=queries, row_query=np.arange(len(queries)),
                    corpus=corpus, row_positive=np.arange(len(queries)), query_positives=[], text_group=None,
                    anchor_group=None)
    source = BM25Source(data, method=method)
    scores, idx = source.search(np.arange(len(queries)), 10)
    reference = bm25s.BM25(method=method)
    reference.index(bm25s.tokenize(corpus, show_progress=False), show_progress=False)
    tokens = bm25s.tokenize(queries, return_ids=False, show_progress=False)
    for q, query in enumerate(tokens):
        known = [t for t in query if t in reference.vocab_dict and t]
        if not known:
            assert (idx[q] == -1).all()
            continue
        docs, values = reference.retrieve([known], k=10, show_progress=False, n_threads=0)
        np.testing.assert_array_equal(scores[q], values[0])
        assert idx[q].tolist() == np.where(values[0] > 0, docs[0], -1).tolist()


@pytest.mark.parametrize("method", ["lucene", "bm25l"])
def test_pair_scores_are_bm25s_scores(method):
    """BM25Source.score of any (query, text) pairs, a few pairs at a time: bm25s' get_scores of
    the query at that text, bit for bit (repeated query words, texts without a query word, a query
    with no corpus word)."""
    import bm25s

    from embedtune_core.mining.pairs import PairData
    from embedtune_plugins.miners import BM25Source

    corpus, queries = texts(6, 150, 30), texts(7, 30, 14) + ["zzz qqq", "the and"]
    data = PairData(anchors=queries, positives=corpus[: len(queries)], queries=queries, row_query=np.arange(len(queries)),
                    corpus=corpus, row_positive=np.arange(len(queries)), query_positives=[], text_group=None,
                    anchor_group=None)
    source = BM25Source(data, method=method)
    reference = bm25s.BM25(method=method)
    reference.index(bm25s.tokenize(corpus, show_progress=False), show_progress=False)
    tokens = bm25s.tokenize(queries, return_ids=False, show_progress=False)
    rng = np.random.default_rng(0)
    q = np.repeat(np.arange(len(queries)), 20)
    d = rng.integers(0, len(corpus), len(q))
    expected = np.array([reference.get_scores(tokens[i])[j] if tokens[i] else 0.0 for i, j in zip(q, d)], dtype=np.float32)
    np.testing.assert_array_equal(source.score(q, d, block=7), expected)
    assert (expected != 0).sum() > 100
    assert len(source.score(q[:0], d[:0])) == 0
