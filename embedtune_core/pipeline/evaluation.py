"""Evaluating a model on a data set: IR metrics of dense retrieval, or STS correlations, at the
full size and at each Matryoshka dim (row data with positives is evaluated as an IR set, see
:func:`embedtune_core.data.loading.to_ir`)."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from embedtune_core.embedding.search import APPROXIMATE_FROM
from embedtune_core.errors import DataError, EmbedtuneError
from embedtune_core.ranking.metrics import _metric_objects, metrics_of_ranked


#: what ``evaluate_model`` reports for each non-IR dataset type
STS_METRICS = ("spearman", "pearson")




# -- model evaluation ---------------------------------------------------------------------------
def _truncate(embeddings: Any, dim: int | None) -> Any:
    """The first ``dim`` components of each row, L2-renormalised (all of them when ``dim`` is None)."""
    import numpy as np

    part = embeddings if dim is None else embeddings[:, :dim]
    norms = np.linalg.norm(part, axis=1, keepdims=True)
    return part / np.maximum(norms, 1e-12)


def _check_dims(dims: Iterable[int] | None, full: int) -> list[int | None]:
    out: list[int | None] = [None]
    for dim in dims or []:
        dim = int(dim)
        if dim < 1 or dim > full:
            raise EmbedtuneError(
                f"dim {dim} is outside the model's embedding size 1..{full}", key="evaluation.dims"
            )
        if dim != full and dim not in out:
            out.append(dim)
    return out


def _ir_depth(metric_objects: Sequence[tuple[str, Any, int]]) -> int:
    return max((k for _, _, k in metric_objects), default=10)


def evaluate_ir(
    model: Any,
    data: Any,
    *,
    registry: Any,
    metrics: Sequence[str],
    dims: Iterable[int] | None = None,
    batch_size: int = 128,
    all_queries: bool = False,
    show_progress: bool = False,
    device: str | None = None,
    details: dict | None = None,
    approximate_from: int | None = APPROXIMATE_FROM,
) -> dict[int | None, dict[str, float]]:
    """IR metrics of ``model`` on an :class:`~embedtune_core.types.IRData`, per dim.

    Retrieval is exact below ``approximate_from`` documents (None: always) and an approximate
    faiss index from there; then each dim's results also hold ``search_recall@K``, the recall of
    that search against exact search on a sample of queries.

    With a ``details`` dict, it gets ``per_query``: ``{query id: {"value": the first metric's value,
    "rank": 1-based rank of the first relevant document (None: below the ranked depth)}}`` at the
    full size, for paired statistics (:mod:`embedtune_core.pipeline.significance`)."""
    from embedtune_core.distributed import broadcast, is_main_process, is_sharing
    from embedtune_core.embedding.encode import encode
    from embedtune_core.ranking.ranked import RankedRun

    objects = _metric_objects(registry, metrics)
    doc_ids = list(data.corpus)
    query_ids = [q for q in data.queries if q in data.qrels]
    if not doc_ids:
        raise DataError("the IR data has an empty corpus")
    if not query_ids:
        raise DataError("no query of the IR data has relevance judgements", hint="check the qrels' query ids")
    corpus_emb = encode(model, [data.corpus[d] for d in doc_ids], batch_size=batch_size, normalize=False,
                        show_progress=show_progress)
    query_emb = encode(model, [data.queries[q] for q in query_ids], batch_size=batch_size, normalize=False,
                       show_progress=show_progress)
    depth = _ir_depth(objects)
    results: dict[int | None, dict[str, float]] = {}
    here = not is_sharing() or is_main_process()  # the metrics are computed once
    for dim in _check_dims(dims, corpus_emb.shape[1]):
        queries = _truncate(query_emb, dim)
        search = vector_search(model, _truncate(corpus_emb, dim), device=device, approximate_from=approximate_from,
                               expected_queries=len(queries))
        scores, indices = search.search(queries, depth)
        recall = search.recall(queries, depth) if search.approximate else None
        if not here:
            continue
        ranked = RankedRun.from_topk(query_ids, doc_ids, indices, scores, data.qrels, all_queries=all_queries)
        results[dim] = metrics_of_ranked(ranked, objects, per_query=details is not None and dim is None)
        if details is not None and dim is None:
            details["per_query"] = _per_query(ranked, results[dim].pop("per_query"), objects[0][0])
        if recall is not None:
            results[dim][f"search_recall@{depth}"] = recall
    if is_sharing():
        results, per_query = broadcast((results, None if details is None else details.get("per_query")))
        if details is not None:
            details["per_query"] = per_query
    return results


def vector_search(model: Any, corpus: Any, *, device: str | None = None,
                  approximate_from: int | None = APPROXIMATE_FROM, expected_queries: int | None = None) -> Any:
    """The search over ``corpus`` the model's vectors get: the model's own (an exported variant
    storing int8 or binary vectors: ``model.vector_search``), else
    :class:`~embedtune_core.embedding.search.VectorSearch` (``expected_queries``: how many
    queries it will answer, which decides its approximate index)."""
    from embedtune_core.embedding.search import VectorSearch

    own = getattr(model, "vector_search", None)
    if own is not None:
        return own(corpus, device=device, approximate_from=approximate_from)
    return VectorSearch(corpus, device=device, approximate_from=approximate_from, expected_queries=expected_queries)


def _per_query(ranked: Any, per: dict[str, dict[str, float]], metric: str) -> dict[str, dict[str, Any]]:
    first = ranked.first_relevant
    return {q: {"value": per[metric][q], "rank": int(r) + 1 if r < ranked.depth else None}
            for q, r in zip(ranked.query_ids, first.tolist())}


def _columns(data: Any, names: Sequence[str]) -> list[list[Any]]:
    present = list(getattr(data, "column_names", None) or [])
    missing = [n for n in names if n not in present]
    if missing:
        raise DataError(
            f"evaluation data lacks column(s) {', '.join(missing)}; it has {', '.join(present) or 'none'}",
        )
    return [list(data[n]) for n in names]


def _pair_cosines(model: Any, left: list[str], right: list[str], dims: list[int | None], batch_size: int,
                  show_progress: bool) -> dict[int | None, Any]:
    """Cosine similarity of each (left[i], right[i]) pair per dim; texts are encoded once."""
    import numpy as np

    from embedtune_core.embedding.encode import encode

    texts = list(dict.fromkeys(left + right))
    position = {t: i for i, t in enumerate(texts)}
    emb = encode(model, texts, batch_size=batch_size, normalize=False, show_progress=show_progress)
    li = np.fromiter((position[t] for t in left), dtype=np.int64, count=len(left))
    ri = np.fromiter((position[t] for t in right), dtype=np.int64, count=len(right))
    emb = emb.astype(np.float64)
    out = {}
    for dim in dims:
        e = _truncate(emb, dim)
        out[dim] = np.einsum("ij,ij->i", e[li], e[ri])
    return out


def evaluate_sts(model: Any, data: Any, *, dims: Iterable[int] | None = None, batch_size: int = 128,
                 show_progress: bool = False) -> dict[int | None, dict[str, float]]:
    """Spearman and Pearson correlation of cosine similarity with the gold ``score``, per dim."""
    import numpy as np
    from scipy.stats import pearsonr, spearmanr

    from embedtune_core.embedding.models import embedding_dim

    s1, s2, gold = _columns(data, ("sentence1", "sentence2", "score"))
    if len(gold) < 2:
        raise DataError("STS evaluation needs at least two scored pairs")
    gold = np.asarray(gold, dtype=np.float64)
    if np.ptp(gold) == 0:
        raise DataError("every STS score is the same; correlations are undefined")
    full = embedding_dim(model)
    cosines = _pair_cosines(model, [str(t) for t in s1], [str(t) for t in s2], _check_dims(dims, full),
                            batch_size, show_progress)
    results = {}
    for dim, cos in cosines.items():
        constant = np.ptp(cos) == 0
        results[dim] = {
            "spearman": 0.0 if constant else float(spearmanr(cos, gold).statistic),
            "pearson": 0.0 if constant else float(pearsonr(cos, gold).statistic),
        }
    return results


def evaluate_model(
    model: Any,
    data: Any,
    dataset_type: str,
    *,
    registry: Any,
    metrics: Sequence[str],
    dims: Iterable[int] | None = None,
    batch_size: int = 128,
    all_queries: bool = False,
    show_progress: bool = False,
    details: dict | None = None,
    approximate_from: int | None = APPROXIMATE_FROM,
) -> dict[int | None, dict[str, float]]:
    """``{dim: {metric: value}}`` of ``model`` on ``data``; dim ``None`` is the full size
    (``details`` and ``approximate_from``: see :func:`evaluate_ir`; IR data only).

    ``dataset_type`` "ir" (an :class:`~embedtune_core.types.IRData`): the ``metrics`` (``NAME@K``)
    of dense retrieval over the corpus. "sts": Spearman and Pearson correlations. Each
    Matryoshka dim in ``dims`` is evaluated by truncating the
    full embeddings and renormalising them (texts are encoded once).
    """
    from embedtune_core.types import IRData

    if dataset_type == "ir" or isinstance(data, IRData):
        if not isinstance(data, IRData):
            raise DataError(f"IR evaluation needs IRData, got {type(data).__name__}")
        return evaluate_ir(model, data, registry=registry, metrics=metrics, dims=dims, batch_size=batch_size,
                           all_queries=all_queries, show_progress=show_progress, details=details,
                           approximate_from=approximate_from)
    if dataset_type == "sts":
        return evaluate_sts(model, data, dims=dims, batch_size=batch_size, show_progress=show_progress)
    raise DataError(
        f"no evaluation for dataset type '{dataset_type}'",
        hint="evaluate on IR data (queries, corpus, qrels) or STS pairs; row data becomes an IR set with to_ir",
    )
