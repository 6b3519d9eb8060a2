"""`embedtune export`: every deployable variant of a model, measured on the held-out data."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from embedtune_core.cli.cmd_data import data_settings, source_options
from embedtune_core.cli.main import AppContext, pass_app

#: the config keys this command's options set, named in errors as the option
OPTION_NAMES = {"data.source": "--data", "data.type": "--type", "data.reader": "--reader", "data.columns": "--column",
                "model.name": "MODEL", "evaluation.metrics": "--metrics", "data.eval_limit": "--eval-limit",
                "data": "--data", "name": "--output", "output_dir": "--output"}
#: the export step's options this command's options set
STEP_OPTION_NAMES = {"exporters": "--exporter", "exporter_options": "--exporter-option", "dims": "--dims",
                     "embeddings": "--embeddings", "threads": "--threads", "batch_size": "--batch-size",
                     "speed_batch_size": "--speed-batch-size", "speed_texts": "--speed-texts", "speed_rounds": "--speed-rounds", "rescore_candidates": "--rescore",
                     "min_retention": "--min-retention"}


def _embeddings(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _exporter_options(values: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """``NAME.OPTION=VALUE`` (VALUE as TOML or YAML would read it) -> ``{NAME: {OPTION: VALUE}}``."""
    from embedtune_core.config.files import parse_value
    from embedtune_core.errors import ConfigError

    out: dict[str, dict[str, Any]] = {}
    for item in values:
        key, sep, value = item.partition("=")
        name, dot, option = key.strip().rpartition(".")
        if not sep or not dot or not name or not option:
            raise ConfigError(f"exporter option '{item}' must be NAME.OPTION=VALUE", key="--exporter-option",
                              hint="e.g. --exporter-option onnx-int8.per_channel=false")
        out.setdefault(name, {})[option] = parse_value(value, key="--exporter-option")
    return out


def _matryoshka_dims(model: str) -> list[int]:
    """The Matryoshka dims of the run that trained ``model`` (RUN/model: RUN/config.toml's
    ``evaluation.dims``), else none."""
    config = Path(os.path.expanduser(model)).parent / "config.toml"
    if not config.is_file():
        return []
    from embedtune_core.config.files import tomllib

    try:
        dims = tomllib.loads(config.read_text(encoding="utf-8")).get("evaluation", {}).get("dims", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [int(d) for d in dims if isinstance(d, int) and not isinstance(d, bool)] if isinstance(dims, list) else []


@click.command("export")
@click.argument("model")
@click.option("--data", "source", required=True, help="Data whose held-out part measures the variants: a path, a hub "
                                                       "name or builtin:NAME.")
@source_options(option_flags=("--reader-option",))
@click.option("-o", "--output", "output", required=True, type=click.Path(file_okay=False), metavar="OUT",
              help="Folder to write the variants and deployment.json into (new or empty).")
@click.option("--exporter", "exporters", multiple=True, metavar="NAME",
              help="Exporter to run (repeatable; default: every exporter declared default). `embedtune components "
                   "exporter` lists them.")
@click.option("--exporter-option", "exporter_values", multiple=True, metavar="NAME.OPTION=VALUE",
              help="An exporter's option, e.g. onnx-int8.per_channel=false (repeatable).")
@click.option("--dims", default=None, metavar="D1,D2,...",
              help="Matryoshka dims besides the full size (default: those of the run that trained MODEL, read from "
                   "RUN/config.toml when MODEL is RUN/model).")
@click.option("--embeddings", default="float32,int8,binary", show_default=True, metavar="P1,P2,...",
              help="Stored embedding precisions: float32, int8, binary (int8 and binary re-scored by the float query).")
@click.option("-m", "--metrics", "metric_values", multiple=True, metavar="NAME@K[,...]",
              help="IR metrics (the first is the headline). Default: ndcg@10 mrr@10 map@100 recall@10 precision@10 f1@10.")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="Threads of every encoding (speed is compared at the same threads).")
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True,
              help="Batch size of the encodings the metrics are measured on (the evaluation's).")
@click.option("--speed-batch-size", type=click.IntRange(min=1), default=32, show_default=True,
              help="Batch size of the speed measurement (sentence-transformers' encode default).")
@click.option("--speed-texts", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Held-out texts each model encodes for the speed measurement.")
@click.option("--speed-rounds", type=click.IntRange(min=1), default=3, show_default=True,
              help="Interleaved timing rounds; each model keeps its best.")
@click.option("--rescore", "rescore_candidates", type=click.IntRange(min=1), default=100, show_default=True,
              help="Candidates per query re-scored by the float query (int8 and binary embeddings).")
@click.option("--min-retention", type=click.FloatRange(0, 1), default=0.99, show_default=True,
              help="Share of the reference's headline metric a variant must keep to be recommended.")
@click.option("--eval-limit", type=click.IntRange(min=1), default=None, help="Measure on the first N held-out queries.")
@click.option("--overwrite", is_flag=True, help="Replace an existing, non-empty OUT.")
@click.option("--json", "as_json", is_flag=True, help="Print deployment.json.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
@pass_app
def command(app: AppContext, model: str, source: str, dataset_type: str | None, reader: str | None,
            columns: tuple[str, ...], split: str | None, eval_split: str | None, extra_options: tuple[str, ...],
            output: str, exporters: tuple[str, ...], exporter_values: tuple[str, ...], dims: str | None,
            embeddings: str, metric_values: tuple[str, ...], threads: int, batch_size: int, speed_batch_size: int,
            speed_texts: int, speed_rounds: int, rescore_candidates: int, min_retention: float, eval_limit: int | None,
            overwrite: bool, as_json: bool, quiet: bool) -> None:
    """Export MODEL for deployment and measure every variant on DATA's held-out part.

    Each exporter (PyTorch, the reference; ONNX; ONNX with int8 weights; a pack's) writes the
    model; each is measured at the full size and every Matryoshka dim, with embeddings stored
    as float32, int8 and binary: the metrics, their retention of the reference's, encoding
    speed (the same texts and threads for all, in the same run), model size and bytes per
    stored vector. OUT gets a folder per variant (`embedtune eval --model OUT/VARIANT` reads
    it; the ONNX ones load with onnxruntime and tokenizers alone), deployment.json with the
    table and the recommended variant (the smallest, fastest one that keeps --min-retention of
    the reference's headline metric), and, as every run folder, config.toml, metrics.json (the
    same table under "deployment") and report.html. It is the pipeline with the export step; in
    a training run, add "export" to `steps` to export the tuned model.

    \b
    embedtune export sentence-transformers/all-MiniLM-L6-v2 --data builtin:hpo-lay -o deploy
    """
    from embedtune_core.cli.cmd_eval import _dims, _metrics

    settings = {f"data.{k}": v for k, v in data_settings(source, dataset_type, reader, columns, split, eval_split,
                                                          extra_options).items()}
    settings.update({"model.name": model, "evaluation.metrics": _metrics(metric_values),
                     "data.eval_limit": eval_limit, "evaluation.retention": "none"})
    export = {"exporters": list(exporters) or None, "exporter_options": _exporter_options(exporter_values),
              "dims": _dims(dims) if dims else _matryoshka_dims(model), "embeddings": list(_embeddings(embeddings)),
              "threads": threads, "batch_size": batch_size, "speed_batch_size": speed_batch_size,
              "speed_texts": speed_texts, "speed_rounds": speed_rounds,
              "rescore_candidates": rescore_candidates, "min_retention": min_retention}
    _export(app, settings, export, output, overwrite=overwrite, as_json=as_json, quiet=quiet)


def _export(app: AppContext, settings: dict[str, Any], export: dict[str, Any], output: str, *, overwrite: bool,
            as_json: bool, quiet: bool) -> None:
    """The pipeline with the steps that provide a deployment, into the run folder ``output``."""
    from embedtune_core.cli.cmd_run import run_interruptible
    from embedtune_core.cli.cmd_train import build_config
    from embedtune_core.cli.output import echo_json
    from embedtune_core.deploy.summary import deployment_table
    from embedtune_core.pipeline.preflight import Output
    from embedtune_core.pipeline.steps import DEPLOYMENT, steps_providing

    steps = steps_providing(app.registry, DEPLOYMENT)
    settings.update({f"step_options.{name}": export for name in steps})
    options = {**OPTION_NAMES, **{f"step_options.{name}.{key}": flag for name in steps
                                  for key, flag in STEP_OPTION_NAMES.items()}}
    config = build_config(None, settings, output, (), steps=steps, options=options)
    record = run_interruptible(app, config, Output(run_dir=config.run_dir, overwrite=overwrite),
                               quiet=quiet or as_json, source=None, resume_hint="run the command again with --overwrite",
                               options=options)
    deployment = record.deployment or {}
    if as_json:
        echo_json(deployment)
        return
    click.echo(deployment_table(deployment))
    click.echo(f"deployment: {os.path.join(output, 'deployment.json')}\nreport: {os.path.join(output, 'report.html')}")
