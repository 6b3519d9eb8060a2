"""Choosing the negatives: a candidate source's ranked candidates through the guards, in batches
of anchors, then random fill-ins for anchors left short. Memory stays O(batch x depth)."""

from __future__ import annotations

from typing import Any, Callable

import attrs

from embedtune_core.errors import ConfigError
from embedtune_core.mining.guards import DROP_REASONS, GuardOptions, failed_guards, guard_positives
from embedtune_core.mining.pairs import PairData
from embedtune_core.mining.sources import CandidateSource, EmbeddingCache, Rescorer, load_cross_encoder
from embedtune_core.types import MiningRequest, MiningStats


@attrs.define
class Selection:
    """Negatives chosen per query: ``negatives[q]`` corpus ids (-1 pads), ``scores[q]`` their
    guard scores, ``positive_scores[q]`` the anchor's (lowest) positive score, ``guard_positives``
    what the margins compare against (with the ``positive_floor``), ``filled[q]`` which of them
    are random fill-ins."""

    negatives: Any
    scores: Any
    positive_scores: Any
    filled: Any = None
    guard_positives: Any = None

    @property
    def compared(self) -> Any:
        return self.positive_scores if self.guard_positives is None else self.guard_positives


@attrs.frozen
class Plan:
    """What a selection compares and how deep it looks (decided once for every batch)."""

    guards: GuardOptions
    mode: str  # "retrieval", "encoder" or "cross-encoder": the scores the guards compare
    note: str
    range_max: int
    depth: int
    rescore: Any = None


def default_range_max(guards: GuardOptions, num_negatives: int, max_positives: int, source_depth: int | None = None) -> int:
    """``range_max`` when not given: every candidate a source with a ``default_depth`` proposes,
    else room for the negatives (ten times more when margins or ``max_score`` may drop
    candidates) plus the positives, after ``range_min``."""
    if source_depth is not None:
        return guards.range_min + max(source_depth, num_negatives)
    scored = guards.margins or (guards.cross_encoder is not None and guards.min_score is not None)
    return guards.range_min + num_negatives * (10 if scored else 1) + max_positives


def resolve_guard_scores(guards: GuardOptions, source: CandidateSource, request: MiningRequest) -> tuple[str, GuardOptions, str]:
    """Which scores the margins compare (``retrieval``, ``encoder`` or ``cross-encoder``), the
    guards with ``relative_margin = "auto"`` decided, and a note for the stats."""
    if guards.cross_encoder is not None:
        return "cross-encoder", guards.with_relative_margin(True), "cross-encoder scores"
    if source.dense:
        return "retrieval", guards.with_relative_margin(True), f"{source.name} scores"
    if guards.guard_scores == "encoder" or (guards.guard_scores == "auto" and request.encoder is not None):
        if request.encoder is None:
            raise ConfigError(
                "guard_scores=encoder needs a model to score candidates",
                key="mining.options.guard_scores",
                hint="give a model (--model / mining.model) or use guard_scores=retrieval",
            )
        return "encoder", guards.with_relative_margin(True), "model cosine scores"
    decided = guards.with_relative_margin(False)
    note = f"{source.name} scores"
    if guards.relative_margin == "auto":
        note += " (relative_margin off: no model to score candidates; set it to apply it to these scores)"
    return "retrieval", decided, note


def plan_selection(data: PairData, source: CandidateSource, guards: GuardOptions, request: MiningRequest,
                   device: str | None = None) -> Plan:
    """The scores to compare, the guards decided, the window and the search depth."""
    n = request.num_negatives
    mode, guards, note = resolve_guard_scores(guards, source, request)
    range_max = guards.range_max if guards.range_max is not None else default_range_max(
        guards, n, data.max_positives, source.default_depth)
    if n > range_max - guards.range_min:
        raise ConfigError(
            f"cannot mine {n} negatives from ranks {guards.range_min} to {range_max}",
            key="mining.options.range_max",
            hint="raise range_max, lower range_min, or ask for fewer negatives",
        )
    rescore = None
    if mode == "encoder":
        rescore = Rescorer("encoder", data, cache=EmbeddingCache(request.encoder, data))
    elif mode == "cross-encoder":
        rescore = Rescorer("cross-encoder", data, cross_encoder=load_cross_encoder(guards.cross_encoder, device))
    depth = min(range_max + data.max_positives, len(data.corpus))
    return Plan(guards=guards, mode=mode, note=note, range_max=range_max, depth=depth, rescore=rescore)


