"""Built-in metrics plugin: ndcg, mrr, map, recall, precision and f1 at any cut-off.

Each is defined as trec_eval defines it (``ndcg_cut``, ``recip_rank`` on the top K, ``map_cut``,
``recall``, ``P``; F1 as ranx's ``f1``), computed with numpy over an
:class:`embedtune_core.ranking.ranked.RankedRun`, whose cached cumulative arrays are shared by all
metrics and cut-offs. See docs/metrics.md for the formulas.
"""

from __future__ import annotations

from typing import Any

from embedtune_core import hookimpl


def _divide(numerator: Any, denominator: Any) -> Any:
    """``numerator / denominator`` with 0 where the denominator is 0."""
    import numpy as np

    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.zeros(np.broadcast(numerator, denominator).shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


class NDCG:
    """Normalised discounted cumulative gain at K (trec_eval ``ndcg_cut``)."""

    name = "ndcg"

    def compute(self, ranked: Any, k: int) -> Any:
        return _divide(ranked.dcg(k), ranked.ideal_dcg(k))


class MRR:
    """Reciprocal rank of the first relevant document within the top K (0 when none)."""

    name = "mrr"

    def compute(self, ranked: Any, k: int) -> Any:
        import numpy as np

        first = ranked.first_relevant
        return np.where(first < min(int(k), ranked.depth), 1.0 / (first + 1.0), 0.0)


class MAP:
    """Average precision at K divided by all relevant documents (trec_eval ``map_cut``)."""

    name = "map"

    def compute(self, ranked: Any, k: int) -> Any:
        return _divide(ranked.precision_sum(k), ranked.num_relevant)


class Recall:
    """Relevant documents in the top K over all relevant documents (trec_eval ``recall``)."""

    name = "recall"

    def compute(self, ranked: Any, k: int) -> Any:
        return _divide(ranked.relevant_retrieved(k), ranked.num_relevant)


class Precision:
    """Relevant documents in the top K over K (trec_eval ``P``; a short ranking still divides by K)."""

    name = "precision"

    def compute(self, ranked: Any, k: int) -> Any:
        return ranked.relevant_retrieved(k) / float(k)


class F1:
    """Harmonic mean of precision@K and recall@K, 0 when both are 0 (ranx ``f1``)."""

    name = "f1"

    def compute(self, ranked: Any, k: int) -> Any:
        precision = Precision().compute(ranked, k)
        recall = Recall().compute(ranked, k)
        return _divide(2.0 * precision * recall, precision + recall)


BUILTIN_METRICS = (NDCG, MRR, MAP, Recall, Precision, F1)


@hookimpl
def register_metrics(register):
    for cls in BUILTIN_METRICS:
        register(cls.name, cls, description=(cls.__doc__ or "").strip().splitlines()[0])
