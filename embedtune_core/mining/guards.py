"""The false-negative guards and selection options every retrieval-based miner accepts, declared
once (:class:`GuardOptions`), and the one formula of each guard (:func:`failed_guards`).

Guards, in the order they are checked (the first that fails names the reason a candidate is
dropped):

* ``known_positive``: a candidate that is a positive of the anchor (any row with the same anchor);
* ``same_text``: a candidate whose normalised text equals a positive's or the anchor's;
* ``duplicate``: a candidate whose normalised text equals a better-ranked candidate's (case or
  punctuation variants of one text are never two negatives of one anchor);
* ``absolute_margin``: kept only if ``score <= positive - absolute_margin``;
* ``relative_margin`` (NV-Retriever's TopK-PercPos): kept only if
  ``score <= positive - |positive| * relative_margin``. ``0`` keeps candidates scoring up to the
  positive; ``none`` (or ``false``) turns the guard off; ``auto`` (the default) is 0.05 where
  the scores are the model's or a cross-encoder's, and off for lexical scores with no model;
* ``positive_floor``: the margins compare against ``max(positive, floor)``. ``auto`` (the
  default) is the median positive score of the data, measured before mining: on a domain the
  model ranks poorly, many positives score low, and a candidate above such a weak positive but
  below what positives typically score is far more often the model's error (a hard negative)
  than an unlabelled positive; a candidate scoring like a typical positive is still dropped.
  Where the model ranks the positives well, few anchors fall below the median by much and the
  guard is as before. ``none`` compares with each anchor's own positive only;
* ``max_score``: kept only if ``score <= max_score``; ``min_score`` drops too-easy candidates;
* the rank window: of the candidates left, ranks ``range_min`` to ``range_max`` (0-based). With
  ``range_max`` unset, an anchor still short of negatives is searched again, four times deeper
  each time down to ``max_depth``: on a domain the model is poor at, the positive ranks low and
  the candidates below the guards' threshold lie deep;
* ``sampling``: ``top`` takes the best-ranked of the window, ``random`` a seeded sample.

The positive score is the lowest score among the anchor's positives.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import attrs

from embedtune_core.plugins.options import MODEL, OptionError, Range

#: ``relative_margin = "auto"`` where the scores are the model's cosine or a cross-encoder's
DEFAULT_RELATIVE_MARGIN = 0.05
#: drop reasons counted as likely false negatives (``known_positive``, ``duplicate`` and
#: ``min_score`` are not)
FALSE_NEGATIVE_REASONS = ("same_text", "absolute_margin", "relative_margin", "max_score")
DROP_REASONS = ("known_positive", "duplicate") + FALSE_NEGATIVE_REASONS + ("min_score",)


@attrs.frozen
class GuardOptions:
    """The options of every retrieval-based miner (see the module doc for each guard)."""

    range_min: Annotated[int, Range(ge=0), "skip this many best-ranked candidates"] = 0
    range_max: Annotated[int | None, Range(ge=1),
                         "consider candidates up to this rank (default: room for the negatives)"] = None
    absolute_margin: Annotated[float | None, Range(ge=0), "keep a negative only if score <= positive - margin"] = None
    relative_margin: Annotated[float | Literal["auto"] | None, Range(ge=0, lt=1),
                               "keep a negative only if score <= positive - |positive| * margin"] = "auto"
    positive_floor: Annotated[float | Literal["auto"] | None,
                              "margins compare against max(positive, floor); auto: the data's median positive "
                              "score; none: the anchor's own positive"] = "auto"
    max_score: Annotated[float | None, "keep a negative only if score <= max_score"] = None
    min_score: Annotated[float | None, "keep a negative only if score >= min_score"] = None
    cross_encoder: Annotated[Any, MODEL, "cross-encoder (name or folder) that rescores the candidates"] = None
    sampling: Annotated[Literal["top", "random"], "top: hardest of the window; random: a seeded sample of it"] = "top"
    short: Annotated[Literal["fill", "drop"], "anchors with fewer negatives than asked: fill with random corpus "
                                              "texts that pass the guards, or drop their rows"] = "fill"
    guard_scores: Annotated[Literal["auto", "retrieval", "encoder"],
                            "scores the margins compare: the retrieval's, or the model's cosine"] = "auto"
    batch_size: Annotated[int, Range(ge=1), "queries processed together"] = 1024
    max_depth: Annotated[int, Range(ge=1), "with range_max unset, anchors short of negatives are searched again, "
                                           "four times deeper each time, down to this rank"] = 1000

    def __attrs_post_init__(self) -> None:
        if self.range_max is not None and self.range_max <= self.range_min:
            raise OptionError(f"range_max ({self.range_max}) must be greater than range_min ({self.range_min})",
                              option="range_max")
        if self.cross_encoder is not None and not isinstance(self.cross_encoder, str) \
                and not hasattr(self.cross_encoder, "predict"):
            raise OptionError(f"cross_encoder must be a model name or folder, got {self.cross_encoder!r}",
                              option="cross_encoder")

    @property
    def margins(self) -> bool:
        return self.absolute_margin is not None or self.relative_margin is not None or self.max_score is not None

    def with_relative_margin(self, comparable: bool) -> "GuardOptions":
        """These options with ``relative_margin = "auto"`` decided: the default margin where the
        scores are a model's (``comparable``), off otherwise."""
        if self.relative_margin != "auto":
            return self
        return attrs.evolve(self, relative_margin=DEFAULT_RELATIVE_MARGIN if comparable else None)


def guard_positives(positive: Any, floor: float | Literal["auto"] | None) -> tuple[Any, float | None]:
    """The positive scores the margins compare against, and the floor used (see
    ``positive_floor``): ``auto`` is the median of the finite ``positive`` scores."""
    import numpy as np

    if floor == "auto":
        finite = positive[np.isfinite(positive)]
        floor = float(np.median(finite)) if len(finite) else None
    if floor is None:
        return positive, None
    return np.where(np.isfinite(positive), np.maximum(positive, floor), positive).astype(positive.dtype), floor


def failed_guards(values: Any, positive: Any, guards: GuardOptions, *, easy: bool = True) -> list[tuple[str, Any]]:
    """``[(reason, mask), ...]``: which of ``values`` each score guard drops, given the anchors'
    ``positive`` scores (broadcast against ``values``). ``easy=False`` leaves ``min_score`` out
    (random fill-ins are easy by design). ``relative_margin`` must be decided (not ``auto``)."""
    import numpy as np

    checks = []
    if guards.absolute_margin is not None:
        checks.append(("absolute_margin", values + guards.absolute_margin > positive))
    if guards.relative_margin is not None:
        checks.append(("relative_margin", values > positive - np.abs(positive) * guards.relative_margin))
    if guards.max_score is not None:
        checks.append(("max_score", values > guards.max_score))
    if easy and guards.min_score is not None:
        checks.append(("min_score", values < guards.min_score))
    return checks
