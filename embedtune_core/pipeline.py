"""The pipeline: resolve components, read data, mine, evaluate, train, evaluate, write the run."""

from __future__ import annotations

from typing import Any

from embedtune_core.config import RunConfig
from embedtune_core.errors import ComponentError, ConfigError


def parse_metric(spec: str) -> tuple[str, int]:
    """``"ndcg@10"`` -> ``("ndcg", 10)``."""
    name, sep, k = str(spec).strip().partition("@")
    if not sep or not name or not k.isdigit() or int(k) < 1:
        raise ConfigError(f"metric '{spec}' must be NAME@K with K a positive integer", hint="e.g. ndcg@10")
    return name.lower(), int(k)


def check_components(config: RunConfig, registry: Any, *, source: str | None = None) -> None:
    """Every component the config names must be registered (clear error naming the key)."""
    checks: list[tuple[str, str, str]] = []
    if config.data.reader:
        checks.append(("dataset_reader", config.data.reader, "data.reader"))
    if config.mining.miner:
        checks.append(("negative_miner", config.mining.miner, "mining.miner"))
    if config.loss.name:
        checks.append(("loss", config.loss.name, "loss.name"))
    for name in config.training.callbacks:
        checks.append(("callback", str(name), "training.callbacks"))
    for spec in config.evaluation.metrics:
        try:
            metric, _ = parse_metric(spec)
        except ConfigError as exc:
            raise ConfigError(exc.message, file=source, key="evaluation.metrics", hint=exc.hint) from None
        checks.append(("metric", metric, "evaluation.metrics"))
    for kind, name, key in checks:
        try:
            registry.get(kind, name)
        except ComponentError as exc:
            raise ConfigError(exc.message, file=source, key=key, hint=exc.hint) from None
