"""`embedtune components`."""

from __future__ import annotations

import click

from embedtune_core.cli.main import AppContext, pass_app
from embedtune_core.cli.output import echo_json, table


@click.command("components")
@click.argument("kind", required=False, metavar="[KIND]")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def command(app: AppContext, kind: str | None, as_json: bool) -> None:
    """List registered components: kind, name, plugin and description.

    KIND is one of: dataset_reader, negative_miner, loss, metric, callback, step, exporter (plurals and
    'reader', 'miner' work too). Name any component as NAME or PLUGIN:NAME. With --json each
    component also shows what it declared (its metadata and its options, with types and
    defaults).
    """
    components = app.registry.components(kind)
    if as_json:
        echo_json([c.as_dict() for c in components])
        return
    if not components:
        click.echo("no components registered")
        return
    rows = [[c.kind, c.name, c.plugin, c.description] for c in components]
    click.echo(table(rows, ["kind", "name", "plugin", "description"]))
    for k, name, plugins in app.registry.duplicates():
        click.echo(f"note: {k} '{name}' is registered by " + " and ".join(plugins) + "; use PLUGIN:NAME", err=True)


