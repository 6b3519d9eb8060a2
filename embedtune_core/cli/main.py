"""Entry point of the ``embedtune`` command."""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from typing import Any

import click

from embedtune_core import __version__
from embedtune_core.errors import EmbedtuneError

CLI_PACKAGE = "embedtune_core.cli"


def _command_modules() -> dict[str, str]:
    import embedtune_core.cli as package

    found = {}
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("cmd_"):
            found[info.name[4:].replace("_", "-")] = f"{CLI_PACKAGE}.{info.name}"
    return found


class LazyGroup(click.Group):
    """A group whose subcommands are imported from ``cmd_*.py`` modules only when needed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(_command_modules()))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        module_name = _command_modules().get(name)
        if module_name is None:
            return None
        return importlib.import_module(module_name).command


class AppContext:
    """Shared state of one CLI invocation: plugin options, and the registry built on first use."""

    def __init__(self, plugin_args: tuple[str, ...] = (), disabled: tuple[str, ...] = ()) -> None:
        self.modules = tuple(p for p in plugin_args if not p.startswith("no:"))
        self.disabled = tuple(disabled) + tuple(p[3:] for p in plugin_args if p.startswith("no:"))
        self._plugin_set = None
        self._registry = None

    def _load(self) -> None:
        from embedtune_core.plugins.manager import warn_broken
        from embedtune_core.plugins.registry import load_registry

        self._plugin_set, self._registry = load_registry(disabled=self.disabled, modules=self.modules)
        warn_broken(self._plugin_set)

    @property
    def plugin_set(self) -> Any:
        if self._plugin_set is None:
            self._load()
        return self._plugin_set

    @property
    def registry(self) -> Any:
        if self._registry is None:
            self._load()
        return self._registry


pass_app = click.make_pass_decorator(AppContext, ensure=True)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="embedtune")
@click.option(
    "-p",
    "--plugin",
    "plugin_args",
    multiple=True,
    metavar="MODULE|no:NAME",
    help="Load MODULE as a plugin, or 'no:NAME' to skip the installed plugin NAME.",
)
@click.option("--disable-plugin", "disabled", multiple=True, metavar="NAME", help="Skip the installed plugin NAME.")
@click.pass_context
def cli(ctx: click.Context, plugin_args: tuple[str, ...], disabled: tuple[str, ...]) -> None:
    """Fine-tune embedding models for your domain.

    Read data, mine hard negatives, train with sentence-transformers and prove the gain with
    IR metrics; every component is a plugin. Start with `embedtune run examples/quickstart.toml`
    or `embedtune init`.

    Environment: EMBEDTUNE_LOAD_PLUGINS=a,b loads only these plugins;
    EMBEDTUNE_STRICT_PLUGINS=1 makes a broken plugin fatal.
    """
    ctx.obj = AppContext(plugin_args, disabled)
    if ctx.obj.modules:
        from embedtune_core.plugins.manager import load_plugin_module

        for module in ctx.obj.modules:  # named explicitly: must load, before the command runs
            load_plugin_module(module)


def _other_process_is_quiet() -> None:
    """Under torchrun / accelerate, processes other than the main one print nothing: no results,
    progress bars, library warnings or notes (the main process prints each line once)."""
    import logging
    import warnings

    sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - for the process's life
    for name, value in (("TQDM_DISABLE", "1"), ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
                        ("TRANSFORMERS_VERBOSITY", "error"), ("DATASETS_VERBOSITY", "error")):
        os.environ[name] = value
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)


def _error(text: str, *, every_process: bool = False) -> None:
    """An error line: from the main process; from another one only when it is that process's own
    (a training fault), not one every process meets alike (a bad setting or file)."""
    from embedtune_core.distributed import is_main_process, rank

    if is_main_process():
        click.echo(text, err=True)
    elif every_process:
        click.echo(f"process {rank()}: {text}", err=True)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; user errors print one message and exit 2, never a traceback."""
    from embedtune_core.distributed import is_main_process
    from embedtune_core.errors import TrainingError

    if not is_main_process():
        _other_process_is_quiet()
    try:
        rv = cli.main(args=argv, prog_name="embedtune", standalone_mode=False)
    except EmbedtuneError as exc:
        _error(f"error: {exc.format()}", every_process=isinstance(exc, TrainingError))
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        _error("interrupted")
        sys.exit(130)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx is not None else "embedtune"
        _error(f"error: {exc.format_message()}\n  hint: see '{command} --help'")
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        _error(f"error: {exc.format_message()}")
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
