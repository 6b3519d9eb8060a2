"""`embedtune run`."""

from __future__ import annotations

from typing import Any

import click

from embedtune_core.cli.main import AppContext, pass_app


@click.command("run")
@click.argument("pipeline", type=click.Path(dir_okay=False))
@click.option("-s", "--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config key, e.g. -s training.batch_size=64 (repeatable).")
@click.option("--overwrite", is_flag=True, help="Replace an existing run folder of the same name.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its newest checkpoint.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output; print only the result.")
@click.option("--json", "as_json", is_flag=True, help="Print metrics.json instead of the table.")
@pass_app
def command(app: AppContext, pipeline: str, overrides: tuple[str, ...], overwrite: bool, resume: bool,
            quiet: bool, as_json: bool) -> None:
    """Run a pipeline: read data, mine negatives, evaluate, train, evaluate again.

    PIPELINE is a TOML or YAML file (`embedtune init` writes one; examples/ has one per dataset
    type). The run folder (output_dir/name) gets the model, config.toml (every resolved
    setting), metrics.json, report.md and report.html. An existing run folder is refused unless
    --overwrite or --resume; Ctrl-C leaves a run that --resume continues.
    """
    from embedtune_core.config.schema import RunConfig
    from embedtune_core.pipeline.preflight import Output

    config = RunConfig.from_file(pipeline, overrides)
    output = Output(run_dir=config.run_dir, overwrite=overwrite, resume=resume)
    hint = f"embedtune run {pipeline} --resume" + "".join(f" -s {o}" for o in overrides)
    record = run_interruptible(app, config, output, quiet=quiet or as_json, source=pipeline, resume_hint=hint,
                               overrides=overrides)
    print_record(record, as_json=as_json, report=config.run_dir / "report.html")


def run_interruptible(app: AppContext, config: Any, output: Any, *, quiet: bool, source: str | None,
                      resume_hint: str, options: dict[str, str] | None = None, overrides: tuple[str, ...] = ()) -> Any:
    """Run the pipeline; Ctrl-C outside training says how to continue. ``options`` maps config
    keys to the command's options, so an error names what the user typed (``--miner``, or the
    ``-s`` override that set the key)."""
    from embedtune_core.config.files import blame_overrides
    from embedtune_core.errors import EmbedtuneError
    from embedtune_core.pipeline.runner import run_pipeline

    try:
        return run_pipeline(config, app.registry, app.plugin_set, output=output, quiet=quiet, source=source)
    except EmbedtuneError as exc:
        blame_overrides(exc, overrides)
        if options and exc.key and exc.file is None:
            exc.key = option_of(exc.key, options)
        raise
    except KeyboardInterrupt:
        where = f"; the run in {output.run_dir} can be continued" if output.run_dir else ""
        raise EmbedtuneError(f"interrupted{where}", hint=resume_hint if output.run_dir else "run the command again") from None


def option_of(key: str, options: dict[str, str]) -> str:
    """The command-line option a config key came from: ``mining.options.range_min`` is
    ``-O range_min`` when ``options`` maps ``mining.options`` to ``-O``."""
    for prefix, option in options.items():
        if key == prefix:
            return option
        if key.startswith(prefix + "."):
            return f"{option} {key[len(prefix) + 1:]}"
    return key


def print_record(record: Any, *, as_json: bool, report: Any = None) -> None:
    """The result on stdout: metrics.json, or the before/after table with the headline metric at
    every dim and where the report is."""
    from embedtune_core.cli.output import echo_json
    from embedtune_core.pipeline.results import comparison_table
    from embedtune_core.distributed import is_main_process

    if not is_main_process():
        return
    if as_json:
        echo_json(record.to_json())
        return
    if record.comparison.before or record.comparison.after:
        click.echo(comparison_table(record.comparison))
    head = record.headline_metric
    if record.comparison.before and record.comparison.after:
        for dim, before, after in record.headline_by_dim():
            if head and after is not None:
                click.echo(f"  dim {dim:>5}: {head} " + (f"{before:.4f} -> " if before is not None else "") + f"{after:.4f}")
    line = record.significance_line()
    if line:
        click.echo(line)
    if record.deployment:
        from embedtune_core.deploy.summary import deployment_table

        click.echo("\n" + deployment_table(record.deployment))
    if report is not None:
        click.echo(f"report: {report}")
