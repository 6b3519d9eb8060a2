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


def _options_class(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and not attrs.has(value):
        from embedtune_core.plugins.options import OptionError

        raise OptionError(f"'{attribute.name}' must be an attrs class declaring the options, got {value!r}")


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
    options: Annotated[Any, "an attrs class declaring the options (else the factory's signature)"] = attrs.field(
        default=None, validator=_options_class)


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
    options: Annotated[Any, "an attrs class declaring the options (else the factory's signature)"] = attrs.field(
        default=None, validator=_options_class)


@attrs.frozen
class MetricInfo:
    """A ranking metric (no metadata)."""


@attrs.frozen
class CallbackInfo:
    """A training callback."""

    default: Annotated[bool, "attached to every training run unless training.default_callbacks is false"] = False
    needs_eval: Annotated[bool, "it needs evaluation during training (training.eval_steps)"] = False
    options: Annotated[Any, "an attrs class declaring the options (else the factory's signature)"] = attrs.field(
        default=None, validator=_options_class)


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
    options: Annotated[Any, "an attrs class declaring the options (else the factory's signature)"] = attrs.field(
        default=None, validator=_options_class)


INFO_CLASSES: dict[str, type] = {
    "dataset_reader": ReaderInfo,
    "negative_miner": MinerInfo,
    "loss": LossInfo,
    "metric": MetricInfo,
    "callback": CallbackInfo,
    "exporter": ExporterInfo,
}


def build_info(kind: str, metadata: Mapping[str, Any], *, label: str) -> Any:
    """The typed metadata of a component of ``kind``; an unknown key or a bad value raises
    :class:`~embedtune_core.errors.ComponentError` naming ``label`` (plugin and component)."""
    from embedtune_core.errors import ComponentError
    from embedtune_core.plugins.options import Declaration, OptionError

    cls = INFO_CLASSES[kind]
    declaration = Declaration.of(cls, cls)
    try:
        return cls(**declaration.resolve(dict(metadata), label=label, noun="metadata"))
    except OptionError as exc:
        raise ComponentError(str(exc), hint=getattr(exc, "hint", None)) from None


def describe_metadata() -> dict[str, list[tuple[str, str, Any]]]:
    """``{kind: [(key, help, default), ...]}`` for the hook reference."""
    from embedtune_core.plugins.options import class_specs

    return {kind: [(s.name, s.help, s.default) for s in class_specs(cls).values()]
            for kind, cls in INFO_CLASSES.items()}
