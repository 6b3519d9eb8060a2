"""One preflight: every check that can reject a run, each once, before a model is loaded or a
folder is created; and the resolved config, every default decided, that the run folder records.

The order: the steps (names, options, order, from what each declares), the components the steps
use and their options (from each component's declaration), the run folder, model paths and what
their files tell (position embeddings), the device, then the data (every record), then what
depends on the data's type (the loss and the miner must take it) and on the held-out data
(evaluation during training), and last each step's own ``check``. What is checked follows what
the steps declare they use (``StepInfo.uses``), never their names. ``embedtune config validate``
runs exactly this.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from embedtune_core.config.schema import RunConfig
from embedtune_core.errors import ComponentError, ConfigError, EmbedtuneError
from embedtune_core.pipeline.data import PreparedData, prepare_data
from embedtune_core.pipeline.steps import PlannedStep, plan_steps, uses
from embedtune_core.ranking.metrics import parse_metric


@attrs.frozen
class Output:
    """Where a run writes: a run folder (``run_dir``; None writes nothing there) and, for the
    mined data, ``mined`` (default: ``RUN/mined.jsonl``)."""

    run_dir: Path | None = None
    mined: Path | None = None
    overwrite: bool = False
    resume: bool = False


@attrs.frozen
class Components:
    """The components a run uses, with their options resolved (defaults filled in)."""

    loss: str | None = None
    loss_options: dict = attrs.field(factory=dict)
    miner: Any = None
    miner_options: dict = attrs.field(factory=dict)
    callbacks: tuple = ()  # (name, component, options)


@attrs.frozen
class Plan:
    """A checked run: the resolved config, the planned steps (and, once built, their objects),
    the data read once and the components the steps use."""

    config: RunConfig
    planned: tuple[PlannedStep, ...]
    data: PreparedData
    components: Components
    traits: Any = None
    output: Output = attrs.field(factory=Output)
    source: str | None = None
    step_objects: dict = attrs.field(factory=dict)

    @property
    def steps(self) -> tuple[str, ...]:
        """The names of the steps that run, in order."""
        return tuple(step.name for step in self.planned)

    @property
    def uses(self) -> frozenset[str]:
        return uses(self.planned)

    def after(self, name: str) -> tuple[PlannedStep, ...]:
        """The steps that run after step ``name``."""
        names = self.steps
        return self.planned[names.index(name) + 1:] if name in names else ()


def _named(exc: EmbedtuneError, source: str | None) -> EmbedtuneError:
    """An error about a config key names the config file too."""
    if source and exc.file is None and exc.key:
        exc.file = str(source)
    return exc


def preflight(config: RunConfig, registry: Any, *, output: Output | None = None, source: str | None = None) -> Plan:
    """Check everything ``config`` asks for, read the data, and return the :class:`Plan` with
    the resolved config and the steps' objects. Errors about a config key name ``source`` (the
    config file)."""
    output = output or Output()
    try:
        planned = plan_steps(config, registry)
        used = uses(planned)
        components = check_components(config, registry, used)
        if output.run_dir is not None:
            from embedtune_core.pipeline.rundir import check_run_dir

            keys = ("name", "output_dir") if output.run_dir == config.run_dir else (None, None)
            check_run_dir(output.run_dir, overwrite=output.overwrite, resume=output.resume, keys=keys)
        check_models(config, registry, components, used)
        device = check_device(config.model.device)
        data = prepare_data(config, registry, used)
        components, traits = check_for_data(config, registry, components, data, used)
        resolved = resolve(config, registry, planned=planned, components=components, traits=traits,
                           dataset_type=data.dataset_type, device=device, data=data)
        plan = Plan(config=resolved, planned=planned, data=data, components=components, traits=traits, output=output,
                    source=source)
        plan = attrs.evolve(plan, step_objects=build_steps(plan, registry))
    except EmbedtuneError as exc:
        raise _named(exc, source) from None
    return plan


def build_steps(plan: Plan, registry: Any) -> dict[str, Any]:
    """Each step's object, built from its resolved options; a step's ``check(plan, name)``,
    when it has one, refuses settings it cannot run with."""
    from embedtune_core.plugins.calling import contained

    built = {}
    for step in plan.planned:
        built[step.name] = registry.build(step.component, options=step.options, step=step.name)
        check = getattr(built[step.name], "check", None)
        if check is not None:
            with contained(step.component, "checking the run's settings", step=step.name):
                check(plan, step.name)
    return built


# -- components -------------------------------------------------------------------------------
def _get(registry: Any, kind: str, name: Any, key: str) -> Any:
    try:
        return registry.get(kind, name)
    except ComponentError as exc:
        raise ConfigError(exc.message, key=key, hint=exc.hint) from None


def check_components(config: RunConfig, registry: Any, used: frozenset[str]) -> Components:
    """Every component the config names exists and its options fit its declaration (the loss
    and the callbacks when a step trains, the miner when a step mines)."""
    if config.data.reader:
        _get(registry, "dataset_reader", config.data.reader, "data.reader")
    for spec in config.evaluation.metrics:
        _get(registry, "metric", parse_metric(spec)[0], "evaluation.metrics")

    loss_options: dict = {}
    if config.loss.name and "training" in used:
        _get(registry, "loss", config.loss.name, "loss.name")
        loss_options = registry.resolve_options("loss", config.loss.name, config.loss.options, key="loss.options")
    miner, miner_options = None, {}
    if "mining" in used:
        miner = _get(registry, "negative_miner", config.mining.miner, "mining.miner")
        miner_options = registry.resolve_options("negative_miner", config.mining.miner, config.mining.options,
                                                 key="mining.options")
    callbacks = check_callbacks(config, registry) if "training" in used else ()
    return Components(loss=config.loss.name, loss_options=loss_options, miner=miner, miner_options=miner_options,
                      callbacks=callbacks)


def check_callbacks(config: RunConfig, registry: Any) -> tuple:
    """The callbacks a training run attaches: those plugins declare ``default`` (unless
    ``training.default_callbacks`` is false), then ``training.callbacks``, each once, with their
    options from ``training.callback_options`` checked; an option set for a callback that is not
    attached is an error."""
    training = config.training
    chosen: dict[Any, str] = {}
    if training.default_callbacks:
        for component in registry.components("callback"):
            if component.info.default:
                chosen.setdefault(component, component.name if registry.has("callback", component.name)
                                  else component.qualified_name)
    for name in training.callbacks:
        chosen.setdefault(_get(registry, "callback", name, "training.callbacks"), name)
    attached = []
    for component, name in chosen.items():
        options = training.callback_options.get(name, training.callback_options.get(component.name, {}))
        key = f"training.callback_options.{name}"
        attached.append((name, component, registry.resolve_options("callback", name, options, key=key)))
    names = {n for n, c, _ in attached} | {c.name for _, c, _ in attached} | {c.qualified_name for _, c, _ in attached}
    for name in training.callback_options:
        if name not in names:
            _get(registry, "callback", name, f"training.callback_options.{name}")
            raise ConfigError(f"options are set for callback '{name}', which is not attached",
                              key=f"training.callback_options.{name}", hint=f"add it: training.callbacks = ['{name}']")
    for name, component, _ in attached:
        if component.info.needs_eval and not training.eval_steps:
            raise ConfigError(f"the {name} callback needs evaluation during training", key="training.callbacks",
                              hint="set training.eval_steps too")
    return tuple(attached)


# -- models and the machine -------------------------------------------------------------------
def model_options(registry: Any, components: Components, used: frozenset[str]) -> list[tuple[str, str]]:
    """``(config key, model name)`` of every component option that names a model (declared with
    ``MODEL``), wrapped components' included: a miner's cross-encoder, a GIST loss's guide."""
    found: list[tuple[str, str]] = []

    def walk(kind: str, name: str | None, options: dict, key: str) -> None:
        if not name:
            return
        component = registry.get(kind, name)
        for option, spec in component.declaration.specs.items():
            if spec.model and isinstance(options.get(option), str):
                found.append((f"{key}.{option}", options[option]))
        wraps = getattr(component.info, "wraps", None)
        if wraps and isinstance(options.get(wraps), str):
            walk(kind, options[wraps], options.get(f"{wraps}_options") or {}, f"{key}.{wraps}_options")

    if "mining" in used and components.miner is not None:
        walk("negative_miner", components.miner.name if registry.has("negative_miner", components.miner.name)
             else components.miner.qualified_name, components.miner_options, "mining.options")
    if "training" in used:
        walk("loss", components.loss, components.loss_options, "loss.options")
    return found


