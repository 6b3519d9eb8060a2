"""`embedtune init`."""

from __future__ import annotations

from pathlib import Path

import click

from embedtune_core.cli.main import AppContext, pass_app
from embedtune_core.types import DATASET_TYPES

#: data settings of the starter pipeline for each dataset type
STARTER_DATA = {
    "ir": {"source": "builtin:hpo-lay", "type": "ir"},
    "pairs": {"source": "data/pairs.jsonl", "type": "pairs"},
    "triplets": {"source": "data/triplets.jsonl", "type": "triplets"},
    "sts": {"source": "data/sts.jsonl", "type": "sts"},
    "nli": {"source": "data/nli.jsonl", "type": "nli"},
    "hard-negatives": {"source": "data/hard-negatives.jsonl", "type": "hard-negatives"},
}


@click.command("init")
@click.option("--type", "dataset_type", type=click.Choice(list(DATASET_TYPES)), default="ir", show_default=True,
              help="Dataset type the pipeline trains on.")
@click.option("-o", "--output", default="pipeline.toml", show_default=True, type=click.Path(dir_okay=False),
              help="File to write.")
@click.option("--data", "source", metavar="D",
              help="Your data (file, folder, hub name or builtin:NAME), written as data.source "
                   "(default: a placeholder path, builtin:hpo-lay for ir).")
@click.option("--force", is_flag=True, help="Overwrite the file if it exists.")
@pass_app
def command(app: AppContext, dataset_type: str, output: str, source: str | None, force: bool) -> None:
    """Write a commented starter pipeline for a dataset type.

    Every key is listed with its default and what it does; give your data with --data (or edit
    data.source) and run it with `embedtune run FILE`. The miner is the one declared the default for the type (none for
    STS: scored pairs have no positives to mine against).
    """
    from embedtune_core import io as eio
    from embedtune_core.errors import EmbedtuneError
    from embedtune_core.config.starter import starter_toml

    path = Path(output)
    if path.exists() and not force:
        raise EmbedtuneError("file exists; not overwritten", file=path, hint="pass --force or choose another -o")
    values: dict = {"": {"name": f"my-{dataset_type}-run"}, "data": dict(STARTER_DATA[dataset_type])}
    if source:
        values["data"]["source"] = source
    miner = app.registry.default_for("negative_miner", dataset_type)
    if miner is not None:  # without one the default pipeline leaves its mining step out
        values["mining"] = {"miner": miner.name, "num_negatives": 1}
    eio.write_text(path, starter_toml(values, file_name=path.name))
    click.echo(f"wrote {path}; run it with: embedtune run {path}")
