"""Typed results of a run: each evaluation, the before/after comparison, and the one
``metrics.json`` document every command writes. The report, the terminal tables and
``metrics.json`` all read these objects."""

from __future__ import annotations

from typing import Any

import attrs

from embedtune_core.io import text_table


@attrs.frozen
class Evaluation:
    """One model evaluated: ``results[dim][metric]`` (dim None is the full size); ``per_query``
    the first metric per query with the first relevant rank (IR data), for paired statistics."""

    model: str
    results: dict[Any, dict[str, float]]
    full_dim: int | None = None
    per_query: dict[str, dict[str, Any]] | None = None

    @property
    def full(self) -> dict[str, float]:
        return dict(self.results.get(None) or {})

    def at(self, dim: int | None) -> dict[str, float] | None:
        """The metrics at ``dim`` (the full size as an int counts as the full size)."""
        if dim is not None and dim == self.full_dim:
            dim = None
        return self.results.get(dim)


def saved_evaluation(evaluation: Evaluation | None) -> dict | None:
    """An evaluation as JSON (``state.json`` keeps the finished ones for ``--resume``)."""
    if evaluation is None:
        return None
    return {"model": evaluation.model, "full_dim": evaluation.full_dim, "per_query": evaluation.per_query,
            "results": {("full" if k is None else str(k)): v for k, v in evaluation.results.items()}}


def restore_evaluation(saved: dict | None) -> Evaluation | None:
    """The evaluation :func:`saved_evaluation` wrote; ValueError for anything else."""
    if saved is None:
        return None
    if not isinstance(saved, dict) or not isinstance(saved.get("model"), str) or not isinstance(saved.get("results"), dict):
        raise ValueError("an evaluation has a model name and results")
    results = {}
    for dim, values in saved["results"].items():
        if not isinstance(values, dict) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                   for v in values.values()):
            raise ValueError(f"the results at dim {dim} are not metric values")
        results[None if dim == "full" else int(dim)] = values
    full_dim, per_query = saved.get("full_dim"), saved.get("per_query")
    if full_dim is not None and (not isinstance(full_dim, int) or isinstance(full_dim, bool)):
        raise ValueError("full_dim is not an integer")
    if per_query is not None and not isinstance(per_query, dict):
        raise ValueError("per_query is not a table")
    return Evaluation(model=saved["model"], results=results, full_dim=full_dim, per_query=per_query)


@attrs.define
class RunResults:
    """What a run's steps found, for its record: the evaluations before and after (and on the
    retention set), the mining and training summaries, the interpolation, the training log, the
    loss a training step built, and each step's reported figures (``steps[NAME]``)."""

    before: Evaluation | None = None
    after: Evaluation | None = None
    retention_before: Evaluation | None = None
    retention_after: Evaluation | None = None
    mining: dict | None = None
    training: dict | None = None
    interpolation: dict | None = None
    log_history: list = attrs.field(factory=list)
    loss: Any = None
    reused_embeddings: int | None = None
    steps: dict[str, dict] = attrs.field(factory=dict)
    deployment: dict | None = None


@attrs.frozen
class Row:
    """One metric at one dim, before and after."""

    metric: str
    dim: int | None
    before: float | None
    after: float | None

    @property
    def change(self) -> float | None:
        return None if self.before is None or self.after is None else self.after - self.before

    @property
    def relative(self) -> float | None:
        """The change in % of the size of the value before: a gain is positive whatever the sign
        of the baseline (an STS correlation of -0.2 rising to -0.1 is +50%); None when before is
        0 or either is missing."""
        change = self.change
        return change / abs(self.before) * 100.0 if change is not None and self.before else None


@attrs.frozen
class Comparison:
    """A before and an after evaluation (either may be missing)."""

    before: Evaluation | None = None
    after: Evaluation | None = None

    def evaluations(self) -> list[Evaluation]:
        return [e for e in (self.before, self.after) if e is not None]

    def dims(self) -> list[int | None]:
        """The full size (None) first, then every truncated dim evaluated, largest first."""
        found = {d for e in self.evaluations() for d in e.results if d is not None}
        return [None] + sorted(found, reverse=True)

    def full_dim(self) -> int | None:
        return next((e.full_dim for e in self.evaluations() if e.full_dim), None)

    def rows(self, dim: int | None = None) -> list[Row]:
        before = (self.before.at(dim) if self.before else None) or {}
        after = (self.after.at(dim) if self.after else None) or {}
        return [Row(metric=m, dim=dim, before=before.get(m), after=after.get(m))
                for m in dict.fromkeys([*before, *after])]

    def all_rows(self) -> list[Row]:
        return [row for dim in self.dims() for row in self.rows(dim)]

    def by_dim(self) -> dict[str, dict[str, Any]]:
        """``{"384": {"before": {...}, "after": {...}}, "64": ...}``: every dim, the full size
        under its number, when more than the full size was evaluated; empty otherwise."""
        dims = self.dims()
        if len(dims) == 1:
            return {}
        out = {}
        for dim in dims:
            label = str(self.full_dim() if dim is None else dim)
            out[label] = {"before": self.before.at(dim) if self.before else None,
                          "after": self.after.at(dim) if self.after else None}
        return out