def positive_scores(data: PairData, source: CandidateSource, plan: Plan) -> Any:
    """Each anchor's lowest positive score, by the scores the guards compare."""
    import numpy as np

    pq, pd = data.positive_pairs()
    pair_scores = plan.rescore(pq, pd) if plan.rescore is not None else np.asarray(source.score(pq, pd), dtype=np.float32)
    out = np.full(len(data.queries), np.inf, dtype=np.float32)
    np.minimum.at(out, pq, pair_scores)
    return out


def select_negatives(
    data: PairData,
    source: CandidateSource,
    guards: GuardOptions,
    request: MiningRequest,
    stats: MiningStats,
    *,
    query_ids: Any = None,
    device: str | None = None,
) -> Selection:
    """Run the source and the guards for every query (or ``query_ids``), in batches.

    With ``range_max`` unset, anchors still short of negatives look deeper, four times deeper each
    time down to ``max_depth``: where the model ranks the positive low (a domain it is poor at),
    candidates below the guards' threshold lie deep, and they are the hard negatives still to be
    found. A short anchor is searched once more, straight to the deepest window, and each deeper
    window is a prefix of that one result (a source's ranking to depth d is the first d of its
    ranking to any greater depth). Statistics count each anchor's last window."""
    import numpy as np

    n, nq = request.num_negatives, len(data.queries)
    query_ids = np.arange(nq, dtype=np.int64) if query_ids is None else np.asarray(query_ids, dtype=np.int64)
    plan = plan_selection(data, source, guards, request, device)
    positives = positive_scores(data, source, plan)
    compared, floor = guard_positives(positives, plan.guards.positive_floor)
    stats.extra["positive_floor"] = floor
    selection = Selection(negatives=np.full((nq, n), -1, dtype=np.int64),
                          scores=np.full((nq, n), np.nan, dtype=np.float32),
                          positive_scores=positives, guard_positives=compared)
    counts = {reason: np.zeros(nq, dtype=np.int64) for reason in ("seen",) + DROP_REASONS}
    rng = np.random.default_rng(request.seed)
    batch = plan.guards.batch_size
    for start in range(0, len(query_ids), batch):
        _select_batch(data, source, plan, selection, query_ids[start : start + batch], n, rng, counts)
    levels = _deeper_levels(plan, data, guards)
    pending = query_ids[(selection.negatives[query_ids] < 0).any(axis=1)]
    used = _select_deeper(data, source, levels, selection, pending, n, rng, counts) if levels else 0
    stats.extra["searched_deeper"] = int(len(pending)) if levels else 0
    _count(stats, counts, query_ids, source, plan, levels[used - 1] if used else plan)
    if plan.guards.short == "fill":
        fill_short(data, selection, plan.guards, plan.rescore or source.score, rng, query_ids, stats)
    return selection


def _deeper_levels(plan: Plan, data: PairData, guards: GuardOptions) -> list[Plan]:
    """The plans of the deeper windows, each four times deeper than the last, down to
    ``max_depth`` (none when ``range_max`` fixes the window)."""
    limit = min(guards.max_depth, len(data.corpus))
    levels: list[Plan] = []
    while guards.range_max is None and (levels or [plan])[-1].depth < limit:
        last = (levels or [plan])[-1]
        depth = min(last.depth * 4, limit)
        levels.append(attrs.evolve(last, depth=depth, range_max=max(last.range_max, depth - data.max_positives)))
    return levels


