"""Miner base classes and running a registered miner.

A retrieval-based miner subclasses :class:`RetrievalMiner` and implements :meth:`~RetrievalMiner.source`
(a :class:`~embedtune_core.mining.sources.CandidateSource`); a miner whose candidates come in
tiers of a domain's own making subclasses :class:`TieredMiner` and implements
:meth:`~TieredMiner.tiers`. Either way the false-negative guards, the selection, the random
fill-ins and the output are the toolkit's, with one set of option names (:class:`GuardOptions`).
"""

from __future__ import annotations

import abc
from typing import Any, Callable, Mapping, Sequence

from embedtune_core.errors import ComponentError, ConfigError
from embedtune_core.mining.guards import GuardOptions
from embedtune_core.mining.output import build_result, expected_columns
from embedtune_core.mining.pairs import PairData, prepare_pairs
from embedtune_core.mining.selection import Selection, select_negatives
from embedtune_core.mining.sources import CandidateSource, EmbeddingCache, TieredSource
from embedtune_core.types import MiningRequest, MiningResult, MiningStats

OUTPUTS = ("hard-negatives", "triplets")


class RetrievalMiner(abc.ABC):
    """Base of the retrieval-based miners.

    Subclass it, set ``name`` and implement :meth:`source`. Its options are the guards'
    (:class:`GuardOptions`, an option set: every guard option is accepted); a miner with options
    of its own declares them in a subclass of :class:`GuardOptions` and annotates its
    ``__init__``'s one parameter with it::

        @attrs.frozen
        class MyOptions(GuardOptions):
            window: int = 5

        class MyMiner(RetrievalMiner):
            def __init__(self, options: MyOptions) -> None:
                super().__init__(options)

    ``self.options`` is that option set, built and checked once by the registry."""

    name = "retrieval"

    def __init__(self, options: GuardOptions) -> None:
        self.options = options

    @abc.abstractmethod
    def source(self, data: PairData, request: MiningRequest) -> CandidateSource:
        """The candidate source for this request."""

    def describe(self, data: PairData, source: CandidateSource, selection: Selection, stats: MiningStats) -> None:
        """Add what this miner knows about its choices to ``stats.extra`` (nothing by default)."""

    def mine(self, request: MiningRequest) -> MiningResult:
        check_request(request)
        data = prepare_pairs(request)
        stats = MiningStats()
        source = self.source(data, request)
        selection = select_negatives(data, source, self.options, request, stats, device=request.device)
        self.describe(data, source, selection, stats)
        del source  # the candidate index (a large one on a large corpus) is freed before the output is built
        return build_result(data, selection, request, stats)


class TieredMiner(RetrievalMiner):
    """A miner that proposes candidates in tiers (sibling terms, then cousins...): implement
    :meth:`tiers`. Inside a tier candidates are ranked by the model's cosine to the anchor when
    the request brings a model (unless ``guard_scores = "retrieval"``); every proposed candidate
    is considered before random fill-ins. ``stats.extra["picked_by"]`` counts the negatives
    written from each tier (``random`` for fill-ins)."""

    name = "tiered"

    @abc.abstractmethod
    def tiers(self, data: PairData, request: MiningRequest) -> Callable[[int], Sequence[tuple[str, Sequence[int]]]]:
        """``tiers_of(query_id) -> [(tier name, [corpus ids, best first]), ...]`` over
        ``data.corpus``; :meth:`TieredSource.from_rows` builds one from a function of an
        (anchor, positive) pair."""

    def source(self, data: PairData, request: MiningRequest) -> CandidateSource:
        scorer = None
        if request.encoder is not None and self.options.guard_scores != "retrieval":
            scorer = EmbeddingCache(request.encoder, data).pair_scores
        return TieredSource(data, self.tiers(data, request), scorer=scorer)

    def describe(self, data: PairData, source: CandidateSource, selection: Selection, stats: MiningStats) -> None:
        import numpy as np

        picked: dict[str, int] = {}
        filled = selection.filled
        rows_of = np.bincount(data.row_query, minlength=len(data.queries))  # negatives are written per row
        for q, row in enumerate(selection.negatives.tolist()):
            for slot, d in enumerate(row):
                if d < 0:
                    continue
                tier = "random" if filled is not None and filled[q, slot] else source.tier_of(q, d) or "other"
                picked[tier] = picked.get(tier, 0) + int(rows_of[q])
        stats.extra["picked_by"] = picked
        stats.extra["pool_size"] = len(data.corpus)


