"""Identical vectors, searched once.

A corpus whose texts encode to the same vector (an untrained model, or one that truncates long
texts alike) holds a few distinct vectors many times over; a batch of queries likewise. The search
then works on the distinct rows and expands each result to the copies, in corpus order, which
gives what a search of every row gives (equal vectors score equally, and ties go to the lower
corpus index). Where every row is distinct nothing changes. :func:`ordered` puts any search's
results in that order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: rows hashed at a time (the float64 copy of a block is the only temporary)
HASH_BLOCK = 65536


def distinct_rows(vectors: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """``(first, group)`` for the rows of a 2-d array: the row number of each distinct row's
    first occurrence, ascending, and each row's group (an index into ``first``); None when every
    row is distinct. Rows are equal when their values are (``-0.0`` equals ``0.0``)."""
    x = np.ascontiguousarray(vectors)
    n = len(x)
    if n < 2:
        return None
    weights = np.random.default_rng(0).standard_normal(x.shape[1])
    hashes = np.concatenate([x[s : s + HASH_BLOCK].astype(np.float64) @ weights for s in range(0, n, HASH_BLOCK)])
    _, first, group = np.unique(hashes, return_index=True, return_inverse=True)
    if len(first) == n:
        return None
    if not all((x[s : s + HASH_BLOCK] == x[first[group[s : s + HASH_BLOCK]]]).all() for s in range(0, n, HASH_BLOCK)):
        # two different rows with one hash (or NaN): compare the bytes themselves
        _, first, group = np.unique(x.view(np.dtype((np.void, x.dtype.itemsize * x.shape[1]))).ravel(),
                                    return_index=True, return_inverse=True)
        if len(first) == n:
            return None
    rank = np.argsort(first)
    renumber = np.empty_like(rank)
    renumber[rank] = np.arange(len(rank))
    return first[rank], renumber[group.ravel()]


class Groups:
    """The rows of a corpus grouped by identical vectors: ``first[g]`` is group ``g``'s first row,
    ``members(g)`` its rows in ascending order (``order[starts[g]:starts[g + 1]]``)."""

    def __init__(self, first: np.ndarray, group: np.ndarray) -> None:
        self.first = first
        self.order = np.argsort(group, kind="stable")
        self.sizes = np.bincount(group, minlength=len(first))
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)])

    @classmethod
    def of(cls, vectors: Any) -> "Groups | None":
        found = distinct_rows(vectors)
        return None if found is None else cls(*found)

    def __len__(self) -> int:
        return len(self.first)

    def expand(self, scores: np.ndarray, groups: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Results over the distinct rows (``groups[q, j]``, best first, -1 pads) as results over
        the corpus: each group's rows in turn, ``k`` per query, equal scores by lower row. Groups
        are taken until ``k`` rows are reached, and with them every group tying the last score."""
        nq = len(groups)
        found = groups >= 0
        sizes = np.where(found, np.minimum(self.sizes[np.where(found, groups, 0)], k), 0)
        if nq == 0 or groups.shape[1] == 0:
            return ordered(scores, groups, k)
        reach = np.minimum((np.cumsum(sizes, axis=1) < k).sum(axis=1), groups.shape[1] - 1)
        bound = scores[np.arange(nq), reach]
        take = np.where(scores >= bound[:, None], sizes, 0)
        rows, cols = np.nonzero(take)
        counts = take[rows, cols]
        per_row = take.sum(axis=1)
        entry = np.repeat(np.arange(len(counts)), counts)
        before = np.cumsum(counts) - counts
        inner = np.arange(int(counts.sum())) - before[entry]
        column = before[entry] - (np.cumsum(per_row) - per_row)[rows[entry]] + inner
        out_ids = np.full((nq, max(int(per_row.max()), 1)), -1, dtype=np.int64)
        out_scores = np.full(out_ids.shape, -np.inf, dtype=np.float32)
        out_ids[rows[entry], column] = self.order[self.starts[groups[rows, cols]][entry] + inner]
        out_scores[rows[entry], column] = scores[rows, cols][entry]
        s, i = ordered(out_scores, out_ids, k)
        return s[:, :k], i[:, :k]


def ordered(scores: np.ndarray, idx: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best first, ties by lower corpus index, padded to ``k`` columns with -inf / -1."""
    valid = idx >= 0
    scores = np.where(valid, scores, -np.inf).astype(np.float32)
    order = np.lexsort((np.where(valid, idx, np.iinfo(np.int64).max), -scores), axis=1)
    scores, idx = np.take_along_axis(scores, order, axis=1), np.take_along_axis(idx, order, axis=1)
    missing = k - scores.shape[1]
    if missing > 0:
        scores = np.concatenate([scores, np.full((len(scores), missing), -np.inf, dtype=np.float32)], axis=1)
        idx = np.concatenate([idx, np.full((len(idx), missing), -1, dtype=np.int64)], axis=1)
    return scores, idx.astype(np.int64)
