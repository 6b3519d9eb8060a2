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
from typing import Annotated, Any, Sequence

import attrs

from embedtune_core.mining import GuardOptions, TieredMiner, TieredSource, words
from embedtune_core.plugins.options import Range

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


@attrs.frozen
class DutyContrastOptions(GuardOptions):
    """The guards, and how contrasting candidates are found."""

    min_overlap: Annotated[float, Range(ge=0, le=1), "least boilerplate overlap of a contrasting candidate"] = 0.2
    fill_by_overlap: Annotated[bool, "after the contrasting candidates, the closest by overlap alone"] = True
    max_candidates: Annotated[int, Range(ge=1), "candidates considered per positive"] = 200
    chunk_size: Annotated[int, Range(ge=1), "positives compared with the pool at once"] = 256


class DutyContrastMiner(TieredMiner):
    """Negatives with high word overlap with the positive but a different duty (modal, obligation
    verb or negation)."""

    name = "duty-contrast"

    def __init__(self, options: DutyContrastOptions) -> None:
        super().__init__(options)

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
        size = self.options.chunk_size
        for start in range(0, len(positives), size):
            inter = (pos_m[start:start + size] @ pool_m.T).toarray()
            union = pos_sizes[start:start + size, None] + pool_sizes[None, :] - inter
            with np.errstate(divide="ignore", invalid="ignore"):
                overlap = np.where(union > 0, inter / union, 0.0)
            yield start, overlap

    def _tiers_of_positive(self, positive: str, scores: Any, pool_signatures: list) -> list[tuple[str, list[int]]]:
        import numpy as np

        top = np.arange(len(scores))
        if len(scores) > self.options.max_candidates:
            top = np.sort(np.argpartition(-scores, self.options.max_candidates - 1)[: self.options.max_candidates])
        order = top[np.lexsort((top, -scores[top]))]  # best overlap first, then pool order
        signature = duty_signature(positive)
        contrast = [int(i) for i in order if scores[i] >= self.options.min_overlap and pool_signatures[i] != signature]
        tiers = [("duty-contrast", contrast)]
        if self.options.fill_by_overlap:
            tiers.append(("overlap", [int(i) for i in order if scores[i] > 0]))
        return tiers

    def tiers(self, data: Any, request: Any):
        pool = data.corpus
        positive_ids = sorted({int(d) for d in data.row_positive.tolist()})
        positives = [pool[d] for d in positive_ids]
        pool_signatures = [duty_signature(t) for t in pool]
        by_positive: dict[str, list[tuple[str, list[int]]]] = {}
        if pool and positives:
            for start, overlap in self._overlaps(positives, pool):
                for offset in range(overlap.shape[0]):
                    text = positives[start + offset]
                    by_positive[text] = self._tiers_of_positive(text, overlap[offset], pool_signatures)
        return TieredSource.from_rows(data, lambda anchor, positive: by_positive.get(positive, []))
