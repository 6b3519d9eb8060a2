"""The pipeline: the one orchestrator behind ``run``, ``train``, ``mine`` and ``eval``.

Each command runs the steps it names (``train`` is ``["train"]``, ``eval --against BASE`` is
``["evaluate-before", "evaluate-after"]``...). :func:`run_pipeline` checks everything first
(:func:`~embedtune_core.pipeline.preflight.preflight`), loads the models the steps need, builds
the loss before any folder exists, then runs the steps and writes one run-folder layout: the
resolved ``config.toml``, ``metrics.json`` (one schema), the report, and ``state.json`` so that
``--resume`` reuses finished steps.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
import time
from pathlib import Path
from typing import Any, Callable

import attrs

from embedtune_core.errors import EmbedtuneError, PluginLoadError
from embedtune_core.pipeline.preflight import Output, Plan, preflight
from embedtune_core.pipeline.results import Comparison, Evaluation, RunRecord
from embedtune_core.distributed import is_main_process, sharing, world_size


class Progress:
    """Step messages on stderr, once (the main process), nothing when quiet."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def step(self, message: str) -> None:
        if not self.quiet and is_main_process():
            print(f"» {message}", file=sys.stderr, flush=True)

    def note(self, message: str) -> None:
        """A line the user should see even when quiet (a warning about the result)."""
        if is_main_process():
            print(f"note: {message}", file=sys.stderr, flush=True)


def silence_libraries() -> None:
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


class Hooks:
    """The lifecycle hooks of the installed plugins, each implementation called on its own: one
    that raises is reported naming its plugin."""

    def __init__(self, plugin_set: Any) -> None:
        self.manager = plugin_set.manager if plugin_set is not None else None

    def call(self, name: str, **kwargs: Any) -> None:
        if self.manager is None:
            return
        from embedtune_core.plugins.manager import _short_error

        for impl in getattr(self.manager.hook, name).get_hookimpls():
            try:
                impl.function(**{k: kwargs[k] for k in impl.argnames if k in kwargs})
            except Exception as exc:  # a pack's hook may raise anything
                raise PluginLoadError(f"plugin '{impl.plugin_name}' failed in {name}: {_short_error(exc)}",
                                      hint=f"fix or uninstall the pack, or skip it with -p no:{impl.plugin_name}") from None


@attrs.define
class Run:
    """A run in progress: the plan, what is loaded, and what each step produced."""

    plan: Plan
    registry: Any
    hooks: Hooks
    progress: Progress
    quiet: bool
    folder: Path | None = None
    state: dict = attrs.field(factory=dict)
    models: dict = attrs.field(factory=dict)
    loss: Any = None
    train_rows: Any = None
    train_type: str | None = None
    before: Evaluation | None = None
    after: Evaluation | None = None
    retention_before: Evaluation | None = None
    retention_after: Evaluation | None = None
    interpolation: dict | None = None
    mining: dict | None = None
    training: dict | None = None
    reused_embeddings: int | None = None
    log_history: list = attrs.field(factory=list)

    @property
    def config(self) -> Any:
        return self.plan.config

    @property
    def resume(self) -> bool:
        return self.plan.output.resume

    def model(self, name: str | None = None) -> Any:
        """The model ``name`` (default: ``model.name``), loaded once."""
        from embedtune_core.embedding.models import load_model
        from embedtune_core.training.checkpoints import hf_progress_bars

        name = name or self.config.model.name
        if name not in self.models:
            model = self.config.model
            self.progress.step(f"loading model {name}")
            with hf_progress_bars(not self.quiet):
                self.models[name] = load_model(name, device=model.device, trust_remote_code=model.trust_remote_code,
                                               max_seq_length=model.max_seq_length)
        return self.models[name]

    def save_state(self) -> None:
        if self.folder is not None:
            from embedtune_core.pipeline.rundir import save_state

            save_state(self.folder, self.state)


