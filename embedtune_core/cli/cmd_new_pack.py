"""`embedtune new-pack`."""

from __future__ import annotations

import re
from pathlib import Path

import click

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
TEMPLATE = "pack"


def pack_names(name: str) -> dict[str, str]:
    """The names a pack called ``name`` gets: entry point, distribution and import package."""
    from embedtune_core.errors import EmbedtuneError

    short = name.strip().lower()
    if short.startswith("embedtune-"):
        short = short[len("embedtune-"):]
    if not NAME_PATTERN.match(short):
        raise EmbedtuneError(
            f"'{name}' is not a usable pack name",
            hint="use lower-case letters, digits and single hyphens, starting with a letter, "
            "e.g. 'legal' or 'ecommerce-fr'",
        )
    return {"name": short, "distribution": f"embedtune-{short}", "package": "embedtune_" + short.replace("-", "_")}


def render(text: str, names: dict[str, str]) -> str:
    for key, value in names.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def scaffold(name: str, parent: str | Path = ".") -> Path:
    """Write a new pack folder ``parent/embedtune-NAME`` from the bundled template and return it.

    Refuses to touch an existing folder. The folder appears whole or not at all.
    """
    from importlib import resources

    from embedtune_core import io as eio
    from embedtune_core.errors import EmbedtuneError

    names = pack_names(name)
    target = Path(parent) / names["distribution"]
    if target.exists():
        raise EmbedtuneError("folder exists; nothing written", file=target,
                             hint="choose another name or --dir, or remove the folder")
    template = resources.files("embedtune_core").joinpath("templates", TEMPLATE)

    def copy(node, out: Path) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.is_dir():
                if child.name == "__pycache__":
                    continue
                sub = out / (names["package"] if child.name == "package" else child.name)
                sub.mkdir()
                copy(child, sub)
            elif child.name.endswith(".tmpl"):
                file_name = child.name[: -len(".tmpl")]
                if file_name == "test_pack.py":
                    file_name = f"test_{names['package']}.py"
                (out / file_name).write_text(render(child.read_text(encoding="utf-8"), names), encoding="utf-8")

    with eio.atomic_path(target) as tmp:
        tmp.mkdir()
        copy(template, tmp)
    return target


@click.command("new-pack")
@click.argument("name")
@click.option("--dir", "parent", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Folder to create the pack in.")
def command(name: str, parent: str) -> None:
    """Scaffold a pack: an installable embedtune-NAME distribution with a sample miner and loss.

    The pack registers through the `embedtune` entry point NAME (components resolve as
    NAME:COMPONENT), has a test that passes straight away and a README. An existing folder is
    never overwritten.
    """
    target = scaffold(name, parent)
    names = pack_names(name)
    click.echo(f"created {target}")
    click.echo(f"next: pip install -e '{target}[test]' && pytest {target}")
    click.echo(f"then `embedtune plugins` lists '{names['name']}' and its components resolve as {names['name']}:NAME")
