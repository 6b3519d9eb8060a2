"""`embedtune config show|validate`."""

from __future__ import annotations

import click

from embedtune_core.cli.main import AppContext, pass_app


@click.group("config")
def command() -> None:
    """Show or check a pipeline config file (TOML or YAML)."""


@command.command("show")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-s", "--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a key, e.g. -s training.batch_size=64.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of TOML.")
@pass_app
def show(app: AppContext, file: str, overrides: tuple[str, ...], as_json: bool) -> None:
    """Print the resolved config: FILE with overrides and every default filled in, as a run
    records it in config.toml (the loss and the options of each component, the batch sampler,
    precision and device decided; what depends on reading the data stays as written)."""
    from embedtune_core.cli.output import echo_json
    from embedtune_core.config.schema import RunConfig
    from embedtune_core.errors import EmbedtuneError
    from embedtune_core.pipeline.preflight import _named, resolve_without_data

    from embedtune_core.config.files import blame_overrides

    config = RunConfig.from_file(file, overrides)
    try:
        config = resolve_without_data(config, app.registry)
    except EmbedtuneError as exc:
        raise blame_overrides(_named(exc, file), overrides) from None
    if as_json:
        echo_json(config.to_dict())
    else:
        from embedtune_core.config.writer import config_toml

        click.echo(config_toml(config), nl=False)


@command.command("validate")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-s", "--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a key.")
@click.option("--overwrite", is_flag=True, help="Check as `run --overwrite` would (an existing run folder is fine).")
@click.option("--resume", is_flag=True, help="Check as `run --resume` would.")
@pass_app
def validate(app: AppContext, file: str, overrides: tuple[str, ...], overwrite: bool, resume: bool) -> None:
    """Check FILE exactly as `embedtune run` checks it before loading a model: keys and values,
    every component and its options, model paths, the device, the run folder and every data
    record. Nothing is loaded or written."""
    from embedtune_core.config.schema import RunConfig
    from embedtune_core.pipeline.preflight import Output, preflight

    from embedtune_core.config.files import blame_overrides
    from embedtune_core.errors import EmbedtuneError

    config = RunConfig.from_file(file, overrides)
    try:
        preflight(config, app.registry, output=Output(run_dir=config.run_dir, overwrite=overwrite, resume=resume),
                  source=file)
    except EmbedtuneError as exc:
        raise blame_overrides(exc, overrides) from None
    click.echo(f"{file}: valid")