def _select_deeper(data: PairData, source: CandidateSource, levels: list[Plan], selection: Selection, pending: Any,
                   n: int, rng: Any, counts: dict[str, Any]) -> int:
    """Select for the anchors still short, a batch at a time: one search to the deepest window,
    then each window in turn on its prefix for the anchors still short. Returns how many of the
    windows were used."""
    import numpy as np

    used = 0
    batch = levels[0].guards.batch_size
    for start in range(0, len(pending), batch):
        qids = pending[start : start + batch]
        scores, idx = source.search(qids, levels[-1].depth)
        rows = np.arange(len(qids))
        for number, level in enumerate(levels):
            found = (scores[rows, : level.depth], idx[rows, : level.depth])
            _select_batch(data, source, level, selection, qids[rows], n, rng, counts, found=found)
            used = max(used, number + 1)
            rows = rows[(selection.negatives[qids[rows]] < 0).any(axis=1)]
            if not len(rows):
                break
    return used


def _count(stats: MiningStats, counts: dict[str, Any], query_ids: Any, source: CandidateSource, first: Plan,
           last: Plan) -> None:
    dropped = stats.extra.setdefault("dropped", {r: 0 for r in DROP_REASONS})
    for reason in DROP_REASONS:
        dropped[reason] = dropped.get(reason, 0) + int(counts[reason][query_ids].sum())
    for reason, count in getattr(source, "dropped", {}).items():
        dropped[reason] = dropped.get(reason, 0) + count
    stats.candidates_seen += int(counts["seen"][query_ids].sum()) + getattr(source, "seen_extra", 0)
    stats.extra.update({"score": first.note, "range_max": first.range_max, "depth": first.depth,
                        "deepest": last.depth, "sampling": first.guards.sampling,
                        "relative_margin": first.guards.relative_margin})
    stats.extra.update(getattr(source, "extra", {}))


def _select_batch(data: PairData, source: CandidateSource, plan: Plan, selection: Selection, qids: Any, n: int,
                  rng: Any, counts: dict[str, Any], found: Any = None) -> None:
    """Search one batch of queries (or take ``found``, its ``(scores, ids)`` to ``plan.depth``),
    drop what the guards catch and keep the window's picks; ``counts`` gets each query's
    candidates seen and dropped, by reason."""
    import numpy as np

    scores, idx = source.search(qids, plan.depth) if found is None else found
    scores = np.array(scores, dtype=np.float32, copy=True)
    idx = np.asarray(idx, dtype=np.int64)
    keep = idx >= 0
    counts["seen"][qids] = keep.sum(axis=1)
    rows = qids[:, None]
    checks = [("known_positive", data.is_known_positive(rows, idx)), ("same_text", data.is_same_text(rows, idx))]
    for reason, mask in checks:
        hit = keep & mask
        counts[reason][qids] = hit.sum(axis=1)
        keep &= ~hit
    hit = keep & repeated_texts(data, idx, keep)
    counts["duplicate"][qids] = hit.sum(axis=1)
    keep &= ~hit
    guard = scores
    if plan.rescore is not None:
        guard = np.full(scores.shape, -np.inf, dtype=np.float32)
        r, c = np.nonzero(keep)
        guard[r, c] = plan.rescore(qids[r], idx[r, c])
    rank = guard if plan.mode == "cross-encoder" else scores
    for reason, mask in failed_guards(guard, selection.compared[qids][:, None], plan.guards):
        hit = keep & mask
        counts[reason][qids] = hit.sum(axis=1)
        keep &= ~hit
    order = np.argsort(-np.where(keep, rank, -np.inf), axis=1, kind="stable")
    window = order[:, plan.guards.range_min : plan.range_max]
    cols = np.arange(plan.guards.range_min, plan.guards.range_min + window.shape[1])
    in_window = cols[None, :] < keep.sum(axis=1)[:, None]
    if plan.guards.sampling == "random":
        draw = np.where(in_window, rng.random(window.shape), np.inf)
        picked = np.sort(np.argsort(draw, axis=1, kind="stable")[:, :n], axis=1)
    else:
        picked = np.tile(np.arange(min(n, window.shape[1])), (len(qids), 1))
    chosen = np.take_along_axis(window, picked, axis=1)
    ok = np.take_along_axis(in_window, picked, axis=1)
    m = chosen.shape[1]
    selection.negatives[qids, :m] = np.where(ok, np.take_along_axis(idx, chosen, axis=1), -1)
    selection.scores[qids, :m] = np.where(ok, np.take_along_axis(guard, chosen, axis=1), np.nan)