def run_pipeline(config: Any, registry: Any, plugin_set: Any = None, *, output: Output | None = None,
                 overwrite: bool = False, resume: bool = False, quiet: bool = False,
                 source: str | None = None) -> RunRecord:
    """Run the steps of ``config`` and return what the run reports (``record.to_json()`` is
    ``metrics.json``). ``output`` says where it writes (default: the run folder
    ``output_dir/name``, replaced with ``overwrite``, continued with ``resume``).

    Bad input (the data included) is caught before a model is loaded; what only the model can
    tell (e.g. Matryoshka dims larger than its embedding) before the run folder exists. Steps an
    interrupted run finished are reused with ``resume``."""
    if output is None:
        output = Output(run_dir=config.run_dir, overwrite=overwrite, resume=resume)
    progress = Progress(quiet)
    if quiet:
        silence_libraries()
    progress.step(f"reading {config.data.source}")
    plan = preflight(config, registry, output=output, source=source)
    run = Run(plan=plan, registry=registry, hooks=Hooks(plugin_set), progress=progress, quiet=quiet,
              train_rows=plan.data.train, train_type=plan.data.train_type)
    if "train" in plan.steps:
        _build_loss(run)
    run.plan = attrs.evolve(plan, config=_with_dims(run))
    _open_folder(run)
    memo = _embedding_memo(run)
    for step in run.plan.steps:
        if step == "train" and memo is not None:  # the weights change: the kept embeddings are stale
            memo = _close_memo(run, memo)
        # under several processes, mining and evaluation split their encoding and search over
        # them (training is the Trainer's DDP)
        with sharing() if step != "train" else contextlib.nullcontext():
            STEPS[step](run)
    if memo is not None:
        _close_memo(run, memo)
    return _finish(run)


def _embedding_memo(run: Run) -> Any:
    """Encode once: when mining and the evaluation before training both encode with the base
    model, the evaluation's texts that mining encodes are kept and reused (None otherwise)."""
    from embedtune_core.embedding.encode import EmbeddingMemo

    config, steps, data = run.config, run.plan.steps, run.plan.data
    if "mine" not in steps or "evaluate-before" not in steps or config.evaluation.baseline:
        return None
    if (config.mining.model or config.model.name) != config.model.name or data.evaluation is None:
        return None
    return EmbeddingMemo(run.model(), _evaluation_texts(data.evaluation)).open()


def _evaluation_texts(evaluation: Any) -> set[str]:
    if hasattr(evaluation, "corpus") and hasattr(evaluation, "queries"):
        return {*evaluation.corpus.values(), *evaluation.queries.values()}
    columns = getattr(evaluation, "column_names", None) or []
    return {str(t) for c in columns if c in ("sentence1", "sentence2", "anchor", "positive") for t in evaluation[c]}


def _close_memo(run: Run, memo: Any) -> None:
    """Record how many texts the memo served, and drop it."""
    run.reused_embeddings = memo.hits
    memo.close()
    return None


def _build_loss(run: Run) -> None:
    from embedtune_core.pipeline.preflight import _named
    from embedtune_core.training.losses import build_loss

    components = run.plan.components
    try:
        run.loss = build_loss(run.registry, components.loss, run.model(), components.loss_options)
    except EmbedtuneError as exc:
        raise _named(exc, run.plan.source) from None


def _with_dims(run: Run) -> Any:
    """The config with ``evaluation.dims`` decided: as given, else the loss's Matryoshka dims."""
    config = run.config
    if config.evaluation.dims or run.loss is None:
        return config
    dims = [int(d) for d in getattr(run.loss, "matryoshka_dims", None) or []]
    return attrs.evolve(config, evaluation=attrs.evolve(config.evaluation, dims=dims))


def _open_folder(run: Run) -> None:
    """Create (or continue, or replace) the run folder, write the resolved config, and tell the
    plugins the run started; a plugin failing there leaves the disk as it was."""
    from embedtune_core import io as eio
    from embedtune_core.config.writer import to_toml
    from embedtune_core.pipeline.rundir import abandon_run_dir, load_state, prepare_run_dir

    output = run.plan.output
    if output.run_dir is None:
        return
    run.folder = prepare_run_dir(output.run_dir, overwrite=output.overwrite, resume=output.resume)
    run.state = load_state(run.folder) if output.resume else {}
    resolved = to_toml(run.config.to_dict())
    if is_main_process():
        if output.resume:
            _warn_changes(run.folder / "config.toml", resolved)
        eio.write_text(run.folder / "config.toml", resolved)
    try:
        run.hooks.call("run_started", config=run.config, run_dir=run.folder)
    except EmbedtuneError:
        if not output.resume:
            abandon_run_dir(run.folder)
        raise


