"""Built-in losses: sentence-transformers' own loss classes, configured from plain option values.

Options come from config files and ``-s key=value`` as strings and numbers; each factory turns
them into the objects the loss class wants and names the allowed values when one is wrong.

=============  ==========================================  ==========================================
name           sentence-transformers class                 trains on
=============  ==========================================  ==========================================
mnrl           MultipleNegativesRankingLoss                pairs, triplets, nli, ir, hard-negatives
cached-mnrl    CachedMultipleNegativesRankingLoss          pairs, triplets, nli, ir, hard-negatives
cosent         CoSENTLoss                                  sts
triplet        TripletLoss                                 triplets, nli, hard-negatives
matryoshka     MatryoshkaLoss around any loss by name      whatever its base loss trains on
=============  ==========================================  ==========================================
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from embedtune_core import hookimpl
from embedtune_core.errors import ComponentError, closest
from embedtune_core.training.trainer import st_losses
from embedtune_core.types import DATASET_TYPES

IN_BATCH_TYPES = ("pairs", "triplets", "nli", "ir", "hard-negatives")
SIMILARITIES = ("cosine", "dot")
TRIPLET_DISTANCES = ("cosine", "euclidean", "manhattan")
#: TripletLoss margins by distance: sentence-transformers' default (5) for the unbounded distances,
#: 0.5 for cosine distance, which lies in [0, 2].
TRIPLET_MARGINS = {"euclidean": 5.0, "manhattan": 5.0, "cosine": 0.5}


# -- option values ------------------------------------------------------------------------------
def _where(loss: str, option: str) -> str:
    return f"loss '{loss}' option '{option}'"


def number(loss: str, option: str, value: Any, *, positive: bool = False, minimum: float | None = None) -> float:
    """``value`` (a number or a numeric string) as a finite float."""
    try:
        result = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        result = math.nan
    if not math.isfinite(result):
        raise ComponentError(f"{_where(loss, option)} must be a number, got {value!r}", key=f"loss.options.{option}")
    if positive and result <= 0:
        raise ComponentError(f"{_where(loss, option)} must be greater than 0, got {value!r}", key=f"loss.options.{option}")
    if minimum is not None and result < minimum:
        raise ComponentError(f"{_where(loss, option)} must be at least {minimum}, got {value!r}", key=f"loss.options.{option}")
    return result


def integer(loss: str, option: str, value: Any, *, minimum: int = 1) -> int:
    """``value`` (an int, a whole float or a numeric string) as an int >= ``minimum``."""
    result: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        result = value
    elif isinstance(value, float) and value.is_integer():
        result = int(value)
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        result = int(value.strip())
    if result is None:
        raise ComponentError(f"{_where(loss, option)} must be a whole number, got {value!r}", key=f"loss.options.{option}")
    if result < minimum:
        raise ComponentError(f"{_where(loss, option)} must be at least {minimum}, got {value!r}", key=f"loss.options.{option}")
    return result


def choice(loss: str, option: str, value: Any, allowed: Iterable[str]) -> str:
    """``value`` as one of ``allowed`` (case-insensitive)."""
    allowed = tuple(allowed)
    text = str(value).strip().lower() if isinstance(value, str) else None
    if text not in allowed:
        guess = closest(str(value), list(allowed))
        raise ComponentError(
            f"{_where(loss, option)} is {value!r}",
            key=f"loss.options.{option}",
            hint=(f"did you mean '{guess}'? " if guess else "") + "allowed: " + ", ".join(allowed),
        )
    return text


def boolean(loss: str, option: str, value: Any) -> bool:
    from embedtune_core.config.schema import parse_flag

    try:
        return parse_flag(value)
    except ValueError:
        pass
    raise ComponentError(f"{_where(loss, option)} must be true or false, got {value!r}", key=f"loss.options.{option}")


def int_list(loss: str, option: str, value: Any) -> list[int]:
    """A list of whole numbers from a list, a single number or a string like ``"384,256"``."""
    items = _as_list(value)
    if not items:
        raise ComponentError(f"{_where(loss, option)} must list at least one value", key=f"loss.options.{option}")
    return [integer(loss, option, item) for item in items]


def float_list(loss: str, option: str, value: Any) -> list[float]:
    items = _as_list(value)
    return [number(loss, option, item, minimum=0.0) for item in items]


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        text = value.strip().strip("[]()")
        return [part.strip() for part in text.replace(";", ",").replace("/", ",").split(",") if part.strip()]
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def similarity_function(loss: str, value: Any, *, pairwise: bool = False) -> Any:
    from sentence_transformers import util

    name = choice(loss, "similarity", value, SIMILARITIES)
    if pairwise:
        return util.pairwise_cos_sim if name == "cosine" else util.pairwise_dot_score
    return util.cos_sim if name == "cosine" else util.dot_score


# -- factories ----------------------------------------------------------------------------------
def mnrl(model: Any, scale: Any = 20.0, similarity: str = "cosine", gather_across_devices: Any = False) -> Any:
    """MultipleNegativesRankingLoss: in-batch negatives (plus any hard negatives in the row)."""
    return st_losses().MultipleNegativesRankingLoss(
        model,
        scale=number("mnrl", "scale", scale, positive=True),
        similarity_fct=similarity_function("mnrl", similarity),
        gather_across_devices=boolean("mnrl", "gather_across_devices", gather_across_devices),
    )


def cached_mnrl(
    model: Any,
    mini_batch_size: Any = 32,
    scale: Any = 20.0,
    similarity: str = "cosine",
    gather_across_devices: Any = False,
) -> Any:
    """CachedMultipleNegativesRankingLoss: MNRL with batches of thousands in constant memory."""
    return st_losses().CachedMultipleNegativesRankingLoss(
        model,
        scale=number("cached-mnrl", "scale", scale, positive=True),
        similarity_fct=similarity_function("cached-mnrl", similarity),
        mini_batch_size=integer("cached-mnrl", "mini_batch_size", mini_batch_size),
        gather_across_devices=boolean("cached-mnrl", "gather_across_devices", gather_across_devices),
    )


def cosent(model: Any, scale: Any = 20.0) -> Any:
    """CoSENTLoss: learns the order of human similarity scores (STS)."""
    return st_losses().CoSENTLoss(model, scale=number("cosent", "scale", scale, positive=True))


def triplet(model: Any, margin: Any = None, distance: str = "euclidean") -> Any:
    """TripletLoss: the negative at least `margin` further from the anchor than the positive."""
    losses = st_losses()
    name = choice("triplet", "distance", distance, TRIPLET_DISTANCES)
    metric = {
        "cosine": losses.TripletDistanceMetric.COSINE,
        "euclidean": losses.TripletDistanceMetric.EUCLIDEAN,
        "manhattan": losses.TripletDistanceMetric.MANHATTAN,
    }[name]
    value = TRIPLET_MARGINS[name] if margin is None else number("triplet", "margin", margin, minimum=0.0)
    return losses.TripletLoss(model, distance_metric=metric, triplet_margin=value)


def default_matryoshka_dims(full: int) -> list[int]:
    """The full size, then every power of two below it down to 64 (down to a quarter of the full
    size for models narrower than 256): 384 -> [384, 256, 128, 64], 768 -> [768, 512, 256, 128,
    64], 32 -> [32, 16, 8]."""
    floor = max(1, min(64, full // 4))
    dims = [full]
    power = 1 << (full.bit_length() - 1)
    if power == full:
        power //= 2
    while power >= floor:
        dims.append(power)
        power //= 2
    return dims


def _matryoshka_settings(
    registry: Any, base: Any, base_options: Any, dims: Any, weights: Any, n_dims_per_step: Any
) -> tuple[Any, dict, list[int] | None, list[float] | None, int]:
    """The checked options of ``matryoshka``: (base component, base options, dims or None for
    the default, weights or None, dims per step). The base loss's options are checked too."""
    if registry is None:
        raise ComponentError("loss 'matryoshka' needs the component registry to build its base loss")
    if not isinstance(base, str) or not base.strip():
        raise ComponentError(f"{_where('matryoshka', 'base')} must name a loss, got {base!r}", key="loss.options.base")
    try:
        base_component = registry.get("loss", base.strip())
    except ComponentError as exc:
        raise ComponentError(exc.message, key="loss.options.base", hint=exc.hint) from None
    if base_component.meta.get("wraps"):
        raise ComponentError(
            f"loss 'matryoshka' cannot wrap '{base}', which wraps a loss itself",
            key="loss.options.base",
            hint="use a plain loss such as mnrl, cached-mnrl, cosent or triplet",
        )
    if base_options is None:
        base_options = {}
    if not isinstance(base_options, dict):
        raise ComponentError(
            f"{_where('matryoshka', 'base_options')} must be a table, got {base_options!r}",
            key="loss.options.base_options",
            hint="e.g. base_options = {scale = 20}",
        )
    registry.check_options("loss", base_component.qualified_name, base_options, positional=1,
                           key="loss.options.base_options")
    dim_list = None if dims is None else int_list("matryoshka", "dims", dims)
    if dim_list is not None and len(set(dim_list)) != len(dim_list):
        raise ComponentError(f"{_where('matryoshka', 'dims')} lists a size twice: {dim_list}", key="loss.options.dims")
    weight_list = None
    if weights is not None:
        weight_list = float_list("matryoshka", "weights", weights)
        if dim_list is not None and len(weight_list) != len(dim_list):
            raise ComponentError(
                f"{_where('matryoshka', 'weights')} has {len(weight_list)} values for {len(dim_list)} dims",
                key="loss.options.weights",
                hint="give one weight per dim, in the same order",
            )
    steps = integer("matryoshka", "n_dims_per_step", n_dims_per_step, minimum=-1)
    if steps == 0:
        raise ComponentError(f"{_where('matryoshka', 'n_dims_per_step')} must be -1 (all) or at least 1", key="loss.options.n_dims_per_step")
    return base_component, base_options, dim_list, weight_list, steps


