"""Pipeline steps: which steps a run has and in what order, checked from what each declares,
and the context a step runs in.

A step is a component like any other (``register_pipeline_steps``): its
:class:`~embedtune_core.plugins.metadata.StepInfo` says what it needs and provides. A run holds
*artifacts*: it starts with :data:`START` (``model``, ``data``); each step adds what it
provides. :func:`plan_steps` refuses a step whose needs no earlier step provides, and a step
placed after one providing an artifact it must precede, with the step names and a hint, before
anything is loaded.
"""

from __future__ import annotations

import functools
import sys
import time
from pathlib import Path
from typing import Any

import attrs

from embedtune_core.errors import ComponentError, ConfigError

#: what every run holds before its first step: the model as it stands and the data
START = ("model", "data")
#: the artifact of a step that changes the model: later steps get the changed model
TRAINED_MODEL = "trained-model"
#: the artifacts the commands that run part of a pipeline ask for: ``embedtune mine`` runs the
#: steps providing mined rows, ``eval`` those providing an evaluation (and, with ``--against``, a
#: baseline's), ``train`` those providing a trained model, ``export`` those providing a deployment
MINED_ROWS = "mined-rows"
EVALUATION = "evaluation"
BASELINE_EVALUATION = "baseline-evaluation"
DEPLOYMENT = "deployment"


@attrs.frozen
class PlannedStep:
    """A step of a run: its name as the config gives it, its component, its resolved options."""

    name: str
    component: Any
    options: dict = attrs.field(factory=dict)

    @property
    def info(self) -> Any:
        return self.component.info


def default_steps(registry: Any) -> list[str]:
    """The default pipeline: every step that declares a place in it, in that order."""
    chosen = sorted((c for c in registry.components("step") if c.info.default is not None),
                    key=lambda c: (c.info.default, c.name, c.plugin))
    return [c.name if registry.has("step", c.name) else c.qualified_name for c in chosen]


def steps_providing(registry: Any, *artifacts: str) -> list[str]:
    """The steps of the default pipeline that provide any of ``artifacts``, in its order: what a
    command that runs part of the pipeline runs (``embedtune train``: the steps providing
    ``trained-model``). When no default step does, the registered steps that do (a step that
    runs only when named, like ``export``)."""
    def providing(names: list[str]) -> list[str]:
        return [n for n in names if any(a in registry.get("step", n).info.provides for a in artifacts)]

    chosen = providing(default_steps(registry))
    if not chosen:
        others = sorted(registry.components("step"), key=lambda c: (c.name, c.plugin))
        chosen = providing([c.name if registry.has("step", c.name) else c.qualified_name for c in others])
    if not chosen:
        raise ComponentError(f"no step provides {' or '.join(repr(a) for a in artifacts)}",
                             hint="`embedtune components step` lists the steps; a plugin that replaced the built-in "
                                  "steps must provide these")
    return chosen


def config_value(config: Any, key: str) -> Any:
    """The value of a dotted config key (``mining.miner``)."""
    return functools.reduce(getattr, key.split("."), config)


def _left_out(component: Any, config: Any) -> bool:
    key = component.info.skip_unless
    if not key:
        return False
    try:
        return config_value(config, key) in (None, "", [], {})
    except AttributeError:
        raise ComponentError(f"{component.label} from plugin '{component.plugin}' declares skip_unless='{key}', "
                             "which is not a config key", hint="name a key such as mining.miner") from None


def plan_steps(config: Any, registry: Any) -> tuple[PlannedStep, ...]:
    """The steps a run runs: ``config.steps`` (or the default pipeline), each component found
    (a misspelt name gets the closest one), its options from ``step_options`` checked, steps
    whose ``skip_unless`` key is unset left out, and the order checked."""
    names = list(dict.fromkeys(config.steps)) if config.steps else default_steps(registry)
    if not names:
        raise ConfigError("the run has no steps", key="steps", hint="name them, e.g. steps = [\"train\"]; "
                          "`embedtune components step` lists them")
    planned, left_out = [], []
    for name in names:
        try:
            component = registry.get("step", name)
        except ComponentError as exc:
            raise ConfigError(exc.message, key="steps", hint=exc.hint) from None
        options = registry.resolve_options("step", name, config.step_options.get(name, {}),
                                           key=f"step_options.{name}")
        if _left_out(component, config):
            left_out.append((name, component.info.skip_unless))
            continue
        planned.append(PlannedStep(name=name, component=component, options=options))
    for name in config.step_options:
        if name not in names:
            raise ConfigError(f"options are set for step '{name}', which the run does not have",
                              key=f"step_options.{name}", hint=f"add it to steps, or remove step_options.{name}")
    check_order(planned, registry, left_out)
    return tuple(planned)


def _providers(registry: Any, artifact: str) -> list[str]:
    return [c.name for c in registry.components("step") if artifact in c.info.provides]


def check_order(planned: list[PlannedStep], registry: Any, left_out: list[tuple[str, str]] = ()) -> None:
    """Every step's needs are provided by an earlier step (or the start); no step comes after
    one that provides an artifact it must precede."""
    available: dict[str, str] = {artifact: "the start of the run" for artifact in START}
    for step in planned:
        missing = [a for a in step.info.needs if a not in available]
        if missing:
            providers = _providers(registry, missing[0])
            skipped = [f"'{n}' is left out while {key} is unset" for n, key in left_out if n in providers]
            raise ConfigError(
                f"step '{step.name}' needs '{missing[0]}', which no step before it provides", key="steps",
                hint=(f"put {' or '.join(repr(p) for p in providers)} before it" if providers
                      else "no registered step provides it") + (f" ({'; '.join(skipped)})" if skipped else ""))
        early = [a for a in step.info.before if a in available]
        if early:
            raise ConfigError(f"step '{step.name}' must come before {available[early[0]]}, which provides "
                              f"'{early[0]}'", key="steps", hint=f"move '{step.name}' earlier in steps")
        for artifact in step.info.provides:
            available.setdefault(artifact, f"step '{step.name}'")


