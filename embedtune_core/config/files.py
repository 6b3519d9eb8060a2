"""Reading config files (TOML or YAML) and ``-s key=value`` overrides into plain dicts.

Files are parsed (``tomllib`` / ``yaml.safe_load``), never evaluated.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

from embedtune_core.errors import ConfigError
from embedtune_core.text import INT_DIGITS, MAX_DEPTH, deepest_line, dotted, find_problem, long_digit_run, shorten

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: the most values a YAML document may expand to through aliases
MAX_YAML_NODES = 100_000
_INTEGER = re.compile(r"[-+]?[0-9][0-9_]*")


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
        data = _parse_toml(text, path)
    elif suffix in {".yaml", ".yml"}:
        data = parse_yaml(text, file=path)
        if data is None:
            data = {}
    else:
        raise ConfigError(f"unknown config format '{suffix or path.name}'", file=path, hint="use a .toml, .yaml or .yml file")
    if not isinstance(data, dict):
        raise ConfigError(f"expected a table of settings at the top level, got {type(data).__name__}", file=path)
    _check_values(data, file=path, text=text)
    return data


def _parse_toml(text: str, path: Path) -> Any:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", file=path, line=_toml_line(str(exc))) from None
    except RecursionError:
        raise _too_deep(file=path, line=deepest_line(text)) from None
    except ValueError:  # an integer beyond Python's conversion limit
        raise _too_many_digits(file=path, line=long_digit_run(text)) from None


def _too_deep(**where: Any) -> ConfigError:
    return ConfigError(f"values nested more than {MAX_DEPTH} levels deep", **where,
                       hint="settings nest a few levels at most; check for unclosed or repeated brackets")


def _too_many_digits(**where: Any) -> ConfigError:
    return ConfigError(f"a number has more than {INT_DIGITS} digits", **where,
                       hint="no setting takes a number that long; fix the value (quote it if it is meant as text)")


def parse_yaml(text: str, *, file: Any = None, key: str | None = None) -> Any:
    """``yaml.safe_load(text)`` with limits: no nesting deeper than :data:`MAX_DEPTH`, aliases
    that expand to at most :data:`MAX_YAML_NODES` values and refer to no value that contains
    them, and no integer beyond Python's digit limit. A first pass over the parser's events
    (which does not recurse) checks them before any value is built, so a "billion laughs"
    document or one nested 100,000 levels deep is refused at once, naming the line."""
    import yaml

    try:
        _check_yaml_events(yaml.parse(text, Loader=yaml.SafeLoader), file=file, key=key)
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        line = mark.line + 1 if mark and file is not None else None
        raise ConfigError(f"invalid YAML: {problem}", file=file, key=key, line=line) from None
    except RecursionError:  # pragma: no cover - the event pass refuses deep nesting first
        raise _too_deep(file=file, key=key, line=deepest_line(text)) from None


def _check_yaml_events(events: Any, *, file: Any, key: str | None) -> None:
    import yaml

    depth = nodes = 0
    sizes: dict[str, int] = {}
    open_collections: list[tuple[str | None, int]] = []
    for event in events:
        line = event.start_mark.line + 1 if file is not None and event.start_mark else None
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            nodes += 1
            if depth > MAX_DEPTH:
                raise _too_deep(file=file, key=key, line=line)
            open_collections.append((event.anchor, nodes))
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
            anchor, start = open_collections.pop()
            if anchor is not None:
                sizes[anchor] = nodes - start + 1
        elif isinstance(event, yaml.ScalarEvent):
            nodes += 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
            if event.style is None and _INTEGER.fullmatch(event.value) and sum(c.isdigit() for c in event.value) > INT_DIGITS:
                raise _too_many_digits(file=file, key=key, line=line)
        elif isinstance(event, yaml.AliasEvent):
            if any(anchor == event.anchor for anchor, _ in open_collections):
                raise ConfigError(f"YAML alias '*{shorten(event.anchor)}' refers to a value that contains it", file=file,
                                  key=key, line=line, hint="a value cannot contain itself; write the values out")
            nodes += sizes.get(event.anchor, 1)
        if nodes > MAX_YAML_NODES:
            raise ConfigError(f"YAML aliases expand to more than {MAX_YAML_NODES:,} values", file=file, key=key, line=line,
                              hint="a config needs a few hundred values; write them out instead of nesting aliases")


def _check_values(data: Any, *, file: Any = None, key: str | None = None, text: str = "", depth: int = MAX_DEPTH) -> None:
    """Refuse values that parse but break what follows (see :func:`embedtune_core.text.find_problem`)."""
    found = find_problem(data, max_depth=depth)
    if found is None:
        return
    path, problem = found
    where = ".".join(p for p in (key, dotted(path)) if p) or None
    line = deepest_line(text) if problem.startswith("nested") and text else None
    if problem.startswith("nested"):
        raise _too_deep(file=file, key=where, line=line)
    raise ConfigError(f"the value {problem}", file=file, key=where,
                      hint="fix the value; configs hold plain text, numbers, lists and tables (on a command line, \\udc80-\\udcff stands for a byte that is not UTF-8)")


def _toml_line(message: str) -> int | None:
    import re

    match = re.search(r"line (\d+)", message)
    return int(match.group(1)) if match else None


def parse_value(text: str, key: str | None = None) -> Any:
    """Parse an override value: YAML scalars and flow lists/maps (``64``, ``true``, ``[1, 2]``,
    ``{weights: [1, 2]}``), or a TOML inline value as the config file would hold it
    (``{base = "mnrl", weights = [1, 2]}``).

    Text that is neither stays text; a value beyond the limits of :func:`parse_yaml`
    (a number of thousands of digits, deep nesting, aliases that expand too far) is a
    :class:`ConfigError` naming ``key``."""
    if not text.strip():
        return ""
    found, value = _toml_value(text)
    if not found:
        try:
            value = parse_yaml(text, key=key)
        except ConfigError as exc:
            if not exc.message.startswith("invalid YAML"):
                raise
            value = text
    _check_values(value, key=key)
    return value


def _toml_value(text: str) -> tuple[bool, Any]:
    """``(True, value)`` when ``text`` is a TOML value as a config file holds it (``{a = 1}``,
    ``"x"``, ``-1e-5``, ``[1, 2]``), else ``(False, None)``. TOML is tried first: YAML would read
    ``{a = 1}`` as a map with the key ``"a = 1"`` and ``-1e-5`` as text."""
    try:
        return True, tomllib.loads(f"value = {text}")["value"]
    except (tomllib.TOMLDecodeError, RecursionError, ValueError):
        return False, None


def apply_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides in place."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{shorten(item)}' is not KEY=VALUE", hint="e.g. -s training.batch_size=64")
        key, _, raw = item.partition("=")
        key = key.strip()
        parts = key.split(".")
        if not key or any(not p for p in parts):
            raise ConfigError(f"override '{shorten(item)}' has an empty key", hint="e.g. -s training.batch_size=64")
        if len(parts) > MAX_DEPTH:
            raise _too_deep(key=shorten(key, 60))
        _check_values(key, key="-s")
        node = data
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"cannot set '{key}': '{part}' is not a table", key=key)
            node = child
        node[parts[-1]] = parse_value(raw, key=key)
    return data


def blame_overrides(exc: Any, overrides: list[str] | tuple[str, ...]) -> Any:
    """An error about a key a ``-s KEY=VALUE`` override set names that override, not the config
    file: ``-s training.learning_rate=fast: must be a number`` (the last override of the key wins, as it
    does when the overrides are applied)."""
    key = getattr(exc, "key", None)
    if not key:
        return exc
    for item in reversed(list(overrides)):
        set_key = item.partition("=")[0].strip()
        if set_key and (key == set_key or key.startswith(set_key + ".")):
            exc.file, exc.line = None, None
            exc.key = f"-s {shorten(item, 80)}"
            break
    return exc
