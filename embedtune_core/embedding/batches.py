"""Tokenising ahead: the features of each batch, made in background threads while the model
works on the one before (the fast tokenizers release the GIL). Shared by the PyTorch encoder
(:mod:`embedtune_core.embedding.encode`) and exported ONNX models
(:mod:`embedtune_core.embedding.exported`)."""

from __future__ import annotations

from collections import deque
from typing import Any, Iterator


def batches_ahead(tokenize, batches: list[list[str]], *, workers: int, ahead: int, pin: bool) -> Iterator[Any]:
    """Yield the features of each batch in order while background threads tokenise the next
    ``ahead`` batches."""
    from concurrent.futures import ThreadPoolExecutor

    def work(batch: list[str]) -> Any:
        features = tokenize(batch)
        if pin:
            features = {k: v.pin_memory() if hasattr(v, "pin_memory") else v for k, v in features.items()}
        return features

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="embedtune-tokenize") as pool:
        pending: deque = deque()
        next_batch = 0
        try:
            while pending or next_batch < len(batches):
                while next_batch < len(batches) and len(pending) < ahead:
                    pending.append(pool.submit(work, batches[next_batch]))
                    next_batch += 1
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
