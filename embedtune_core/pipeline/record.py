"""From what a run's steps found to what it reports: the :class:`RunRecord` (``metrics.json``),
the paired statistics, the figures the report lists, and the finished run folder."""

from __future__ import annotations

import datetime as dt
from typing import Any

from embedtune_core.distributed import is_main_process, world_size
from embedtune_core.pipeline.results import Comparison, RunRecord


def headline_metric(config: Any, eval_kind: str | None) -> str | None:
    """The metric a run is judged by: Spearman for STS, else the first of ``evaluation.metrics``."""
    metrics = list(config.evaluation.metrics)
    return "spearman" if eval_kind == "sts" else (metrics[0] if metrics else None)


def build_record(run: Any) -> RunRecord:
    """The record of ``run`` (a :class:`~embedtune_core.pipeline.runner.Run` whose steps ran)."""
    config, data, results = run.config, run.plan.data, run.results
    headline = headline_metric(config, data.eval_kind)
    retention = None
    if results.retention_before is not None or results.retention_after is not None:
        retention = {"data": config.evaluation.retention, "metric": next(iter(config.evaluation.metrics), None),
                     "before": results.retention_before.full if results.retention_before else None,
                     "after": results.retention_after.full if results.retention_after else None}
    reused = {"embeddings_reused": results.reused_embeddings} if results.reused_embeddings else {}
    return RunRecord(
        name=config.name, steps=dict(results.steps), model=config.model.name, data=config.data.source,
        dataset_type=data.dataset_type, comparison=Comparison(before=results.before, after=results.after),
        headline_metric=headline, baseline=config.evaluation.baseline if results.before else None,
        loss=config.loss.name if results.training is not None else None,
        evaluation={**data.describe_evaluation(), **reused},
        training=results.training, mining=results.mining,
        retention=retention, interpolation=results.interpolation, significance=_significance(run, headline),
        processes=world_size(), deployment=results.deployment,
        finished=dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
    )


def _significance(run: Any, headline: str | None) -> dict | None:
    """Paired statistics of the first metric per query, before and after (IR evaluations)."""
    from embedtune_core.pipeline.significance import significance

    before, after = run.results.before, run.results.after
    if headline is None or before is None or after is None or not before.per_query or not after.per_query:
        return None
    return significance(headline, before.per_query, after.per_query, query_texts(run.plan.data.evaluation))


def query_texts(data: Any) -> dict[str, tuple[str, str]]:
    """Each query's text and its (most) relevant document's text."""
    texts = {}
    for q, judged in data.qrels.items():
        relevant = [d for d, grade in sorted(judged.items(), key=lambda kv: -kv[1]) if grade > 0 and d in data.corpus]
        if q in data.queries:
            texts[q] = (data.queries[q], data.corpus[relevant[0]] if relevant else "")
    return texts


def report_stats(run: Any, record: RunRecord) -> dict[str, Any]:
    """The "what the run did" figures of the report."""
    data, results = run.plan.data, run.results
    stats: dict[str, Any] = {"dataset type": data.dataset_type}
    for key, value in record.evaluation.items():
        stats[f"evaluation {key}"] = value
    if results.training is not None:
        stats["training examples"] = results.training.get("examples")
    if results.mining:
        stats["negatives written"] = results.mining.get("negatives_written")
        stats["random fill-ins among them"] = results.mining.get("negatives_filled")
        stats["candidates dropped as likely false negatives"] = results.mining.get("dropped_false_negatives")
        if results.mining.get("warning"):
            stats["mining warning"] = results.mining["warning"]
    if results.training:
        stats["training steps"] = results.training["steps"]
        stats["final training loss"] = results.training["loss"]
    for step, values in results.steps.items():
        for key, value in values.items():
            stats[f"{step}: {key}"] = value
    return stats


def finish(run: Any) -> RunRecord:
    """Write metrics.json and the report, mark the run finished, and tell the plugins."""
    from embedtune_core import io as eio
    from embedtune_core.config.writer import config_toml
    from embedtune_core.pipeline.report import write_report
    from embedtune_core.pipeline.rundir import drop_snapshot, finish_run_dir

    record = build_record(run)
    note = record.retention_note()
    if note:
        run.progress.note(note)
    if run.folder is not None and is_main_process():
        eio.write_json(run.folder / "metrics.json", record.to_json())
        write_report(run.folder, record, config_toml(run.config), report_stats(run, record),
                     run.results.log_history)
        run.state["finished"] = True
        run.save_state()
    if run.folder is not None:
        run.call_hook("run_finished", run_dir=run.folder, metrics=record.to_json())
        if is_main_process():  # only now is the previous run (or the folder before a resume) let go
            finish_run_dir(run.folder)
            drop_snapshot(run.snapshot)
    return record
