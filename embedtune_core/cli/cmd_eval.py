"""`embedtune eval`: evaluate a model on a data set, at each Matryoshka dim, optionally against
a second model."""

from __future__ import annotations

from typing import Any

import click

from embedtune_core.cli.cmd_data import reader_options, source_options
from embedtune_core.cli.main import AppContext, pass_app


def _dims(value: str | None) -> list[int]:
    from embedtune_core.text import ascii_int, shorten

    if not value:
        return []
    dims = []
    for part in value.split(","):
        part = part.strip()
        dim = ascii_int(part)
        if dim is None or dim < 1:
            raise click.BadParameter(f"'{shorten(part)}' is not a positive integer (digits 0-9, at most 9 of them)",
                                     param_hint="--dims")
        dims.append(dim)
    return dims


def _metrics(values: tuple[str, ...]) -> list[str]:
    from embedtune_core.config.schema import DEFAULT_METRICS

    specs = [s.strip() for v in values for s in v.split(",") if s.strip()]
    return specs or list(DEFAULT_METRICS)


def _describe(data: Any, kind: str) -> str:
    from embedtune_core.types import IRData

    if isinstance(data, IRData):
        return f"{len(data.queries):,} queries, {len(data.corpus):,} documents"
    return f"{len(data):,} {'pairs' if kind == 'sts' else 'records'}"


def _keyed(results: dict) -> dict:
    return {("full" if dim is None else str(dim)): values for dim, values in results.items()}


@click.command("eval")
@click.option("--model", "model_name", required=True, help="Model: a local folder or a hub name.")
@click.option("--data", "source", required=True, help="Data: a path, a hub name or builtin:NAME.")
@source_options
@click.option("--dims", default=None, metavar="D1,D2,...",
              help="Matryoshka dims to evaluate besides the full size, e.g. 384,256,128,64.")
@click.option("-m", "--metrics", "metric_values", multiple=True, metavar="NAME@K[,...]",
              help="IR metrics (repeat or comma-separate). Default: ndcg@10 mrr@10 map@100 recall@10 "
                   "precision@10 f1@10.")
@click.option("--against", "against", default=None, metavar="MODEL",
              help="Evaluate this second model too and print a before/after table (before = --model).")
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True, help="Encoding batch size.")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 ... (default: a GPU when present).")
@click.option("--all-queries", is_flag=True,
              help="Count every judged query, a query that cannot be ranked scoring 0 (trec_eval -c).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--progress/--no-progress", default=False, help="Show encoding progress bars.")
@pass_app
def command(app: AppContext, model_name: str, source: str, dataset_type: str | None, reader: str | None,
            columns: tuple[str, ...], split: str | None, eval_split: str | None, extra_options: tuple[str, ...],
            dims: str | None, metric_values: tuple[str, ...], against: str | None, batch_size: int,
            device: str | None, all_queries: bool, as_json: bool, progress: bool) -> None:
    """Evaluate MODEL on DATA, at the full size and each Matryoshka dim.

    IR data (and pairs or NLI data, turned into an IR set: anchors as queries, every positive and
    negative as the corpus): the ranking metrics of dense retrieval. STS: Spearman and Pearson
    correlation of cosine similarity with the scores. Triplets and hard negatives: accuracy, the
    share with cos(anchor, positive) > cos(anchor, negative). The data's eval split is used when
    it has one, else all of it. A Matryoshka dim is evaluated by truncating the full embeddings
    and renormalising them.

    \b
    embedtune eval --model runs/hpo/model --data builtin:hpo-lay --dims 384,256,128,64 \\
        --against sentence-transformers/all-MiniLM-L6-v2
    """
    from embedtune_core.cli.output import echo_json
    from embedtune_core.data.loading import load_data
    from embedtune_core.pipeline.evaluation import evaluate_model, evaluation_set
    from embedtune_core.pipeline.results import compare, comparison_table, results_table
    from embedtune_core.embedding.models import check_model, load_model
    from embedtune_core.ranking.metrics import parse_metric

    dim_list = _dims(dims)
    specs = _metrics(metric_values)
    from embedtune_core.errors import EmbedtuneError

    for spec in specs:
        try:
            app.registry.get("metric", parse_metric(spec)[0])
        except EmbedtuneError as exc:
            exc.key = exc.key or "--metrics"
            raise
    check_model(model_name, key="--model")
    if against:
        check_model(against, key="--against")
    options = reader_options(columns, split, eval_split, extra_options)
    bundle = load_data(app.registry, source, dataset_type=dataset_type, reader=reader, options=options)
    data, kind, part = evaluation_set(bundle)

    def run(name: str) -> dict:
        model = load_model(name, device=device)
        return evaluate_model(model, data, kind, registry=app.registry, metrics=specs, dims=dim_list or None,
                              batch_size=batch_size, all_queries=all_queries, show_progress=progress)

    before = run(model_name)
    after = run(against) if against else None
    described = f"{source} ({kind}, {part}: {_describe(data, kind)})"
    if as_json:
        payload: dict[str, Any] = {"model": model_name, "data": source, "type": kind, "part": part,
                                   "results": _keyed(before)}
        if after is not None:
            rows = compare(before, after)
            payload.update(against=against, against_results=_keyed(after),
                           comparison=[{**r, "dim": "full" if r["dim"] is None else r["dim"]} for r in rows])
        echo_json(payload)
        return
    click.echo(f"data: {described}")
    if after is None:
        click.echo(f"model: {model_name}\n")
        click.echo(results_table(before))
    else:
        click.echo(f"before: {model_name}\nafter:  {against}\n")
        click.echo(comparison_table(compare(before, after)))
