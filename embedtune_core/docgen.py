"""Generate docs/cli.md (from the real --help output) and docs/configuration.md (from the config
classes). Run ``python -m embedtune_core.docgen``; a test checks the files are current."""

from __future__ import annotations

import sys
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parent.parent


def _help(command: click.Command, path: list[str]) -> str:
    # the help option names every command gets from the root group's context settings
    with click.Context(command, info_name=" ".join(path), terminal_width=100, max_content_width=100,
                       help_option_names=["-h", "--help"]) as ctx:
        return command.get_help(ctx)


def _walk(command: click.Command, path: list[str]):
    yield path, command
    if isinstance(command, click.Group):
        ctx = click.Context(command, info_name=path[-1])
        for name in command.list_commands(ctx):
            yield from _walk(command.get_command(ctx, name), path + [name])


def cli_markdown() -> str:
    from embedtune_core.cli.main import cli

    parts = [
        "# CLI reference",
        "",
        "Generated from `--help` by `python -m embedtune_core.docgen`; a test keeps it current.",
        "",
    ]
    for path, command in _walk(cli, ["embedtune"]):
        parts += [f"## `{' '.join(path)}`", "", "```text", _help(command, path).rstrip(), "```", ""]
    return "\n".join(parts)


def configuration_markdown() -> str:
    from embedtune_core.config.schema import describe_fields

    parts = [
        "# Configuration",
        "",
        "A pipeline is a TOML (or YAML) file; `embedtune init` writes a commented one and",
        "`embedtune config show FILE` prints it with every default filled in. Any key can be set",
        "from the command line with `-s section.key=value` (values are parsed as YAML scalars or",
        "flow lists: `-s training.batch_size=64`, `-s evaluation.dims=[384,128]`, or as TOML inline",
        "values: `-s 'loss.options={base = \"mnrl\", weights = [1, 2]}'`). Files are parsed,",
        "never evaluated; an unknown key is an error that suggests the closest known one.",
        "",
        "Generated from the config classes by `python -m embedtune_core.docgen`.",
        "",
    ]
    section = None
    for row in describe_fields():
        head = row["key"].split(".")[0] if "." in row["key"] else ""
        if head != section:
            section = head
            parts += ["", f"## [{section}]" if section else "## top level", "", "| key | default | meaning |", "|---|---|---|"]
        default = "unset" if row["default"] is None else f"`{row['default']!r}`"
        meaning = row["help"] + (f" — one of {', '.join(map(str, row['choices']))}" if row["choices"] else "")
        parts.append(f"| `{row['key']}` | {default} | {meaning.replace('|', '/')} |")
    return "\n".join(parts) + "\n"


DOCS = {"cli.md": cli_markdown, "configuration.md": configuration_markdown}


def main() -> int:
    check = "--check" in sys.argv
    stale = []
    for name, render in DOCS.items():
        path = ROOT / "docs" / name
        text = render()
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print("stale: " + ", ".join(stale) + " (run python -m embedtune_core.docgen)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
