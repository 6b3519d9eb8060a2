"""`embedtune mine`: the pipeline with the mine step, writing the mined data as JSONL."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from embedtune_core.cli.cmd_data import data_settings, source_options
from embedtune_core.cli.main import AppContext, pass_app
from embedtune_core.errors import ConfigError, EmbedtuneError


def parse_option(text: str) -> tuple[list[str], Any]:
    """``KEY=VALUE`` -> (key path, value). The value is read as JSON when it parses (numbers,
    true/false/null, lists, objects), else kept as text; ``none`` is None. A dotted key
    (``base_options.range_min=5``) sets a nested option."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"miner option '{text}' must be KEY=VALUE", hint="e.g. -O range_min=5 -O relative_margin=0.05")
    raw = raw.strip()
    if raw.lower() in ("none", "null"):
        value: Any = None
    else:
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
    return key.split("."), value


def collect_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for text in pairs:
        path, value = parse_option(text)
        target = options
        for part in path[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise ConfigError(f"miner option '{text}' sets a key inside '{part}', which is not a mapping")
        target[path[-1]] = value
    return options


#: the config keys this command's options set, named in errors as the option
OPTION_NAMES = {"data.source": "--data", "data.type": "--type", "data.reader": "--reader", "data.columns": "--column",
                "mining.miner": "--miner", "mining.num_negatives": "-n", "mining.options": "-O", "mining.corpus": "--corpus",
                "mining.model": "--model", "model.name": "--model", "model.device": "--device", "training.seed": "--seed"}


def _default_output(data: str, miner: str) -> Path:
    stem = Path(data.split(":", 1)[1] if data.startswith("builtin:") else data).name
    for suffix in (".jsonl", ".json", ".csv", ".tsv", ".parquet"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    return Path(f"{stem or 'data'}-{miner.replace(':', '-')}-negatives.jsonl")


def _check_output(out: Path, overwrite: bool) -> None:
    """The output file can be written where -o says, before anything is mined."""
    from embedtune_core.io import blocking_file, check_path_fits, check_writable

    hint = "choose another -o"
    check_path_fits(out, "the output file", hint="use a shorter -o", room=len("..tmp") + 8)
    blocking = blocking_file(out.parent)
    if blocking is not None:
        raise EmbedtuneError("a part of the output file's path is a file, not a folder", file=blocking, hint=hint)
    if out.exists() and out.is_dir():
        raise EmbedtuneError(f"{out} is a folder", hint="give a file name such as mined.jsonl")
    if out.exists() and not overwrite:
        raise EmbedtuneError(f"{out} exists", hint="pass --overwrite to replace it, or choose another -o")
    check_writable(out.parent if not out.exists() else out, "the output file", hint=hint)


@click.command("mine")
@click.option("--data", "data", required=True, metavar="D", help="Data file or folder, or builtin:NAME.")
@source_options(option_flags=("--reader-option",))
@click.option("--miner", required=True, metavar="NAME", help="Negative miner (see `embedtune components miner`).")
@click.option("-n", "--num-negatives", default=1, show_default=True, type=click.IntRange(min=1), help="Negatives per anchor.")
@click.option("--model", metavar="M", help="Model for miners that encode (default: the bundled all-MiniLM-L6-v2).")
@click.option("--corpus", "corpus_file", metavar="FILE",
              help="Candidate texts: .txt (one a line) or a table with 'text' (and optional 'category'). "
                   "Default: the data's corpus (IR), else its positives.")
@click.option("-o", "--output", "output", metavar="OUT.jsonl", help="Output file (default: DATA-MINER-negatives.jsonl here).")
@click.option("--output-format", type=click.Choice(["hard-negatives", "triplets"]), default="hard-negatives",
              show_default=True, help="anchor, positive, negative_1..n rows, or one (anchor, positive, negative) row per negative.")
@click.option("-O", "--option", "options", multiple=True, metavar="KEY=VALUE", help="Miner option (repeatable), e.g. -O range_min=5.")
@click.option("--seed", default=42, show_default=True, type=int, help="Random seed (random sampling, k-means, filling).")
@click.option("--device", metavar="DEVICE", help="torch device for encoding and top-k (default: cuda when available).")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output; print only the result.")
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON.")
@pass_app
def command(app: AppContext, data: str, dataset_type: str | None, reader: str | None, columns: tuple[str, ...],
            split: str | None, eval_split: str | None, extra_options: tuple[str, ...], miner: str, num_negatives: int,
            model: str | None, corpus_file: str | None, output: str | None, output_format: str,
            options: tuple[str, ...], seed: int, device: str | None, overwrite: bool, quiet: bool,
            as_json: bool) -> None:
    """Add hard negatives to a dataset and write a hard-negatives (or triplets) JSONL file.

    The pipeline with the mine step. Retrieval miners (bm25, dense, partial-match,
    domain-confusion) drop likely false negatives: known positives, texts equal to a positive,
    candidates within relative_margin of the positive's score. Options such as range_min,
    range_max, absolute_margin, relative_margin, max_score, sampling=top|random,
    short=fill|drop and cross_encoder=MODEL go through -O (see docs/mining.md). Prints a
    statistics table: candidates seen, dropped, negatives written, anchors that got fewer than
    asked.
    """
    from embedtune_core.cli.cmd_run import run_interruptible
    from embedtune_core.cli.cmd_train import build_config
    from embedtune_core.cli.output import echo_json, table
    from embedtune_core.mining.output import stats_rows
    from embedtune_core.pipeline.preflight import Output
    from embedtune_core.pipeline.steps import MINED_ROWS, steps_providing

    out = Path(output) if output else _default_output(data, miner)
    _check_output(out, overwrite)
    settings = {f"data.{k}": v for k, v in data_settings(data, dataset_type, reader, columns, split, eval_split,
                                                          extra_options).items()}
    settings.update({"mining.miner": miner, "mining.num_negatives": num_negatives, "mining.output": output_format,
                     "mining.options": collect_options(options), "mining.corpus": corpus_file, "model.name": model,
                     "model.device": device, "training.seed": seed})
    config = build_config(None, settings, None, (), steps=steps_providing(app.registry, MINED_ROWS),
                          options=OPTION_NAMES)
    if model is not None and app.registry.get("negative_miner", miner).info.model == "no":
        click.echo(f"note: miner '{miner}' does not use a model; --model is ignored", err=True)
    record = run_interruptible(app, config, Output(mined=out), quiet=quiet or as_json, source=None,
                               resume_hint="run the command again", options=OPTION_NAMES)
    stats = record.mining
    rows = stats["rows_out"]
    if as_json:
        echo_json({"output": os.fspath(out), "rows": rows, "miner": miner, "format": output_format, "stats": stats})
        return
    from embedtune_core.types import MiningStats

    fields = {k: v for k, v in stats.items() if k != "warning"}  # the warning was printed as a note
    click.echo(table(stats_rows(MiningStats(**fields)), ["statistic", "value"]))
    click.echo(f"wrote {rows} rows ({output_format}) to {out}")
    if app.registry.get("negative_miner", miner).info.ordered:
        click.echo("rows are ordered easy -> hard: train them without shuffling (a sequential sampler)")

