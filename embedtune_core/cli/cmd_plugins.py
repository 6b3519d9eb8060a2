"""`embedtune plugins`."""

from __future__ import annotations

import click

from embedtune_core.cli.main import AppContext, pass_app
from embedtune_core.cli.output import echo_json


@click.command("plugins")
@click.option("--all", "show_all", is_flag=True, help="Include the built-in plugins.")
@pass_app
def command(app: AppContext, show_all: bool) -> None:
    """List installed plugins as JSON: name, version, hooks and load error.

    Broken packs are listed with their error instead of stopping the command.
    """
    plugin_set = app.plugin_set
    rows = [
        record.as_dict()
        for record in plugin_set.records.values()
        if (show_all or not record.builtin) and not record.disabled
    ]
    echo_json(rows)
