"""Reading config files (TOML or YAML) and ``-s key=value`` overrides into plain dicts.

Files are parsed (``tomllib`` / ``yaml.safe_load``), never evaluated.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from embedtune_core.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def load_file(path: str | os.PathLike) -> dict[str, Any]:
    """Parse a TOML or YAML config file into a dict (never evaluates code)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError("config file not found", file=path, hint="check the path")
    if path.is_dir():
        raise ConfigError("expected a config file, got a folder", file=path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", file=path, hint="save the file as UTF-8") from None
    suffix = path.suffix.lower()
    if suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            line = _toml_line(str(exc))
            raise ConfigError(f"invalid TOML: {exc}", file=path, line=line) from None
    elif suffix in {".yaml", ".yml"}:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ConfigError(
                f"invalid YAML: {problem}", file=path, line=(mark.line + 1) if mark else None
            ) from None
        if data is None:
            data = {}
    else:
        raise ConfigError(f"unknown config format '{suffix or path.name}'", file=path, hint="use a .toml, .yaml or .yml file")
    if not isinstance(data, dict):
        raise ConfigError(f"expected a table of settings at the top level, got {type(data).__name__}", file=path)
    return data


def _toml_line(message: str) -> int | None:
    import re

    match = re.search(r"line (\d+)", message)
    return int(match.group(1)) if match else None


def parse_value(text: str) -> Any:
    """Parse an override value: YAML scalars and flow lists/maps (``64``, ``true``, ``[1, 2]``)."""
    import yaml

    try:
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        return text


def apply_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides in place."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not KEY=VALUE", hint="e.g. -s training.batch_size=64")
        key, _, raw = item.partition("=")
        key = key.strip()
        parts = key.split(".")
        if not key or any(not p for p in parts):
            raise ConfigError(f"override '{item}' has an empty key", hint="e.g. -s training.batch_size=64")
        node = data
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"cannot set '{key}': '{part}' is not a table", key=key)
            node = child
        node[parts[-1]] = parse_value(raw)
    return data