def uses(planned: tuple[PlannedStep, ...]) -> frozenset[str]:
    """Everything the run's steps use (``training-rows``, ``held-out``...)."""
    return frozenset(u for step in planned for u in step.info.uses)


class StepContext:
    """What a step's ``run(context)`` works with.

    - ``name``: the step's name; ``run_dir``: the run folder (None when the command writes none);
    - ``config``: the resolved ``RunConfig``; ``plan``: the checked plan (components and their
      resolved options in ``plan.components``); ``registry``: the component registry;
    - ``data``: the :class:`~embedtune_core.pipeline.data.PreparedData` (training rows,
      evaluation set, mining corpus, retention set);
    - ``model_path``: the folder (or hub name) of the model as it stands at this step: the
      trained model's folder once a step providing ``trained-model`` has run; ``model()``: that
      model, loaded once; ``load_model(name)``: another model, loaded once;
    - ``training_rows`` / ``training_type``: the rows training will use (a step before training
      may replace them: generated, filtered or mined rows);
    - ``results``: what the run reports (before/after evaluations, mining and training
      summaries), which the built-in steps fill;
    - ``report(key, value)``: a figure of this step's, in ``metrics.json["steps"][NAME]`` and
      the report; ``note(text)`` / ``progress(text)``: a line on the terminal;
    - ``resume``: the run continues an interrupted one; ``state``: this step's own record, kept
      in the run folder's ``state.json`` when the step finishes (or on ``save_state()``).
    """

    def __init__(self, run: Any, step: PlannedStep) -> None:
        self._run = run
        self.step = step
        self.name = step.name
        self.reported: dict[str, Any] = {}
        #: the artifacts the run holds when this step starts
        self.available = frozenset(START) | frozenset(run.provided)

    def has(self, artifact: str) -> bool:
        """Whether the run holds ``artifact`` at this step (``trained-model``: a step before it
        trained the model)."""
        return artifact in self.available

    # -- what the run holds ---------------------------------------------------------------------
    @property
    def run_dir(self) -> Path | None:
        return self._run.folder

    @property
    def config(self) -> Any:
        return self._run.config

    @property
    def plan(self) -> Any:
        return self._run.plan

    @property
    def registry(self) -> Any:
        return self._run.registry

    @property
    def data(self) -> Any:
        return self._run.plan.data

    @property
    def results(self) -> Any:
        return self._run.results

    @property
    def resume(self) -> bool:
        return self._run.resume

    @property
    def quiet(self) -> bool:
        return self._run.quiet

    @property
    def model_path(self) -> str:
        return self._run.model_path

    def model(self) -> Any:
        """The model as it stands at this step, loaded once."""
        return self._run.model()

    def load_model(self, name: str) -> Any:
        """The model ``name`` (hub name or folder), loaded once for the run."""
        return self._run.model(name)

    @property
    def training_rows(self) -> Any:
        return self._run.train_rows

    @training_rows.setter
    def training_rows(self, rows: Any) -> None:
        self._run.train_rows = rows

    @property
    def training_type(self) -> str | None:
        return self._run.train_type

    @training_type.setter
    def training_type(self, value: str) -> None:
        self._run.train_type = value

    # -- what the step says ---------------------------------------------------------------------
    def report(self, key: str, value: Any) -> None:
        """Record a figure: ``metrics.json["steps"][NAME][key]`` and the report."""
        if not isinstance(key, str) or not key:
            raise ComponentError(f"step '{self.name}' reported a figure without a name ({key!r})")
        self.reported[key] = value

    def note(self, text: str) -> None:
        """A line the user sees even with --quiet."""
        self._run.progress.note(text)

    def progress(self, text: str) -> None:
        """A progress line (not with --quiet)."""
        self._run.progress.step(text)

    @property
    def state(self) -> dict:
        """This step's record in ``state.json`` (kept for ``--resume``)."""
        return self._run.state.setdefault("steps", {}).setdefault(self.name, {})

    def save_state(self) -> None:
        self._run.save_state()

    def saved(self, key: str, read: Any = None) -> Any:
        """What this step kept in ``state`` under ``key`` for ``--resume``, passed through ``read``
        (which raises ``KeyError``/``TypeError``/``ValueError`` on a value it cannot use); a value
        it cannot use is one error naming ``state.json`` and what to do. None when nothing was
        kept."""
        from embedtune_core.pipeline.rundir import STATE_FILE, damaged_state

        if key not in self.state:
            return None
        try:
            return read(self.state[key]) if read is not None else self.state[key]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            folder = self.run_dir or Path(".")
            raise damaged_state(folder / STATE_FILE, f"has a '{key}' of step '{self.name}' that cannot be read "
                                                     f"({type(exc).__name__}: {exc})") from None

    def call_hook(self, name: str, **kwargs: Any) -> None:
        """Call a lifecycle hook of the installed plugins (a failing one stops the run)."""
        self._run.call_hook(name, **kwargs)


class Progress:
    """Step messages on stderr, once (the main process), nothing when quiet."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def step(self, message: str) -> None:
        from embedtune_core.distributed import is_main_process

        if not self.quiet and is_main_process():
            print(f"» {message}", file=sys.stderr, flush=True)

    def note(self, message: str) -> None:
        """A line the user should see even when quiet (a warning about the result)."""
        from embedtune_core.distributed import is_main_process

        if is_main_process():
            print(f"note: {message}", file=sys.stderr, flush=True)


def timed(function: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    value = function()
    return value, round(time.perf_counter() - started, 2)
