"""`embedtune metrics`: trec_eval-style evaluation of a run file against qrels."""

from __future__ import annotations

import click

from embedtune_core.cli.main import AppContext, pass_app


@click.command("metrics")
@click.argument("qrels", type=click.Path(dir_okay=False))
@click.argument("run", type=click.Path(dir_okay=False))
@click.option("-m", "--metric", "metrics", multiple=True, metavar="NAME@K",
              help="Metric to compute, e.g. ndcg@10; repeat or separate by commas (-m ndcg@10,mrr@10) for several. "
                   "Default: ndcg@10 mrr@10 map@100 recall@10 precision@10 f1@10.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: metric -> mean.")
@click.option("--per-query", is_flag=True, help="Also print each query's values.")
@click.option("--all-queries", is_flag=True,
              help="Average over every query of the qrels, a query missing from the run scoring 0 "
                   "(trec_eval -c). By default only queries in both files count.")
@pass_app
def command(app: AppContext, qrels: str, run: str, metrics: tuple[str, ...], as_json: bool, per_query: bool,
            all_queries: bool) -> None:
    """Evaluate a TREC RUN file against a TREC QRELS file, as trec_eval does.

    QRELS lines: `query_id iteration doc_id relevance`. RUN lines: `query_id Q0 doc_id rank
    score tag`; documents are ranked by score, ties by document id (descending), as trec_eval
    does. Metrics: ndcg, mrr, map, recall, precision, f1 (and any a plugin registers), each at a
    cut-off K; values equal trec_eval's ndcg_cut, recip_rank (top K), map_cut, recall and P.
    """
    from embedtune_core.cli.output import echo_json
    from embedtune_core.errors import DataError, EmbedtuneError
    from embedtune_core.ranking.metrics import metrics_of_tables, parse_metric, split_metric_specs
    from embedtune_core.ranking.trec import read_qrels_table, read_run_table

    specs = split_metric_specs(metrics)
    if not specs:
        from embedtune_core.config.schema import DEFAULT_METRICS

        specs = list(DEFAULT_METRICS)
    registry = app.registry  # the one place this command loads plugins: it needs only the metrics
    for spec in specs:
        try:
            registry.get("metric", parse_metric(spec)[0])
        except EmbedtuneError as exc:
            exc.key = exc.key or "--metric"
            raise
    judgements = read_qrels_table(qrels)
    ranking = read_run_table(run)
    judged = set(judgements.query_ids)
    if not all_queries and not any(query in judged for query in ranking.query_ids):
        raise DataError(f"no query of the run has relevance judgements in {qrels}", file=run,
                        hint="check that the run and the qrels use the same query ids (and the order: QRELS RUN)")
    result, counted = metrics_of_tables(registry, judgements, ranking, specs, all_queries=all_queries,
                                        per_query=per_query)
    if as_json:
        echo_json(result)
        return
    width = max(22, *(len(s) for s in specs))
    lines = []
    if per_query:
        by_query = result["per_query"]
        for query in by_query[specs[0]]:
            for spec in specs:
                lines.append(f"{spec.ljust(width)}\t{query}\t{by_query[spec][query]:.4f}")
    lines.append(f"{'num_q'.ljust(width)}\tall\t{counted}")
    for spec in specs:
        lines.append(f"{spec.ljust(width)}\tall\t{result[spec]:.4f}")
    click.echo("\n".join(lines))
