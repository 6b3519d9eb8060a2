"""``duty-contrast``: hard negatives that share a clause's boilerplate but not its duty.

In legal and regulatory text the words that decide what a clause means are few: the modal
("must", "may", "should"), the obligation verb ("is required", "is prohibited", "is exempt") and
negation. Two clauses can share nearly every word and still impose opposite duties:

    The tenant must insure the premises against fire.        (obligation)
    The tenant may insure the premises against fire.         (permission)
    The tenant must not insure the premises against fire.    (prohibition)

A general-purpose embedding model puts these almost on top of each other. This miner picks, for
each (anchor, positive) row, the candidates with the highest word overlap with the positive
(boilerplate, the duty words left out) whose *duty signature* differs from the positive's: a
different set of duty categories, or negation where the positive has none (or the reverse).
Rows that still need negatives get the closest candidates by overlap alone, then random ones.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from embedtune_core.mining.tiers import check_miner_options, pick_negatives, pool_of, words

#: duty categories, each a regular expression over lower-cased text. They are matched in this
#: order and each match is blanked out, so "must not" is a prohibition and not also an obligation.
DUTY_PATTERNS: tuple[tuple[str, str], ...] = (
    ("prohibition", r"\b(?:must|shall|may|can|should)\s+not\b|\bcannot\b|\bcan't\b|\bmustn't\b|\bshan't\b"
                    r"|\bprohibit\w*|\bforbid\w*|\bforbidden\b|\bnot\s+(?:be\s+)?(?:allowed|permitted)\b"),
    ("exemption", r"\b(?:is|are|be)\s+not\s+(?:required|mandatory|necessary|obligatory)\b|\bneed\s+not\b"
                  r"|\bno\s+need\b|\bdoes\s+not\s+(?:need|have)\s+to\b|\bdo\s+not\s+(?:need|have)\s+to\b"
                  r"|\bexempt\w*|\bwaive[sd]?\b"),
    ("obligation", r"\bmust\b|\bshall\b|\brequired?\b|\brequires\b|\brequirement\w*|\bmandatory\b|\bobliged\b"
                   r"|\bobligat\w+|\bhas\s+to\b|\bhave\s+to\b|\bneeds?\s+to\b|\bliable\b"),
    ("recommendation", r"\bshould\b|\brecommend\w*|\badvis\w+"),
    ("permission", r"\bmay\b|\bcan\b|\bpermitted\b|\bpermission\b|\ballowed\b|\bentitled\b|\boptional\b"),
)
_COMPILED = tuple((name, re.compile(pattern)) for name, pattern in DUTY_PATTERNS)
NEGATORS = frozenset({"not", "no", "never", "nor", "without", "neither", "none"})
#: words left out of the overlap: they carry the duty, not the boilerplate
DUTY_WORDS = frozenset(
    "must shall may can should not no never nor without neither none cannot required require requires "
    "requirement requirements mandatory obliged obligation obligations obligated have has need needs "
    "prohibited prohibits prohibit forbidden exempt exempted exemption permitted permission allowed "
    "entitled optional recommended recommend advisable liable".split()
)


def duty_signature(text: str) -> tuple[frozenset[str], bool]:
    """The duty categories a text expresses and whether it is otherwise negated.

    >>> duty_signature("The tenant must not sublet the flat.")
    (frozenset({'prohibition'}), False)
    >>> duty_signature("The fee does not include VAT.")
    (frozenset(), True)
    """
    lowered = " " + text.lower() + " "
    found = set()
    for name, pattern in _COMPILED:
        if pattern.search(lowered):
            found.add(name)
            lowered = pattern.sub(" ", lowered)
    negated = any(word in NEGATORS or word.endswith("n't") for word in re.findall(r"[a-z']+", lowered))
    return frozenset(found), negated


def boilerplate(text: str) -> frozenset[str]:
    """The text's words without its duty words: what two clauses share when they differ in duty."""
    return frozenset(w for w in words(text) if w not in DUTY_WORDS)


