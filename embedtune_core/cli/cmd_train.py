"""`embedtune train`."""

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
              help="Loss component (default: the guide's choice for the type: mnrl, or cosent for sts).")
@click.option("--output", "output", metavar="DIR", type=click.Path(file_okay=False),
              help="Run folder (default: output_dir/name from the config, runs/run).")
@click.option("-c", "--config", "config_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Start from this TOML/YAML config; the options and -s override it.")
@click.option("-s", "--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config key, e.g. -s training.batch_size=64 -s loss.options.scale=30 (repeatable).")
@click.option("--overwrite", is_flag=True, help="Replace an existing run folder (the old one is kept aside until this run finishes).")
@click.option("--resume", is_flag=True, help="Continue the run in the folder from its newest checkpoint.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar; print only the result.")
@pass_app
def command(app: AppContext, model_name: str | None, source: str | None, dataset_type: str | None,
            loss_name: str | None, output: str | None, config_file: str | None, overrides: tuple[str, ...],
            overwrite: bool, resume: bool, quiet: bool) -> None:
    """Fine-tune a model on one data set and write the run folder.

    The run folder gets the model (model/, safetensors, with a model card), config.toml (the
    resolved settings), metrics.json, training_log.jsonl and checkpoints/. An existing run folder
    is refused unless --overwrite or --resume. Ctrl-C saves a checkpoint; --resume continues
    from the newest checkpoint, also after a crash.

    \b
    Examples:
      embedtune train --data builtin:hpo-lay
      embedtune train --data pairs.jsonl --type pairs --loss cached-mnrl -s loss.options.mini_batch_size=32
      embedtune train --data sts.csv --type sts -s training.epochs=2 --output runs/sts
    Several GPUs (the Trainer runs DDP):
      accelerate launch --multi_gpu --num_processes 4 -m embedtune_core train ...
    """
    config = build_config(config_file, model_name, source, dataset_type, loss_name, output, overrides)
    summary = run_training(config, app.registry, overwrite=overwrite, resume=resume, quiet=quiet,
                           source_label=config_file)
    click.echo(summary)


def build_config(config_file: str | None, model_name: str | None, source: str | None, dataset_type: str | None,
                 loss_name: str | None, output: str | None, overrides: tuple[str, ...]) -> Any:
    """A RunConfig from a config file (optional), the command's options, then ``-s`` overrides."""
    import os

    from embedtune_core.config.files import apply_overrides, load_file
    from embedtune_core.config.schema import RunConfig
    from embedtune_core.errors import ConfigError

    data: dict[str, Any] = load_file(config_file) if config_file else {}
    options: dict[str, Any] = {
        "model.name": model_name,
        "data.source": source,
        "data.type": dataset_type,
        "loss.name": loss_name,
    }
    for key, value in options.items():
        if value is not None:
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
    apply_overrides(data, overrides)
    return RunConfig.from_dict(data, source=config_file)


def _limit(dataset: Any, limit: int | None) -> Any:
    return dataset if limit is None or dataset is None else dataset.select(range(min(limit, len(dataset))))


def _training_form(dataset_type: str, data: Any) -> Any:
    """Training rows of ``data`` (rows of ``dataset_type``, or an IRData)."""
    from embedtune_core.data.loading import to_training_dataset
    from embedtune_core.types import DataBundle

    dataset, _ = to_training_dataset(DataBundle(dataset_type=dataset_type, train=data))
    return dataset