def _warn_changes(path: Path, resolved: str) -> None:
    """Tell the user which settings differ from the run being resumed."""
    from embedtune_core.config.files import tomllib

    try:
        before, after = tomllib.loads(path.read_text(encoding="utf-8")), tomllib.loads(resolved)
    except (OSError, ValueError):
        return
    changed = []
    for section in ("model", "data", "mining", "loss", "training"):
        old, new = before.get(section, {}), after.get(section, {})
        changed += [f"{section}.{key}" for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]
    if changed:
        print("warning: resuming with settings that differ from the run's config.toml: " + ", ".join(changed),
              file=sys.stderr, flush=True)


# -- steps ---------------------------------------------------------------------------------------
def mine_step(run: Run) -> None:
    """Add hard negatives to the training rows (reused from an interrupted run with --resume)."""
    import datasets

    from embedtune_core.pipeline.rundir import MINED_FILE

    config = run.config
    mined_path = run.plan.output.mined or (run.folder / MINED_FILE if run.folder else None)
    if run.resume and mined_path is not None and mined_path.exists() and "mining" in run.state:
        run.progress.step("reusing mined negatives from the interrupted run")
        run.train_rows = datasets.Dataset.from_json(str(mined_path))
        run.mining = run.state["mining"]
    else:
        run.progress.step(f"mining hard negatives with '{config.mining.miner}'")
        result = _mine(run)
        run.train_rows, run.mining = result.dataset, result.stats.as_dict()
        if mined_path is not None and is_main_process():
            from embedtune_core import io as eio

            eio.write_jsonl(mined_path, eio.dataset_rows(run.train_rows))
        run.state["mining"] = run.mining
        run.save_state()
    run.train_type = config.mining.output
    warning = filled_warning(run.mining)
    if warning:
        run.mining["warning"] = warning
        run.progress.note(warning)


#: above this share of random fill-ins among the negatives written, a run says so
FILLED_WARNING = 0.2


def filled_warning(stats: dict) -> str | None:
    """A line for the terminal and the report when more than a fifth of the negatives are random
    fill-ins (easy negatives), with what to change."""
    filled = (stats.get("extra") or {}).get("negatives_filled") or 0
    written = stats.get("negatives_written") or 0
    if not written or filled / written <= FILLED_WARNING:
        return None
    return (f"{filled:,} of {written:,} negatives ({filled / written:.0%}) are random fill-ins, not hard negatives: "
            "the guards dropped the rest; raise mining.options.max_depth, lower relative_margin (e.g. 0.02), "
            "or give a larger corpus (mining.corpus)")


def _mine(run: Run) -> Any:
    from embedtune_core.embedding.encode import Encoder
    from embedtune_core.mining.miner import run_miner

    config, data, miner = run.config, run.plan.data, run.plan.components.miner
    uses = miner.info.model
    options = run.plan.components.miner_options
    encoder = None
    if uses == "required" or (uses == "guards" and options.get("guard_scores", "auto") != "retrieval"):
        encoder = Encoder(run.model(config.mining.model), batch_size=config.evaluation.batch_size,
                          show_progress=not run.quiet)
    records = miner.info.input == "nli" and data.dataset_type == "nli"  # the NLI records, labels included
    result = run_miner(run.registry, config.mining.miner, data.bundle.train if records else data.train,
                       "nli" if records else data.train_type, num_negatives=config.mining.num_negatives,
                       options=options, encoder=encoder, corpus=data.corpus, categories=data.categories,
                       output=config.mining.output, seed=config.training.seed, device=config.model.device)
    result.stats.extra.setdefault("rows_out", len(result.dataset))
    if len(result.dataset) == 0:
        stats = result.stats
        raise EmbedtuneError(
            f"mining with '{config.mining.miner}' kept no training rows: every candidate was dropped "
            f"as a likely false negative ({stats.dropped_false_negatives} dropped, {stats.candidates_seen} seen)",
            key="mining.options",
            hint="loosen the guards (e.g. -s mining.options.relative_margin=0.01), ask for fewer negatives, or keep "
                 "short anchors (-s mining.options.short=fill)",
        )
    return result


