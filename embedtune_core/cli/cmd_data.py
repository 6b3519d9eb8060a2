"""`embedtune data validate|stats|list`."""

from __future__ import annotations

import json
from typing import Any

import click

from embedtune_core.cli.main import AppContext, pass_app
from embedtune_core.types import DATASET_TYPES

TYPES = click.Choice(list(DATASET_TYPES))


def source_options(func=None, *, option_flags: tuple[str, ...] = ("-o", "--option")):
    """The options every command that reads a source shares (``option_flags`` names the reader
    option where a command uses ``-o`` for something else)."""
    if func is None:
        return lambda f: source_options(f, option_flags=option_flags)
    example = f"{option_flags[0]} score_range=[0,1]"
    func = click.option(
        *option_flags,
        "extra_options",
        multiple=True,
        metavar="KEY=VALUE",
        help=f"Reader option (VALUE may be JSON), e.g. {example}.",
    )(func)
    func = click.option("--eval-split", default=None, help="Split to hold out (saved datasets, split folders, IR qrels, hub).")(func)
    func = click.option("--split", default=None, help="Split to read as training data (default: train).")(func)
    func = click.option(
        "-c", "--column", "columns", multiple=True, metavar="FIELD=COLUMN", help="Map a field to your column, e.g. -c anchor=question."
    )(func)
    func = click.option("--reader", default=None, help="Dataset reader component (the type's reader by default).")(func)
    func = click.option("-t", "--type", "dataset_type", type=TYPES, default=None, help="Dataset type (optional for builtin:NAME).")(func)
    return func


def _pairs(values: tuple[str, ...], what: str) -> dict[str, Any]:
    from embedtune_core.errors import EmbedtuneError

    out: dict[str, Any] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise EmbedtuneError(f"{what} '{item}' must be KEY=VALUE", hint="e.g. -c anchor=question or -o score_range=[0,1]")
        out[key.strip()] = value
    return out


def reader_options(columns: tuple[str, ...], split: str | None, eval_split: str | None, extra: tuple[str, ...]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    mapping = _pairs(columns, "column mapping")
    if mapping:
        options["columns"] = mapping
    if split:
        options["split"] = split
    if eval_split:
        options["eval_split"] = eval_split
    for key, value in _pairs(extra, "option").items():
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value
    return options


def data_settings(source: str, dataset_type: str | None, reader: str | None, columns: tuple[str, ...],
                  split: str | None, eval_split: str | None, extra: tuple[str, ...]) -> dict[str, Any]:
    """The ``[data]`` settings the data options of a command stand for."""
    options = reader_options(columns, split, eval_split, extra)
    settings: dict[str, Any] = {"source": source, "columns": options.pop("columns", {}), "options": options}
    if dataset_type:
        settings["type"] = dataset_type
    if reader:
        settings["reader"] = reader
    return settings


def read_source(app: AppContext, path: str, dataset_type: str | None, reader: str | None, options: dict[str, Any]) -> Any:
    from embedtune_core.data.loading import load_data

    return load_data(app.registry, path, dataset_type=dataset_type, reader=reader, options=options)


def summary_line(bundle: Any) -> str:
    """One line: the type and the size of each split."""
    from embedtune_core.types import IRData

    def describe(data: Any) -> str:
        if isinstance(data, IRData):
            judgements = sum(len(v) for v in data.qrels.values())
            return f"{len(data.queries):,} queries, {judgements:,} judgements, {len(data.corpus):,} documents"
        return f"{len(data):,} records"

    text = f"valid {bundle.dataset_type} data: train {describe(bundle.train)}"
    if bundle.eval is not None:
        text += f"; eval {describe(bundle.eval)}"
    skipped = (bundle.info.get("reader_notes") or {}).get("skipped_unlabelled")
    if skipped:
        text += f" ({skipped:,} records without a gold label skipped)"
    return text


@click.group("data")
def command() -> None:
    """Check, describe and list datasets.

    PATH is a JSONL/JSON/CSV/TSV/Parquet file, a folder written by datasets.save_to_disk, a folder
    of split files (train.jsonl, test.jsonl...), a BEIR-style folder for type ir, a hub name, or
    builtin:NAME (see `embedtune data list`).
    """


@command.command("validate")
@click.argument("path")
@source_options
@pass_app
def validate(
    app: AppContext,
    path: str,
    dataset_type: str | None,
    reader: str | None,
    columns: tuple[str, ...],
    split: str | None,
    eval_split: str | None,
    extra_options: tuple[str, ...],
) -> None:
    """Check every record of PATH; print a one-line summary (exit 0) or the first error (exit 2)."""
    bundle = read_source(app, path, dataset_type, reader, reader_options(columns, split, eval_split, extra_options))
    click.echo(f"{path}: {summary_line(bundle)}")


@command.command("stats")
@click.argument("path")
@source_options
@click.option("-m", "--model", default=None, help="Model whose tokenizer counts tokens (default: the bundled MiniLM).")
@click.option("--against", default=None, metavar="OTHER", help="Another split or file of the same type to check for shared anchors.")
@click.option("--no-tokens", is_flag=True, help="Skip token counts (no tokenizer is loaded).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def stats(
    app: AppContext,
    path: str,
    dataset_type: str | None,
    reader: str | None,
    columns: tuple[str, ...],
    split: str | None,
    eval_split: str | None,
    extra_options: tuple[str, ...],
    model: str | None,
    against: str | None,
    no_tokens: bool,
    as_json: bool,
) -> None:
    """Counts, text lengths in model tokens, duplicates, leakage and whether the size meets the
    minimum for the type."""
    from embedtune_core.cli.output import echo_json
    from embedtune_core.data.stats import bundle_stats, format_stats, load_token_counter
    from embedtune_core.embedding.models import DEFAULT_MODEL

    options = reader_options(columns, split, eval_split, extra_options)
    bundle = read_source(app, path, dataset_type, reader, options)
    other = None
    if against:
        other_options = {} if against.startswith("builtin:") else options
        other = read_source(app, against, bundle.dataset_type, reader if not against.startswith("builtin:") else None, other_options)
    counter = None if no_tokens else load_token_counter(model or DEFAULT_MODEL)
    result = bundle_stats(bundle, counter, other)
    if as_json:
        echo_json(result)
    else:
        click.echo(format_stats(result))


@command.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def list_(app: AppContext, as_json: bool) -> None:
    """The bundled datasets: name, type, size, licence (load one as builtin:NAME)."""
    from embedtune_core.cli.output import echo_json, table

    sets = [c for c in app.registry.components("dataset_reader") if c.info.bundled]
    rows = [
        {
            "name": c.name,
            "plugin": c.plugin,
            "type": c.info.dataset_type,
            "size": c.info.size or "",
            "licence": c.info.licence or "",
            "description": c.description,
        }
        for c in sets
    ]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no bundled datasets")
        return
    click.echo(table([[r["name"], r["type"], r["size"], r["licence"]] for r in rows], ["name", "type", "size", "licence"]))
