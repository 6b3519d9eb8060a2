"""Reading data through the registry: the one place that turns a source into a DataBundle."""

from __future__ import annotations

from typing import Any, Mapping

from embedtune_core.errors import DataError
from embedtune_core.types import DATASET_TYPES, DataBundle

BUILTIN_PREFIX = "builtin:"


def reader_for(registry: Any, source: str | None, dataset_type: str | None, reader: str | None) -> tuple[str, str | None]:
    """The reader name to use and the source to hand it.

    ``builtin:NAME`` names a bundled set (a reader registered with ``bundled=True``); otherwise an
    explicit ``reader`` wins, else the reader named after ``dataset_type``.
    """
    if source and source.startswith(BUILTIN_PREFIX):
        name = source[len(BUILTIN_PREFIX):]
        component = registry.get("dataset_reader", name)
        if not component.meta.get("bundled"):
            raise DataError(f"'{name}' is a reader, not a bundled data set", hint="see `embedtune data list`")
        return name, None
    if reader:
        return reader, source
    if not dataset_type:
        raise DataError(
            f"cannot tell the type of '{source}'",
            hint="give the dataset type (--type / data.type): " + ", ".join(DATASET_TYPES),
        )
    return dataset_type, source


def load_data(
    registry: Any,
    source: str | None,
    *,
    dataset_type: str | None = None,
    reader: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> DataBundle:
    """Read ``source`` with the matching reader and return its :class:`DataBundle`."""
    name, reader_source = reader_for(registry, source, dataset_type, reader)
    opts = dict(options or {})
    bundle = registry.create("dataset_reader", name, reader_source, opts)
    if not isinstance(bundle, DataBundle):
        raise DataError(f"reader '{name}' returned {type(bundle).__name__}, not a DataBundle")
    if dataset_type and source and source.startswith(BUILTIN_PREFIX) and bundle.dataset_type != dataset_type:
        raise DataError(
            f"bundled set '{source}' is of type '{bundle.dataset_type}', not '{dataset_type}'",
            hint=f"drop the type or use --type {bundle.dataset_type}",
        )
    return bundle
