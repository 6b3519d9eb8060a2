"""The shared top-k search: exact against numpy, approximate (faiss) with its recall measured."""

import numpy as np
import pytest

from embedtune_core.embedding.search import VectorSearch, top_k


def unit_rows(n, dim, seed, clusters=None):
    rng = np.random.default_rng(seed)
    if clusters:
        centres = rng.normal(size=(clusters, dim))
        x = centres[rng.integers(0, clusters, n)] + 0.3 * rng.normal(size=(n, dim))
    else:
        x = rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def brute_force(queries, corpus, k):
    scores = queries @ corpus.T
    order = np.lexsort((np.broadcast_to(np.arange(len(corpus)), scores.shape), -scores), axis=1)[:, :k]
    return np.take_along_axis(scores, order, axis=1), order


def test_exact_search_equals_numpy_with_ties_by_index():
    corpus = unit_rows(3000, 16, 0)
    corpus[1000:1010] = corpus[5]  # exact ties: the lower index comes first
    queries = np.concatenate([unit_rows(40, 16, 1), corpus[5:6]])
    search = VectorSearch(corpus, device="cpu")
    assert search.backend == "exact" and not search.approximate and search.recall(queries, 10) is None
    scores, idx = search.search(queries, 10)
    want_s, want_i = brute_force(queries, corpus, 10)
    np.testing.assert_array_equal(idx, want_i)
    np.testing.assert_allclose(scores, want_s, atol=1e-6)
    assert idx[-1, :3].tolist() == [5, 1000, 1001]
    s, i = top_k(queries, corpus, 10, device="cpu", corpus_chunk=700, query_chunk=7)
    np.testing.assert_allclose(s, want_s, atol=1e-6)


def test_more_neighbours_than_documents_are_padded():
    corpus = unit_rows(5, 8, 2)
    scores, idx = VectorSearch(corpus, device="cpu").search(unit_rows(3, 8, 3), 8)
    assert idx.shape == (3, 8) and (idx[:, 5:] == -1).all() and np.isneginf(scores[:, 5:]).all()
    assert sorted(idx[0, :5].tolist()) == list(range(5))


@pytest.mark.parametrize("backend", ["ivf", "hnsw"])
def test_approximate_search_reports_the_recall_it_costs(backend):
    pytest.importorskip("faiss")
    corpus = unit_rows(20000, 16, 4, clusters=50)
    queries = unit_rows(600, 16, 5, clusters=50)
    search = VectorSearch(corpus, backend=backend, device="cpu", recall_sample=200, ef_search=32)
    assert search.approximate
    scores, idx = search.search(queries, 10)
    # scores are the exact inner products of what was found, best first
    found = np.einsum("qd,qkd->qk", queries, corpus[idx])
    np.testing.assert_allclose(scores, found, atol=1e-5)
    assert (np.diff(scores, axis=1) <= 0).all()
    # the reported recall is the recall on its seeded sample of queries
    sample = np.sort(np.random.default_rng(0).choice(len(queries), 200, replace=False))
    _, exact = brute_force(queries[sample], corpus, 10)
    measured = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(idx[sample], exact)])
    assert search.recall(queries, 10) == pytest.approx(measured)
    assert 0.5 < measured <= 1.0
    full = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(idx, brute_force(queries, corpus, 10)[1])])
    assert abs(full - measured) < 0.05  # the sample stands for all queries


def test_auto_switches_at_the_size_given():
    pytest.importorskip("faiss")
    corpus = unit_rows(2000, 8, 6)
    assert VectorSearch(corpus, approximate_from=2001, device="cpu").backend == "exact"
    assert VectorSearch(corpus, approximate_from=2000, device="cpu").backend == "hnsw"
    # a few queries do not pay for a graph: IVF lists
    assert VectorSearch(corpus, approximate_from=2000, device="cpu", expected_queries=100).backend == "ivf"
    assert VectorSearch(corpus, approximate_from=None, device="cpu").backend == "exact"
    with pytest.raises(ValueError, match="backend"):
        VectorSearch(corpus, backend="annoy")