def matryoshka(
    model: Any,
    base: str = "mnrl",
    base_options: Any = None,
    dims: Any = None,
    weights: Any = None,
    n_dims_per_step: Any = -1,
    *,
    registry: Any = None,
) -> Any:
    """MatryoshkaLoss: trains a base loss at several truncated sizes of the embedding."""
    from embedtune_core.embedding.models import embedding_dim

    base_component, base_options, dim_list, weight_list, steps = _matryoshka_settings(
        registry, base, base_options, dims, weights, n_dims_per_step
    )
    base_loss = registry.create("loss", base_component.qualified_name, model, **base_options)
    full = embedding_dim(model)
    if dim_list is None:
        dim_list = default_matryoshka_dims(full)
    too_big = [d for d in dim_list if d > full]
    if too_big:
        raise ComponentError(
            f"{_where('matryoshka', 'dims')}: {too_big} exceed the model's embedding size {full}",
            key="loss.options.dims",
            hint=f"use sizes up to {full}, e.g. {default_matryoshka_dims(full)}",
        )
    if weight_list is not None and len(weight_list) != len(dim_list):
        raise ComponentError(
            f"{_where('matryoshka', 'weights')} has {len(weight_list)} values for {len(dim_list)} dims",
            key="loss.options.weights",
            hint="give one weight per dim, in the same order",
        )
    return st_losses().MatryoshkaLoss(
        model, base_loss, matryoshka_dims=dim_list, matryoshka_weights=weight_list, n_dims_per_step=steps
    )


