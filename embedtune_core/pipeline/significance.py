"""Is the change real? Paired statistics of one metric per query, before and after.

- a paired bootstrap 95% confidence interval of the mean change (queries resampled with
  replacement, the same queries before and after);
- a paired randomisation test (each query's before and after swapped at random; the p-value is
  the share of swaps with a mean change at least as large in size, with the usual +1 correction);
- wins, losses and ties, and the queries that gained and lost most.

Both tests are seeded, so the same results give the same numbers.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

RESAMPLES = 10_000
TIE = 1e-9
_CHUNK = 1_000


def _mean_changes(diff: Any, rng: Any, resamples: int, *, flip: bool) -> Any:
    """``resamples`` mean changes of resampled (bootstrap) or sign-flipped (randomisation) diffs,
    in chunks so memory stays O(chunk x queries)."""
    import numpy as np

    out = np.empty(resamples, dtype=np.float64)
    n = len(diff)
    for start in range(0, resamples, _CHUNK):
        size = min(_CHUNK, resamples - start)
        if flip:
            signs = rng.integers(0, 2, size=(size, n), dtype=np.int8) * 2 - 1
            out[start : start + size] = (signs * diff).mean(axis=1)
        else:
            out[start : start + size] = diff[rng.integers(0, n, size=(size, n))].mean(axis=1)
    return out


def paired_statistics(before: Sequence[float], after: Sequence[float], *, resamples: int = RESAMPLES,
                      seed: int = 0) -> dict[str, Any]:
    """``{"mean_change", "ci95": [lo, hi], "p_value", "wins", "losses", "ties", "queries",
    "resamples"}`` for paired per-query values."""
    import numpy as np

    before, after = np.asarray(before, dtype=np.float64), np.asarray(after, dtype=np.float64)
    if before.shape != after.shape or before.ndim != 1:
        raise ValueError("before and after need one value per query, the same queries")
    diff = after - before
    n = len(diff)
    if n == 0:
        return {"mean_change": None, "ci95": None, "p_value": None, "wins": 0, "losses": 0, "ties": 0,
                "queries": 0, "resamples": resamples}
    rng = np.random.default_rng(seed)
    boot = _mean_changes(diff, rng, resamples, flip=False)
    observed = float(diff.mean())
    flipped = _mean_changes(diff, rng, resamples, flip=True)
    extreme = int(np.count_nonzero(np.abs(flipped) >= abs(observed) - 1e-12))
    return {
        "mean_change": observed,
        "ci95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))],
        "p_value": (extreme + 1) / (resamples + 1),
        "wins": int(np.count_nonzero(diff > TIE)),
        "losses": int(np.count_nonzero(diff < -TIE)),
        "ties": int(np.count_nonzero(np.abs(diff) <= TIE)),
        "queries": n,
        "resamples": resamples,
    }


def biggest_changes(before: Mapping[str, Mapping[str, Any]], after: Mapping[str, Mapping[str, Any]],
                    texts: Mapping[str, tuple[str, str]], count: int = 5) -> dict[str, list[dict[str, Any]]]:
    """The ``count`` queries that gained and lost most (largest change first, equal changes by
    query id): query text, relevant text, value and rank of the first relevant document before and
    after (None: not in the ranked depth)."""
    shared = [q for q in before if q in after]
    rows = []
    for q in shared:
        query, relevant = texts.get(q, ("", ""))
        rows.append({"query_id": q, "query": query, "relevant": relevant,
                     "before": before[q]["value"], "after": after[q]["value"],
                     "change": after[q]["value"] - before[q]["value"],
                     "rank_before": before[q].get("rank"), "rank_after": after[q].get("rank")})
    # largest change first on both sides; equal changes in query id order on both sides
    gained = sorted((r for r in rows if r["change"] > TIE), key=lambda r: (-r["change"], r["query_id"]))[:count]
    lost = sorted((r for r in rows if r["change"] < -TIE), key=lambda r: (r["change"], r["query_id"]))[:count]
    return {"gained": gained, "lost": lost}


def significance(metric: str, before: Mapping[str, Mapping[str, Any]], after: Mapping[str, Mapping[str, Any]],
                 texts: Mapping[str, tuple[str, str]], *, seed: int = 0) -> dict[str, Any]:
    """The ``significance`` entry of ``metrics.json`` for ``metric``: paired statistics over the
    queries evaluated both times, and the queries that changed most."""
    shared = sorted(q for q in before if q in after)
    stats = paired_statistics([before[q]["value"] for q in shared], [after[q]["value"] for q in shared], seed=seed)
    return {metric: {**stats, **biggest_changes(before, after, texts)}}