def test_an_approximate_search_without_faiss_is_one_clear_error(monkeypatch):
    from embedtune_core.embedding import search
    from embedtune_core.errors import EmbedtuneError

    monkeypatch.setattr(search, "faiss_module", lambda: None)
    with pytest.raises(EmbedtuneError, match="the ivf search needs the faiss package"):
        VectorSearch(unit_rows(100, 8, 7), backend="ivf")


def test_recall_counts_documents_that_tie_with_the_exact_top_k():
    pytest.importorskip("faiss")
    distinct = unit_rows(60, 8, 8)
    corpus = np.repeat(distinct, 200, axis=0)  # 200 equal copies of each vector
    queries = unit_rows(50, 8, 9)
    search = VectorSearch(corpus, backend="ivf", device="cpu", dedupe=False)  # the index below holds every copy
    best = np.argmax(queries @ distinct.T, axis=1)

    class LastCopies:  # an index that finds the highest-numbered copies of the best vector
        def search(self, q, k):
            ids = (best[:, None] * 200 + 200 - k + np.arange(k)).astype(np.int64)
            return np.zeros(ids.shape, np.float32), ids

    search.index = LastCopies()
    _, idx = search.search(queries, 10)
    _, exact = brute_force(queries, corpus, 10)
    assert all(not set(a) & set(b) for a, b in zip(idx, exact))  # no id in common...
    assert search.recall(queries, 10) == 1.0  # ...yet every one scores as the exact top 10


@pytest.mark.parametrize("k", [1, 3, 25, 130, 700])
def test_identical_vectors_are_searched_once_with_the_results_of_every_row(k):
    """A corpus of few distinct vectors, each many times (what an untrained model gives), and a
    batch of repeated queries: the results are those of a search of every row, ties by index."""
    rng = np.random.default_rng(10)
    distinct = unit_rows(12, 8, 11)
    corpus = distinct[rng.integers(0, 12, 600)]
    corpus[::7] = unit_rows(len(corpus[::7]), 8, 12)  # some rows only once
    queries = np.concatenate([unit_rows(5, 8, 13), distinct[[3, 3, 5]], corpus[[0, 7, 7]]])[rng.permutation(11)]
    search = VectorSearch(corpus, device="cpu")
    assert search.groups is not None and len(search.vectors) < 200
    scores, idx = search.search(queries, k)
    want_s, want_i = brute_force(queries, corpus, k)
    assert idx.shape == (len(queries), k) and (idx[:, len(corpus):] == -1).all()  # padded past the corpus
    np.testing.assert_array_equal(idx[:, : len(corpus)], want_i)
    np.testing.assert_allclose(scores[:, : len(corpus)], want_s, atol=1e-6)


def test_an_approximate_index_holds_the_distinct_vectors():
    pytest.importorskip("faiss")
    corpus = np.repeat(unit_rows(300, 8, 14), 20, axis=0)  # 6,000 rows, 300 vectors
    queries = unit_rows(100, 8, 15)
    search = VectorSearch(corpus, backend="ivf", device="cpu", nlist=4, nprobe=4)
    assert search.approximate and search.index.ntotal == 300
    _, idx = search.search(queries, 30)
    np.testing.assert_array_equal(idx, brute_force(queries, corpus, 30)[1])  # every list probed: exact
    assert search.recall(queries, 30) == 1.0


def test_distinct_rows_compares_values_when_hashes_collide(monkeypatch):
    from embedtune_core.embedding import duplicates

    rows = np.array([[1.0, 2.0], [0.0, 0.0], [-0.0, 0.0], [2.0, 1.0], [1.0, 2.0]], dtype=np.float32)
    first, group = duplicates.distinct_rows(rows)
    assert first.tolist() == [0, 1, 3] and group.tolist() == [0, 1, 1, 2, 0]  # -0.0 equals 0.0
    assert duplicates.distinct_rows(rows[[0, 1, 3]]) is None

    class Equal:  # every row hashes alike
        def standard_normal(self, size):
            return np.zeros(size)

    monkeypatch.setattr(duplicates.np.random, "default_rng", lambda seed: Equal())
    first, group = duplicates.distinct_rows(rows[[0, 3, 0]])
    assert first.tolist() == [0, 1] and group.tolist() == [0, 1, 0]