def check_models(config: RunConfig, registry: Any, components: Components, used: frozenset[str]) -> None:
    """Every model a run would load exists where a path names it, and ``max_seq_length`` fits
    the model's position embeddings (read from its files, nothing loaded)."""
    from embedtune_core.embedding.info import model_info
    from embedtune_core.embedding.models import check_model

    check_model(config.model.name, key="model.name")
    if "training" in used:
        check_trainable(config.model.name)
    if "mining" in used and config.mining.model:
        check_model(config.mining.model, key="mining.model")
    if "held-out" in used and config.evaluation.baseline:
        check_model(config.evaluation.baseline, key="evaluation.baseline")
    for key, value in model_options(registry, components, used):
        check_model(value, key=key)
    length = config.model.max_seq_length
    info = model_info(config.model.name)
    if length and info.max_positions and length > info.max_positions:
        raise ConfigError(f"max_seq_length {length} is more than the model's {info.max_positions} position embeddings",
                          key="model.max_seq_length", hint=f"use at most {info.max_positions}")
    for dim in config.evaluation.dims:
        if info.dim and dim > info.dim:
            raise ConfigError(f"dim {dim} is outside the model's embedding size 1..{info.dim}", key="evaluation.dims",
                              hint="list sizes up to the model's embedding size")


