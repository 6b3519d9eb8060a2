"""`embedtune mine`: add hard negatives to a dataset and write it as JSONL."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from embedtune_core.cli.main import AppContext, pass_app
from embedtune_core.cli.output import echo_json, table
from embedtune_core.errors import ConfigError, DataError, EmbedtuneError


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


def read_corpus_file(path: str) -> tuple[list[str], list[Any] | None]:
    """Candidate texts (and categories) from ``path``: ``.txt`` (one text a line) or a table
    (``.jsonl``, ``.json``, ``.csv``, ``.tsv``, ``.parquet``) with a ``text`` field, an optional
    ``title`` (prefixed, as in BEIR corpora) and an optional ``category``."""
    from embedtune_core.data.files import read_table, read_text

    file = Path(path)
    if file.suffix.lower() == ".txt":
        texts = [line.strip() for line in read_text(file).splitlines() if line.strip()]
        return texts, None
    table_ = read_table(file)
    texts, categories = [], []
    has_category = "category" in table_.columns
    for index, row in enumerate(table_.rows):
        body = row.get("text")
        if not isinstance(body, str) or not body.strip():
            raise DataError("corpus record needs a non-empty 'text' field", **table_.where(index), key="text")
        title = row.get("title") or ""
        texts.append(f"{title.strip()} {body.strip()}".strip() if isinstance(title, str) else body.strip())
        if has_category:
            value = row.get("category")
            categories.append(None if value in (None, "") else str(value))
    return texts, (categories if has_category else None)


def _default_output(data: str, miner: str) -> Path:
    stem = Path(data.split(":", 1)[1] if data.startswith("builtin:") else data).name
    for suffix in (".jsonl", ".json", ".csv", ".tsv", ".parquet"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    return Path(f"{stem or 'data'}-{miner.replace(':', '-')}-negatives.jsonl")


@click.command("mine")
@click.option("--data", "data", required=True, metavar="D", help="Data file or folder, or builtin:NAME.")
@click.option("--type", "dataset_type", metavar="T", help="Dataset type: pairs, triplets, nli, ir, hard-negatives.")
@click.option("--miner", required=True, metavar="NAME", help="Negative miner (see `embedtune components miner`).")
@click.option("-n", "--num-negatives", default=1, show_default=True, type=click.IntRange(min=1), help="Negatives per anchor.")
@click.option("--model", metavar="M", help="Model for miners that encode (default: the bundled all-MiniLM-L6-v2).")
@click.option(
    "--corpus",
    "corpus_file",
    metavar="FILE",
    help="Candidate texts: .txt (one a line) or a table with 'text' (and optional 'category'). "
    "Default: the data's corpus (IR), else its positives.",
)
@click.option("-o", "--output", "output", metavar="OUT.jsonl", help="Output file (default: DATA-MINER-negatives.jsonl here).")
@click.option(
    "--output-format",
    type=click.Choice(["hard-negatives", "triplets"]),
    default="hard-negatives",
    show_default=True,
    help="anchor, positive, negative_1..n rows, or one (anchor, positive, negative) row per negative.",
)
@click.option("-O", "--option", "options", multiple=True, metavar="KEY=VALUE", help="Miner option (repeatable), e.g. -O range_min=5.")
@click.option("--seed", default=42, show_default=True, type=int, help="Random seed (random sampling, k-means, filling).")
@click.option("--device", metavar="DEVICE", help="torch device for encoding and top-k (default: cuda when available).")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON.")
@pass_app
def command(
    app: AppContext,
    data: str,
    dataset_type: str | None,
    miner: str,
    num_negatives: int,
    model: str | None,
    corpus_file: str | None,
    output: str | None,
    output_format: str,
    options: tuple[str, ...],
    seed: int,
    device: str | None,
    overwrite: bool,
    as_json: bool,
) -> None:
    """Add hard negatives to a dataset and write a hard-negatives (or triplets) JSONL file.

    Retrieval miners (bm25, dense, partial-match, domain-confusion) drop likely false negatives:
    known positives, texts equal to a positive, candidates within relative_margin (default 0.05)
    of the positive's score. Options such as range_min, range_max, absolute_margin,
    relative_margin, max_score, sampling=top|random, short=fill|drop and cross_encoder=MODEL go
    through -O. Prints a statistics table: candidates seen, dropped, negatives written, anchors
    that got fewer than asked.
    """
    from embedtune_core.data.loading import load_data, to_training_dataset
    from embedtune_core.io import write_jsonl
    from embedtune_core.mining.toolkit import check_miner, run_miner, stats_rows
    from embedtune_core.embedding.models import check_model

    miner_options = collect_options(options)
    component = app.registry.get("negative_miner", miner)
    check_miner(app.registry, miner, miner_options, key=None)
    if model is not None:
        check_model(model, key="--model")
    out = Path(output) if output else _default_output(data, miner)
    if out.exists() and not overwrite:
        raise EmbedtuneError(f"{out} exists", hint="pass --overwrite to replace it, or choose another -o")
    if out.exists() and out.is_dir():
        raise EmbedtuneError(f"{out} is a folder", hint="give a file name such as mined.jsonl")

    bundle = load_data(app.registry, data, dataset_type=dataset_type)
    if component.meta.get("input") == "nli" and bundle.dataset_type == "nli":
        dataset, training_type = bundle.train, "nli"  # the NLI records themselves, labels included
    else:
        dataset, training_type = to_training_dataset(bundle)
    check_miner(app.registry, miner, miner_options, dataset_type=training_type, key=None)
    corpus, categories = None, None
    if corpus_file:
        corpus, categories = read_corpus_file(corpus_file)
    elif bundle.corpus:
        corpus = list(bundle.corpus)

    if device and device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: no CUDA device is available", hint="leave --device out, or use --device cpu")
    accepted = getattr(component.factory, "own_options", {}) or {}
    if device and "device" in accepted:
        miner_options.setdefault("device", device)
    use = component.meta.get("model", "no")
    wants_model = use == "required" or (
        use == "guards" and (model is not None or miner_options.get("guard_scores", "auto") != "retrieval")
    )
    encoder = None
    if wants_model:
        from embedtune_core.embedding.encode import Encoder
        from embedtune_core.embedding.models import DEFAULT_MODEL, load_model

        encoder = Encoder(load_model(model or DEFAULT_MODEL, device=device))
    elif model is not None and use == "no":
        click.echo(f"note: miner '{miner}' does not use a model; --model is ignored", err=True)

    result = run_miner(
        app.registry,
        miner,
        dataset,
        training_type,
        num_negatives=num_negatives,
        options=miner_options,
        encoder=encoder,
        corpus=corpus,
        categories=categories,
        output=output_format,
        seed=seed,
    )
    stats = result.stats
    rows = len(result.dataset)
    if rows == 0:
        raise EmbedtuneError(
            f"no anchor got {num_negatives} negative(s): nothing written "
            f"({stats.candidates_seen} candidates seen, {stats.dropped_false_negatives} dropped as likely false negatives)",
            hint="ask for fewer negatives, widen range_max, relax relative_margin, give a larger --corpus, or -O short=fill",
        )
    if out.exists() and not overwrite:
        raise EmbedtuneError(f"{out} exists", hint="pass --overwrite to replace it, or choose another -o")
    write_jsonl(out, _rows(result.dataset))
    if as_json:
        echo_json({"output": os.fspath(out), "rows": rows, "miner": miner, "format": output_format, "stats": stats.as_dict()})
        return
    click.echo(table(stats_rows(stats), ["statistic", "value"]))
    click.echo(f"wrote {rows} rows ({output_format}) to {out}")
    if stats.extra.get("ordered"):
        click.echo("rows are ordered easy -> hard: train them without shuffling (a sequential sampler)")


def _rows(dataset, batch: int = 8192):
    """The rows of a ``datasets.Dataset`` as dicts, read a batch at a time (``to_list`` would
    hold every row as a dict at once)."""
    if not hasattr(dataset, "iter"):
        yield from dataset.to_list()
        return
    for columns in dataset.iter(batch_size=batch):
        names = list(columns)
        yield from (dict(zip(names, values)) for values in zip(*(columns[n] for n in names)))
