"""embedtune: fine-tune embedding models for a domain, with pluggable components.

The core knows five component kinds (dataset readers, negative miners, losses, metrics and
callbacks) and how to find, register and run them. It imports nothing heavy at import time:
``import embedtune_core`` does not import torch, nor any third-party package at all, so that
``python -m embedtune_core`` can take the working folder off ``sys.path`` before anything is
imported from it. ``hookimpl`` (the pluggy marker packs decorate their hooks with) is created on
first access: ``from embedtune_core import hookimpl`` works as usual.
"""

from typing import Any

__version__ = "0.1.0"

from embedtune_core.errors import EmbedtuneError  # noqa: E402

__all__ = ["EmbedtuneError", "hookimpl", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "hookimpl":
        from embedtune_core.plugins.hookspecs import hookimpl

        return hookimpl
    raise AttributeError(f"module 'embedtune_core' has no attribute {name!r}")