def _evaluate(run: Run, model: Any, name: str, *, retention: bool = False) -> Evaluation | None:
    """The model on the held-out data (or, with ``retention``, on the retention set, at the full
    size only; None when there is none)."""
    from embedtune_core.embedding.models import embedding_dim
    from embedtune_core.pipeline.evaluation import evaluate_model

    config, data = run.config, run.plan.data
    evaluation, kind, dims = data.evaluation, data.eval_kind, config.evaluation.dims or None
    if retention:
        if data.retention is None:
            return None
        evaluation, kind, dims = data.retention, "ir", None
    details: dict | None = {} if kind == "ir" and not retention else None
    results = evaluate_model(model, evaluation, kind, registry=run.registry,
                             metrics=list(config.evaluation.metrics), dims=dims,
                             batch_size=config.evaluation.batch_size, all_queries=config.evaluation.all_queries,
                             show_progress=not run.quiet, details=details, approximate_from=config.evaluation.approximate_from)
    return Evaluation(model=name, results=results, full_dim=embedding_dim(model),
                      per_query=(details or {}).get("per_query"))


def _restore(saved: dict | None) -> Evaluation | None:
    if saved is None:
        return None
    results = {(None if k == "full" else int(k)): v for k, v in saved["results"].items()}
    return Evaluation(model=saved["model"], results=results, full_dim=saved.get("full_dim"),
                      per_query=saved.get("per_query"))


def _saved(evaluation: Evaluation | None) -> dict | None:
    if evaluation is None:
        return None
    return {"model": evaluation.model, "full_dim": evaluation.full_dim, "per_query": evaluation.per_query,
            "results": {("full" if k is None else str(k)): v for k, v in evaluation.results.items()}}


def evaluate_before_step(run: Run) -> None:
    """Evaluate the baseline (``evaluation.baseline``, else the model before training)."""
    name = run.config.evaluation.baseline or run.config.model.name
    if run.resume and "before" in run.state:
        run.before = _restore(run.state["before"])
        run.retention_before = _restore(run.state.get("retention_before"))
    else:
        run.progress.step(f"evaluating {'the baseline' if run.config.evaluation.baseline else 'the base model'} {name}")
        run.before = _evaluate(run, run.model(name), name)
        run.retention_before = _evaluate(run, run.model(name), name, retention=True)
        run.state["before"], run.state["retention_before"] = _saved(run.before), _saved(run.retention_before)
        run.save_state()
    run.hooks.call("evaluation_finished", stage="before", results=run.before.results, run_dir=run.folder)


def evaluate_after_step(run: Run) -> None:
    """Evaluate the model as the run leaves it (trained, when a train step ran)."""
    trained = "train" in run.plan.steps
    name = str(run.folder / "model") if trained and run.folder else run.config.model.name
    if trained and run.config.training.interpolate == "auto":
        _interpolate(run, name)
    else:
        run.progress.step("evaluating the tuned model" if trained else f"evaluating {run.config.model.name}")
        run.after = _evaluate(run, run.model(), name)
        run.retention_after = _evaluate(run, run.model(), name, retention=True)
    run.hooks.call("evaluation_finished", stage="after", results=run.after.results, run_dir=run.folder)


def _base_state(run: Run) -> dict:
    from embedtune_core.embedding.models import load_model

    model = run.config.model
    return load_model(model.name, device=model.device, trust_remote_code=model.trust_remote_code).state_dict()


def _interpolate(run: Run, name: str) -> None:
    """``training.interpolate = "auto"``: evaluate ``(1 - a) base + a tuned`` for each ``a`` and
    keep the best within the retention tolerance; the run's saved model is that interpolation."""
    from embedtune_core.pipeline.forgetting import interpolate
    from embedtune_core.training.checkpoints import save_model

    config = run.config
    alphas = sorted({0.0, 1.0, *config.training.interpolation_alphas})
    run.progress.step("evaluating the tuned model and its interpolations with the base model (a = "
                      + ", ".join(f"{a:g}" for a in alphas) + ")")
    model = run.model()

    def evaluate(alpha: float) -> tuple[Evaluation | None, Evaluation | None]:
        return _evaluate(run, model, name), _evaluate(run, model, name, retention=True)

    unchanged = run.before if config.evaluation.baseline is None else None
    record, results = interpolate(model, _base_state(run), evaluate, alphas=alphas,
                                  tolerance=config.training.retention_tolerance, metric=_headline(run),
                                  retention_metric=_retention_metric(run),
                                  base_results=(unchanged, run.retention_before) if unchanged else None)
    run.interpolation = record
    run.after, run.retention_after = results[record["chosen"]]
    if run.folder is not None and is_main_process() and record["chosen"] != 1.0:
        save_model(model, run.folder / "model")