def check_trainable(name: str) -> None:
    """An exported ONNX variant is served, not trained."""
    from embedtune_core.embedding.exported import is_variant, read_variant

    if is_variant(name) and read_variant(name).format != "sentence-transformers":
        raise ConfigError(f"model '{name}' is an exported ONNX variant, which cannot be trained", key="model.name",
                          hint="train the sentence-transformers model it was exported from, then export again")


def check_device(device: str | None) -> str:
    """The device a run uses: ``device`` when this machine has it, else a GPU when there is one."""
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device '{device}': no CUDA device is available", key="model.device",
                              hint="leave model.device unset, or use cpu")
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device '{device}': this machine has {torch.cuda.device_count()} CUDA device(s)",
                              key="model.device", hint="use cuda:0 ... or leave model.device unset")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("device 'mps': no Apple GPU is available", key="model.device", hint="use cpu")
    return device


# -- what depends on the data -----------------------------------------------------------------
def check_for_data(config: RunConfig, registry: Any, components: Components, data: PreparedData,
                   used: frozenset[str]) -> tuple[Components, Any]:
    """The loss (the declared default for the data's type when unset) and the miner must take the
    data's type; evaluation during training needs held-out data."""
    from embedtune_core.distributed import world_size
    from embedtune_core.training.arguments import check_training_config
    from embedtune_core.training.losses import check_loss_accepts, gather_by_default, loss_traits, recommend_loss

    traits = None
    if data.eval_kind == "ir" and not config.evaluation.metrics:
        raise ConfigError("evaluation.metrics is empty, but the run ranks its held-out data", key="evaluation.metrics",
                          hint='name at least one, e.g. metrics = ["ndcg@10"]')
    if "training" in used:
        name = components.loss or recommend_loss(registry, data.dataset_type)
        options = components.loss_options if components.loss else registry.resolve_options(
            "loss", name, config.loss.options, key="loss.options")
        traits = loss_traits(registry, name, options)
        check_loss_accepts(registry, name, data.dataset_type, traits, options)
        check_training_config(config.training, has_eval=data.bundle.eval is not None or data.validation is not None,
                              validating=data.validation is not None)
        if world_size() > 1:  # under DDP, in-batch losses take every process's rows as negatives
            options = gather_by_default(registry, name, options, config.loss.options)
        components = attrs.evolve(components, loss=name, loss_options=options)
    miner = components.miner
    if miner is not None:
        accepts = miner.info.accepts
        if accepts and data.train_type not in accepts and data.dataset_type not in accepts:
            raise ComponentError(
                f"negative miner '{config.mining.miner}' works on {', '.join(accepts)} data, but the data is "
                f"{data.dataset_type}", key="mining.miner",
                hint=f"use a miner for (anchor, positive) rows, or give data of type {' / '.join(accepts)}",
            )
        if not miner.info.input == "nli" and data.dataset_type == "sts":
            raise ComponentError(f"negative miner '{config.mining.miner}' needs (anchor, positive) rows, but the data "
                                 "is sts", key="mining.miner", hint="STS pairs have scores, not positives: skip mining")
        if miner.info.input == "nli" and data.dataset_type == "nli" and data.validation is not None:
            raise ConfigError(f"negative miner '{config.mining.miner}' reads the NLI records, validation rows included",
                              key="training.validation_fraction", hint="set it to 0, or use a miner of (anchor, positive) rows")
        missing = [c for c in miner.info.columns if c not in data.train_columns]
        if missing:
            raise ComponentError(
                f"negative miner '{config.mining.miner}' reads column '{missing[0]}' of the training rows, which the "
                "data does not have", key="mining.miner",
                hint=f"the rows' extra columns: {', '.join(data.train_columns) or 'none'}; keep it from the file with "
                     f"data.options.keep = [\"{missing[0]}\"] (or use a reader that gives it)")
    return components, traits


