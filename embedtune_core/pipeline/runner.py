"""The pipeline: resolve components, read data, mine, evaluate, train, evaluate, write the run."""

from __future__ import annotations

from typing import Any

from embedtune_core.config.schema import RunConfig
from embedtune_core.errors import ComponentError, ConfigError, EmbedtuneError
from embedtune_core.ranking.metrics import parse_metric




def check_components(config: RunConfig, registry: Any, *, source: str | None = None) -> None:
    """Every component the config names must be registered (clear error naming the key)."""
    checks: list[tuple[str, str, str]] = []
    if config.data.reader:
        checks.append(("dataset_reader", config.data.reader, "data.reader"))
    if config.mining.miner:
        checks.append(("negative_miner", config.mining.miner, "mining.miner"))
    if config.loss.name:
        checks.append(("loss", config.loss.name, "loss.name"))
    for name in config.training.callbacks:
        checks.append(("callback", str(name), "training.callbacks"))
    for spec in config.evaluation.metrics:
        try:
            metric, _ = parse_metric(spec)
        except ConfigError as exc:
            raise ConfigError(exc.message, file=source, key="evaluation.metrics", hint=exc.hint) from None
        checks.append(("metric", metric, "evaluation.metrics"))
    for kind, name, key in checks:
        try:
            registry.get(kind, name)
        except ComponentError as exc:
            raise ConfigError(exc.message, file=source, key=key, hint=exc.hint) from None


# -- running a pipeline -------------------------------------------------------------------------

STATE_FILE = "state.json"


