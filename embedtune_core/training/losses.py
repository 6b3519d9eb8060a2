"""Losses by name: the guide's default for a dataset type, what a loss declares it trains on,
building it for a model, and shaping the data the way it reads rows. Everything here comes from
the metadata losses were registered with, never from their names."""

from __future__ import annotations

from typing import Any, Mapping

import attrs

from embedtune_core.errors import ComponentError, ConfigError, DataError
from embedtune_core.types import DATASET_TYPES


@attrs.frozen
class LossTraits:
    """What a loss (through any loss it wraps) declared: the dataset types it trains on (None:
    any), whether the other rows of a batch are its negatives, how it reads rows, and whether its
    memory stays constant as the batch grows."""

    accepts: tuple[str, ...] | None
    in_batch_negatives: bool
    input: str
    constant_memory: bool


def loss_traits(registry: Any, name: str, options: Mapping[str, Any] | None = None) -> LossTraits:
    """The traits of loss ``name`` with ``options``: a wrapping loss (``wraps="OPTION"``) trains
    on what both it and the loss it wraps accept, and has the wrapped loss's other traits."""
    accepts = None
    chain = registry.chain("loss", name, options or {})
    for component in chain:
        own = component.info.accepts
        if own is not None:
            accepts = tuple(own) if accepts is None else tuple(t for t in accepts if t in own)
    infos = [c.info for c in chain]
    return LossTraits(
        accepts=accepts,
        in_batch_negatives=any(i.in_batch_negatives for i in infos),
        input="triplets" if any(i.input == "triplets" for i in infos) else "rows",
        constant_memory=any(i.constant_memory for i in infos),
    )


#: the option of an in-batch loss that adds the other processes' rows as negatives under DDP
#: (sentence-transformers' name for it)
GATHER_OPTION = "gather_across_devices"


def gather_by_default(registry: Any, name: str, options: Mapping[str, Any], given: Mapping[str, Any] | None,
                      ) -> dict[str, Any]:
    """``options`` (resolved) with ``gather_across_devices = true`` for the loss and any loss it
    wraps that declares that option and was not given it: under DDP each process then ranks its
    anchors against every process's rows (batch x processes - 1 negatives, not batch - 1)."""
    component = registry.get("loss", name)
    given = given or {}
    out = dict(options)
    if GATHER_OPTION in component.declaration.specs and GATHER_OPTION not in given:
        out[GATHER_OPTION] = True
    wraps = getattr(component.info, "wraps", None)
    if wraps and isinstance(out.get(wraps), str):
        key = f"{wraps}_options"
        out[key] = gather_by_default(registry, out[wraps], out.get(key) or {}, given.get(key))
    return out


def recommend_loss(registry: Any, dataset_type: str) -> str:
    """The loss declared the default for ``dataset_type`` (``default_for``), by the name that
    resolves to it."""
    if dataset_type not in DATASET_TYPES:
        raise ConfigError(f"unknown dataset type '{dataset_type}'", key="data.type",
                          hint="use one of: " + ", ".join(DATASET_TYPES))
    component = registry.default_for("loss", dataset_type)
    if component is None:
        raise ConfigError(f"no loss is declared the default for {dataset_type} data", key="loss.name",
                          hint="name one: loss.name (see `embedtune components loss`)")
    return component.name if registry.has("loss", component.name) else component.qualified_name


def check_loss_accepts(registry: Any, name: str, dataset_type: str, traits: LossTraits,
                       options: Mapping[str, Any] | None = None) -> None:
    """A :class:`ComponentError` when the loss does not train on ``dataset_type``, naming the
    loss declared the default for that type."""
    if traits.accepts is None or dataset_type in traits.accepts:
        return
    recommended = recommend_loss(registry, dataset_type)
    trains_on = ", ".join(traits.accepts) if traits.accepts else "no dataset type"
    label = f"loss '{name}'"
    chain = registry.chain("loss", name, options or {})
    if len(chain) > 1:
        label += f" ({chain[0].info.wraps} '{chain[1].name}')"
    raise ComponentError(
        f"{label} trains on {trains_on}, but the data is {dataset_type}; use {recommended}",
        key="loss.name",
        hint=f"drop --loss to get {recommended}, or give data of type {' / '.join(traits.accepts) or '-'}",
    )


