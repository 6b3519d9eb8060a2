"""The hooks a pack can implement.

Registry hooks receive a ``register`` callable and call it once per component::

    register(name, factory, description="one line", **metadata)

``factory`` builds the component; what it is called with and what it must return depends on the
kind (see ``docs/hooks.md``). The core records which plugin registered which name.

Lifecycle hooks are called by the pipeline with keyword arguments; their return value is ignored.
Hook parameters are plain positional names (pluggy validates those only).
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("embedtune")
hookimpl = pluggy.HookimplMarker("embedtune")


@hookspec
def register_dataset_readers(register):
    """Register dataset readers.

    ``register(name, factory, description=..., **metadata)`` with the metadata of
    :class:`~embedtune_core.plugins.metadata.ReaderInfo` (``dataset_type``, ``bundled``...).
    ``factory(source, options)`` is an :class:`embedtune_core.types.DatasetReader`: it gets the
    source (a path, ``builtin:NAME`` or hub name; None for a bundled set) and a dict of options,
    and returns an :class:`embedtune_core.types.DataBundle`. Raise
    ``embedtune_core.errors.DataError`` naming file and line for bad input. Return nothing.
    """


@hookspec
def register_negative_miners(register):
    """Register hard-negative miners.

    ``register(name, factory, description=..., **metadata)`` with the metadata of
    :class:`~embedtune_core.plugins.metadata.MinerInfo` (``model``, ``input``, ``ordered``...).
    ``factory(**options)`` returns an :class:`embedtune_core.types.NegativeMiner`: ``mine(request)``
    takes an ``embedtune_core.types.MiningRequest`` and returns an
    ``embedtune_core.types.MiningResult`` (the dataset with negatives added, plus stats). The
    options are declared by the factory's signature or an ``Options`` attrs class. Return nothing.
    """


@hookspec
def register_losses(register):
    """Register training losses.

    ``register(name, factory, description=..., **metadata)`` with the metadata of
    :class:`~embedtune_core.plugins.metadata.LossInfo` (``accepts``, ``default_for``,
    ``in_batch_negatives``, ``input``, ``wraps``...). ``factory(model, **options)`` returns an
    :class:`embedtune_core.types.Loss`: a ``torch.nn.Module`` with the sentence-transformers loss
    call signature ``forward(sentence_features, labels)``. A factory that declares a ``registry``
    keyword gets the component registry (to build a wrapped loss by name). Return nothing.
    """


@hookspec
def register_metrics(register):
    """Register ranking metrics.

    ``register(name, factory, description=...)``. ``factory()`` returns an
    :class:`embedtune_core.types.Metric`: ``compute(ranked, k)`` takes an
    ``embedtune_core.ranking.ranked.RankedRun`` and an int cut-off and returns a numpy array of
    per-query values (the mean is taken by the core). Return nothing.
    """


@hookspec
def register_callbacks(register):
    """Register training callbacks.

    ``register(name, factory, description=..., **metadata)`` with the metadata of
    :class:`~embedtune_core.plugins.metadata.CallbackInfo` (``default``, ``needs_eval``).
    ``factory(**options)`` returns an :class:`embedtune_core.types.Callback` (a
    ``transformers.TrainerCallback``); a factory that declares ``run_dir`` or ``quiet`` receives
    them. Return nothing.
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


@hookspec
def run_started(config, run_dir):
    """Called once a run's config is resolved and its folder created, before any data is read.

    ``config`` is the frozen ``RunConfig``; ``run_dir`` a ``pathlib.Path``. Return nothing.
    """


@hookspec
def evaluation_finished(stage, results, run_dir):
    """Called after each evaluation of a run.

    ``stage`` is ``"before"`` or ``"after"``; ``results`` maps each Matryoshka dim (int, or None
    for the full size) to ``{metric name: mean}``; ``run_dir`` a ``pathlib.Path``. Return nothing.
    """


@hookspec
def run_finished(run_dir, metrics):
    """Called once a run has written its folder.

    ``metrics`` is the dict written to ``metrics.json``. Return nothing.
    """


REGISTRY_HOOKS = {
    "dataset_reader": "register_dataset_readers",
    "negative_miner": "register_negative_miners",
    "loss": "register_losses",
    "metric": "register_metrics",
    "callback": "register_callbacks",
    "exporter": "register_exporters",
}
