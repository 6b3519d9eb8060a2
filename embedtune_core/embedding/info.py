"""What a model's files tell before it is loaded: its position embeddings and embedding size."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs


@attrs.frozen
class ModelInfo:
    """``max_positions``: the longest input in tokens; ``dim``: the embedding size (None where
    the files do not say, e.g. a hub name not on this machine)."""

    max_positions: int | None = None
    dim: int | None = None


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def model_info(name: str) -> ModelInfo:
    """Read a local (or bundled) sentence-transformers folder's config files, or an exported
    variant's ``embedtune_variant.json``; nothing is loaded."""
    from embedtune_core.embedding.models import resolve_model

    folder = Path(resolve_model(name))
    if not folder.is_dir():
        return ModelInfo()
    from embedtune_core.embedding.exported import VARIANT_FILE

    if (folder / VARIANT_FILE).is_file():  # an exported variant: its spec says both
        variant = _json(folder / VARIANT_FILE)
        positions, dims = variant.get("max_position_embeddings"), variant.get("dims")
        return ModelInfo(max_positions=positions if isinstance(positions, int) else None,
                         dim=dims if isinstance(dims, int) else None)
    modules = _json(folder / "modules.json") if (folder / "modules.json").exists() else {}
    paths = [folder / m.get("path", "") for m in modules] if isinstance(modules, list) else [folder]
    max_positions, dim = None, None
    for path in paths:  # in module order: a later Pooling or Dense module sets the size
        config = _json(path / "config.json")
        if isinstance(config.get("max_position_embeddings"), int):
            max_positions = config["max_position_embeddings"]
        for key in ("hidden_size", "word_embedding_dimension", "out_features"):
            if isinstance(config.get(key), int):
                dim = config[key]
    if max_positions is None:
        config = _json(folder / "config.json")
        if isinstance(config.get("max_position_embeddings"), int):
            max_positions = config["max_position_embeddings"]
    return ModelInfo(max_positions=max_positions, dim=dim)
