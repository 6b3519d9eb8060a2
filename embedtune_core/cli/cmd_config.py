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
def show(file: str, overrides: tuple[str, ...], as_json: bool) -> None:
    """Print the resolved config: FILE with overrides and every default filled in."""
    from embedtune_core.config.schema import RunConfig
    from embedtune_core.cli.output import echo_json

    config = RunConfig.from_file(file, overrides)
    if as_json:
        echo_json(config.to_dict())
    else:
        from embedtune_core.config.writer import to_toml

        click.echo(to_toml(config.to_dict()), nl=False)


@command.command("validate")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-s", "--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a key.")
@pass_app
def validate(app: AppContext, file: str, overrides: tuple[str, ...]) -> None:
    """Check FILE: keys, values, and that every named component is registered."""
    from embedtune_core.config.schema import RunConfig
    from embedtune_core.pipeline.runner import check_components

    config = RunConfig.from_file(file, overrides)
    check_components(config, app.registry, source=file)
    click.echo(f"{file}: valid")
