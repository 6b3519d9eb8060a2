"""Evaluating a model on a data set: IR metrics of dense retrieval, STS correlations or triplet
accuracy, at the full size and at each Matryoshka dim."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from embedtune_core.embedding.search import APPROXIMATE_FROM
from embedtune_core.errors import DataError, EmbedtuneError
from embedtune_core.ranking.metrics import _metric_objects, metrics_of_ranked


#: what ``evaluate_model`` reports for each non-IR dataset type
STS_METRICS = ("spearman", "pearson")


TRIPLET_METRICS = ("accuracy",)


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
    approximate_from: int | None = APPROXIMATE_FROM,
) -> dict[int | None, dict[str, float]]:
    """IR metrics of ``model`` on an :class:`~embedtune_core.types.IRData`, per dim.

    Retrieval is exact below ``approximate_from`` documents (None: always) and an approximate
    faiss index from there; then each dim's results also hold ``search_recall@K``, the recall of
    that search against exact search on a sample of queries."""
    from embedtune_core.embedding.encode import encode
    from embedtune_core.ranking.ranked import RankedRun
    from embedtune_core.embedding.search import VectorSearch

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
    for dim in _check_dims(dims, corpus_emb.shape[1]):
        queries = _truncate(query_emb, dim)
        search = VectorSearch(_truncate(corpus_emb, dim), device=device, approximate_from=approximate_from)
        scores, indices = search.search(queries, depth)
        ranked = RankedRun.from_topk(query_ids, doc_ids, indices, scores, data.qrels, all_queries=all_queries)
        results[dim] = metrics_of_ranked(ranked, objects)
        if search.approximate:
            results[dim][f"search_recall@{depth}"] = search.recall(queries, depth)
    return results


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


def evaluate_triplets(model: Any, data: Any, *, dims: Iterable[int] | None = None, batch_size: int = 128,
                      show_progress: bool = False) -> dict[int | None, dict[str, float]]:
    """Share of (anchor, positive, negative) triplets with cos(anchor, positive) > cos(anchor,
    negative), per dim. Hard-negative rows (negative_1 ... negative_n) count one triplet per
    negative."""
    import numpy as np

    from embedtune_core.embedding.models import embedding_dim

    columns = list(getattr(data, "column_names", None) or [])
    negatives = [c for c in columns if c == "negative" or c.startswith("negative_")]
    if not negatives:
        raise DataError(
            f"evaluation data has no negative column; it has {', '.join(columns) or 'none'}",
            hint="triplets need (anchor, positive, negative); hard negatives negative_1 ... negative_n",
        )
    anchors, positives = _columns(data, ("anchor", "positive"))
    left, pos, neg = [], [], []
    for column in negatives:
        for a, p, n in zip(anchors, positives, data[column]):
            if n is None or n == "":
                continue
            left.append(str(a))
            pos.append(str(p))
            neg.append(str(n))
    if not left:
        raise DataError("evaluation data has no triplets")
    dims_list = _check_dims(dims, embedding_dim(model))
    cos_pos = _pair_cosines(model, left, pos, dims_list, batch_size, show_progress)
    cos_neg = _pair_cosines(model, left, neg, dims_list, batch_size, show_progress)
    return {dim: {"accuracy": float(np.mean(cos_pos[dim] > cos_neg[dim]))} for dim in dims_list}


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
) -> dict[int | None, dict[str, float]]:
    """``{dim: {metric: value}}`` of ``model`` on ``data``; dim ``None`` is the full size.

    ``dataset_type`` "ir" (an :class:`~embedtune_core.types.IRData`): the ``metrics`` (``NAME@K``)
    of dense retrieval over the corpus. "sts": Spearman and Pearson correlations. "triplets" and
    "hard-negatives": accuracy. Each Matryoshka dim in ``dims`` is evaluated by truncating the
    full embeddings and renormalising them (texts are encoded once).
    """
    from embedtune_core.types import IRData

    if dataset_type == "ir" or isinstance(data, IRData):
        if not isinstance(data, IRData):
            raise DataError(f"IR evaluation needs IRData, got {type(data).__name__}")
        return evaluate_ir(model, data, registry=registry, metrics=metrics, dims=dims, batch_size=batch_size,
                           all_queries=all_queries, show_progress=show_progress)
    if dataset_type == "sts":
        return evaluate_sts(model, data, dims=dims, batch_size=batch_size, show_progress=show_progress)
    if dataset_type in ("triplets", "hard-negatives"):
        return evaluate_triplets(model, data, dims=dims, batch_size=batch_size, show_progress=show_progress)
    raise DataError(
        f"no evaluation for dataset type '{dataset_type}'",
        hint="evaluate on IR data (queries, corpus, qrels), STS pairs or triplets",
    )


def evaluation_set(bundle: Any) -> tuple[Any, str, str]:
    """What to evaluate a model on for a :class:`~embedtune_core.types.DataBundle`:
    ``(data, evaluation type, which part)``.

    The eval split when the bundle has one, else all of its data ("part" says which). STS data is
    evaluated as STS; triplets and hard negatives by triplet accuracy; IR data as is; pairs and
    NLI as an IR set built by :func:`embedtune_core.data.loading.to_ir` (queries = anchors, corpus = every
    positive and negative).
    """
    from embedtune_core.data.loading import eval_ir, to_ir

    dataset_type = bundle.dataset_type
    data, part = (bundle.eval, "eval split") if bundle.eval is not None else (bundle.train, "all data")
    if data is None:
        raise DataError("the data set is empty")
    if dataset_type in ("sts", "triplets", "hard-negatives", "ir"):
        return data, dataset_type, part
    if bundle.eval is not None:
        return eval_ir(bundle), "ir", part
    return to_ir(data, dataset_type), "ir", part