def _number(value: float | None, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def comparison_table(comparison: Comparison) -> str:
    """The terminal table: metric, dim (when several were evaluated), before, after, change and
    relative change; with one evaluation only, its values per dim."""
    if comparison.before is None or comparison.after is None:
        only = comparison.after or comparison.before
        return results_table(only) if only is not None else "no evaluation"
    dims = comparison.dims()
    show_dim = len(dims) > 1
    body = []
    for row in comparison.all_rows():
        cells = [row.metric] + (["full" if row.dim is None else row.dim] if show_dim else [])
        cells += [_number(row.before, ".4f"), _number(row.after, ".4f"), _number(row.change, "+.4f"),
                  "–" if row.relative is None else f"{row.relative:+.1f}%"]
        body.append(cells)
    headers = ["metric"] + (["dim"] if show_dim else []) + ["before", "after", "change", "relative"]
    return text_table(body, headers)


def results_table(evaluation: Evaluation) -> str:
    """One evaluation: a row per metric, a column per dim."""
    dims = [None] + sorted((d for d in evaluation.results if d is not None), reverse=True)
    metrics = list(dict.fromkeys(m for d in dims for m in evaluation.results[d]))
    body = [[m] + [evaluation.results[d].get(m) for d in dims] for m in metrics]
    return text_table(body, ["metric"] + ["full" if d is None else str(d) for d in dims])


@attrs.frozen
class RunRecord:
    """Everything a finished run reports; :meth:`to_json` is ``metrics.json``. ``steps`` maps
    each step that ran, in order, to the figures it reported."""

    name: str
    steps: dict[str, dict]
    model: str
    data: str
    dataset_type: str
    comparison: Comparison
    headline_metric: str | None = None
    baseline: str | None = None
    loss: str | None = None
    evaluation: dict[str, Any] = attrs.field(factory=dict)
    training: dict[str, Any] | None = None
    mining: dict[str, Any] | None = None
    retention: dict[str, Any] | None = None
    interpolation: dict[str, Any] | None = None
    significance: dict[str, Any] | None = None
    processes: int = 1
    finished: str = ""
    deployment: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        before, after = self.comparison.before, self.comparison.after
        return {
            "name": self.name,
            "steps": {name: dict(values) for name, values in self.steps.items()},
            "model": self.model,
            "baseline": self.baseline,
            "data": self.data,
            "dataset_type": self.dataset_type,
            "loss": self.loss,
            "headline_metric": self.headline_metric,
            "evaluation": self.evaluation or None,
            "before": before.full if before else None,
            "after": after.full if after else None,
            "dims": self.comparison.by_dim(),
            "training": self.training,
            "mining": self.mining,
            "significance": self.significance,
            "retention": self.retention,
            "interpolation": self.interpolation,
            "processes": self.processes,
            "finished": self.finished,
            "deployment": self.deployment,
        }

    def significance_line(self) -> str | None:
        """The headline change with its 95% interval, p-value and wins/losses/ties."""
        stats = (self.significance or {}).get(self.headline_metric or "")
        if not stats or stats.get("mean_change") is None:
            return None
        lo, hi = stats["ci95"]
        return (f"paired over {stats['queries']} queries: {self.headline_metric} {stats['mean_change']:+.4f}, "
                f"95% interval [{lo:+.4f}, {hi:+.4f}], "
                f"p = {stats['p_value']:.4g}; {stats['wins']} queries gained, {stats['losses']} lost, "
                f"{stats['ties']} unchanged")

    def retention_note(self) -> str | None:
        """A line when the headline metric on the retention set fell after training."""
        retention = self.retention or {}
        head = retention.get("metric")
        before, after = (retention.get("before") or {}).get(head), (retention.get("after") or {}).get(head)
        if before is None or after is None or after >= before:
            return None
        return (f"on the general-domain set {retention.get('data')}, {head} fell from {before:.4f} to {after:.4f} "
                f"({(after - before) / before * 100 if before else 0:+.1f}%): training.interpolate = \"auto\" keeps "
                "more of it")

    def headline_by_dim(self) -> list[tuple[str, float | None, float | None]]:
        """``(dim, before, after)`` of the headline metric at every dim evaluated."""
        head = self.headline_metric
        out = []
        for label, values in self.comparison.by_dim().items():
            b = (values.get("before") or {}).get(head)
            a = (values.get("after") or {}).get(head)
            out.append((label, b, a))
        return out
