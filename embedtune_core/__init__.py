"""embedtune: fine-tune embedding models for a domain, with pluggable components.

The core knows five component kinds (dataset readers, negative miners, losses, metrics and
callbacks) and how to find, register and run them. It imports nothing heavy at import time:
``import embedtune_core`` does not import torch.
"""

__version__ = "0.1.0"

from embedtune_core.errors import EmbedtuneError  # noqa: E402
from embedtune_core.plugins.hookspecs import hookimpl  # noqa: E402

__all__ = ["EmbedtuneError", "hookimpl", "__version__"]
