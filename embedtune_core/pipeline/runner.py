"""The pipeline: the one orchestrator behind ``run``, ``train``, ``mine``, ``eval`` and every
other command that runs steps.

:func:`run_pipeline` checks everything first
(:func:`~embedtune_core.pipeline.preflight.preflight`, which plans the steps from what each
declares), lets each step prepare what needs the loaded models before any folder exists
(``setup``), then runs the steps in order, each through the same contained call, and writes
one run-folder layout: the resolved ``config.toml``, ``metrics.json`` (one schema), the report,
and ``state.json`` so that ``--resume`` reuses finished work.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Any

import attrs

from embedtune_core.distributed import is_main_process, sharing
from embedtune_core.errors import EmbedtuneError
from embedtune_core.pipeline.preflight import Output, Plan, preflight
from embedtune_core.pipeline.results import RunRecord, RunResults
from embedtune_core.pipeline.steps import TRAINED_MODEL, PlannedStep, Progress, StepContext


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


@attrs.define
class Run:
    """A run in progress: the plan, what is loaded, the steps' objects and what they found."""

    plan: Plan
    registry: Any
    plugin_set: Any
    progress: Progress
    quiet: bool
    folder: Path | None = None
    state: dict = attrs.field(factory=dict)
    models: dict = attrs.field(factory=dict)
    train_rows: Any = None
    train_type: str | None = None
    results: RunResults = attrs.field(factory=RunResults)
    steps: dict = attrs.field(factory=dict)  # name -> the step's object
    model_path: str = ""
    provided: set = attrs.field(factory=set)
    snapshot: Path | None = None  # the folder as it was before a resume (put back if the run fails)

    @property
    def config(self) -> Any:
        return self.plan.config

    @property
    def resume(self) -> bool:
        return self.plan.output.resume

    def model(self, name: str | None = None) -> Any:
        """The model ``name``, loaded once; by default the model being tuned, as it stands."""
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

    def call_hook(self, name: str, **kwargs: Any) -> None:
        """A lifecycle hook of the installed plugins; a failing one stops the run, named."""
        if self.plugin_set is not None:
            self.plugin_set.call(name, isolate=False, **kwargs)


def run_pipeline(config: Any, registry: Any, plugin_set: Any = None, *, output: Output | None = None,
                 overwrite: bool = False, resume: bool = False, quiet: bool = False,
                 source: str | None = None) -> RunRecord:
    """Run the steps of ``config`` and return what the run reports (``record.to_json()`` is
    ``metrics.json``). ``output`` says where it writes (default: the run folder
    ``output_dir/name``, replaced with ``overwrite``, continued with ``resume``).

    Bad input (the data included) is caught before a model is loaded; what only the model can
    tell (e.g. Matryoshka dims larger than its embedding) before the run folder exists. Work an
    interrupted run finished is reused with ``resume``."""
    from embedtune_core.embedding.models import resolve_model
    from embedtune_core.pipeline.record import finish

    if output is None:
        output = Output(run_dir=config.run_dir, overwrite=overwrite, resume=resume)
    progress = Progress(quiet)
    if quiet:
        silence_libraries()
    progress.step(f"reading {config.data.source}")
    plan = preflight(config, registry, output=output, source=source)
    run = Run(plan=plan, registry=registry, plugin_set=plugin_set, progress=progress, quiet=quiet,
              train_rows=plan.data.train, train_type=plan.data.train_type, steps=dict(plan.step_objects),
              model_path=resolve_model(config.model.name))
    _setup(run)
    run.plan = attrs.evolve(run.plan, config=_with_dims(run))
    _open_folder(run)
    try:
        if run.folder is not None:
            run.call_hook("run_started", config=run.config, run_dir=run.folder)
        _run_steps(run)
        record = finish(run)
    except BaseException as exc:
        _settle_folder(run, exc)
        raise
    return record


def _run_steps(run: Run) -> None:
    memo = _embedding_memo(run)
    try:
        for step in run.plan.planned:
            if TRAINED_MODEL in step.info.provides and memo is not None:  # the weights change: stale
                memo = _close_memo(run, memo)
            _run_step(run, step)
    finally:
        if memo is not None:
            _close_memo(run, memo)


