"""Metrics of a ranked run against qrels: ``NAME@K`` specs computed with the registered metric
components over one :class:`~embedtune_core.ranking.ranked.RankedRun`."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from embedtune_core.errors import ConfigError, DataError, EmbedtuneError
from embedtune_core.text import ascii_int, shorten


#: the most digits a cut-off K may have
K_DIGITS = 9


def parse_metric(spec: str) -> tuple[str, int]:
    """``"ndcg@10"`` -> ``("ndcg", 10)``. K is written with the ASCII digits 0-9 (at most
    :data:`K_DIGITS` of them)."""
    name, sep, k = str(spec).strip().partition("@")
    number = ascii_int(k, K_DIGITS)
    if not sep or not name or number is None or number < 1:
        too_long = len(k) > K_DIGITS and k.isascii() and k.isdigit()
        raise ConfigError(
            f"metric '{shorten(spec)}' must be NAME@K with K a positive integer"
            + (f" of at most {K_DIGITS} digits" if too_long else ""),
            hint="e.g. ndcg@10 (K written with the digits 0-9)",
        )
    return name.lower(), number


def split_metric_specs(specs: Sequence[str]) -> list[str]:
    """Metric specs as given on a command line: each may hold several separated by commas
    (``["ndcg@10,mrr@10", "map@100"]`` -> ``["ndcg@10", "mrr@10", "map@100"]``)."""
    out = []
    for spec in specs:
        parts = [part.strip() for part in str(spec).split(",")]
        if not any(parts):
            raise ConfigError(f"metric '{spec}' must be NAME@K with K a positive integer", key="--metric",
                              hint="e.g. -m ndcg@10,mrr@10")
        out.extend(part for part in parts if part)
    return out


class CheckedMetric:
    """A metric component's object, called contained and held to its contract: ``compute``
    returns one finite number per query (a pack's metric returning NaN or text is one error
    naming it and its plugin, never a NaN in metrics.json)."""

    def __init__(self, component: Any, metric: Any) -> None:
        self.component, self.metric = component, metric

    def compute(self, ranked: Any, k: int) -> Any:
        import numpy as np

        from embedtune_core.errors import ComponentError
        from embedtune_core.plugins.calling import contained
        from embedtune_core.text import shorten

        component = self.component
        with contained(component, f"computing it at {k}"):
            raw = self.metric.compute(ranked, k)
        who = f"{component.label} from plugin '{component.plugin}'"
        try:
            values = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError):
            raise ComponentError(f"{who} returned {type(raw).__name__} {shorten(repr(raw), 40)}, not numbers",
                                 hint="compute(ranked, k) must return one number per query") from None
        if values.shape != (len(ranked),):
            raise ComponentError(f"{who} returned an array of shape {values.shape}, expected ({len(ranked)},)",
                                 hint="compute(ranked, k) must return one value per query")
        bad = ~np.isfinite(values)
        if bad.any():
            raise ComponentError(f"{who} returned {int(bad.sum())} value(s) that are not finite numbers "
                                 f"(first: {values[bad][0]} for query '{ranked.query_ids[int(np.flatnonzero(bad)[0])]}')",
                                 hint="compute(ranked, k) must return a finite number per query")
        return values


def _metric_objects(registry: Any, specs: Sequence[str]) -> list[tuple[str, Any, int]]:
    """``(spec, metric object, k)`` for each spec, each metric component created once."""
    created: dict[str, Any] = {}
    out = []
    for spec in specs:
        name, k = parse_metric(spec)
        if name not in created:
            component = registry.get("metric", name)
            created[name] = CheckedMetric(component, registry.create("metric", name))
        out.append((spec, created[name], k))
    return out


def metrics_of_ranked(
    ranked: Any, metric_objects: Sequence[tuple[str, Any, int]], *, per_query: bool = False
) -> dict[str, Any]:
    """Mean of each metric over the ranked run's queries (and per-query values when asked)."""
    import numpy as np

    result: dict[str, Any] = {}
    per: dict[str, dict[str, float]] = {}
    for spec, metric, k in metric_objects:
        values = np.asarray(metric.compute(ranked, k), dtype=np.float64)
        if values.shape != (len(ranked),):
            raise EmbedtuneError(
                f"metric '{spec}' returned an array of shape {values.shape}, expected ({len(ranked)},)",
                hint="compute(ranked, k) must return one value per query",
            )
        result[spec] = float(values.mean()) if len(values) else 0.0
        if per_query:
            per[spec] = dict(zip(ranked.query_ids, values.tolist()))
    if per_query:
        result["per_query"] = per
    return result


def compute_metrics(
    registry: Any,
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Mapping[str, float]],
    specs: Sequence[str],
    *,
    all_queries: bool = False,
    per_query: bool = False,
) -> dict[str, Any]:
    """``{spec: mean}`` for each ``NAME@K`` in ``specs`` (names as given).

    Queries counted: those in both run and qrels, or every qrels query with ``all_queries``
    (trec_eval ``-c``). With ``per_query`` the result also holds ``"per_query": {spec: {query id:
    value}}``. Raises :class:`DataError` when no query is counted.
    """
    from embedtune_core.ranking.ranked import RankedRun

    objects = _metric_objects(registry, specs)
    return _metrics_of_counted(RankedRun.from_run(qrels, run, all_queries=all_queries), objects, per_query)


def _metrics_of_counted(ranked: Any, objects: Sequence[tuple[str, Any, int]], per_query: bool) -> dict[str, Any]:
    """:func:`metrics_of_ranked`, or a DataError when no query is counted."""
    if len(ranked) == 0:
        raise DataError(
            "no query of the run has relevance judgements",
            hint="check that the run and the qrels use the same query ids",
        )
    return metrics_of_ranked(ranked, objects, per_query=per_query)


def metrics_of_tables(
    registry: Any,
    qrels: Any,
    run: Any,
    specs: Sequence[str],
    *,
    all_queries: bool = False,
    per_query: bool = False,
) -> tuple[dict[str, Any], int]:
    """:func:`compute_metrics` for a qrels and a run read with
    :func:`~embedtune_core.ranking.trec.read_qrels_table` / :func:`~embedtune_core.ranking.trec.read_run_table`;
    also returns how many queries were counted."""
    from embedtune_core.ranking.ranked import RankedRun

    objects = _metric_objects(registry, specs)
    ranked = RankedRun.from_tables(qrels, run, all_queries=all_queries)
    return _metrics_of_counted(ranked, objects, per_query), len(ranked)