def _interpolate_fixed(run: Run) -> None:
    """``training.interpolate = a``: the trained model becomes ``(1 - a) base + a tuned``."""
    from embedtune_core.pipeline.forgetting import interpolated_state

    alpha = run.config.training.interpolate
    model = run.model()
    model.load_state_dict(interpolated_state(_base_state(run), model.state_dict(), alpha))
    run.interpolation = {"mode": "fixed", "chosen": alpha}


def _retention_metric(run: Run) -> str | None:
    return next(iter(run.config.evaluation.metrics), None)


def _headline(run: Run) -> str | None:
    metrics = list(run.config.evaluation.metrics)
    return "spearman" if run.plan.data.eval_kind == "sts" else (metrics[0] if metrics else None)


def train_step(run: Run) -> None:
    """Train on the (mined) rows and save the model; a finished training is never repeated."""
    from embedtune_core.pipeline.data import eval_training_rows
    from embedtune_core.training.checkpoints import save_model
    from embedtune_core.training.trainer import train

    config, plan = run.config, run.plan
    run.progress.step(f"training with '{config.loss.name}' on {len(run.train_rows)} examples")
    eval_rows = eval_training_rows(plan.data, config.data.eval_limit) if config.training.eval_steps else None
    started = time.perf_counter()
    result = train(run.model(), run.train_rows, run.loss, _train_setup(run), run.folder, eval_dataset=eval_rows,
                   resume=run.resume, quiet=run.quiet)
    seconds = time.perf_counter() - started
    if isinstance(config.training.interpolate, float):
        _interpolate_fixed(run)
    if is_main_process():
        save_model(run.model(), run.folder / "model")
    run.log_history = result.log_history
    saved = run.state.get("training") if run.resume else None
    finished_before = saved is not None and saved.get("steps") == result.global_step
    run.training = saved if finished_before else _training_summary(run, result, seconds, eval_rows)
    run.state["training"] = run.training
    run.save_state()


def _train_setup(run: Run) -> Any:
    from embedtune_core.training.trainer import TrainSetup

    traits = run.plan.traits
    callbacks = [run.registry.create("callback", name, context={"run_dir": run.folder, "quiet": run.quiet}, **options)
                 for name, _, options in run.plan.components.callbacks]
    name = f"{run.config.data.source} ({run.plan.data.dataset_type}, {len(run.train_rows)} training examples)"
    return TrainSetup(config=run.config.training, traits=traits, callbacks=tuple(_checked_callbacks(callbacks, run)),
                      large_batch_loss=_constant_memory_loss(run), dataset_name=name)


def _checked_callbacks(callbacks: list[Any], run: Run) -> list[Any]:
    from transformers import TrainerCallback

    from embedtune_core.errors import ComponentError

    out = []
    for (name, _, _), callback in zip(run.plan.components.callbacks, callbacks):
        if isinstance(callback, type) and issubclass(callback, TrainerCallback):
            callback = callback()
        if not isinstance(callback, TrainerCallback):
            raise ComponentError(f"callback '{name}' built a {type(callback).__name__}, not a transformers.TrainerCallback",
                                 key="training.callbacks")
        out.append(callback)
    return out


def _constant_memory_loss(run: Run) -> str | None:
    """A loss declared with constant memory that trains on this data, to suggest on out-of-memory."""
    dataset_type = run.plan.data.dataset_type
    for component in run.registry.components("loss"):
        accepts = component.info.accepts
        if component.info.constant_memory and (accepts is None or dataset_type in accepts):
            return component.name
    return None


def _training_summary(run: Run, result: Any, seconds: float, eval_rows: Any) -> dict:
    from embedtune_core.distributed import mean_across
    from embedtune_core.training.checkpoints import TRAINING_LOG

    history = result.log_history
    eval_losses = [row["eval_loss"] for row in history if "eval_loss" in row]
    return {
        "steps": result.global_step,
        "epochs": result.epochs,
        "loss": mean_across(result.training_loss),  # over the processes under DDP
        "final_logged_loss": next((row["loss"] for row in reversed(history) if "loss" in row), None),
        "eval_loss": eval_losses[-1] if eval_losses else None,
        "examples": len(run.train_rows),
        "eval_examples": len(eval_rows) if eval_rows is not None else None,
        "seconds": round(seconds, 2),
        "stopped_early": result.stopped_early,
        "reason": result.reason,
        "log": TRAINING_LOG,
    }


