"""A run ranked once, in trec_eval's order, shared by every metric and cut-off.

:class:`RankedRun` turns a run (``{query: {doc: score}}``) or a model's top-k output into the
relevance grades of each query's ranked documents, ordered the way trec_eval orders a run: by
score descending, then by document id descending (byte order of the ids, as ``strcmp``). It keeps,
per query, the number of relevant documents in the qrels (grade > 0) and their grades sorted
descending (the ideal ranking for NDCG).

Internally it stores only the ranked documents that carry a grade (query row, 0-based rank,
grade), sorted by row then rank; the dense queries x depth :attr:`RankedRun.grades` matrix is built
on first use. The sums metrics need at a cut-off (relevant documents retrieved, precision summed
at relevant ranks, discounted gain, ideal DCG) and the first relevant rank are computed once per
cut-off and cached, so six metrics at three cut-offs rank the run once and sum once per cut-off.
Memory is O(queries x depth) at most, plus the qrels of the counted queries.
"""

from __future__ import annotations

from bisect import bisect_right
from itertools import chain, repeat
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from embedtune_core.errors import EmbedtuneError
from embedtune_core.ranking.arrays import distinct

Qrels = Mapping[str, Mapping[str, int]]
Run = Mapping[str, Mapping[str, float]]


class RankedRun:
    """Relevance grades of each counted query's ranked documents, in trec_eval's order.

    Attributes:
        query_ids: the counted queries, sorted by id (as trec_eval prints them).
        lengths: ``int64[queries]``, how many documents each query ranks (at most ``depth``).
        depth: the longest ranking kept (the ``depth`` asked for, or the longest in the run).
        num_relevant: ``int64[queries]``, documents with grade > 0 in the qrels (retrieved or not).
        hit_rows, hit_ranks, hit_grades: the ranked documents with a non-zero grade: query row,
            0-based rank and grade, sorted by row then rank.
        grades: ``int32[queries, depth]`` (int64 when a grade does not fit in 32 bits; built on
            first use); ``grades[i, r]`` is the grade of
            the document at rank ``r`` for query ``i``: 0 for documents the qrels do not judge
            and past the end of a short ranking.

    Build it with :meth:`from_run` or :meth:`from_topk`.
    """

    def __init__(
        self,
        query_ids: Sequence[str],
        lengths: np.ndarray,
        depth: int,
        hit_rows: np.ndarray,
        hit_ranks: np.ndarray,
        hit_grades: np.ndarray,
        ideal_values: np.ndarray,
        ideal_offsets: np.ndarray,
    ) -> None:
        self.query_ids = list(query_ids)
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.depth = int(depth)
        self.hit_rows = hit_rows
        self.hit_ranks = hit_ranks
        self.hit_grades = hit_grades
        self._ideal_values = ideal_values
        self._ideal_offsets = ideal_offsets
        self.num_relevant = np.diff(ideal_offsets).astype(np.int64)
        self._cache: dict[Any, np.ndarray] = {}

    # -- constructors -----------------------------------------------------------------------
    @classmethod
    def from_run(
        cls,
        qrels: Qrels,
        run: Run,
        depth: int | None = None,
        all_queries: bool = False,
    ) -> "RankedRun":
        """Rank ``run`` against ``qrels``.

        Counted queries: those in both ``run`` and ``qrels`` (trec_eval's default); with
        ``all_queries`` every query of ``qrels``, a query missing from the run ranking nothing
        (trec_eval ``-c``). ``depth`` keeps only each query's top ``depth`` documents.
        """
        if all_queries:
            query_ids = sorted(qrels)
        else:
            query_ids = sorted(q for q in run if q in qrels)
        rankings = [run.get(q) or {} for q in query_ids]
        judgements = [qrels[q] for q in query_ids]
        n = len(query_ids)
        lengths = np.fromiter(map(len, rankings), dtype=np.int64, count=n)
        counts, judged_grades = _judgement_arrays(judgements)
        # One pass over the run: each query's scores, then the scores of its judged documents
        # (NaN when not retrieved), read while that query's ranking is in cache.
        try:
            mixed = np.fromiter(
                chain.from_iterable(
                    chain(r.values(), map(r.get, j, repeat(np.nan))) for r, j in zip(rankings, judgements)
                ),
                dtype=np.float64,
                count=int(lengths.sum() + counts.sum()),
            )
        except (TypeError, ValueError):
            raise EmbedtuneError("run scores must be numbers", hint="a run maps query -> {doc id: score}") from None
        block_starts = np.cumsum(lengths + counts) - (lengths + counts)
        judged_at = np.repeat(block_starts + lengths - np.cumsum(counts) + counts, counts) + np.arange(
            int(counts.sum()), dtype=np.int64
        )
        judged_scores = mixed[judged_at]
        is_score = np.ones(len(mixed), dtype=bool)
        is_score[judged_at] = False
        scores = mixed[is_score]
        if np.isnan(scores).any():
            raise EmbedtuneError("run scores must not be NaN")
        judged_rows = np.repeat(np.arange(n, dtype=np.int64), counts)
        keep = ~np.isnan(judged_scores) & (judged_grades != 0)
        where = np.flatnonzero(keep)
        rank, equal = _ranks_in_rows(scores, lengths, judged_rows[where], judged_scores[where])
        tied = np.flatnonzero(equal > 1)
        if len(tied):
            rank = rank + _tie_offsets(
                tied, where, judged_rows, judged_scores, list(chain.from_iterable(judgements)), rankings
            )
        return cls._from_positions(
            query_ids, lengths, judged_rows[where], rank, judged_grades[where], depth,
            _ideal(judged_rows, judged_grades, n),
        )

    @classmethod
    def from_tables(cls, qrels: Any, run: Any, depth: int | None = None, all_queries: bool = False) -> "RankedRun":
        """Rank a run read with :func:`~embedtune_core.ranking.trec.read_run_table` against qrels
        read with :func:`~embedtune_core.ranking.trec.read_qrels_table`, without building a
        Python object per line. Counted queries and order as in :meth:`from_run`."""
        in_run = set(run.query_ids)
        counted = sorted(qrels.query_ids) if all_queries else sorted(q for q in qrels.query_ids if q in in_run)
        n = len(counted)
        row_of = {q: i for i, q in enumerate(counted)}
        run_row = np.fromiter((row_of.get(q, -1) for q in run.query_ids), dtype=np.int64, count=len(run.query_ids))
        qrels_row = np.fromiter((row_of.get(q, -1) for q in qrels.query_ids), dtype=np.int64,
                                count=len(qrels.query_ids))
        line_row = run_row.astype(np.int32)[run.query]
        if (line_row >= 0).all() and not (line_row[1:] < line_row[:-1]).any():
            kept = None  # every line counts, already grouped by row: no copies
            rows, scores = line_row, run.values
        else:
            kept = np.flatnonzero(line_row >= 0)
            rows = line_row[kept]
            if len(rows) > 1 and (rows[1:] < rows[:-1]).any():
                kept = kept[np.argsort(rows, kind="stable")]
                rows = line_row[kept]
            scores = run.values[kept]
        lengths = np.bincount(rows, minlength=n).astype(np.int64)
        # Judged documents (grade != 0) of the counted queries, located among the run's lines.
        judged_row = qrels_row[qrels.query]
        judged = np.flatnonzero((judged_row >= 0) & (qrels.values != 0))
        qrels_docs, qrels_doc = qrels.unified_docs()
        records = run.find(line_row, judged_row[judged], qrels_doc[judged], qrels_docs)
        found = records >= 0
        hit_grades = qrels.values[judged][found]
        if kept is None:
            hit_lines = records[found]
        else:
            position = np.full(len(line_row), -1, dtype=np.int64)
            position[kept] = np.arange(len(kept))
            hit_lines = position[records[found]]
        hit_rows, hit_scores = rows[hit_lines].astype(np.int64), scores[hit_lines]
        rank, equal = _ranks_in_rows(scores.copy(), lengths, hit_rows, hit_scores)
        tied = np.flatnonzero(equal > 1)
        if len(tied):
            rank = rank + _table_tie_offsets(tied, hit_lines, hit_rows, scores, kept, lengths, run)
        ideal_rows = judged_row >= 0
        ideal = _ideal(judged_row[ideal_rows], qrels.values[ideal_rows], n)
        return cls._from_positions(counted, lengths, hit_rows, rank, hit_grades, depth, ideal)

    @classmethod
    def from_topk(
        cls,
        query_ids: Sequence[str],
        doc_ids: Sequence[str],
        indices: np.ndarray,
        scores: np.ndarray,
        qrels: Qrels,
        depth: int | None = None,
        all_queries: bool = False,
    ) -> "RankedRun":
        """Rank a model's top-k output: ``indices[i, j]`` is the corpus position (into
        ``doc_ids``) of the ``j``-th document retrieved for ``query_ids[i]``, ``scores[i, j]`` its
        score; a negative index means no document. Counted queries as in :meth:`from_run`.
        Equal scores are ordered by document id descending, as trec_eval does."""
        indices = np.asarray(indices)
        scores = np.asarray(scores, dtype=np.float64)
        if indices.ndim != 2 or indices.shape != scores.shape or len(indices) != len(query_ids):
            raise EmbedtuneError(
                f"indices {indices.shape} and scores {scores.shape} must both be (queries={len(query_ids)}, k)"
            )
        source_row = {q: i for i, q in enumerate(query_ids)}
        if len(source_row) != len(query_ids):
            raise EmbedtuneError("query ids must be unique")
        counted = sorted(qrels) if all_queries else sorted(q for q in source_row if q in qrels)
        n, width = len(counted), indices.shape[1]
        src = np.fromiter((source_row.get(q, -1) for q in counted), dtype=np.int64, count=n)
        present = src >= 0
        idx = np.full((n, width), -1, dtype=np.int64)
        sc = np.full((n, width), -np.inf)
        idx[present] = indices[src[present]]
        sc[present] = scores[src[present]]
        valid = idx >= 0
        if np.isnan(sc[valid]).any():
            raise EmbedtuneError("scores must not be NaN")
        lengths = valid.sum(axis=1).astype(np.int64)
        # Score descending (padding last), then document id descending.
        key_score = np.where(valid, -sc, np.nan)
        order = np.argsort(key_score, axis=1)
        sorted_keys = np.take_along_axis(key_score, order, axis=1)
        if (sorted_keys[:, 1:] == sorted_keys[:, :-1]).any():
            doc_rank = _string_ranks(list(doc_ids))
            rank_key = np.where(valid, -doc_rank[np.where(valid, idx, 0)], 0)
            order = np.lexsort((rank_key, np.where(valid, -sc, 0.0), ~valid), axis=-1)
        idx = np.take_along_axis(idx, order, axis=1)
        # Grades by matching (row, corpus position) keys against the qrels' keys.
        position = {d: i for i, d in enumerate(doc_ids)}
        n_docs = max(len(position), 1)
        judged_rows, judged_pos, judged_grades = [], [], []
        for row, q in enumerate(counted):
            for d, g in qrels[q].items():
                p = position.get(d)
                if p is not None and g != 0:
                    judged_rows.append(row)
                    judged_pos.append(p)
                    judged_grades.append(g)
        keys = np.asarray(judged_rows, dtype=np.int64) * n_docs + np.asarray(judged_pos, dtype=np.int64)
        key_order = np.argsort(keys, kind="stable")
        keys, key_grades = keys[key_order], np.asarray(judged_grades, dtype=np.int64)[key_order]
        sorted_valid = idx >= 0
        wanted = np.arange(n, dtype=np.int64)[:, None] * n_docs + np.where(sorted_valid, idx, 0)
        grades = np.zeros((n, width), dtype=np.int64)
        if len(keys):
            at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
            hit = (keys[at] == wanted) & sorted_valid
            grades[hit] = key_grades[at[hit]]
        hit_rows, hit_cols = np.nonzero(grades)
        counts, all_grades = _judgement_arrays([qrels[q] for q in counted])
        ideal = _ideal(np.repeat(np.arange(n, dtype=np.int64), counts), all_grades, n)
        return cls._from_positions(counted, lengths, hit_rows, hit_cols, grades[hit_rows, hit_cols], depth, ideal)

    @classmethod
    def _from_positions(
        cls,
        query_ids: list[str],
        lengths: np.ndarray,
        rows: np.ndarray,
        ranks: np.ndarray,
        grades: np.ndarray,
        depth: int | None,
        ideal: tuple[np.ndarray, np.ndarray],
    ) -> "RankedRun":
        """Build from the 0-based ``ranks`` of graded documents in their ``rows``."""
        n = len(query_ids)
        width = int(lengths.max()) if n and len(lengths) else 0
        if depth is not None:
            if depth < 0:
                raise EmbedtuneError(f"depth must be >= 0, got {depth}")
            width = min(width, int(depth))
            lengths = np.minimum(lengths, width)
        keep = (ranks < width) & (grades != 0)
        rows, ranks, grades = rows[keep], ranks[keep], grades[keep]
        order = np.argsort(rows.astype(np.int64) * (width + 1) + ranks, kind="stable")
        return cls(
            query_ids,
            lengths,
            width,
            rows[order].astype(np.int64),
            ranks[order].astype(np.int64),
            grades[order].astype(np.int64),
            *ideal,
        )

    # -- shape ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.query_ids)

    def __repr__(self) -> str:
        return f"RankedRun(queries={len(self)}, depth={self.depth})"

    def _cached(self, key: Any, build: Callable[[], np.ndarray]) -> np.ndarray:
        value = self._cache.get(key)
        if value is None:
            value = self._cache[key] = build()
        return value

    @property
    def grades(self) -> np.ndarray:
        """``int32[queries, depth]`` (int64 for grades past 32 bits): the grade of the document at
        each rank, 0 where none."""

        def build() -> np.ndarray:
            small = not len(self.hit_grades) or np.abs(self.hit_grades).max() <= np.iinfo(np.int32).max
            matrix = np.zeros((len(self), self.depth), dtype=np.int32 if small else np.int64)
            matrix[self.hit_rows, self.hit_ranks] = self.hit_grades
            return matrix

        return self._cached("grades", build)

    # -- shared, cached building blocks for metrics ----------------------------------------
    def _relevant_hits(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Rows, ranks and grades of the retrieved relevant documents (grade > 0), and each one's
        ordinal among its query's relevant documents (1 for the first)."""
        cached = self._cache.get("relevant_hits")
        if cached is None:
            relevant = self.hit_grades > 0
            rows, ranks, grades = self.hit_rows[relevant], self.hit_ranks[relevant], self.hit_grades[relevant]
            per_row = np.bincount(rows, minlength=len(self))
            starts = np.cumsum(per_row) - per_row
            ordinal = np.arange(1, len(rows) + 1, dtype=np.int64) - starts[rows]
            cached = self._cache["relevant_hits"] = (rows, ranks, grades, ordinal)
        return cached

    def _sum_within(self, k: int, name: str, weights: Callable[[], np.ndarray] | None) -> np.ndarray:
        """Per query, the sum of ``weights()`` (one per relevant hit; 1 when None) over the
        relevant documents within the top ``k``, added in rank order."""
        k = int(k)

        def build() -> np.ndarray:
            rows, ranks, _, _ = self._relevant_hits()
            within = ranks < k
            w = None if weights is None else self._cached(("weights", name), weights)[within]
            return np.bincount(rows[within], weights=w, minlength=len(self)).astype(np.float64)

        return self._cached((name, k), build)

    def relevant_retrieved(self, k: int) -> np.ndarray:
        """``float[queries]``: relevant documents (grade > 0) within the top ``k``."""
        return self._sum_within(k, "relevant_retrieved", None)

    def precision_sum(self, k: int) -> np.ndarray:
        """``float[queries]``: precision at each relevant rank, summed over the top ``k`` (average
        precision's numerator)."""

        def weights() -> np.ndarray:
            _, ranks, _, ordinal = self._relevant_hits()
            return ordinal / (ranks + 1.0)

        return self._sum_within(k, "precision_sum", weights)

    def dcg(self, k: int) -> np.ndarray:
        """``float[queries]``: discounted cumulative gain of the top ``k``: the sum of
        ``grade / log2(rank + 2)`` (0-based rank; grades <= 0 add nothing)."""

        def weights() -> np.ndarray:
            _, ranks, grades, _ = self._relevant_hits()
            return grades / np.log2(ranks + 2.0)

        return self._sum_within(k, "dcg", weights)

    @property
    def first_relevant(self) -> np.ndarray:
        """``int[queries]``: 0-based rank of the first relevant document, ``depth`` when none."""

        def build() -> np.ndarray:
            rows, ranks, _, ordinal = self._relevant_hits()
            first = np.full(len(self), self.depth, dtype=np.int64)
            is_first = ordinal == 1
            first[rows[is_first]] = ranks[is_first]
            return first

        return self._cached("first_relevant", build)

    def ideal_grades(self, k: int) -> np.ndarray:
        """``int[queries, w]``: each query's relevant grades from the qrels, sorted descending and
        padded with 0, ``w = min(k, most relevant documents of any query)``."""
        counts = np.minimum(self.num_relevant, int(k))
        width = int(counts.max()) if len(counts) else 0
        out = np.zeros((len(self), width), dtype=np.int64)
        if width:
            rows = np.repeat(np.arange(len(self)), counts)
            starts = np.cumsum(counts) - counts
            cols = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(starts, counts)
            out[rows, cols] = self._ideal_values[self._ideal_offsets[:-1][rows] + cols]
        return out

    def ideal_dcg(self, k: int) -> np.ndarray:
        """``float[queries]``: DCG of the ideal ranking cut at ``k`` (trec_eval's ``ndcg_cut``
        ideal: every relevant document of the qrels, highest grade first)."""
        k = int(k)

        def build() -> np.ndarray:
            rows = np.repeat(np.arange(len(self)), self.num_relevant)
            ranks = np.arange(len(rows), dtype=np.int64) - self._ideal_offsets[:-1][rows]
            within = ranks < k
            gains = self._ideal_values[within] / np.log2(ranks[within] + 2.0)
            return np.bincount(rows[within], weights=gains, minlength=len(self)).astype(np.float64)

        return self._cached(("ideal_dcg", k), build)


def _judgement_arrays(judgements: Sequence[Mapping[str, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Per query the number of judgements, and all grades back to back (integers)."""
    counts = np.fromiter(map(len, judgements), dtype=np.int64, count=len(judgements))
    try:
        grades = np.fromiter(
            chain.from_iterable(j.values() for j in judgements), dtype=np.float64, count=int(counts.sum())
        )
    except (TypeError, ValueError):
        raise EmbedtuneError("qrels grades must be integers", hint="qrels map query -> {doc id: grade}") from None
    if not np.isfinite(grades).all() or (grades != np.round(grades)).any():
        raise EmbedtuneError("qrels grades must be integers", hint="qrels map query -> {doc id: grade}")
    return counts, grades.astype(np.int64)


def _ideal(rows: np.ndarray, grades: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Relevant grades (> 0) of each of ``n`` queries, sorted descending, as flat values + offsets."""
    positive = grades > 0
    values, rows = grades[positive], rows[positive]
    top = int(values.max()) if len(values) else 0
    if (top + 1) * (n + 1) < 2**62:
        order = np.argsort(rows * (top + 1) + (top - values), kind="stable")
    else:
        order = np.lexsort((-values, rows))
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=offsets[1:])
    return values[order], offsets


def _string_ranks(strings: list[str]) -> np.ndarray:
    """Rank of each string in code-point order (equal to UTF-8 byte order, as ``strcmp``)."""
    order = sorted(range(len(strings)), key=strings.__getitem__)
    ranks = np.empty(len(strings), dtype=np.int64)
    ranks[np.asarray(order, dtype=np.int64)] = np.arange(len(strings), dtype=np.int64)
    return ranks


def _ranks_in_rows(
    scores: np.ndarray, lengths: np.ndarray, rows: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each ``(rows[i], values[i])``: how many scores of that row are greater than, and equal
    to, ``values[i]``. ``scores`` holds the rows' scores back to back (``lengths`` each); it is
    sorted in place.

    Rows are padded into a few matrices of similar widths (at most twice a row's length, so
    memory stays O(len(scores))), sorted row-wise, and searched with a vectorised binary search.
    """
    greater = np.zeros(len(rows), dtype=np.int64)
    equal = np.ones(len(rows), dtype=np.int64)
    if len(rows) == 0:
        return greater, equal
    n = len(lengths)
    starts = np.cumsum(lengths) - lengths
    if (lengths == lengths[0]).all():
        groups = [(np.arange(n), int(lengths[0]))]
    else:
        width_class = np.ceil(np.log2(np.maximum(lengths, 1))).astype(np.int64)
        groups = []
        for c in distinct(width_class[lengths > 0]):
            members = np.flatnonzero((width_class == c) & (lengths > 0))
            groups.append((members, int(lengths[members].max())))
    group_of_row = np.full(n, -1, dtype=np.int64)
    local_row = np.zeros(n, dtype=np.int64)
    for g, (members, _) in enumerate(groups):
        group_of_row[members] = g
        local_row[members] = np.arange(len(members))
    for g, (members, width) in enumerate(groups):
        if len(groups) == 1 and len(scores) == n * width:
            matrix = scores.reshape(n, width)
        else:
            counts = lengths[members]
            local = np.repeat(np.arange(len(members)), counts)
            cols = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
            matrix = np.full((len(members), width), np.nan)
            matrix[local, cols] = scores[np.repeat(starts[members], counts) + cols]
        matrix.sort(axis=1)  # ascending; NaN padding sorts last and compares false
        sel = np.flatnonzero(group_of_row[rows] == g)
        r, v = local_row[rows[sel]], values[sel]
        at_most = _count_sorted(matrix, r, v, strict=False)
        greater[sel] = lengths[rows[sel]] - at_most
        # Ties only matter where a row holds a repeated score.
        if (matrix[:, 1:] == matrix[:, :-1]).any():
            equal[sel] = at_most - _count_sorted(matrix, r, v, strict=True)
    return greater, equal


def _count_sorted(matrix: np.ndarray, rows: np.ndarray, keys: np.ndarray, strict: bool) -> np.ndarray:
    """Per ``(rows[i], keys[i])``: entries of that row of the row-sorted ``matrix`` that are
    ``< key`` (``strict``) or ``<= key``, by a branch-free binary search over all rows at once."""
    width = matrix.shape[1]
    flat = matrix.ravel()
    base = rows * width - 1
    count = np.zeros(len(rows), dtype=np.int64)
    step = 1 << (max(width, 1).bit_length() - 1)
    while step:
        candidate = count + step
        value = flat[base + np.minimum(candidate, width)]
        ok = (candidate <= width) & ((value < keys) if strict else (value <= keys))
        count += ok * step
        step >>= 1
    return count


def _tie_offsets(
    tied: np.ndarray,
    where: np.ndarray,
    judged_rows: np.ndarray,
    judged_scores: np.ndarray,
    judged_docs: list[str],
    rankings: Sequence[Mapping[str, float]],
) -> np.ndarray:
    """For judged documents whose score ties with others in their ranking: how many of the tied
    documents trec_eval puts before them (those with a greater document id)."""
    offsets = np.zeros(len(where), dtype=np.int64)
    by_row: dict[int, dict[float, list[str]]] = {}
    for i in tied:
        j = where[i]
        row, score, doc = int(judged_rows[j]), float(judged_scores[j]), judged_docs[j]
        groups = by_row.get(row)
        if groups is None:
            groups = by_row[row] = {}
            for d, s in rankings[row].items():
                groups.setdefault(float(s), []).append(d)
            for ids in groups.values():
                ids.sort()
        ids = groups[score]
        offsets[i] = len(ids) - bisect_right(ids, doc)
    return offsets


def _table_tie_offsets(
    tied: np.ndarray,
    hit_lines: np.ndarray,
    hit_rows: np.ndarray,
    scores: np.ndarray,
    kept: np.ndarray,
    lengths: np.ndarray,
    run: Any,
) -> np.ndarray:
    """For judged documents (``hit_lines`` into the row-grouped ``scores``, which are the run
    table's records ``kept``) whose score
    ties with others in their row: how many of the tied documents trec_eval puts before them
    (those with a greater document id)."""
    starts = np.cumsum(lengths) - lengths
    offsets = np.zeros(len(tied), dtype=np.int64)
    groups: dict[tuple[int, float], list[str]] = {}
    for n, i in enumerate(tied.tolist()):
        line, row = int(hit_lines[i]), int(hit_rows[i])
        score = float(scores[line])
        ids = groups.get((row, score))
        if ids is None:
            lo = int(starts[row])
            same = lo + np.flatnonzero(scores[lo : lo + int(lengths[row])] == score)
            records = same if kept is None else kept[same]
            ids = groups[(row, score)] = sorted(run.doc_ids(records))
        own = run.doc_ids([line if kept is None else kept[line]])[0]
        offsets[n] = len(ids) - bisect_right(ids, own)
    full = np.zeros(len(hit_lines), dtype=np.int64)
    full[tied] = offsets
    return full
