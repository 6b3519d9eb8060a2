"""Small output helpers shared by commands."""

from __future__ import annotations

import json
from typing import Any

import click

from embedtune_core.io import text_table as table  # noqa: F401  (re-exported for the commands)


def echo_json(data: Any) -> None:
    from embedtune_core.io import _json_default

    click.echo(json.dumps(data, indent=2, default=_json_default))
