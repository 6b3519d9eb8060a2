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
                "exporter_options": "--exporter-option"}
#: training texts handed to exporters that calibrate (static quantization)
CALIBRATION_TEXTS = 2000


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


def _held_out(app: AppContext, model: str, settings: dict[str, Any]) -> tuple[Any, list[str]]:
    """The held-out IR set (what `embedtune eval` ranks) and training texts for calibration."""
    from embedtune_core.cli.cmd_train import build_config
    from embedtune_core.errors import DataError
    from embedtune_core.pipeline.data import prepare_data

    config = build_config(None, {"model.name": model, **settings}, None, (), steps=["evaluate-after"],
                          options=OPTION_NAMES)
    data = prepare_data(config, app.registry, ("evaluate-after",))
    if data.eval_kind != "ir":
        raise DataError("export measures retrieval: the data must be IR or rows with positives, not STS pairs",
                        key="--data", hint="give the data the model was tuned on, e.g. builtin:hpo-lay")
    texts: list[str] = []
    train = data.bundle.train if data.bundle.eval is not None else None
    if train is not None:
        from embedtune_core.data.loading import to_training_dataset

        rows, _ = to_training_dataset(data.bundle)
        for column in ("anchor", "positive"):
            if column in rows.column_names:
                texts += [str(t) for t in rows[column][:CALIBRATION_TEXTS // 2]]
    return data.evaluation, texts


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
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True, help="Encoding batch size.")
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
            embeddings: str, metric_values: tuple[str, ...], threads: int, batch_size: int, speed_texts: int,
            speed_rounds: int, rescore_candidates: int, min_retention: float, eval_limit: int | None,
            overwrite: bool, as_json: bool, quiet: bool) -> None:
    """Export MODEL for deployment and measure every variant on DATA's held-out part.

    Each exporter (PyTorch, the reference; ONNX; ONNX with int8 weights; a pack's) writes the
    model; each is measured at the full size and every Matryoshka dim, with embeddings stored
    as float32, int8 and binary: the metrics, their retention of the reference's, encoding
    speed (the same texts and threads for all, in the same run), model size and bytes per
    stored vector. OUT gets a folder per variant (`embedtune eval --model OUT/VARIANT` reads
    it; the ONNX ones load with onnxruntime and tokenizers alone), deployment.json with the
    table and the recommended variant (the smallest, fastest one that keeps --min-retention of
    the reference's headline metric), and report.html.

    \b
    embedtune export sentence-transformers/all-MiniLM-L6-v2 --data builtin:hpo-lay -o deploy
    """
    from embedtune_core.cli.cmd_eval import _dims, _metrics
    from embedtune_core.cli.cmd_run import option_of
    from embedtune_core.errors import EmbedtuneError

    try:
        _export(app, model, data_settings(source, dataset_type, reader, columns, split, eval_split, extra_options),
                output, exporters, _exporter_options(exporter_values), _dims(dims) if dims else _matryoshka_dims(model),
                _embeddings(embeddings), _metrics(metric_values), threads, batch_size, speed_texts, speed_rounds,
                rescore_candidates, min_retention, eval_limit, overwrite, as_json, quiet)
    except EmbedtuneError as exc:
        if exc.key and exc.file is None:
            exc.key = option_of(exc.key, {**OPTION_NAMES, "data": "--data"})
        raise


def _export(app: AppContext, model: str, data: dict[str, Any], output: str, exporters: tuple[str, ...],
            exporter_options: dict, dims: list[int], embeddings: tuple[str, ...], metrics: list[str], threads: int,
            batch_size: int, speed_texts: int, speed_rounds: int, rescore_candidates: int, min_retention: float,
            eval_limit: int | None, overwrite: bool, as_json: bool, quiet: bool) -> None:
    from embedtune_core import io as eio
    from embedtune_core.cli.output import echo_json
    from embedtune_core.deploy.deployment import ExportSettings, export_deployment, exporters_to_run
    from embedtune_core.deploy.summary import deployment_table
    from embedtune_core.pipeline.report import write_deployment_report
    from embedtune_core.embedding.models import check_model
    from embedtune_core.pipeline.runner import silence_libraries
    from embedtune_core.pipeline.rundir import check_run_dir

    check_run_dir(output, overwrite=overwrite)
    check_model(model, key="model.name")
    exporters_to_run(app.registry, exporters, exporter_options)
    settings = ExportSettings(dims=tuple(dims), embeddings=embeddings, threads=threads, batch_size=batch_size,
                              speed_texts=speed_texts, speed_rounds=speed_rounds, rescore_candidates=rescore_candidates,
                              min_retention=min_retention)
    settings_for_data = {f"data.{k}": v for k, v in data.items()}
    settings_for_data.update({"evaluation.metrics": metrics, "data.eval_limit": eval_limit})
    evaluation, calibration = _held_out(app, model, settings_for_data)
    silence_libraries()
    progress = (lambda message: None) if quiet or as_json else (lambda message: click.echo(f"» {message}", err=True))
    with eio.atomic_path(output) as folder:
        deployment = export_deployment(model, evaluation, registry=app.registry, metrics=metrics, out_dir=folder,
                                       exporters=exporters or None, exporter_options=exporter_options,
                                       settings=settings, calibration_texts=calibration, path_root=output,
                                       progress=progress)
        write_deployment_report(folder, deployment)
    if as_json:
        echo_json(deployment)
        return
    click.echo(deployment_table(deployment))
    click.echo(f"deployment: {os.path.join(output, 'deployment.json')}\nreport: {os.path.join(output, 'report.html')}")
