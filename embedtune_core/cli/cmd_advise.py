"""`embedtune advise`."""

from __future__ import annotations

import math

import click

from embedtune_core.cli.cmd_data import reader_options, source_options
from embedtune_core.cli.main import AppContext, pass_app


def _memory(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise click.BadParameter(f"{value} is not a positive number of gigabytes", ctx=ctx, param=param)
    return value


@click.command("advise")
@click.option("--data", "source", required=True, help="Data: file, folder or builtin:NAME.")
@source_options
@click.option("--model", default=None, help="Model to tune (default: the bundled MiniLM).")
@click.option("--memory-gb", type=float, default=None, callback=_memory,
              help="Accelerator memory per device in GB (a positive number), for the batch size.")
@click.option("--device", type=click.Choice(["cpu", "gpu"]), default=None, help="Where training runs (default: detected).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def command(app: AppContext, source: str, dataset_type: str | None, reader: str | None, columns: tuple[str, ...],
            split: str | None, eval_split: str | None, extra_options: tuple[str, ...], model: str | None,
            memory_gb: float | None, device: str | None, as_json: bool) -> None:
    """Apply the fine-tuning guide's hyperparameter advice to a data set.

    Epochs (1 for small sets), batch size (as large as memory allows: in-batch negatives =
    batch - 1, never fewer than 15), warmup (10%, 15-20% if early oscillation), learning rate,
    which loss; and checks: minimum size for the type, duplicates, leakage, texts longer than the
    model's max length. DATA is read as `embedtune data validate` reads it (type, reader, column
    mapping, splits, reader options).
    """
    from embedtune_core.training.advice import advise, model_shape
    from embedtune_core.data.loading import load_data
    from embedtune_core.data.stats import bundle_stats, load_token_counter
    from embedtune_core.embedding.models import DEFAULT_MODEL, resolve_model

    model = model or DEFAULT_MODEL
    options = reader_options(columns, split, eval_split, extra_options)
    bundle = load_data(app.registry, source, dataset_type=dataset_type, reader=reader, options=options)
    counter = load_token_counter(model)
    stats = bundle_stats(bundle, counter)
    if device is None:
        import torch

        device = "gpu" if torch.cuda.is_available() else "cpu"
        if device == "gpu" and memory_gb is None:
            memory_gb = torch.cuda.get_device_properties(0).total_memory / 1024 ** 3
    result = advise(stats, dataset_type=bundle.dataset_type, model_name=model, shape=model_shape(resolve_model(model)),
                    memory_gb=memory_gb, device=device, registry=app.registry)
    if as_json:
        from embedtune_core.cli.output import echo_json

        echo_json(result)
        return
    click.echo(f"{source}: {result['examples']:,} {bundle.dataset_type} training examples, model {model}")
    for note in result["notes"]:
        click.echo(f"  {note}")
    for warning in result["warnings"]:
        click.echo(f"  warning: {warning}")
    click.echo("as config overrides: " + " ".join(
        f"-s {section}.{key}={value}" for section, values in result["config"].items() for key, value in values.items()
    ))
