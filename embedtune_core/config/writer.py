"""Writing configs back out as TOML (unset values are left out)."""

from __future__ import annotations

from typing import Any


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value if v is not None]
    return value


def to_toml(data: dict[str, Any]) -> str:
    import tomli_w

    clean = _drop_none(data)
    scalars = {k: v for k, v in clean.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in clean.items() if isinstance(v, dict)}
    return tomli_w.dumps({**scalars, **tables})
