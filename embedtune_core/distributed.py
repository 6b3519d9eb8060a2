"""Several processes under ``torchrun`` / ``accelerate launch`` (one process otherwise).

The launcher sets ``RANK`` and ``WORLD_SIZE``; the process group is the one accelerate (and so
the Trainer) uses, created on first need by :func:`process_group`: NCCL between GPUs, gloo on CPU.
Nothing here starts processes or replaces the launcher.

- :func:`is_main_process`: the process that checks and writes the run folder and prints.
- :func:`shard`: this process's contiguous part of ``n`` items.
- :func:`gather_rows`: every process's rows of a 2-D array, in rank order, on every process.
- :func:`broadcast`: the main process's Python object on every process.
- :func:`mean_across`: a number averaged over the processes.
- :func:`sharing` / :func:`split_rows`: inside a ``with sharing():`` block (the pipeline's mining
  and evaluation steps, which every process runs alike), encoding and vector or BM25 search
  split their rows over the processes: each computes its shard and the results are gathered,
  so every process holds the whole result, computed once.

With one process each of these is the identity (no process group is created).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Callable, Iterator

_sharing = False


def rank() -> int:
    return int(os.environ.get("RANK", "0") or 0)


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def is_main_process() -> bool:
    """Whether this process writes files and prints (rank 0)."""
    return rank() == 0


def process_group() -> Any:
    """accelerate's ``PartialState`` (it creates the process group once for the Trainer and
    for us); None with one process."""
    if world_size() <= 1:
        return None
    from accelerate import PartialState

    return PartialState()


def _device() -> Any:
    import torch

    state = process_group()
    backend = getattr(state, "backend", None) or torch.distributed.get_backend()
    return state.device if backend == "nccl" else torch.device("cpu")


def shard(n: int) -> tuple[int, int]:
    """``(start, stop)`` of this process's part of ``n`` items: contiguous, sizes differing by at
    most one, in rank order."""
    size, index = world_size(), rank()
    per, extra = divmod(n, size)
    start = index * per + min(index, extra)
    return start, start + per + (1 if index < extra else 0)


def gather_rows(part: Any) -> Any:
    """The rows of every process's 2-D numpy array ``part``, concatenated in rank order (each
    process's part from :func:`shard`), on every process."""
    if world_size() <= 1:
        return part
    import numpy as np
    import torch
    import torch.distributed as dist

    process_group()
    device = _device()
    sizes = [torch.zeros(1, dtype=torch.long, device=device) for _ in range(world_size())]
    dist.all_gather(sizes, torch.tensor([len(part)], dtype=torch.long, device=device))
    sizes = [int(s.item()) for s in sizes]
    largest = max(sizes)
    local = torch.zeros((largest, *part.shape[1:]), dtype=torch.from_numpy(part[:0]).dtype, device=device)
    if len(part):
        local[: len(part)] = torch.from_numpy(np.ascontiguousarray(part)).to(device)
    gathered = [torch.empty_like(local) for _ in sizes]
    dist.all_gather(gathered, local)
    return np.concatenate([g[:n].cpu().numpy() for g, n in zip(gathered, sizes)], axis=0)


def broadcast(value: Any) -> Any:
    """The main process's ``value`` on every process (any picklable object)."""
    if world_size() <= 1:
        return value
    import torch.distributed as dist

    process_group()
    box = [value if is_main_process() else None]
    dist.broadcast_object_list(box, src=0, device=_device())
    return box[0]


def mean_across(value: float | None) -> float | None:
    """``value`` averaged over the processes (None stays None when every process has None)."""
    if world_size() <= 1:
        return value
    import torch
    import torch.distributed as dist

    process_group()
    tensor = torch.tensor([0.0 if value is None else float(value), 0.0 if value is None else 1.0],
                          dtype=torch.float64, device=_device())
    dist.all_reduce(tensor)
    total, count = tensor.tolist()
    return total / count if count else None


@contextlib.contextmanager
def sharing() -> Iterator[None]:
    """Within the block, :func:`split_rows` splits work over the processes. Every process must
    run the same block with the same data (each call is a collective operation)."""
    global _sharing
    previous, _sharing = _sharing, world_size() > 1
    try:
        yield
    finally:
        _sharing = previous


def is_sharing() -> bool:
    return _sharing


def split_rows(n: int, compute: Callable[[int, int], Any]) -> Any:
    """``compute(start, stop)`` over rows ``0..n`` (an array, or a tuple of arrays, with one row
    per input row): inside :func:`sharing`, each process computes its :func:`shard` and every
    process gets the rows of all, in order; otherwise ``compute(0, n)``."""
    if not _sharing:
        return compute(0, n)
    start, stop = shard(n)
    part = compute(start, stop)
    if isinstance(part, tuple):
        return tuple(gather_rows(p) for p in part)
    return gather_rows(part)


def barrier() -> None:
    if world_size() > 1:
        import torch.distributed as dist

        process_group()
        dist.barrier()