def run_training(config: Any, registry: Any, *, overwrite: bool = False, resume: bool = False, quiet: bool = False,
                 source_label: str | None = None) -> str:
    """Everything `embedtune train` does; returns the summary line it prints.

    Order: check the config and components, refuse an existing run folder, check the model path
    and the loss and callback options, read the data (the loss must fit its type), check the
    training settings, and only then load the model and create the run folder, so bad input
    changes nothing on disk and loads nothing.
    """
    import datetime as dt
    import time

    from embedtune_core import io as eio
    from embedtune_core.config.writer import to_toml
    from embedtune_core.data.loading import load_data, split_train_eval
    from embedtune_core.errors import ConfigError
    from embedtune_core.embedding.models import check_model, load_model
    from embedtune_core.training.trainer import (
        TRAINING_LOG,
        _hf_progress_bars,
        build_loss,
        check_callbacks,
        check_loss_accepts,
        check_loss_options,
        check_run_dir,
        check_training_config,
        finish_run_dir,
        prepare_run_dir,
        recommend_loss,
        save_model,
        train,
    )

    _check_components(config, registry, source_label)
    run_dir = config.run_dir
    check_run_dir(run_dir, overwrite=overwrite, resume=resume)
    check_model(config.model.name, key="model.name")
    if config.loss.name:
        check_loss_options(registry, config.loss.name, config.loss.options)
    check_callbacks(config.training, registry)
    say = (lambda message: None) if quiet else (lambda message: click.echo(f"» {message}", err=True))

    data_config = config.data
    declared_type = data_config.type
    if declared_type and config.loss.name:  # the loss must fit the data: say so before reading it
        check_loss_accepts(registry, config.loss.name, declared_type, dict(config.loss.options))
    say(f"reading {data_config.source}")
    options = dict(data_config.options)
    if data_config.columns:
        options["columns"] = dict(data_config.columns)
    bundle = load_data(registry, data_config.source, dataset_type=declared_type, reader=data_config.reader,
                       options=options)
    dataset_type = bundle.dataset_type
    loss_name = config.loss.name or recommend_loss(dataset_type)
    check_loss_options(registry, loss_name, config.loss.options)
    check_loss_accepts(registry, loss_name, dataset_type, dict(config.loss.options))

    eval_data = None
    if config.training.eval_steps:
        if data_config.eval_source:
            eval_bundle = load_data(registry, data_config.eval_source, dataset_type=dataset_type,
                                    reader=data_config.reader, options=options)
            eval_data = eval_bundle.eval if eval_bundle.eval is not None else eval_bundle.train
        elif bundle.eval is not None:
            eval_data = bundle.eval
        else:
            bundle.train, eval_data = split_train_eval(bundle, data_config.eval_fraction, config.training.seed)
            if eval_data is None:
                raise ConfigError("training.eval_steps needs held-out data", key="data.eval_fraction",
                                  hint="set data.eval_fraction above 0 or data.eval_source")
    train_dataset = _limit(_training_form(dataset_type, bundle.train), data_config.limit)
    eval_dataset = _limit(_training_form(dataset_type, eval_data), data_config.eval_limit) if eval_data is not None else None

    check_training_config(config.training, has_eval=eval_dataset is not None, device=config.model.device)

    say(f"loading model {config.model.name}")
    with _hf_progress_bars(not quiet):
        model = load_model(config.model.name, device=config.model.device,
                           trust_remote_code=config.model.trust_remote_code, max_seq_length=config.model.max_seq_length)
    loss = build_loss(registry, loss_name, model, dataset_type, dict(config.loss.options))

    run_dir = prepare_run_dir(run_dir, overwrite=overwrite, resume=resume)
    resolved = config.to_dict()
    resolved["loss"]["name"] = loss_name
    resolved["data"]["type"] = dataset_type
    config_path = run_dir / "config.toml"
    if resume and config_path.exists():
        _warn_changes(config_path, resolved)
    eio.write_text(config_path, to_toml(resolved))

    label = f"{data_config.source} ({dataset_type}, {len(train_dataset)} training examples)"
    say(f"training with '{loss_name}' on {len(train_dataset)} examples")
    started = time.perf_counter()
    result = train(model, train_dataset, loss, config.training, run_dir, eval_dataset=eval_dataset, resume=resume,
                   registry=registry, quiet=quiet, loss_name=loss_name, dataset_name=label)
    seconds = time.perf_counter() - started
    model_dir = save_model(model, run_dir / "model")
    eval_losses = [row["eval_loss"] for row in result.log_history if "eval_loss" in row]
    metrics = {
        "name": config.name,
        "model": config.model.name,
        "data": data_config.source,
        "dataset_type": dataset_type,
        "loss": loss_name,
        "training": {
            "steps": result.global_step,
            "epochs": result.epochs,
            "loss": result.training_loss,
            "final_logged_loss": next((row["loss"] for row in reversed(result.log_history) if "loss" in row), None),
            "eval_loss": eval_losses[-1] if eval_losses else None,
            "examples": len(train_dataset),
            "eval_examples": len(eval_dataset) if eval_dataset is not None else None,
            "seconds": round(seconds, 2),
            "stopped_early": result.stopped_early,
            "reason": result.reason,
            "log": TRAINING_LOG,
        },
        "finished": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
    }
    eio.write_json(run_dir / "metrics.json", metrics)
    finish_run_dir(run_dir)
    loss_text = f"{result.training_loss:.4f}" if result.training_loss is not None else "n/a"
    note = f" ({result.reason})" if result.stopped_early else ""
    return (f"trained {result.global_step} steps ({result.epochs:.2f} epochs) with {loss_name}, "
            f"mean loss {loss_text}{note}; model saved to {model_dir}")


def _check_components(config: Any, registry: Any, source: str | None) -> None:
    """Every component `train` uses must be registered (a clear error naming the key)."""
    from embedtune_core.errors import ComponentError, ConfigError

    checks = [("loss", config.loss.name, "loss.name")] if config.loss.name else []
    if config.data.reader:
        checks.append(("dataset_reader", config.data.reader, "data.reader"))
    checks += [("callback", str(name), "training.callbacks") for name in config.training.callbacks]
    for kind, name, key in checks:
        try:
            registry.get(kind, name)
        except ComponentError as exc:
            raise ConfigError(exc.message, file=source, key=key, hint=exc.hint) from None


def _warn_changes(config_path: Any, resolved: dict) -> None:
    """Tell the user which settings differ from the run being resumed."""
    from embedtune_core.config.files import tomllib

    try:
        before = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    changed = []
    for section in ("model", "data", "loss", "training"):
        old, new = before.get(section, {}), resolved.get(section, {})
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                changed.append(f"{section}.{key}")
    if changed:
        click.echo("warning: resuming with settings that differ from the run's config.toml: " + ", ".join(changed),
                   err=True)
