"""Before/after results side by side."""

from __future__ import annotations

from typing import Any, Mapping, Sequence


# -- before/after ---------------------------------------------------------------------------------
def compare(
    before: Mapping[Any, Mapping[str, float]], after: Mapping[Any, Mapping[str, float]]
) -> list[dict[str, Any]]:
    """One row per (dim, metric) found in either evaluation: ``metric``, ``dim``, ``before``,
    ``after``, ``change`` (after - before) and ``relative`` (change in % of before; None when
    before is 0 or either value is missing)."""
    rows = []
    for dim in list(dict.fromkeys([*before, *after])):
        b_metrics, a_metrics = before.get(dim) or {}, after.get(dim) or {}
        for metric in list(dict.fromkeys([*b_metrics, *a_metrics])):
            b, a = b_metrics.get(metric), a_metrics.get(metric)
            change = (a - b) if a is not None and b is not None else None
            relative = (change / b * 100.0) if change is not None and b else None
            rows.append({"metric": metric, "dim": dim, "before": b, "after": a, "change": change,
                         "relative": relative})
    return rows


def comparison_table(rows: Sequence[Mapping[str, Any]], *, before_label: str = "before",
                     after_label: str = "after") -> str:
    """A plain-text table of :func:`compare` rows."""
    from embedtune_core.io import text_table as table

    def num(value: Any, fmt: str) -> str:
        return "–" if value is None else format(value, fmt)

    body = [
        [r["metric"], "full" if r["dim"] is None else r["dim"], num(r["before"], ".4f"), num(r["after"], ".4f"),
         num(r["change"], "+.4f"), "–" if r["relative"] is None else f"{r['relative']:+.1f}%"]
        for r in rows
    ]
    return table(body, ["metric", "dim", before_label, after_label, "change", "relative"])


def results_table(results: Mapping[Any, Mapping[str, float]]) -> str:
    """A plain-text table of one evaluation: a row per metric, a column per dim."""
    from embedtune_core.io import text_table as table

    dims = list(results)
    metrics = list(dict.fromkeys(m for d in dims for m in results[d]))
    body = [[m] + [None if results[d].get(m) is None else float(results[d][m]) for d in dims] for m in metrics]
    return table(body, ["metric"] + ["full" if d is None else str(d) for d in dims])
