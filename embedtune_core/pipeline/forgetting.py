"""What training costs outside the domain, and how to keep it small.

- **Retention**: a general-domain IR set (``evaluation.retention``) evaluated with the model
  before and after training, so a run shows whether it forgot how to rank general text.
- **Weight interpolation** (WiSE-FT, LM-Cocktail): ``(1 - a) base + a tuned`` evaluated for a few
  ``a`` on the held-out domain data and the retention set; ``training.interpolate = "auto"``
  keeps the ``a`` with the best domain score whose retention drop stays within
  ``training.retention_tolerance``, and the run's model is that interpolation.
"""

from __future__ import annotations

from typing import Any, Callable

from embedtune_core.pipeline.results import Evaluation


def headline_of(evaluation: Evaluation | None, metric: str | None) -> float | None:
    if evaluation is None or metric is None:
        return None
    return evaluation.full.get(metric)


def interpolated_state(base: dict[str, Any], tuned: dict[str, Any], alpha: float) -> dict[str, Any]:
    """``(1 - alpha) * base + alpha * tuned`` for every floating-point tensor (others: tuned's)."""
    out = {}
    for key, value in tuned.items():
        other = base.get(key)
        if other is not None and value.is_floating_point() and other.shape == value.shape:
            out[key] = (1.0 - alpha) * other.to(value.dtype) + alpha * value
        else:
            out[key] = value
    return out


def choose_alpha(alphas: list[float], domain: list[float | None], retention: list[float | None],
                 tolerance: float) -> float:
    """The ``a`` with the best domain score among those whose retention score is at most
    ``tolerance`` below the base model's (``a = 0``, the first); ties go to the larger ``a``."""
    base_retention = retention[0]
    best, best_score = alphas[-1], None
    for alpha, score, kept in zip(alphas, domain, retention):
        if score is None:
            continue
        if base_retention is not None and kept is not None and base_retention - kept > tolerance + 1e-12:
            continue
        if best_score is None or score >= best_score:
            best, best_score = alpha, score
    return best


def interpolate(tuned_model: Any, base_state: dict[str, Any],
                evaluate: Callable[[float], tuple[Evaluation | None, Evaluation | None]], *,
                alphas: list[float], tolerance: float, metric: str | None,
                retention_metric: str | None, base_results: tuple[Evaluation, Evaluation | None] | None) -> tuple[dict[str, Any], Any]:
    """Evaluate the interpolations and leave ``tuned_model`` holding the chosen one.

    ``evaluate(alpha)`` returns ``(domain evaluation, retention evaluation or None)`` of the model
    as it is; ``base_results`` are those of ``a = 0`` when already known (the base model's
    evaluation before training). Returns ``(the record, {alpha: (domain, retention)})``."""
    tuned_state = {k: v.detach().clone() for k, v in tuned_model.state_dict().items()}
    grid = sorted({0.0, 1.0, *alphas})
    results: dict[float, Any] = {}
    for alpha in grid:
        if alpha == 0.0 and base_results is not None:
            results[alpha] = base_results
            continue
        tuned_model.load_state_dict(interpolated_state(base_state, tuned_state, alpha))
        results[alpha] = evaluate(alpha)
    domain = [headline_of(results[a][0], metric) for a in grid]
    retention = [headline_of(results[a][1], retention_metric) for a in grid]
    chosen = choose_alpha(grid, domain, retention, tolerance)
    tuned_model.load_state_dict(interpolated_state(base_state, tuned_state, chosen))
    record = {"metric": metric, "retention_metric": retention_metric, "alphas": grid, "domain": domain, "retention": retention, "chosen": chosen,
              "mode": "auto", "tolerance": tolerance}
    return record, results