def _settle_folder(run: Run, exc: BaseException) -> None:
    """A run is all or nothing on disk: after a failure the run folder is removed (a new run),
    the previous run put back (--overwrite) or the folder put back as it was before the command
    (--resume); an interruption (Ctrl-C) or a stop that leaves a checkpoint to resume from keeps
    it. The error's note says which."""
    from embedtune_core.pipeline.rundir import abandon_run_dir, drop_snapshot, restore_run_dir

    if run.folder is None or not is_main_process():
        return
    output, folder = run.plan.output, run.folder
    if isinstance(exc, KeyboardInterrupt) or getattr(exc, "keeps_run", False):
        drop_snapshot(run.snapshot)
        note = f"the run folder {folder} is kept as the run left it: continue it with --resume"
    elif output.resume and run.snapshot is not None:
        restore_run_dir(folder, run.snapshot)
        note = f"the run folder {folder} is as it was before this command"
    else:
        abandon_run_dir(folder)
        note = (f"the previous run in {folder} is back as it was" if output.overwrite and folder.exists()
                else f"nothing of this run was kept: {folder} was removed")
    if isinstance(exc, EmbedtuneError) and exc.note is None:
        exc.note = note


def _setup(run: Run) -> None:
    """Each step's ``setup(context)``, if it has one: what needs the loaded models, before the
    run folder exists (the train step builds its loss)."""
    from embedtune_core.plugins.calling import contained

    for step in run.plan.planned:
        setup = getattr(run.steps[step.name], "setup", None)
        if setup is None:
            continue
        with contained(step.component, "setting up", step=step.name):
            try:
                setup(StepContext(run, step))
            except EmbedtuneError as exc:
                from embedtune_core.pipeline.preflight import _named

                raise _named(exc, run.plan.source) from None


def _run_step(run: Run, step: PlannedStep) -> None:
    """One step, contained (what a pack's step raises names its plugin and the step), its
    reported figures kept for ``metrics.json["steps"][NAME]``."""
    from embedtune_core.plugins.calling import contained

    context = StepContext(run, step)
    started = time.perf_counter()
    # under several processes, steps that share their work split their encoding and search
    # over the processes (training distributes itself: the Trainer's DDP)
    with sharing() if step.info.shares_work else contextlib.nullcontext():
        with contained(step.component, "running", step=step.name):
            run.steps[step.name].run(context)
    run.results.steps[step.name] = {**context.reported, "seconds": round(time.perf_counter() - started, 2)}
    run.provided.update(step.info.provides)
    if TRAINED_MODEL in step.info.provides and run.folder is not None:
        run.model_path = str(run.folder / "model")


def _embedding_memo(run: Run) -> Any:
    """Encode once: when two steps or more encode with the model before it changes (mining and
    the evaluation before training), the evaluation texts one encodes are kept for the next."""
    from embedtune_core.embedding.encode import EmbeddingMemo

    encoding = 0
    for step in run.plan.planned:
        if TRAINED_MODEL in step.info.provides:
            break
        encoding += bool(step.info.encodes)
    if encoding < 2 or run.plan.data.evaluation is None:
        return None
    return EmbeddingMemo(_evaluation_texts(run.plan.data.evaluation)).open(run.model())


def _evaluation_texts(evaluation: Any) -> set[str]:
    if hasattr(evaluation, "corpus") and hasattr(evaluation, "queries"):
        return {*evaluation.corpus.values(), *evaluation.queries.values()}
    columns = getattr(evaluation, "column_names", None) or []
    return {str(t) for c in columns if c in ("sentence1", "sentence2", "anchor", "positive") for t in evaluation[c]}


def _close_memo(run: Run, memo: Any) -> None:
    """Record how many texts the memo served, and drop it."""
    run.results.reused_embeddings = memo.hits
    memo.close()
    return None


def _with_dims(run: Run) -> Any:
    """The config with ``evaluation.dims`` decided: as given, else the Matryoshka dims of the
    loss a step built."""
    config = run.config
    if config.evaluation.dims or run.results.loss is None:
        return config
    dims = [int(d) for d in getattr(run.results.loss, "matryoshka_dims", None) or []]
    return attrs.evolve(config, evaluation=attrs.evolve(config.evaluation, dims=dims))


def _open_folder(run: Run) -> None:
    """Create (or continue, or replace) the run folder and write the resolved config; a resumed
    folder is first kept as it is (:func:`~embedtune_core.pipeline.rundir.snapshot_run_dir`)."""
    from embedtune_core import io as eio
    from embedtune_core.config.writer import config_toml
    from embedtune_core.pipeline.rundir import abandon_run_dir, load_state, prepare_run_dir, snapshot_run_dir

    output = run.plan.output
    if output.run_dir is None:
        return
    run.folder = prepare_run_dir(output.run_dir, overwrite=output.overwrite, resume=output.resume)
    try:
        run.state = load_state(run.folder) if output.resume else {}
        run.snapshot = snapshot_run_dir(run.folder) if output.resume else None
        resolved = config_toml(run.config)
        if is_main_process():
            if output.resume:
                _warn_changes(run.folder / "config.toml", resolved)
            eio.write_text(run.folder / "config.toml", resolved)
    except BaseException:
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