class _Progress:
    """Step messages on stderr (nothing when quiet)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def step(self, message: str) -> None:
        if not self.quiet:
            import click

            click.echo(f"» {message}", err=True)


def _silence_libraries() -> None:
    """No progress bars or advisory logs from the libraries underneath (for --quiet / --json)."""
    import os

    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    try:
        import datasets
        import transformers

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        datasets.disable_progress_bars()
    except (ImportError, AttributeError):  # pragma: no cover - older versions
        pass


def _load_state(run_dir) -> dict[str, Any]:
    import json

    path = run_dir / STATE_FILE
    if path.exists():
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            return {}
    return {}


def _save_state(run_dir, state: dict[str, Any]) -> None:
    from embedtune_core import io as eio

    eio.write_json(run_dir / STATE_FILE, state)


def _matryoshka_dims(loss: Any) -> list[int]:
    dims = getattr(loss, "matryoshka_dims", None)
    return [int(d) for d in dims] if dims else []


def _dims_json(results: dict[Any, dict[str, float]] | None) -> dict[str, dict[str, float]]:
    return {str(k): v for k, v in (results or {}).items() if k is not None}


def _limit_dataset(dataset: Any, limit: int | None) -> Any:
    if limit is None or dataset is None:
        return dataset
    from embedtune_core.types import IRData

    if isinstance(dataset, IRData):
        keep = list(dataset.queries)[:limit]
        return IRData(
            corpus=dataset.corpus,
            queries={q: dataset.queries[q] for q in keep},
            qrels={q: dataset.qrels[q] for q in keep if q in dataset.qrels},
        )
    return dataset.select(range(min(limit, len(dataset))))


def _eval_training_rows(bundle: Any, limit: int | None) -> Any:
    """The held-out split in the training columns, for the eval loss during training."""
    from embedtune_core.data.loading import to_training_dataset
    from embedtune_core.types import DataBundle

    if bundle.eval is None:
        return None
    rows, _ = to_training_dataset(DataBundle(dataset_type=bundle.dataset_type, train=bundle.eval))
    return _limit_dataset(rows, limit)


def prepare_data(config: RunConfig, registry: Any) -> dict[str, Any]:
    """Read the training data and the held-out data, split if needed, apply limits.

    Returns ``{"bundle", "train", "train_type", "eval", "eval_type", "dataset_type"}`` where
    ``train`` is the training ``datasets.Dataset`` and ``eval`` what the evaluation step gets.
    """
    from embedtune_core.data.loading import eval_ir, load_data, split_train_eval, to_training_dataset

    data = config.data
    options = dict(data.options)
    if data.columns:
        options["columns"] = dict(data.columns)
    bundle = load_data(registry, data.source, dataset_type=data.type, reader=data.reader, options=options)
    dataset_type = bundle.dataset_type
    if data.eval_source:
        eval_bundle = load_data(registry, data.eval_source, dataset_type=data.type or dataset_type,
                                reader=data.reader, options=options)
        bundle.eval = eval_bundle.eval if eval_bundle.eval is not None else eval_bundle.train
    if bundle.eval is None:
        bundle.train, bundle.eval = split_train_eval(bundle, data.eval_fraction, config.training.seed)
    train, train_type = to_training_dataset(bundle)
    train = _limit_dataset(train, data.limit)
    if dataset_type == "sts":
        eval_input, eval_type = bundle.eval, "sts"
    else:
        eval_input, eval_type = eval_ir(bundle), "ir"
    eval_input = _limit_dataset(eval_input, data.eval_limit)
    return {"bundle": bundle, "train": train, "train_type": train_type, "eval": eval_input,
            "eval_type": eval_type, "dataset_type": dataset_type}


def _name_config(exc: Any, source: str | None) -> Any:
    """An error about a config key names the config file too."""
    if source and exc.file is None and exc.key:
        exc.file = str(source)
    return exc


def preflight(
    config: RunConfig,
    registry: Any,
    *,
    source: str | None = None,
    overwrite: bool = False,
    resume: bool = False,
) -> dict[str, Any]:
    """Every check that can reject a run, before a model is loaded or the run folder is touched.

    Components, the run folder (refused when it exists, unless ``overwrite`` or ``resume``),
    local model paths, loss, miner and callback options, training settings, then the data
    (every record) and whether the loss and the miner take its type. Returns what
    :func:`prepare_data` returns plus ``loss_name``. Errors about a config key name ``source``.
    """
    from embedtune_core.mining.toolkit import check_miner
    from embedtune_core.embedding.models import check_model
    from embedtune_core.training.trainer import (
        check_callbacks,
        check_loss_accepts,
        check_loss_options,
        check_run_dir,
        check_training_config,
        recommend_loss,
    )

    mining = "mine" in config.steps and bool(config.mining.miner)
    try:
        check_components(config, registry, source=source)
        check_run_dir(config.run_dir, overwrite=overwrite, resume=resume)
        check_model(config.model.name, key="model.name")
        if mining and config.mining.model:
            check_model(config.mining.model, key="mining.model")
        if config.loss.name:
            check_loss_options(registry, config.loss.name, config.loss.options)
            if config.data.type:
                check_loss_accepts(registry, config.loss.name, config.data.type, config.loss.options)
        if mining:
            check_miner(registry, config.mining.miner, config.mining.options, dataset_type=config.data.type)
        if "train" in config.steps:
            check_callbacks(config.training, registry)
            check_training_config(config.training, has_eval=True, device=config.model.device)
        try:
            data = prepare_data(config, registry)
        except EmbedtuneError as exc:
            if exc.file is None and exc.key is None:  # e.g. an unknown bundled set: the source is at fault
                exc.key = "data.source"
            raise
        dataset_type = data["dataset_type"]
        loss_name = config.loss.name or recommend_loss(dataset_type)
        check_loss_options(registry, loss_name, config.loss.options)
        check_loss_accepts(registry, loss_name, dataset_type, config.loss.options)
        if mining:
            check_miner(registry, config.mining.miner, config.mining.options, dataset_type=data["train_type"])
        if "train" in config.steps:
            check_training_config(config.training, has_eval=data["bundle"].eval is not None, device=config.model.device)
    except EmbedtuneError as exc:
        raise _name_config(exc, source) from None
    data["loss_name"] = loss_name
    return data


def run_pipeline(
    config: RunConfig,
    registry: Any,
    plugin_set: Any = None,
    *,
    overwrite: bool = False,
    resume: bool = False,
    quiet: bool = False,
    source: str | None = None,
) -> dict[str, Any]:
    """Run every step of ``config`` and write the run folder; returns what ``metrics.json`` holds.

    :func:`preflight` checks everything (the data included) before a model is loaded, and the
    loss is built before the run folder is created, so bad input leaves the disk as it was. Steps already finished in an
    interrupted run (mining, the base model's evaluation, training checkpoints) are reused with
    ``resume=True``. ``source`` is the config file, named in errors about its keys.
    """
    import datetime as dt

    from embedtune_core import io as eio
    from embedtune_core.config.writer import to_toml
    from embedtune_core.embedding.encode import Encoder
    from embedtune_core.pipeline.evaluation import evaluate_model
    from embedtune_core.embedding.models import embedding_dim, load_model
    from embedtune_core.pipeline.report import comparison_table, write_report
    from embedtune_core.training.trainer import build_loss, finish_run_dir, prepare_run_dir, save_model, train

    progress = _Progress(quiet)
    if quiet:
        _silence_libraries()
    progress.step(f"reading {config.data.source}")
    data = preflight(config, registry, source=source, overwrite=overwrite, resume=resume)
    dataset_type = data["dataset_type"]
    train_dataset, train_type = data["train"], data["train_type"]
    loss_name = data["loss_name"]

    progress.step(f"loading model {config.model.name}")
    model = load_model(config.model.name, device=config.model.device,
                       trust_remote_code=config.model.trust_remote_code, max_seq_length=config.model.max_seq_length)
    try:  # what only the model can tell (e.g. Matryoshka dims larger than its embedding) fails before the folder exists
        loss = build_loss(registry, loss_name, model, dataset_type, dict(config.loss.options))
    except EmbedtuneError as exc:
        raise _name_config(exc, source) from None

    hook = plugin_set.manager.hook if plugin_set is not None else None
    run_dir = prepare_run_dir(config.run_dir, overwrite=overwrite, resume=resume)
    state = _load_state(run_dir) if resume else {}
    config_toml = to_toml(config.to_dict())
    eio.write_text(run_dir / "config.toml", config_toml)
    if hook:
        hook.run_started(config=config, run_dir=run_dir)

    dims = [int(d) for d in config.evaluation.dims] or _matryoshka_dims(loss)
    metric_specs = list(config.evaluation.metrics)
    eval_kwargs = dict(registry=registry, metrics=metric_specs, dims=dims or None,
                       batch_size=config.evaluation.batch_size, all_queries=config.evaluation.all_queries,
                       show_progress=not quiet)
    stats: dict[str, Any] = {"dataset type": dataset_type, "training examples": len(train_dataset)}
    if data["eval_type"] == "ir":
        stats["eval queries"] = len(data["eval"].queries)
        stats["eval corpus"] = len(data["eval"].corpus)
    elif data["eval"] is not None:
        stats["eval examples"] = len(data["eval"])

    steps = list(config.steps)
    mining_stats = None
    if "mine" in steps and config.mining.miner:
        mined_path = run_dir / "mined.jsonl"
        if resume and mined_path.exists() and "mining" in state:
            import datasets

            progress.step("reusing mined negatives from the interrupted run")
            train_dataset = datasets.Dataset.from_json(str(mined_path))
            mining_stats = state["mining"]
        else:
            from embedtune_core.mining.toolkit import run_miner

            progress.step(f"mining hard negatives with '{config.mining.miner}'")
            miner_model = model if not config.mining.model else load_model(config.mining.model, device=config.model.device)
            encoder = Encoder(miner_model, batch_size=config.evaluation.batch_size, show_progress=not quiet)
            result = run_miner(
                registry, config.mining.miner, train_dataset, train_type,
                num_negatives=config.mining.num_negatives, options=dict(config.mining.options),
                encoder=encoder, corpus=data["bundle"].corpus, output=config.mining.output,
                seed=config.training.seed,
            )
            train_dataset = result.dataset
            mining_stats = result.stats.as_dict()
            if len(train_dataset) == 0:
                raise EmbedtuneError(
                    f"mining with '{config.mining.miner}' kept no training rows: every candidate was dropped "
                    f"as a likely false negative ({mining_stats['dropped_false_negatives']} dropped)",
                    key="mining.options",
                    hint="loosen the guards (e.g. -s mining.options.relative_margin=0.01) or keep short anchors "
                         "(-s mining.options.short=fill)",
                )
            eio.write_jsonl(mined_path, train_dataset.to_list())
            state["mining"] = mining_stats
            _save_state(run_dir, state)
        train_type = config.mining.output
        stats["training examples after mining"] = len(train_dataset)
        stats["candidates dropped as likely false negatives"] = mining_stats.get("dropped_false_negatives")

    before = after = None
    if "evaluate-before" in steps and data["eval"] is not None:
        if resume and "before" in state:
            before = {(None if k == "full" else int(k)): v for k, v in state["before"].items()}
        else:
            progress.step("evaluating the base model")
            before = evaluate_model(model, data["eval"], data["eval_type"], **eval_kwargs)
            state["before"] = {("full" if k is None else str(k)): v for k, v in before.items()}
            _save_state(run_dir, state)
        if hook:
            hook.evaluation_finished(stage="before", results=before, run_dir=run_dir)

    train_result = None
    if "train" in steps:
        progress.step(f"training with '{loss_name}' on {len(train_dataset)} examples")
        training_config = config.training
        if (mining_stats or {}).get("extra", {}).get("ordered") and training_config.batch_sampler == "auto":
            import attrs

            training_config = attrs.evolve(training_config, batch_sampler="sequential")
        eval_rows = _eval_training_rows(data["bundle"], config.data.eval_limit) if training_config.eval_steps else None
        train_result = train(
            model, train_dataset, loss, training_config, run_dir, eval_dataset=eval_rows,
            resume=resume, registry=registry, quiet=quiet, loss_name=loss_name, dataset_name=config.data.source,
        )
        save_model(model, run_dir / "model")
        stats["training steps"] = train_result.global_step
        if train_result.training_loss is not None:
            stats["final training loss"] = float(train_result.training_loss)

    if "evaluate-after" in steps and data["eval"] is not None:
        progress.step("evaluating the tuned model")
        after = evaluate_model(model, data["eval"], data["eval_type"], **eval_kwargs)
        if hook:
            hook.evaluation_finished(stage="after", results=after, run_dir=run_dir)

    metrics: dict[str, Any] = {
        "name": config.name,
        "model": config.model.name,
        "data": config.data.source,
        "loss": loss_name,
        "headline_metric": metric_specs[0] if metric_specs else next(iter((after or before or {}).get(None) or {}), None),
        "before": (before or {}).get(None),
        "after": (after or {}).get(None),
        "dims": {},
        "training": {"steps": train_result.global_step, "loss": train_result.training_loss,
                     "stopped_early": train_result.stopped_early} if train_result else None,
        "mining": mining_stats,
        "finished": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
    }
    for dim in sorted({*(_dims_json(before)), *(_dims_json(after))}, key=int, reverse=True):
        metrics["dims"][dim] = {"before": _dims_json(before).get(dim), "after": _dims_json(after).get(dim)}
    if metrics["dims"]:  # the full size is a point on the dims curve too
        metrics["dims"] = {str(embedding_dim(model)): {"before": metrics["before"], "after": metrics["after"]},
                           **metrics["dims"]}
    eio.write_json(run_dir / "metrics.json", metrics)
    log_history = train_result.log_history if train_result else []
    write_report(run_dir, metrics, config_toml, stats, log_history)
    state["finished"] = True
    _save_state(run_dir, state)
    finish_run_dir(run_dir)
    if hook:
        hook.run_finished(run_dir=run_dir, metrics=metrics)
    metrics["table"] = comparison_table(metrics["before"], metrics["after"])
    return metrics
