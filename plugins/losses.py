"""Built-in losses: sentence-transformers' own loss classes, configured from plain option values.

Each factory's signature is the declaration of its options (types, defaults, bounds): the core
checks config values against it before any model is loaded, and the same values reach the loss.

=============  ==========================================  ==========================================
name           sentence-transformers class                 trains on
=============  ==========================================  ==========================================
mnrl           MultipleNegativesRankingLoss                pairs, triplets, nli, ir, hard-negatives
cached-mnrl    CachedMultipleNegativesRankingLoss          pairs, triplets, nli, ir, hard-negatives
cosent         CoSENTLoss                                  sts
triplet        TripletLoss                                 triplets, nli, hard-negatives
matryoshka     MatryoshkaLoss around any loss by name      whatever its base loss trains on
gist           GISTEmbedLoss (a guide masks in-batch       pairs, triplets, nli, ir, hard-negatives
               false negatives; the base model by default)
=============  ==========================================  ==========================================
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import attrs

from embedtune_core import hookimpl
from embedtune_core.errors import ComponentError
from embedtune_core.plugins.options import MODEL, OptionError, Range

IN_BATCH_TYPES = ("pairs", "triplets", "nli", "ir", "hard-negatives")
Similarity = Literal["cosine", "dot"]
#: TripletLoss margins by distance: sentence-transformers' default (5) for the unbounded distances,
#: 0.5 for cosine distance, which lies in [0, 2].
TRIPLET_MARGINS = {"euclidean": 5.0, "manhattan": 5.0, "cosine": 0.5}
Scale = Annotated[float, Range(gt=0), "similarities are multiplied by this before the softmax"]
Gather = Annotated[bool, "under DDP, use every device's batch as negatives"]
Direction = Literal["query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc"]
Directions = Annotated[list[Direction], "similarity terms of the softmax: query_to_doc (always), query_to_query, "
                                        "doc_to_query (the symmetric term), doc_to_doc"]
PartitionMode = Annotated[Literal["joint", "per_direction"],
                          "one softmax over every direction, or one per direction averaged (only with query_to_doc "
                          "and doc_to_query)"]
HardnessMode = Annotated[Literal["in_batch_negatives", "hard_negatives", "all_negatives"] | None,
                         "add hardness_strength x similarity to these negatives' logits (none: off)"]
HardnessStrength = Annotated[float, Range(ge=0), "weight of the hardness term"]


def st_losses() -> Any:
    """sentence-transformers' losses module (it moved in sentence-transformers 6)."""
    try:
        from sentence_transformers.sentence_transformer import losses
    except ImportError:  # sentence-transformers 5
        from sentence_transformers import losses
    return losses


def _similarity(name: str) -> Any:
    from sentence_transformers import util

    return util.cos_sim if name == "cosine" else util.dot_score


def _directions(directions: Any, partition_mode: str) -> tuple[str, ...]:
    """The checked ``directions`` of an MNRL loss (sentence-transformers' own rules, as option errors)."""
    directions = tuple(dict.fromkeys(directions))
    if "query_to_doc" not in directions:
        raise ComponentError(f"loss option 'directions' {list(directions)} must include query_to_doc (it holds the "
                             "positive pair)", key="loss.options", hint='e.g. directions = ["query_to_doc", "doc_to_query"]')
    if partition_mode == "per_direction" and set(directions) & {"query_to_query", "doc_to_doc"}:
        raise ComponentError("loss option 'partition_mode' per_direction works only with the directions query_to_doc "
                             "and doc_to_query", key="loss.options", hint="use partition_mode = joint")
    return directions


def mnrl(model: Any, scale: Scale = 20.0, similarity: Similarity = "cosine", gather_across_devices: Gather = False,
         directions: Directions = ("query_to_doc",), partition_mode: PartitionMode = "joint",
         hardness_mode: HardnessMode = None, hardness_strength: HardnessStrength = 0.0) -> Any:
    """MultipleNegativesRankingLoss: in-batch negatives (plus any hard negatives in the row)."""
    return st_losses().MultipleNegativesRankingLoss(
        model, scale=scale, similarity_fct=_similarity(similarity), gather_across_devices=gather_across_devices,
        directions=_directions(directions, partition_mode), partition_mode=partition_mode,
        hardness_mode=hardness_mode, hardness_strength=hardness_strength,
    )


def cached_mnrl(
    model: Any,
    mini_batch_size: Annotated[int, Range(ge=1), "texts encoded at once; memory follows it, not the batch"] = 32,
    scale: Scale = 20.0,
    similarity: Similarity = "cosine",
    gather_across_devices: Gather = False,
    directions: Directions = ("query_to_doc",),
    partition_mode: PartitionMode = "joint",
    hardness_mode: HardnessMode = None,
    hardness_strength: HardnessStrength = 0.0,
) -> Any:
    """CachedMultipleNegativesRankingLoss: MNRL with batches of thousands in constant memory."""
    return st_losses().CachedMultipleNegativesRankingLoss(
        model, scale=scale, similarity_fct=_similarity(similarity), mini_batch_size=mini_batch_size,
        gather_across_devices=gather_across_devices, directions=_directions(directions, partition_mode),
        partition_mode=partition_mode, hardness_mode=hardness_mode, hardness_strength=hardness_strength,
    )