def check_request(request: MiningRequest) -> None:
    """Clear errors for a request no miner can serve."""
    if not isinstance(request.num_negatives, int) or isinstance(request.num_negatives, bool) or request.num_negatives < 1:
        raise ConfigError(f"num_negatives must be a positive integer, got {request.num_negatives!r}", key="mining.num_negatives")
    if request.output not in OUTPUTS:
        raise ConfigError(f"output must be one of {', '.join(OUTPUTS)}, got {request.output!r}", key="mining.output")


def run_miner(
    registry: Any,
    name: str,
    dataset: Any,
    dataset_type: str,
    *,
    num_negatives: int,
    options: Mapping[str, Any] | None = None,
    encoder: Any = None,
    corpus: list[str] | None = None,
    categories: list[Any] | None = None,
    output: str = "hard-negatives",
    seed: int = 42,
    device: str | None = None,
    columns: Mapping[str, Any] | None = None,
) -> MiningResult:
    """Build the miner ``name`` with ``options``, mine ``dataset`` and check what it returns.

    ``columns`` names the extra columns of ``dataset`` the request carries (by default every
    column of ``dataset`` that is not a training column: a group id...), in
    ``request.columns``. The miner's code runs contained (what it raises names it and its
    plugin). The result's dataset has the columns anchor, positive, negative_1..n
    (``hard-negatives``) or anchor, positive, negative (``triplets``), ready for training; a miner
    that returns anything else is a :class:`ComponentError` naming it.
    """
    from embedtune_core.plugins.calling import contained

    extras = _extra_columns(dataset) if columns is None else dict(columns)
    request = MiningRequest(dataset=dataset, dataset_type=dataset_type, num_negatives=num_negatives, corpus=corpus,
                            encoder=encoder, categories=categories, output=output, seed=seed, device=device,
                            columns=extras)
    check_request(request)
    component = registry.get("negative_miner", name)
    miner = registry.build(component, options=registry.resolve_options("negative_miner", name, options,
                                                                        key="mining.options"))
    with contained(component, "mining"):
        result = miner.mine(request)
    if not isinstance(result, MiningResult) or not isinstance(result.stats, MiningStats):
        raise ComponentError(f"{component.label} from plugin '{component.plugin}' returned {type(result).__name__}, "
                             "not a MiningResult with MiningStats")
    found = list(getattr(result.dataset, "column_names", []) or [])
    wanted = expected_columns(request.output, request.num_negatives)
    if found != wanted:
        raise ComponentError(
            f"{component.label} from plugin '{component.plugin}' returned columns {', '.join(found) or 'none'}",
            hint=f"a {request.output} result has columns {', '.join(wanted)}",
        )
    _check_output(result, request.output, component)
    return result


def _check_output(result: MiningResult, output: str, component: Any) -> None:
    """The mined rows follow the rules a hard-negatives file does (texts, no negative equal to
    its anchor or positive) and the statistics are counts."""
    from embedtune_core.data.contract import rows_problem

    problem = rows_problem(result.dataset, output)
    stats = result.stats
    counts = ("queries", "candidates_seen", "dropped_false_negatives", "negatives_written", "queries_short",
              "negatives_filled")
    wrong = [k for k in counts if not isinstance(getattr(stats, k), int) or isinstance(getattr(stats, k), bool)]
    if problem is None and wrong:
        problem = f"statistics whose '{wrong[0]}' is {getattr(stats, wrong[0])!r}, not a count"
    if problem:
        raise ComponentError(f"{component.label} from plugin '{component.plugin}' returned {problem}",
                             hint=f"a miner writes texts, never a negative equal to its anchor or positive; this is a "
                                  f"bug in plugin '{component.plugin}'")


def _extra_columns(dataset: Any) -> dict[str, list]:
    """The extra columns of a dataset's rows (not training columns), by name."""
    from embedtune_core.data.shapes import extra_columns

    names = list(getattr(dataset, "column_names", None) or [])
    return {name: list(dataset[name]) for name in extra_columns(names)}
