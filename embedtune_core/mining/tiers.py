"""Tiered candidates: a miner proposes candidate tiers per row; the hardest usable ones are kept."""

from __future__ import annotations

import re
from typing import Any, Callable, Sequence

from embedtune_core.errors import DataError
from embedtune_core.types import MiningResult, MiningStats


_WORD = re.compile(r"[a-z0-9]+")


# -- text ---------------------------------------------------------------------------------------
def words(text: str) -> list[str]:
    """The lower-cased runs of letters and digits in ``text``: ``"Non-Compete" -> ["non", "compete"]``."""
    return _WORD.findall(text.lower())


def jaccard(a: set[str], b: set[str]) -> float:
    """``|a & b| / |a | b|``; 0.0 when both are empty."""
    if not a and not b:
        return 0.0
    return len(a & b) / len(a | b)


# -- picking negatives --------------------------------------------------------------------------
#: candidate_fn(row, anchor, positive) -> [(tier name, [pool index, ...] best first), ...]
CandidateFn = Callable[[int, str, str], Sequence[tuple[str, Sequence[int]]]]


FILL_CHOICES = ("random", "none")


def check_miner_options(miner: str, *, fill: str, relative_margin: float) -> None:
    """Raise :class:`~embedtune_core.errors.ComponentError` naming ``miner`` unless ``fill`` is
    one of :data:`FILL_CHOICES` and ``relative_margin`` is in [0, 1)."""
    from embedtune_core.errors import ComponentError

    if fill not in FILL_CHOICES:
        raise ComponentError(f"miner '{miner}': fill must be one of {', '.join(FILL_CHOICES)}, got {fill!r}")
    if not 0.0 <= float(relative_margin) < 1.0:
        raise ComponentError(f"miner '{miner}': relative_margin must be in [0, 1), got {relative_margin!r}")


def pool_of(request: Any) -> list[str]:
    """Candidate texts: the request's corpus, else the dataset's own positives."""
    if request.corpus is not None:
        return [str(t) for t in request.corpus]
    positives = request.dataset[request.dataset.column_names[1]]
    return list(dict.fromkeys(str(t) for t in positives))


def pick_negatives(
    request: Any,
    pool: Sequence[str],
    candidate_fn: CandidateFn,
    *,
    fill: str = "random",
    relative_margin: float = 0.05,
    use_model: bool = True,
) -> MiningResult:
    """Walk each row's candidate tiers in order and keep the first ``num_negatives`` usable ones.

    The row's own positive is never a candidate; another positive of the same anchor is dropped
    as a false negative. With an encoder (and ``use_model``), candidates inside a tier are ordered
    by similarity to the anchor, hardest first, and one scoring above ``(1 - relative_margin)``
    times the positive's score is dropped as a likely false negative. Rows still short are
    filled with random pool texts (``fill="random"``) or, with ``fill="none"``, left short: as
    hard-negatives those rows are dropped, as triplets they give fewer rows.
    """
    import numpy as np
    from datasets import Dataset

    if request.dataset_type == "nli":
        from embedtune_core.errors import ComponentError

        raise ComponentError("this miner needs (anchor, positive) rows, not an NLI dataset")
    columns = request.dataset.column_names
    if len(columns) < 2:
        raise DataError("mining needs a dataset with (anchor, positive) columns", hint=f"got columns {columns}")
    anchors = [str(t) for t in request.dataset[columns[0]]]
    positives = [str(t) for t in request.dataset[columns[1]]]
    n = int(request.num_negatives)
    positives_of: dict[str, set[str]] = {}
    for a, p in zip(anchors, positives):
        positives_of.setdefault(a, set()).add(p)
    encoder = request.encoder if use_model else None
    if encoder is not None and len(pool):
        pool_emb = np.asarray(encoder(list(pool)), dtype=np.float32)
        anchor_emb = np.asarray(encoder(anchors), dtype=np.float32)
        positive_emb = np.asarray(encoder(positives), dtype=np.float32)
        positive_score = (anchor_emb * positive_emb).sum(axis=1)
    rng = np.random.default_rng(request.seed)
    stats = MiningStats(queries=len(anchors))
    by_tier: dict[str, int] = {}
    picked_rows: list[list[str]] = []
    gaps: list[float] = []
    for row, (anchor, positive) in enumerate(zip(anchors, positives)):
        taken: list[str] = []
        taken_set: set[str] = set()
        forbidden = positives_of[anchor] | {anchor}
        for tier, indices in candidate_fn(row, anchor, positive):
            indices = list(dict.fromkeys(int(i) for i in indices))
            if encoder is not None and indices:
                scores = pool_emb[indices] @ anchor_emb[row]
                order = np.argsort(-scores, kind="stable")
                indices = [indices[i] for i in order]
            for index in indices:
                if len(taken) >= n:
                    break
                text = pool[index]
                if text in taken_set or text == positive:
                    continue
                stats.candidates_seen += 1
                if text in forbidden:
                    stats.dropped_false_negatives += 1
                    continue
                if encoder is not None:
                    score = float(pool_emb[index] @ anchor_emb[row])
                    if score > positive_score[row] * (1.0 - relative_margin):
                        stats.dropped_false_negatives += 1
                        continue
                    gaps.append(float(positive_score[row]) - score)
                taken.append(text)
                taken_set.add(text)
                by_tier[tier] = by_tier.get(tier, 0) + 1
            if len(taken) >= n:
                break
        if len(taken) < n:
            stats.queries_short += 1
            if fill == "random" and len(pool):
                for index in rng.permutation(len(pool)):
                    if len(taken) >= n:
                        break
                    text = pool[int(index)]
                    if text in forbidden or text in taken_set:
                        continue
                    taken.append(text)
                    taken_set.add(text)
                    by_tier["random"] = by_tier.get("random", 0) + 1
        picked_rows.append(taken)
    if request.output == "triplets":
        data = {"anchor": [], "positive": [], "negative": []}
        for anchor, positive, taken in zip(anchors, positives, picked_rows):
            for text in taken:
                data["anchor"].append(anchor)
                data["positive"].append(positive)
                data["negative"].append(text)
        stats.negatives_written = len(data["negative"])
    else:
        data = {"anchor": [], "positive": [], **{f"negative_{i + 1}": [] for i in range(n)}}
        for anchor, positive, taken in zip(anchors, positives, picked_rows):
            if len(taken) < n:
                continue
            data["anchor"].append(anchor)
            data["positive"].append(positive)
            for i, text in enumerate(taken):
                data[f"negative_{i + 1}"].append(text)
        stats.negatives_written = len(data["anchor"]) * n
    stats.mean_score_gap = float(np.mean(gaps)) if gaps else None
    stats.extra = {"picked_by": by_tier, "pool_size": len(pool)}
    return MiningResult(dataset=Dataset.from_dict(data), stats=stats)
