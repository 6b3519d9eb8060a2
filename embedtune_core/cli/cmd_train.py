"""`embedtune train`: the pipeline with the train step."""

from __future__ import annotations

from typing import Any

import click

from embedtune_core.cli.main import AppContext, pass_app


@click.command("train")
@click.option("--model", "model_name", metavar="MODEL",
              help="Model to tune: hub name, local folder (default: the bundled all-MiniLM-L6-v2).")
@click.option("--data", "source", metavar="DATA", help="Training data: file, folder or builtin:NAME.")
@click.option("--type", "dataset_type", metavar="TYPE",
              help="Dataset type: pairs, triplets, sts, nli, ir, hard-negatives (a bundled set knows its own).")
@click.option("--loss", "loss_name", metavar="LOSS",
              help="Loss component (default: the one declared the default for the type).")
@click.option("--output", "output", metavar="DIR", type=click.Path(file_okay=False),
              help="Run folder (default: output_dir/name from the config, runs/run).")
@click.option("-c", "--config", "config_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Start from this TOML/YAML config; the options and -s override it.")
@click.option("-s", "--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config key, e.g. -s training.batch_size=64 -s loss.options.scale=30 (repeatable).")
@click.option("--overwrite", is_flag=True, help="Replace an existing run folder (the old one is kept aside until this run finishes).")
@click.option("--resume", is_flag=True, help="Continue the run in the folder from its newest checkpoint.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar; print only the result.")
@click.option("--json", "as_json", is_flag=True, help="Print metrics.json instead of the summary line.")
@pass_app
def command(app: AppContext, model_name: str | None, source: str | None, dataset_type: str | None,
            loss_name: str | None, output: str | None, config_file: str | None, overrides: tuple[str, ...],
            overwrite: bool, resume: bool, quiet: bool, as_json: bool) -> None:
    """Fine-tune a model on one data set and write the run folder.

    The pipeline with the train step: the run folder gets the model (model/, safetensors, with
    a model card), config.toml (every resolved setting, steps = ["train"]), metrics.json,
    training_log.jsonl and checkpoints/. An existing run folder is refused unless --overwrite or
    --resume. Ctrl-C saves a checkpoint; --resume continues from the newest checkpoint, also
    after a crash.

    \b
    Examples:
      embedtune train --data builtin:hpo-lay --output runs/hpo
      embedtune train --data pairs.jsonl --type pairs --loss cached-mnrl -s loss.options.mini_batch_size=32 --output runs/pairs
      embedtune train --data sts.csv --type sts -s training.epochs=2 --output runs/sts
    Several GPUs (the Trainer runs DDP; docs/training.md):
      torchrun --nproc_per_node 4 -m embedtune_core train ...
    """
    from embedtune_core.cli.cmd_run import run_interruptible
    from embedtune_core.cli.output import echo_json
    from embedtune_core.pipeline.preflight import Output
    from embedtune_core.pipeline.steps import TRAINED_MODEL, steps_providing

    settings = {"model.name": model_name, "data.source": source, "data.type": dataset_type, "loss.name": loss_name}
    config = build_config(config_file, settings, output, overrides, steps=steps_providing(app.registry, TRAINED_MODEL))
    hint = "run the same command with --resume"
    record = run_interruptible(app, config, Output(run_dir=config.run_dir, overwrite=overwrite, resume=resume),
                               quiet=quiet or as_json, source=config_file, resume_hint=hint, overrides=overrides)
    if as_json:
        echo_json(record.to_json())
        return
    training = record.training or {}
    loss = f"{training['loss']:.4f}" if training.get("loss") is not None else "n/a"
    note = f" ({training['reason']})" if training.get("stopped_early") else ""
    click.echo(f"trained {training.get('steps', 0)} steps ({training.get('epochs', 0):.2f} epochs) with {record.loss}, "
               f"mean loss {loss}{note}; model saved to {config.run_dir / 'model'}")


def build_config(config_file: str | None, settings: dict[str, Any], output: str | None, overrides: tuple[str, ...],
                 *, steps: list[str], options: dict[str, str] | None = None) -> Any:
    """A RunConfig from a config file (optional), a command's options (``{"section.key": value}``,
    None left out), ``--output``, then ``-s`` overrides; ``steps`` are the command's. An error
    about a key one of the command's ``options`` set names that option."""
    from embedtune_core.cli.cmd_run import option_of
    from embedtune_core.errors import EmbedtuneError

    from embedtune_core.config.files import blame_overrides

    try:
        return _build_config(config_file, settings, output, overrides, steps)
    except EmbedtuneError as exc:
        blame_overrides(exc, overrides)
        if options and exc.key and exc.file is None:
            exc.key = option_of(exc.key, options)
        raise


def _build_config(config_file: str | None, settings: dict[str, Any], output: str | None,
                  overrides: tuple[str, ...], steps: list[str]) -> Any:
    import os

    from embedtune_core.config.files import apply_overrides, load_file
    from embedtune_core.config.schema import RunConfig
    from embedtune_core.errors import ConfigError

    data: dict[str, Any] = load_file(config_file) if config_file else {}
    for key, value in settings.items():
        if value is None:
            continue
        section, _, field = key.partition(".")
        node = data.setdefault(section, {})
        if not isinstance(node, dict):
            raise ConfigError(f"'{section}' must be a table", file=config_file, key=section)
        node[field] = value
    if output is not None:
        folder = os.path.normpath(output)
        parent, name = os.path.split(folder)
        if not name or name in {".", ".."}:
            raise ConfigError(f"--output '{output}' must name a run folder", hint="e.g. --output runs/my-run")
        data["output_dir"] = parent or "."
        data["name"] = name
    data["steps"] = steps
    apply_overrides(data, overrides)
    return RunConfig.from_dict(data, source=config_file)