class DutyContrastMiner:
    """Negatives with high word overlap with the positive but a different duty (modal, obligation
    verb or negation)."""

    name = "duty-contrast"

    def __init__(
        self,
        min_overlap: float = 0.2,
        fill_by_overlap: bool = True,
        fill: str = "random",
        relative_margin: float = 0.05,
        use_model: bool = True,
        max_candidates: int = 200,
        chunk_size: int = 256,
    ) -> None:
        check_miner_options(self.name, fill=fill, relative_margin=relative_margin)
        if not 0.0 <= float(min_overlap) <= 1.0:
            from embedtune_core.errors import ComponentError

            raise ComponentError(f"miner '{self.name}': min_overlap must be in [0, 1], got {min_overlap!r}")
        self.min_overlap = float(min_overlap)
        self.fill_by_overlap = bool(fill_by_overlap)
        self.fill = fill
        self.relative_margin = float(relative_margin)
        self.use_model = bool(use_model)
        self.max_candidates = max(1, int(max_candidates))
        self.chunk_size = max(1, int(chunk_size))

    def _overlaps(self, positives: Sequence[str], pool: Sequence[str]):
        """Jaccard overlap of each positive's boilerplate with every pool text (sparse, chunked)."""
        import numpy as np
        from scipy import sparse

        vocab: dict[str, int] = {}

        def matrix(texts):
            rows, cols = [], []
            for r, text in enumerate(texts):
                for word in boilerplate(text):
                    rows.append(r)
                    cols.append(vocab.setdefault(word, len(vocab)))
            return rows, cols

        pool_rows, pool_cols = matrix(pool)
        pos_rows, pos_cols = matrix(positives)
        shape = len(vocab)
        pool_m = sparse.csr_matrix((np.ones(len(pool_rows), np.float32), (pool_rows, pool_cols)),
                                   shape=(len(pool), shape))
        pos_m = sparse.csr_matrix((np.ones(len(pos_rows), np.float32), (pos_rows, pos_cols)),
                                  shape=(len(positives), shape))
        pool_sizes = np.asarray(pool_m.sum(axis=1)).ravel()
        pos_sizes = np.asarray(pos_m.sum(axis=1)).ravel()
        for start in range(0, len(positives), self.chunk_size):
            inter = (pos_m[start:start + self.chunk_size] @ pool_m.T).toarray()
            union = pos_sizes[start:start + self.chunk_size, None] + pool_sizes[None, :] - inter
            with np.errstate(divide="ignore", invalid="ignore"):
                overlap = np.where(union > 0, inter / union, 0.0)
            yield start, overlap

    def mine(self, request: Any):
        import numpy as np

        pool = pool_of(request)
        columns = request.dataset.column_names
        positives = [str(t) for t in request.dataset[columns[1]]] if len(columns) > 1 else []
        pool_signatures = [duty_signature(t) for t in pool]
        tiers: list[list[tuple[str, list[int]]]] = [[] for _ in positives]
        if pool and positives:
            for start, overlap in self._overlaps(positives, pool):
                for offset in range(overlap.shape[0]):
                    row = start + offset
                    scores = overlap[offset]
                    top = np.arange(len(pool))
                    if len(pool) > self.max_candidates:
                        top = np.sort(np.argpartition(-scores, self.max_candidates - 1)[: self.max_candidates])
                    order = top[np.lexsort((top, -scores[top]))]  # best overlap first, then pool order
                    signature = duty_signature(positives[row])
                    contrast = [int(i) for i in order if scores[i] >= self.min_overlap
                                and pool_signatures[i] != signature]
                    row_tiers = [("duty-contrast", contrast)]
                    if self.fill_by_overlap:
                        row_tiers.append(("overlap", [int(i) for i in order if scores[i] > 0]))
                    tiers[row] = row_tiers

        def candidates(row: int, anchor: str, positive: str):
            return tiers[row]

        return pick_negatives(request, pool, candidates, fill=self.fill, relative_margin=self.relative_margin,
                              use_model=self.use_model)