# -- option checks without a model (run before anything is loaded) -------------------------------
def check_mnrl(scale: Any = 20.0, similarity: str = "cosine", gather_across_devices: Any = False) -> None:
    number("mnrl", "scale", scale, positive=True)
    choice("mnrl", "similarity", similarity, SIMILARITIES)
    boolean("mnrl", "gather_across_devices", gather_across_devices)


def check_cached_mnrl(mini_batch_size: Any = 32, scale: Any = 20.0, similarity: str = "cosine",
                      gather_across_devices: Any = False) -> None:
    number("cached-mnrl", "scale", scale, positive=True)
    choice("cached-mnrl", "similarity", similarity, SIMILARITIES)
    integer("cached-mnrl", "mini_batch_size", mini_batch_size)
    boolean("cached-mnrl", "gather_across_devices", gather_across_devices)


def check_cosent(scale: Any = 20.0) -> None:
    number("cosent", "scale", scale, positive=True)


def check_triplet(margin: Any = None, distance: str = "euclidean") -> None:
    choice("triplet", "distance", distance, TRIPLET_DISTANCES)
    if margin is not None:
        number("triplet", "margin", margin, minimum=0.0)


def check_matryoshka(base: Any = "mnrl", base_options: Any = None, dims: Any = None, weights: Any = None,
                     n_dims_per_step: Any = -1, *, registry: Any = None) -> None:
    _matryoshka_settings(registry, base, base_options, dims, weights, n_dims_per_step)


@hookimpl
def register_losses(register):
    register("mnrl", mnrl, accepts=IN_BATCH_TYPES, in_batch_negatives=True, check=check_mnrl)
    register("cached-mnrl", cached_mnrl, accepts=IN_BATCH_TYPES, in_batch_negatives=True, check=check_cached_mnrl)
    register("cosent", cosent, accepts=("sts",), check=check_cosent)
    register("triplet", triplet, accepts=("triplets", "nli", "hard-negatives"), check=check_triplet)
    register("matryoshka", matryoshka, accepts=tuple(DATASET_TYPES), wraps="base", check=check_matryoshka)
