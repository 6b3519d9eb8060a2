"""What a plugin declares about each component it registers, typed and checked at registration.

``register(name, factory, description=None, **metadata)``: the metadata keywords of each kind are
the fields of its class below. An unknown keyword or a value of the wrong type is an error naming
the plugin and the component, so a typo in a pack fails when the pack loads, not silently later.
The core reads these declarations, never the component's name: a pack's loss that declares
``in_batch_negatives=True`` gets the no-duplicates sampler exactly as a built-in does.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Mapping

import attrs

from embedtune_core.types import DATASET_TYPES

DatasetType = Literal[tuple(DATASET_TYPES)]  # type: ignore[valid-type]


def _types(value: Any) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


@attrs.frozen
class ReaderInfo:
    """A dataset reader."""

    dataset_type: Annotated[DatasetType | None, "the type the reader produces (None: it depends on the source)"] = None
    bundled: Annotated[bool, "it loads a bundled data set by itself (builtin:NAME, `embedtune data list`)"] = False
    size: Annotated[str | None, "a bundled set's size, as `embedtune data list` shows it"] = None
    licence: Annotated[str | None, "a bundled set's licence"] = None
    package: Annotated[str | None, "the package a bundled set's files come from"] = None


@attrs.frozen
class MinerInfo:
    """A negative miner."""

    model: Annotated[Literal["required", "guards", "no"],
                     "required: it ranks or scores with the model; guards: it uses one for the false-negative "
                     "guards when there is one; no: it never encodes"] = "no"
    input: Annotated[Literal["pairs", "nli"],
                     "pairs: (anchor, positive) rows; nli: NLI records with their labels when the data is NLI"] = "pairs"
    accepts: Annotated[tuple[DatasetType, ...] | None,
                       "the training data types it works on (None: any with (anchor, positive) rows)"] = attrs.field(
        default=None, converter=_types)
    ordered: Annotated[bool, "the order of its output rows matters (trained with a sequential sampler)"] = False
    default_for: Annotated[tuple[DatasetType, ...], "dataset types for which `embedtune init` suggests it"] = attrs.field(
        default=(), converter=tuple)
    wraps: Annotated[str | None, "the option naming a miner it wraps (its options in OPTION_options)"] = None
    columns: Annotated[tuple[str, ...], "extra columns of the training rows it reads (a group id...): preflight "
                                        "refuses data without them; they reach request.columns"] = attrs.field(
        default=(), converter=tuple)


@attrs.frozen
class LossInfo:
    """A training loss."""

    accepts: Annotated[tuple[DatasetType, ...] | None,
                       "the dataset types it trains on (None: any, or what the loss it wraps trains on)"] = attrs.field(
        default=None, converter=_types)
    default_for: Annotated[tuple[DatasetType, ...], "dataset types it is the default loss for"] = attrs.field(
        default=(), converter=tuple)
    in_batch_negatives: Annotated[bool, "the other rows of a batch are its negatives: no duplicate texts in a batch "
                                        "(the no-duplicates sampler)"] = False
    input: Annotated[Literal["rows", "triplets"],
                     "rows: the type's columns as they are; triplets: exactly (anchor, positive, negative), "
                     "so rows with several negatives become one triplet per negative"] = "rows"
    constant_memory: Annotated[bool, "its memory does not grow with the batch (gradient caching)"] = False
    wraps: Annotated[str | None, "the option naming a loss it wraps (its options in OPTION_options)"] = None


@attrs.frozen
class MetricInfo:
    """A ranking metric (no metadata)."""


@attrs.frozen
class CallbackInfo:
    """A training callback."""

    default: Annotated[bool, "attached to every training run unless training.default_callbacks is false"] = False
    needs_eval: Annotated[bool, "it needs evaluation during training (training.eval_steps)"] = False


@attrs.frozen
class ExporterInfo:
    """A model exporter."""

    format: Annotated[Literal["onnx", "sentence-transformers"],
                      "what it writes: onnx (model.onnx and tokenizer.json) or a sentence-transformers folder"] = "onnx"
    backend: Annotated[str, "the runtime its variants are served with, as the deployment table names it"] = "onnx"
    weights: Annotated[str, "the precision of its weights, as the deployment table names it (fp32, int8...)"] = "fp32"
    reference: Annotated[bool, "its full-size float32 variant is the reference the others' retention and speed are "
                               "measured against (one exporter of an export run declares it)"] = False
    default: Annotated[bool, "exported when the run names no exporters"] = True


#: what a pipeline step may declare it uses: preflight reads and checks these for it
StepUse = Literal["training-rows", "held-out", "retention", "mining", "training"]


@attrs.frozen
class StepInfo:
    """A pipeline step. Artifacts are names for what a run holds: it starts with ``model`` (the
    model as it stands) and ``data``; a step providing ``trained-model`` changes the model (later
    steps get its folder as ``model_path``). Packs may name artifacts of their own."""

    needs: Annotated[tuple[str, ...], "artifacts an earlier step (or the start of the run) must provide"] = \
        attrs.field(default=(), converter=tuple)
    provides: Annotated[tuple[str, ...], "artifacts it provides to the steps after it"] = attrs.field(
        default=(), converter=tuple)
    before: Annotated[tuple[str, ...], "artifacts that must not exist yet when it runs (it belongs before the step "
                                       "that provides them)"] = attrs.field(default=(), converter=tuple)
    uses: Annotated[tuple[StepUse, ...], "what preflight prepares and checks for it: training-rows, held-out (the "
                                         "evaluation set), retention, mining (the miner), training (the loss, "
                                         "callbacks and training settings)"] = attrs.field(default=(), converter=tuple)
    encodes: Annotated[bool, "it encodes texts with the model as it stands (embeddings are then shared with the "
                             "next step that does, until the model changes)"] = False
    shares_work: Annotated[bool, "under several processes, its encoding and search are split over them (false: it "
                                 "distributes itself, e.g. DDP training)"] = True
    skip_unless: Annotated[str | None, "a config key (section.key): the step is left out of the run while it is "
                                       "unset"] = None
    default: Annotated[int | None, "its position in the default pipeline (none: it runs only when named in "
                                   "steps)"] = None


def build_info(cls: type, metadata: Mapping[str, Any], *, label: str) -> Any:
    """The typed metadata ``cls`` of a component; an unknown key or a bad value raises
    :class:`~embedtune_core.errors.ComponentError` naming ``label`` (plugin and component)."""
    from embedtune_core.errors import ComponentError
    from embedtune_core.plugins.options import Declaration, OptionError

    try:
        return cls(**Declaration.of(cls).resolve(dict(metadata), label=label, noun="metadata"))
    except OptionError as exc:
        raise ComponentError(str(exc), hint=exc.hint) from None