def repeated_texts(data: PairData, idx: Any, keep: Any) -> Any:
    """Boolean array: candidate ``idx[r, c]`` has the normalised text of a candidate kept before
    it in row ``r`` (case or punctuation variants of one text are one negative, not two)."""
    import numpy as np

    groups = np.where(keep, data.text_group[np.maximum(idx, 0)], -1)
    order = np.argsort(groups, axis=1, kind="stable")
    ranked = np.take_along_axis(groups, order, axis=1)
    repeat = np.zeros(groups.shape, dtype=bool)
    repeat[:, 1:] = (ranked[:, 1:] == ranked[:, :-1]) & (ranked[:, 1:] >= 0)
    out = np.zeros(groups.shape, dtype=bool)
    np.put_along_axis(out, order, repeat, axis=1)
    return out


def fill_short(
    data: PairData,
    selection: Selection,
    guards: GuardOptions,
    score: Callable[[Any, Any], Any],
    rng: Any,
    query_ids: Any,
    stats: MiningStats,
    *,
    pool: Any = None,
    rounds: int = 8,
) -> None:
    """Complete anchors that got fewer negatives than asked with random corpus texts (or texts
    of ``pool``) that pass the known-positive, same-text, margin and ``max_score`` guards.

    Those negatives are easy ones; ``stats.negatives_filled`` counts them."""
    import numpy as np

    negatives, scores = selection.negatives, selection.scores
    candidates = np.arange(len(data.corpus), dtype=np.int64) if pool is None else np.asarray(pool, dtype=np.int64)
    filled = np.zeros(negatives.shape, dtype=bool)
    query_ids = np.asarray(query_ids, dtype=np.int64)
    short = query_ids[(negatives[query_ids] < 0).any(axis=1)]
    for _ in range(rounds):
        if not len(short) or not len(candidates):
            break
        need = (negatives[short] < 0).sum(axis=1)
        width = int(min(len(candidates), 4 * need.max() + 4))
        draws = candidates[rng.integers(0, len(candidates), size=(len(short), width))]
        rows = np.repeat(short[:, None], width, axis=1)
        ok = ~data.is_known_positive(rows, draws) & ~data.is_same_text(rows, draws)
        chosen = np.where(negatives[short] >= 0, data.text_group[np.maximum(negatives[short], 0)], -1)
        ok &= ~(data.text_group[draws][:, :, None] == chosen[:, None, :]).any(axis=2)
        values = np.full(draws.shape, np.nan, dtype=np.float32)
        values[ok] = np.asarray(score(rows[ok], draws[ok]), dtype=np.float32)
        for _reason, mask in failed_guards(values, selection.compared[short][:, None], guards, easy=False):
            ok &= ~mask
        _take_draws(negatives, scores, filled, short, draws, values, ok, data.text_group)
        short = short[(negatives[short] < 0).any(axis=1)]
    selection.filled = filled
    stats.negatives_filled = int(filled.sum())


def _take_draws(negatives: Any, scores: Any, filled: Any, short: Any, draws: Any, values: Any, ok: Any,
                groups: Any) -> None:
    """Put each short query's usable draws into its free slots, each (normalised) text once."""
    import numpy as np

    for r, q in enumerate(short.tolist()):
        free = np.flatnonzero(negatives[q] < 0)
        taken = set(groups[negatives[q][negatives[q] >= 0]].tolist())
        for d, value in zip(draws[r][ok[r]].tolist(), values[r][ok[r]].tolist()):
            if not len(free):
                break
            if groups[d] in taken:
                continue
            slot, free = free[0], free[1:]
            negatives[q, slot], scores[q, slot], filled[q, slot] = d, value, True
            taken.add(groups[d])