# -- resolution ---------------------------------------------------------------------------------
def resolve(config: RunConfig, registry: Any, *, planned: tuple[PlannedStep, ...], components: Components, traits: Any,
            dataset_type: str | None, device: str, data: Any = None) -> RunConfig:
    """``config`` with every value the run decides written in: the steps that run and their
    options, the data type and the eval fraction used, the device, the loss and its options, the
    miner's options and model, the batch sampler, the precision, the learning rate (from the
    model's size and ``data``'s training rows) and the callbacks. The file written from it alone
    reproduces the run."""
    from embedtune_core.training.advice import decide_learning_rate, hidden_size_of
    from embedtune_core.training.arguments import decide_batch_sampler, resolve_precision

    used = uses(planned)
    training = config.training
    if "training" in used:
        if data is not None and data.train is not None:  # without the data (config show) it stays "auto"
            training = decide_learning_rate(training, hidden=hidden_size_of(config.model.name), rows=len(data.train))
        ordered = "mining" in used and components.miner is not None and components.miner.info.ordered
        training = attrs.evolve(
            training,
            batch_sampler=decide_batch_sampler(training.batch_sampler, ordered=ordered,
                                               in_batch_negatives=traits is not None and traits.in_batch_negatives),
            precision=resolve_precision(training.precision, device),
            callbacks=[name for name, _, _ in components.callbacks],
            callback_options={name: options for name, _, options in components.callbacks if options},
        )
    mining = config.mining
    if "mining" in used:
        mining = attrs.evolve(mining, options=components.miner_options,
                              model=mining.model or config.model.name)
    loss = config.loss
    if components.loss:
        loss = attrs.evolve(loss, name=components.loss, options=components.loss_options)
    data_config = attrs.evolve(config.data, type=dataset_type or config.data.type)
    if data is not None:
        data_config = attrs.evolve(data_config, eval_fraction=data.eval_fraction, options=data.reader_options)
    return attrs.evolve(
        config,
        steps=[step.name for step in planned],
        step_options={step.name: step.options for step in planned if step.options},
        data=data_config,
        model=attrs.evolve(config.model, device=device),
        mining=mining, loss=loss, training=training,
    )


def resolve_without_data(config: RunConfig, registry: Any) -> RunConfig:
    """``config`` resolved as far as it can be without reading the data (``embedtune config
    show``): the type is the declared one or the bundled set's."""
    from embedtune_core.data.loading import BUILTIN_PREFIX
    from embedtune_core.training.losses import loss_traits, recommend_loss

    planned = plan_steps(config, registry)
    used = uses(planned)
    components = check_components(config, registry, used)
    dataset_type = config.data.type
    if dataset_type is None and config.data.source.startswith(BUILTIN_PREFIX):
        component = registry.get("dataset_reader", config.data.source[len(BUILTIN_PREFIX):])
        dataset_type = component.info.dataset_type
    traits = None
    if "training" in used and (components.loss or dataset_type):
        name = components.loss or recommend_loss(registry, dataset_type)
        options = components.loss_options or registry.resolve_options("loss", name, config.loss.options,
                                                                      key="loss.options")
        traits = loss_traits(registry, name, options)
        components = attrs.evolve(components, loss=name, loss_options=options)
    return resolve(config, registry, planned=planned, components=components, traits=traits, dataset_type=dataset_type,
                   device=check_device(config.model.device))
