"""`embedtune run`."""

from __future__ import annotations

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
    type). The run folder (output_dir/name) gets the model, config.toml, metrics.json,
    report.md and report.html. An existing run folder is refused unless --overwrite or
    --resume; Ctrl-C leaves a run that --resume continues.
    """
    from embedtune_core.config.schema import RunConfig
    from embedtune_core.errors import EmbedtuneError
    from embedtune_core.pipeline.runner import run_pipeline

    if overwrite and resume:
        raise EmbedtuneError("--overwrite and --resume exclude each other", hint="pick one")
    config = RunConfig.from_file(pipeline, overrides)
    try:
        metrics = run_pipeline(config, app.registry, app.plugin_set, overwrite=overwrite, resume=resume,
                               quiet=quiet or as_json, source=pipeline)
    except KeyboardInterrupt:
        raise EmbedtuneError(
            f"interrupted; the run in {config.run_dir} can be continued",
            hint=f"embedtune run {pipeline} --resume" + "".join(f" -s {o}" for o in overrides),
        ) from None
    if as_json:
        from embedtune_core.cli.output import echo_json

        echo_json({k: v for k, v in metrics.items() if k != "table"})
        return
    click.echo(metrics["table"])
    for dim, values in metrics.get("dims", {}).items():
        head = metrics.get("headline_metric")
        b = (values.get("before") or {}).get(head)
        a = (values.get("after") or {}).get(head)
        if head and a is not None:
            click.echo(f"  dim {dim:>5}: {head} " + (f"{b:.4f} -> " if b is not None else "") + f"{a:.4f}")
    click.echo(f"report: {config.run_dir / 'report.html'}")