STEPS: dict[str, Callable[[Run], None]] = {
    "mine": mine_step,
    "evaluate-before": evaluate_before_step,
    "train": train_step,
    "evaluate-after": evaluate_after_step,
}


# -- the end ------------------------------------------------------------------------------------
def _record(run: Run) -> RunRecord:
    config, data = run.config, run.plan.data
    headline = _headline(run)
    retention = None
    if run.retention_before is not None or run.retention_after is not None:
        retention = {"data": config.evaluation.retention, "metric": _retention_metric(run),
                     "before": run.retention_before.full if run.retention_before else None,
                     "after": run.retention_after.full if run.retention_after else None}
    return RunRecord(
        name=config.name, steps=run.plan.steps, model=config.model.name, data=config.data.source,
        dataset_type=data.dataset_type, comparison=Comparison(before=run.before, after=run.after),
        headline_metric=headline, baseline=config.evaluation.baseline if run.before else None,
        loss=config.loss.name if "train" in run.plan.steps else None,
        evaluation={**data.describe_evaluation(),
                    **({"embeddings_reused": run.reused_embeddings} if run.reused_embeddings else {})},
        training=run.training, mining=run.mining,
        retention=retention, interpolation=run.interpolation, significance=_significance(run, headline),
        processes=world_size(),
        finished=dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
    )


def _significance(run: Run, headline: str | None) -> dict | None:
    """Paired statistics of the first metric per query, before and after (IR evaluations)."""
    from embedtune_core.pipeline.significance import significance

    before, after = run.before, run.after
    if headline is None or before is None or after is None or not before.per_query or not after.per_query:
        return None
    return significance(headline, before.per_query, after.per_query, _query_texts(run.plan.data.evaluation))


def _query_texts(data: Any) -> dict[str, tuple[str, str]]:
    """Each query's text and its (most) relevant document's text."""
    texts = {}
    for q, judged in data.qrels.items():
        relevant = [d for d, grade in sorted(judged.items(), key=lambda kv: -kv[1]) if grade > 0 and d in data.corpus]
        if q in data.queries:
            texts[q] = (data.queries[q], data.corpus[relevant[0]] if relevant else "")
    return texts


def _report_stats(run: Run, record: RunRecord) -> dict[str, Any]:
    data = run.plan.data
    stats: dict[str, Any] = {"dataset type": data.dataset_type}
    for key, value in record.evaluation.items():
        stats[f"evaluation {key}"] = value
    if run.train_rows is not None and "train" in run.plan.steps:
        stats["training examples"] = len(run.train_rows)
    if run.mining:
        stats["negatives written"] = run.mining.get("negatives_written")
        stats["random fill-ins among them"] = (run.mining.get("extra") or {}).get("negatives_filled")
        stats["candidates dropped as likely false negatives"] = run.mining.get("dropped_false_negatives")
        if run.mining.get("warning"):
            stats["mining warning"] = run.mining["warning"]
    if run.training:
        stats["training steps"] = run.training["steps"]
        stats["final training loss"] = run.training["loss"]
    return stats


def _finish(run: Run) -> RunRecord:
    """Write metrics.json and the report, and tell the plugins."""
    from embedtune_core import io as eio
    from embedtune_core.config.writer import to_toml
    from embedtune_core.pipeline.report import write_report
    from embedtune_core.pipeline.rundir import finish_run_dir

    record = _record(run)
    note = record.retention_note()
    if note:
        run.progress.note(note)
    if run.folder is not None and is_main_process():
        eio.write_json(run.folder / "metrics.json", record.to_json())
        write_report(run.folder, record, to_toml(run.config.to_dict()), _report_stats(run, record), run.log_history)
        run.state["finished"] = True
        run.save_state()
        finish_run_dir(run.folder)
    if run.folder is not None:
        run.hooks.call("run_finished", run_dir=run.folder, metrics=record.to_json())
    return record