def cosent(model: Any, scale: Scale = 20.0) -> Any:
    """CoSENTLoss: learns the order of human similarity scores (STS)."""
    return st_losses().CoSENTLoss(model, scale=scale)


def triplet(
    model: Any,
    margin: Annotated[float | None, Range(ge=0), "how much further the negative must be (default by distance)"] = None,
    distance: Literal["cosine", "euclidean", "manhattan"] = "euclidean",
) -> Any:
    """TripletLoss: the negative at least `margin` further from the anchor than the positive."""
    losses = st_losses()
    metric = {
        "cosine": losses.TripletDistanceMetric.COSINE,
        "euclidean": losses.TripletDistanceMetric.EUCLIDEAN,
        "manhattan": losses.TripletDistanceMetric.MANHATTAN,
    }[distance]
    return losses.TripletLoss(model, distance_metric=metric,
                              triplet_margin=TRIPLET_MARGINS[distance] if margin is None else margin)


def gist(
    model: Any,
    guide: Annotated[str | None, MODEL, "the guide model (default: a frozen copy of the model before training)"] = None,
    temperature: Annotated[float, Range(gt=0), "softmax temperature (1/scale)"] = 0.05,
    margin_strategy: Annotated[Literal["absolute", "relative"], "how the margin below the positive is applied"] = "absolute",
    margin: Annotated[float, Range(ge=0), "mask candidates the guide scores above the positive minus this"] = 0.0,
    gather_across_devices: Gather = False,
) -> Any:
    """GISTEmbedLoss: in-batch negatives, with candidates the guide scores above the positive masked."""
    import copy

    if guide is None:
        guide_model = copy.deepcopy(model)
    else:
        from embedtune_core.embedding.models import load_model

        guide_model = load_model(guide, device=str(model.device))
    guide_model.eval()
    for parameter in guide_model.parameters():
        parameter.requires_grad_(False)
    return st_losses().GISTEmbedLoss(model, guide_model, temperature=temperature, margin_strategy=margin_strategy,
                                     margin=margin, gather_across_devices=gather_across_devices)


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


@attrs.frozen
class MatryoshkaOptions:
    """The options of ``matryoshka``; the base loss's own options go in ``base_options``."""

    base: Annotated[str, "the loss trained at every size"] = "mnrl"
    base_options: Annotated[dict, "options of the base loss"] = attrs.field(factory=dict)
    dims: Annotated[list[Annotated[int, Range(ge=1)]] | None,
                    "embedding sizes, largest first (default: the full size and powers of two down to 64)"] = None
    weights: Annotated[list[Annotated[float, Range(ge=0)]] | None, "one weight per dim (default: all 1)"] = None
    n_dims_per_step: Annotated[int, "dims trained per step, chosen at random (-1: all)"] = -1

    def __attrs_post_init__(self) -> None:
        if self.dims is not None and not self.dims:
            raise OptionError("dims must list at least one size", option="dims")
        if self.dims is not None and len(set(self.dims)) != len(self.dims):
            raise OptionError(f"dims lists a size twice: {self.dims}", option="dims")
        if self.dims is not None and self.weights is not None and len(self.weights) != len(self.dims):
            raise OptionError(f"weights has {len(self.weights)} values for {len(self.dims)} dims", option="weights",
                              hint="give one weight per dim, in the same order")
        if self.n_dims_per_step == 0 or self.n_dims_per_step < -1:
            raise OptionError("n_dims_per_step must be -1 (all) or at least 1", option="n_dims_per_step")


def matryoshka(model: Any, options: MatryoshkaOptions, *, registry: Any) -> Any:
    """MatryoshkaLoss: trains a base loss at several truncated sizes of the embedding."""
    from embedtune_core.embedding.models import embedding_dim

    # base_options were resolved with the wrapper's (metadata wraps="base")
    base_loss = registry.build(registry.get("loss", options.base), model, options=options.base_options)
    full = embedding_dim(model)
    dims = list(options.dims) if options.dims is not None else default_matryoshka_dims(full)
    too_big = [d for d in dims if d > full]
    if too_big:
        raise ComponentError(
            f"loss 'matryoshka' option 'dims': {too_big} exceed the model's embedding size {full}",
            key="loss.options.dims",
            hint=f"use sizes up to {full}, e.g. {default_matryoshka_dims(full)}",
        )
    weights = options.weights
    if weights is not None and len(weights) != len(dims):  # default dims, chosen for this model
        raise ComponentError(f"loss 'matryoshka' option 'weights' has {len(weights)} values for the {len(dims)} "
                             f"default dims {dims}", key="loss.options.weights",
                             hint="give one weight per dim, and the dims too")
    return st_losses().MatryoshkaLoss(model, base_loss, matryoshka_dims=dims, matryoshka_weights=weights,
                                      n_dims_per_step=options.n_dims_per_step)


@hookimpl
def register_losses(register):
    register("mnrl", mnrl, accepts=IN_BATCH_TYPES, default_for=IN_BATCH_TYPES, in_batch_negatives=True)
    register("cached-mnrl", cached_mnrl, accepts=IN_BATCH_TYPES, in_batch_negatives=True, constant_memory=True)
    register("cosent", cosent, accepts=("sts",), default_for=("sts",))
    register("triplet", triplet, accepts=("triplets", "nli", "hard-negatives"), input="triplets")
    register("matryoshka", matryoshka, wraps="base")
    register("gist", gist, accepts=IN_BATCH_TYPES, in_batch_negatives=True)
