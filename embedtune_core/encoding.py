"""Encoding texts to embeddings, shared by evaluation and negative mining."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def encode(
    model: Any,
    texts: Sequence[str],
    *,
    batch_size: int = 128,
    normalize: bool = True,
    show_progress: bool = False,
) -> np.ndarray:
    """Embeddings of ``texts`` as a float32 array (rows L2-normalised when ``normalize``)."""
    if len(texts) == 0:
        from embedtune_core.models import embedding_dim

        return np.zeros((0, embedding_dim(model)), dtype=np.float32)
    emb = model.encode(
        list(texts),
        batch_size=batch_size,
        convert_to_numpy=True,
        normalize_embeddings=normalize,
        show_progress_bar=show_progress,
    )
    return np.asarray(emb, dtype=np.float32)


class Encoder:
    """A callable ``texts -> embeddings`` bound to one model and its settings."""

    def __init__(self, model: Any, *, batch_size: int = 128, normalize: bool = True, show_progress: bool = False):
        self.model = model
        self.batch_size = batch_size
        self.normalize = normalize
        self.show_progress = show_progress

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        return encode(
            self.model, texts, batch_size=self.batch_size, normalize=self.normalize, show_progress=self.show_progress
        )
