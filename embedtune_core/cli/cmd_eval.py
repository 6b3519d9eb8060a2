"""`embedtune eval`: the pipeline with the evaluate steps, at each Matryoshka dim, optionally
against a baseline model."""

from __future__ import annotations

import click

from embedtune_core.cli.cmd_data import data_settings, source_options
from embedtune_core.cli.main import AppContext, pass_app

#: the config keys this command's options set, named in errors as the option
OPTION_NAMES = {"data.source": "--data", "data.type": "--type", "data.reader": "--reader", "data.columns": "--column",
                "model.name": "--model", "evaluation.baseline": "--against", "evaluation.metrics": "--metrics",
                "evaluation.dims": "--dims", "evaluation.batch_size": "--batch-size", "model.device": "--device",
                "evaluation.approximate_from": "--approximate-from"}


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


@click.command("eval")
@click.option("--model", "model_name", required=True, help="Model: a local folder or a hub name.")
@click.option("--data", "source", required=True, help="Data: a path, a hub name or builtin:NAME.")
@source_options
@click.option("--dims", default=None, metavar="D1,D2,...",
              help="Matryoshka dims to evaluate besides the full size, e.g. 384,256,128,64.")
@click.option("-m", "--metrics", "metric_values", multiple=True, metavar="NAME@K[,...]",
              help="IR metrics (repeat or comma-separate). Default: ndcg@10 mrr@10 map@100 recall@10 "
                   "precision@10 f1@10.")
@click.option("--against", "against", default=None, metavar="BASELINE",
              help="Evaluate this baseline model too and print a before/after table (before = BASELINE, "
                   "after = --model).")
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True, help="Encoding batch size.")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 ... (default: a GPU when present).")
@click.option("--approximate-from", "approximate_from", default="1000000", show_default=True, metavar="N|none",
              help="Corpus size from which retrieval uses an approximate faiss index and reports its recall as "
                   "search_recall@K (none: always exact).")
@click.option("--all-queries", is_flag=True,
              help="Count every judged query, a query that cannot be ranked scoring 0 (trec_eval -c).")
@click.option("--retention", metavar="SET",
              help="Also evaluate a general-domain IR set (e.g. builtin:wordnet-general), before and after with "
                   "--against.")
@click.option("--output", "output", metavar="DIR", type=click.Path(file_okay=False),
              help="Also write a run folder (config.toml, metrics.json, report) here.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --output folder.")
@click.option("--json", "as_json", is_flag=True, help="Print metrics.json.")
@click.option("--progress/--no-progress", default=False, help="Show progress lines and encoding bars.")
@pass_app
def command(app: AppContext, model_name: str, source: str, dataset_type: str | None, reader: str | None,
            columns: tuple[str, ...], split: str | None, eval_split: str | None, extra_options: tuple[str, ...],
            dims: str | None, metric_values: tuple[str, ...], against: str | None, batch_size: int,
            device: str | None, approximate_from: str, all_queries: bool, retention: str | None, output: str | None,
            overwrite: bool,
            as_json: bool, progress: bool) -> None:
    """Evaluate MODEL on DATA, at the full size and each Matryoshka dim.

    The pipeline with the evaluate steps. IR data (and pairs, triplets, hard negatives or NLI
    data, turned into an IR set: anchors as queries, every positive and negative text of the
    file as the corpus): the ranking metrics of dense retrieval. STS: Spearman and Pearson
    correlation of cosine similarity with the scores. The data's eval split is used when it has
    one, else all of it. A Matryoshka dim is evaluated by truncating the full embeddings and
    renormalising them. With --against, BASELINE is "before" and MODEL "after", whatever their
    order on the line.

    \b
    embedtune eval --model runs/quickstart/model --data builtin:hpo-lay --dims 384,256,128,64 \\
        --against sentence-transformers/all-MiniLM-L6-v2
    """
    from embedtune_core.cli.cmd_run import print_record, run_interruptible
    from embedtune_core.cli.cmd_train import build_config
    from embedtune_core.pipeline.preflight import Output
    from embedtune_core.pipeline.steps import BASELINE_EVALUATION, EVALUATION, steps_providing

    settings = {f"data.{k}": v for k, v in data_settings(source, dataset_type, reader, columns, split, eval_split,
                                                          extra_options).items()}
    settings.update({"model.name": model_name, "model.device": device, "evaluation.baseline": against,
                     "evaluation.metrics": _metrics(metric_values), "evaluation.dims": _dims(dims),
                     "evaluation.batch_size": batch_size, "evaluation.all_queries": all_queries,
                     "evaluation.retention": retention or "none",
                     "evaluation.approximate_from": None if approximate_from.strip().lower() == "none" else approximate_from})
    wanted = (BASELINE_EVALUATION, EVALUATION) if against else (EVALUATION,)
    steps = steps_providing(app.registry, *wanted)
    config = build_config(None, settings, output, (), steps=steps, options=OPTION_NAMES)
    run_dir = config.run_dir if output else None
    record = run_interruptible(app, config, Output(run_dir=run_dir, overwrite=overwrite),
                               quiet=as_json or not progress, source=None, resume_hint="run the command again",
                               options=OPTION_NAMES)
    if not as_json:
        info = record.evaluation
        size = (f"{info['queries']:,} queries, {info['corpus']:,} documents" if "queries" in info
                else f"{info.get('examples', 0):,} pairs")
        click.echo(f"data: {source} ({info.get('type')}, {info.get('part')}: {size})")
        click.echo(f"before: {against}\nafter:  {model_name}\n" if against else f"model: {model_name}\n")
    print_record(record, as_json=as_json, report=(run_dir / "report.html") if run_dir else None)
