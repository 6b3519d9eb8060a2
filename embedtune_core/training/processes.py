"""Which process this is under ``torchrun`` / ``accelerate launch`` (one process otherwise)."""

from __future__ import annotations

import os


def rank() -> int:
    return int(os.environ.get("RANK", "0") or 0)


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def is_main_process() -> bool:
    """Whether this process writes files and prints (rank 0)."""
    return rank() == 0