def build_loss(registry: Any, name: str | None, model: Any, options: Mapping[str, Any] | None = None, *,
               dataset_type: str | None = None) -> Any:
    """Build loss ``name`` for ``model`` (contained, and checked to be a ``torch.nn.Module``). With
    ``dataset_type`` the loss must train on that type (``name`` None: the loss declared its
    default)."""
    if name is None:
        name = recommend_loss(registry, dataset_type)
    resolved = registry.resolve_options("loss", name, options, key="loss.options")
    if dataset_type is not None:
        check_loss_accepts(registry, name, dataset_type, loss_traits(registry, name, resolved), resolved)
    return registry.build(registry.get("loss", name), model, options=resolved)


def fit_dataset(dataset: Any, input_shape: str) -> Any:
    """Shape rows the way a loss reads them: only the training columns (a reader's extra columns,
    such as a group id, are dropped); a loss declared with ``input="triplets"`` reads exactly
    (anchor, positive, negative), so a row with several negatives becomes one triplet per
    negative."""
    from embedtune_core.data.shapes import negative_columns, training_columns

    if dataset is None:
        return dataset
    keep = training_columns(dataset.column_names)
    if keep != list(dataset.column_names):
        dataset = dataset.select_columns(keep)
    if input_shape != "triplets":
        return dataset
    columns = list(dataset.column_names)
    texts = [c for c in columns if c not in ("label", "labels", "score", "scores")]
    if len(texts) < 3:
        raise DataError(
            f"the loss needs (anchor, positive, negative) rows, but the data has {', '.join(columns)}",
            key="loss.name", hint="use a loss that trains on pairs, or give data with negatives",
        )
    negatives = negative_columns(columns[2:])
    if len(columns) <= 3 or len(negatives) < 2:
        return dataset
    from datasets import Dataset

    anchors, positives = dataset[columns[0]], dataset[columns[1]]
    out: dict[str, list] = {"anchor": [], "positive": [], "negative": []}
    for column in negatives:
        for anchor, positive, negative in zip(anchors, positives, dataset[column]):
            if negative is None or negative == "":
                continue
            out["anchor"].append(anchor)
            out["positive"].append(positive)
            out["negative"].append(negative)
    return Dataset.from_dict(out)


#: rows a loss is first computed on, before training
PROBE_ROWS = 4


def probe_rows(rows: Any, shape: str | None, negatives: int | None) -> Any:
    """A few of ``rows`` shaped as training will get them: with ``negatives`` (a miner will
    add them), other rows' positives stand in for the mined negatives (``shape`` hard-negatives:
    negative_1..n; triplets: one negative)."""
    from embedtune_core.data.columns import dataset_from_columns
    from embedtune_core.data.shapes import training_columns

    rows = rows.select(range(min(PROBE_ROWS, len(rows))))
    columns = {c: list(rows[c]) for c in training_columns(rows.column_names)}
    if negatives and "positive" in columns and len(rows) > 1:
        positives = columns["positive"]
        names = ["negative"] if shape == "triplets" else [f"negative_{i + 1}" for i in range(negatives)]
        for i, name in enumerate(names):
            shift = 1 + i % (len(positives) - 1)
            columns[name] = positives[shift:] + positives[:shift]
    return dataset_from_columns(columns)


def probe_loss(loss: Any, component: Any, model: Any, rows: Any, *, shape: str | None, negatives: int | None,
               input_shape: str = "rows") -> None:
    """Compute ``loss`` on a first batch of ``rows`` (no gradient kept, no weight changed): it must
    return one finite number. A loss that raises, or returns a vector or NaN, is one error naming
    it and its plugin, before anything is mined, evaluated or trained."""
    import torch

    from embedtune_core.plugins.calling import contained

    if rows is None or len(rows) < 2:
        return
    batch = fit_dataset(probe_rows(rows, shape, negatives), input_shape)
    labels_column = next((c for c in ("score", "label") if c in batch.column_names), None)
    device = getattr(model, "device", "cpu")
    prepare = getattr(model, "preprocess", None) or model.tokenize  # sentence-transformers 6 / 5
    features = [{k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in prepare(list(batch[c])).items()}
                for c in batch.column_names if c != labels_column]
    labels = torch.tensor(batch[labels_column], device=device) if labels_column else None
    with contained(component, "computing a first batch"), torch.no_grad():
        value = loss(features, labels)
    who = f"{component.label} from plugin '{component.plugin}'"
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        shape_of = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ComponentError(f"{who} returned {shape_of} for a batch, not a single number",
                             hint="forward(sentence_features, labels) must return a scalar tensor (the batch's loss)")
    if not torch.isfinite(value).all():
        raise ComponentError(f"{who} returned {value.item()} for a first batch of the training rows",
                             hint="check the loss (and the data for empty or broken rows) before training")
