"""Columns of Python values to a ``datasets.Dataset`` in bounded extra memory.

``datasets.Dataset.from_dict`` converts each column in one piece and then fingerprints the new
dataset by pickling its whole Arrow table: at a million (anchor, positive) pairs that costs
about 1.4 GB on top of the columns themselves. :func:`dataset_from_columns` converts text
columns a block at a time and fingerprints the Arrow buffers with a streaming hash instead; the
dataset, its types and its features are those ``from_dict`` gives.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

#: values converted to Arrow at a time in a text column
BLOCK = 65536


def _text_column(values: Sequence[Any]) -> bool:
    return len(values) > 0 and all(type(value) is str for value in values)


def _arrow_column(values: Sequence[Any], block: int) -> Any:
    import pyarrow as pa

    if not _text_column(values):
        return pa.array(values)  # what from_dict does with it
    return pa.chunked_array([pa.array(values[start : start + block], type=pa.string())
                             for start in range(0, len(values), block)], type=pa.string())


def table_fingerprint(table: Any) -> str:
    """A 16-hex-digit hash of an Arrow table's column names, types and data buffers, nothing
    copied: the same data in the same chunks gives the same fingerprint."""
    import hashlib

    digest = hashlib.blake2b(digest_size=8)
    for name, column in zip(table.column_names, table.columns):
        digest.update(f"{name}\x1f{column.type}\x1f{len(column)}\x1e".encode("utf-8"))
        for chunk in column.chunks:
            for buffer in chunk.buffers():
                if buffer is not None:
                    digest.update(memoryview(buffer))
    return digest.hexdigest()


def dataset_from_columns(columns: Mapping[str, Sequence[Any]], block: int = BLOCK) -> Any:
    """A ``datasets.Dataset`` with ``columns`` (name -> equal-length lists of values), as
    ``datasets.Dataset.from_dict`` would build it, without its memory peak: text columns go to
    Arrow ``block`` values at a time, and the fingerprint hashes the Arrow buffers."""
    import datasets
    import pyarrow as pa
    from datasets.table import InMemoryTable

    if not columns:
        return datasets.Dataset.from_dict({})
    table = pa.table({name: _arrow_column(values, block) for name, values in columns.items()})
    return datasets.Dataset(InMemoryTable(table), fingerprint=table_fingerprint(table))
