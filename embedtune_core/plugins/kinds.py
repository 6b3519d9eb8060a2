"""The component kinds, each described once: its hook, its metadata, the arguments its factory
takes before the options, and the contract of what the factory returns.

Everything the core does with a kind (registering, listing, resolving options, building,
checking what was built) reads the :class:`Kind` here, so a kind is added in one place.
"""

from __future__ import annotations

from typing import Any, Callable

import attrs

from embedtune_core.errors import ComponentError, closest
from embedtune_core.plugins import metadata


def _has_method(name: str) -> Callable[[Any], str | None]:
    def check(built: Any) -> str | None:
        if isinstance(built, type):
            return f"built {_what(built)}"
        if callable(getattr(built, name, None)):
            return None
        return f"built {_what(built)}, which has no {name}() method"

    return check


def _what(value: Any) -> str:
    if isinstance(value, type):
        return f"the class {value.__name__} (not an instance)"
    return f"a {type(value).__name__}"


def _bundle(built: Any) -> str | None:
    from embedtune_core.types import DataBundle

    return None if isinstance(built, DataBundle) else f"returned {_what(built)}, not an embedtune_core.types.DataBundle"


def _loss(built: Any) -> str | None:
    import torch

    if isinstance(built, torch.nn.Module):
        return None
    return f"built {_what(built)}, not a torch.nn.Module with the sentence-transformers loss call signature"


def _callback(built: Any) -> str | None:
    from transformers import TrainerCallback

    return None if isinstance(built, TrainerCallback) else f"built {_what(built)}, not a transformers.TrainerCallback"


def _instance_of_callback_class(built: Any) -> Any:
    """A factory that returns a ``TrainerCallback`` subclass gets it instantiated."""
    from transformers import TrainerCallback

    return built() if isinstance(built, type) and issubclass(built, TrainerCallback) else built


@attrs.frozen
class Kind:
    """One component kind.

    ``leading`` names the arguments the core passes to a factory before its options (a loss's
    model, a reader's source); ``check`` tells what is wrong with what a factory built (None when
    it keeps the kind's contract); ``adapt`` turns a forgivable result into the right one."""

    name: str
    label: str
    hook: str
    info: type
    leading: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    returns: str = ""
    check: Callable[[Any], str | None] | None = None
    adapt: Callable[[Any], Any] | None = None


KINDS: dict[str, Kind] = {kind.name: kind for kind in (
    Kind("dataset_reader", "dataset reader", "register_dataset_readers", metadata.ReaderInfo, leading=("source",),
         aliases=("reader", "readers", "dataset-reader", "dataset-readers", "dataset_readers"),
         returns="a DataBundle", check=_bundle),
    Kind("negative_miner", "negative miner", "register_negative_miners", metadata.MinerInfo,
         aliases=("miner", "miners", "negative-miner", "negative-miners", "negative_miners"),
         returns="an object with mine(request)", check=_has_method("mine")),
    Kind("loss", "loss", "register_losses", metadata.LossInfo, leading=("model",), aliases=("losses",),
         returns="a torch.nn.Module", check=_loss),
    Kind("metric", "metric", "register_metrics", metadata.MetricInfo, aliases=("metrics",),
         returns="an object with compute(ranked, k)", check=_has_method("compute")),
    Kind("callback", "callback", "register_callbacks", metadata.CallbackInfo, aliases=("callbacks",),
         returns="a transformers.TrainerCallback", check=_callback, adapt=_instance_of_callback_class),
    Kind("step", "step", "register_pipeline_steps", metadata.StepInfo,
         aliases=("steps", "pipeline_step", "pipeline-step", "pipeline_steps", "pipeline-steps"),
         returns="an object with run(context)", check=_has_method("run")),
    Kind("exporter", "exporter", "register_exporters", metadata.ExporterInfo, aliases=("exporters",),
         returns="an object with export(request)", check=_has_method("export")),
)}


def kind_named(name: str) -> Kind:
    """The kind ``name`` (or one of its aliases, any case); a clear error otherwise."""
    key = str(name).strip().lower()
    for kind in KINDS.values():
        if key == kind.name or key in kind.aliases:
            return kind
    names = list(KINDS) + [a for k in KINDS.values() for a in k.aliases]
    guess = closest(key, names)
    raise ComponentError(f"unknown component kind '{key}'",
                         hint=f"use one of: {', '.join(KINDS)}" + (f" (did you mean '{guess}'?)" if guess else ""))


def describe_metadata() -> dict[str, list[tuple[str, str, Any]]]:
    """``{kind: [(key, help, default), ...]}`` for the hook reference."""
    from embedtune_core.plugins.options import class_specs

    return {name: [(s.name, s.help, s.default) for s in class_specs(kind.info).values()]
            for name, kind in KINDS.items()}
