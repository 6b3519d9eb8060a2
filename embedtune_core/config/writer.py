"""Writing configs back out as TOML.

TOML has no null, so an unset value is left out when leaving it out gives the same value back
(its default is unset too), and written ``"none"`` otherwise (a setting turned off, an option
unset on purpose): :func:`config_toml` writes a ``RunConfig`` so that reading the file back gives
the same config."""

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


#: how a TOML file says "unset" where leaving the key out would mean the default
NONE = "none"


def _record(value: Any, default: Any, *, options: bool) -> Any:
    if value is None:
        return NONE if options or default is not None else None
    if isinstance(value, dict):
        return {k: _record(v, None, options=True) for k, v in value.items()}
    return value


def config_record(config: Any) -> dict[str, Any]:
    """``config`` (a ``RunConfig``) as the dict :func:`config_toml` writes: an unset value whose
    default is set, and every unset value inside a table of options, becomes ``"none"``."""
    import attrs

    out: dict[str, Any] = {}
    for field in attrs.fields(type(config)):
        value = getattr(config, field.name)
        if attrs.has(type(value)):
            out[field.name] = {f.name: _record(getattr(value, f.name), _default(f), options=False)
                               for f in attrs.fields(type(value))}
        else:
            out[field.name] = _record(value, _default(field), options=False)
    return out


def _default(field: Any) -> Any:
    import attrs

    default = field.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        return default.factory() if not default.takes_self else None
    return None if default is attrs.NOTHING else default


def config_toml(config: Any) -> str:
    """``config`` as TOML that reads back to the same config."""
    return to_toml(config_record(config))
