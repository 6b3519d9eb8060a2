"""Batch samplers beyond sentence-transformers' own."""

from __future__ import annotations

from typing import Any


def sequential_batch_sampler(
    dataset: Any,
    batch_size: int,
    drop_last: bool,
    valid_label_columns: list[str] | None = None,
    generator: Any = None,
    seed: int = 0,
) -> Any:
    """A sentence-transformers batch sampler that keeps the dataset's row order.

    The pipeline uses it (``training.batch_sampler = "sequential"``) for data a miner registered
    with ``ordered=True`` wrote (a curriculum's easy-to-hard order), which the default sampler
    would shuffle away."""
    try:
        from sentence_transformers.base.sampler import DefaultBatchSampler
    except ImportError:  # sentence-transformers 5
        from sentence_transformers.sampler import DefaultBatchSampler
    from torch.utils.data import SequentialSampler

    return DefaultBatchSampler(
        SequentialSampler(range(len(dataset))),
        batch_size=batch_size,
        drop_last=drop_last,
        valid_label_columns=valid_label_columns,
        generator=generator,
        seed=seed,
    )
