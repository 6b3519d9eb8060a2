"""The hooks a pack can implement, grouped by when they are called.

**Registry hooks** run once per command, when the registry is built. Each receives a
``register`` callable and calls it once per component::

    register(name, factory, description=None, **metadata)

``factory`` builds the component; the arguments it takes before its options and what it must
return depend on the kind (``docs/hooks.md``). Its options are its keyword parameters (see
:mod:`embedtune_core.plugins.options`); ``metadata`` are the fields of the kind's class in
:mod:`embedtune_core.plugins.metadata`. The core records which plugin registered which name.

**Lifecycle hooks** are called by the pipeline with keyword arguments; their return value is
ignored. A lifecycle hook that raises stops the run with one message naming its plugin.

Every hook is called the pluggy way (``tryfirst``/``trylast`` and ``wrapper=True`` work as in
pluggy), each implementation behind a guard that names its plugin when it fails. Hook
parameters are plain positional names (pluggy validates those only).
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("embedtune")
hookimpl = pluggy.HookimplMarker("embedtune")


# -- registry hooks ---------------------------------------------------------------------------
@hookspec
def register_dataset_readers(register):
    """Register dataset readers.

    :param register: ``register(name, factory, description=None, **ReaderInfo)``
        (``dataset_type``, ``bundled``, ``size``, ``licence``, ``package``).

    ``factory(source, **options)`` is an :class:`embedtune_core.types.DatasetReader`: ``source``
    is a path or a hub name (None for a bundled set, ``builtin:NAME``); its keyword
    parameters are its options (``data.options``, and ``columns`` from ``data.columns``); it
    returns an :class:`embedtune_core.types.DataBundle`. Raise
    ``embedtune_core.errors.DataError`` naming file and line for bad input. Return nothing.
    """


@hookspec
def register_negative_miners(register):
    """Register hard-negative miners.

    :param register: ``register(name, factory, description=None, **MinerInfo)`` (``model``,
        ``input``, ``accepts``, ``ordered``, ``default_for``, ``wraps``, ``columns``).

    ``factory(**options)`` returns an :class:`embedtune_core.types.NegativeMiner`:
    ``mine(request)`` takes an ``embedtune_core.types.MiningRequest`` and returns an
    ``embedtune_core.types.MiningResult`` (the rows with negatives added, plus stats). Return
    nothing.
    """


@hookspec
def register_losses(register):
    """Register training losses.

    :param register: ``register(name, factory, description=None, **LossInfo)`` (``accepts``,
        ``default_for``, ``in_batch_negatives``, ``input``, ``constant_memory``, ``wraps``).

    ``factory(model, **options)`` returns an :class:`embedtune_core.types.Loss`: a
    ``torch.nn.Module`` with the sentence-transformers loss call signature
    ``forward(sentence_features, labels)`` returning a scalar tensor. A factory that declares a
    ``registry`` keyword gets the component registry (to build a wrapped loss by name). Return
    nothing.
    """


@hookspec
def register_metrics(register):
    """Register ranking metrics.

    :param register: ``register(name, factory, description=None)``.

    ``factory(**options)`` returns an :class:`embedtune_core.types.Metric`: ``compute(ranked,
    k)`` takes an ``embedtune_core.ranking.ranked.RankedRun`` and an int cut-off and returns a
    numpy array of finite per-query values (the core takes the mean). Return nothing.
    """


@hookspec
def register_callbacks(register):
    """Register training callbacks.

    :param register: ``register(name, factory, description=None, **CallbackInfo)``
        (``default``, ``needs_eval``).

    ``factory(**options)`` returns an :class:`embedtune_core.types.Callback` (a
    ``transformers.TrainerCallback``); a factory that declares ``run_dir`` or ``quiet`` receives
    them. Return nothing.
    """


@hookspec
def register_pipeline_steps(register):
    """Register pipeline steps.

    :param register: ``register(name, factory, description=None, **StepInfo)`` (``needs``,
        ``provides``, ``before``, ``uses``, ``encodes``, ``shares_work``, ``skip_unless``,
        ``default``).

    ``factory(**options)`` (options from ``step_options.NAME``) returns an
    :class:`embedtune_core.types.PipelineStep`: ``run(context)`` gets an
    ``embedtune_core.pipeline.steps.StepContext`` (the run folder, the resolved config, the
    model as it stands and its folder, the data, ``report(key, value)``). It may also have
    ``check(plan, name)`` (called in preflight, before any model loads) and ``setup(context)``
    (called once the models are loaded, before the run folder exists). Return nothing.
    """


@hookspec
def register_exporters(register):
    """Register model exporters (the deployable variants ``embedtune export`` writes and measures).

    ``register(name, factory, description=..., **metadata)`` with the metadata of
    :class:`~embedtune_core.plugins.metadata.ExporterInfo` (``format``, ``backend``, ``weights``,
    ``reference``, ``default``). ``factory(**options)`` returns an
    :class:`embedtune_core.types.Exporter`: ``export(request)`` takes an
    ``embedtune_core.types.ExportRequest`` and writes the model into ``request.folder`` in the
    declared format; the core loads it, measures it at every dim and embedding precision, and
    writes the variant folders. Return nothing.
    """


# -- lifecycle hooks --------------------------------------------------------------------------
@hookspec
def run_started(config, run_dir):
    """Called once a run's config is resolved and its folder created, before any data is read.

    :param config: the frozen ``RunConfig``.
    :param run_dir: the run folder, a ``pathlib.Path``.
    """


@hookspec
def evaluation_finished(stage, results, run_dir):
    """Called after each evaluation of a run.

    :param stage: ``"before"`` or ``"after"``.
    :param results: each Matryoshka dim (int, or None for the full size) -> ``{metric: mean}``.
    :param run_dir: the run folder, a ``pathlib.Path``.
    """


@hookspec
def run_finished(run_dir, metrics):
    """Called once a run has written its folder.

    :param run_dir: the run folder, a ``pathlib.Path``.
    :param metrics: the dict written to ``metrics.json``.
    """
