"""Finding and loading plugins: built-ins and packs, all through the ``embedtune`` entry points.

A plugin manager is built fresh by :func:`load_plugins`; nothing happens at import time. A pack
that fails to import or to validate is recorded with its error and skipped, so one broken pack
never stops the CLI; ``EMBEDTUNE_STRICT_PLUGINS=1`` (or ``strict=True``) makes it fatal.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from typing import Any, Iterable

import attrs
import pluggy

from embedtune_core.plugins import hookspecs
from embedtune_core.plugins.calling import GuardedManager, HookFailure, call_hook, short_error
from embedtune_core.errors import PluginLoadError

ENTRY_POINT_GROUP = "embedtune"
#: the package of the built-in plugins: an entry point naming a module in it is a built-in
BUILTIN_PACKAGE = "embedtune_plugins"


@attrs.define
class PluginRecord:
    """What is known about one plugin: where it came from and whether it loaded."""

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    builtin: bool = False
    hooks: list[str] = attrs.field(factory=list)
    error: str | None = None
    disabled: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "hooks": sorted(self.hooks),
            "error": self.error,
        }


@attrs.define
class PluginSet:
    """A plugin manager and the record of every plugin it tried to load."""

    manager: pluggy.PluginManager
    records: dict[str, PluginRecord] = attrs.field(factory=dict)
    strict: bool = False

    def loaded(self) -> list[PluginRecord]:
        return [r for r in self.records.values() if r.error is None and not r.disabled]

    def broken(self) -> list[PluginRecord]:
        return [r for r in self.records.values() if r.error is not None]

    def register(self, plugin: Any, name: str, **record: Any) -> PluginRecord:
        """Register ``plugin`` (a module, class or object with hook implementations) as
        ``name``, its hooks checked against the specs; a failure is recorded on the returned
        record (and is fatal in strict mode)."""
        entry = PluginRecord(name=name, module=getattr(plugin, "__name__", repr(plugin)), **record)
        _register(self, entry, plugin)
        return entry

    def call(self, hook: str, *, isolate: bool, **kwargs: Any) -> list[HookFailure]:
        """Call ``hook`` the pluggy way (see :func:`~embedtune_core.plugins.calling.call_hook`);
        with ``isolate``, each failing plugin is marked broken and the failures returned."""
        failures = call_hook(self.manager, hook, isolate=isolate, **kwargs)
        for failure in failures:
            if failure.plugin in self.records:
                self.mark_broken(failure.plugin, failure.describe())
            elif self.manager.get_plugin(failure.plugin) is not None:
                self.manager.unregister(name=failure.plugin)
        return failures

    def mark_broken(self, name: str, error: str) -> None:
        """Record ``error`` for plugin ``name`` and unregister it (fatal in strict mode)."""
        record = self.records[name]
        record.error = error
        plugin = self.manager.get_plugin(name)
        if plugin is not None:
            self.manager.unregister(plugin, name=name)
        if self.strict:
            raise PluginLoadError(
                f"plugin '{name}' failed: {error}",
                hint="fix or uninstall the pack, or unset EMBEDTUNE_STRICT_PLUGINS to skip it",
            )


def iter_entry_points() -> Iterable[Any]:
    """The installed entry points of group ``embedtune``, from every distribution on ``sys.path``
    (tests replace this with fakes).

    ``importlib.metadata.entry_points()`` keeps one distribution per name, taken from the
    dist-info folder's name: a folder named ``embedtune-<anything>.dist-info`` earlier on the path
    would hide embedtune's own entry points, and every built-in with them. So each distribution
    is read, and an entry point listed by two copies of one package (same name and module)
    counts once.
    """
    from importlib import metadata

    seen: set[tuple[str, str]] = set()
    found = []
    for dist in metadata.distributions():
        for ep in dist.entry_points:
            if ep.group == ENTRY_POINT_GROUP and (ep.name, ep.value) not in seen:
                seen.add((ep.name, ep.value))
                found.append(ep)
    return found


def is_builtin(ep: Any) -> bool:
    """Whether an entry point names a module of the built-in plugins package (decided by the
    module, which a third-party distribution cannot take over, not by a distribution name)."""
    module = str(ep.value).split(":", 1)[0].strip()
    return module == BUILTIN_PACKAGE or module.startswith(BUILTIN_PACKAGE + ".")


def _env_list(name: str) -> list[str] | None:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


def strict_from_env() -> bool:
    from embedtune_core.plugins.options import TRUE_WORDS

    return os.environ.get("EMBEDTUNE_STRICT_PLUGINS", "").strip().lower() in TRUE_WORDS


def new_manager() -> pluggy.PluginManager:
    """A plugin manager with embedtune's hook specs that registers every plugin behind guards
    (:mod:`embedtune_core.plugins.calling`)."""
    manager = GuardedManager("embedtune")
    manager.add_hookspecs(hookspecs)
    return manager


_short_error = short_error


def _hook_error(manager: pluggy.PluginManager, obj: Any, name: str) -> str | None:
    """Register ``obj`` as ``name`` and validate its hooks against the specs; the error, or None."""
    try:
        manager.register(obj, name=name)
    except Exception as exc:  # duplicate name, bad hookimpl signature, ...
        return _short_error(exc)
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        return f"PluginValidationError: {exc}"
    return None


def _register(plugin_set: PluginSet, record: PluginRecord, obj: Any) -> None:
    """Register ``obj`` under ``record.name``; validate its hooks against the specs."""
    plugin_set.records[record.name] = record
    error = _hook_error(plugin_set.manager, obj, record.name)
    if error is not None:
        plugin_set.mark_broken(record.name, error)
        return
    record.hooks = [caller.name for caller in plugin_set.manager.get_hookcallers(obj) or []]


def load_plugins(
    *,
    disabled: Iterable[str] = (),
    only: Iterable[str] | None = None,
    modules: Iterable[str] = (),
    strict: bool | None = None,
    entry_points: Iterable[Any] | None = None,
) -> PluginSet:
    """Build a fresh plugin manager with every installed plugin.

    ``disabled``: plugin names not to load (``-p no:NAME``; also ``EMBEDTUNE_DISABLE_PLUGINS``).
    ``only``: load only these names (``EMBEDTUNE_LOAD_PLUGINS=a,b``).
    ``modules``: extra modules to import as plugins, named explicitly (``-p MODULE``).
    ``strict``: a broken plugin raises :class:`PluginLoadError` (``EMBEDTUNE_STRICT_PLUGINS=1``).
    """
    strict = strict_from_env() if strict is None else strict
    disabled = set(disabled) | set(_env_list("EMBEDTUNE_DISABLE_PLUGINS") or [])
    only_set = set(only) if only is not None else None
    env_only = _env_list("EMBEDTUNE_LOAD_PLUGINS")
    if env_only is not None:
        only_set = set(env_only) if only_set is None else only_set & set(env_only)
    plugin_set = PluginSet(manager=new_manager(), strict=strict)
    eps = iter_entry_points() if entry_points is None else entry_points
    for ep in sorted(eps, key=lambda e: (not is_builtin(e), getattr(e, "dist", None) is None, e.name)):
        dist = getattr(ep, "dist", None)
        dist_name = getattr(dist, "name", None) if dist is not None else None
        record = PluginRecord(
            name=ep.name,
            module=ep.value,
            distribution=dist_name,
            version=getattr(dist, "version", None) if dist is not None else None,
            builtin=is_builtin(ep),
        )
        if only_set is not None and ep.name not in only_set:
            continue
        if ep.name in disabled:
            record.disabled = True
            plugin_set.records.setdefault(ep.name, record)
            continue
        if ep.name in plugin_set.records and not plugin_set.records[ep.name].disabled:
            other = plugin_set.records[ep.name]
            # keep the first; record the clash on a distinct key so both are reported
            clash = PluginRecord(
                name=f"{ep.name} ({dist_name or ep.value})",
                module=ep.value,
                distribution=dist_name,
                version=record.version,
            )
            plugin_set.records[clash.name] = clash
            plugin_set.mark_broken(
                clash.name,
                f"plugin name '{ep.name}' is already used by {other.distribution or other.module}",
            )
            continue
        try:
            obj = ep.load()
        except (Exception, SystemExit) as exc:  # a pack's import may raise anything
            plugin_set.records[ep.name] = record
            plugin_set.mark_broken(ep.name, _short_error(exc))
            continue
        _register(plugin_set, record, obj)
    for module_name in modules:
        record = PluginRecord(name=module_name, module=module_name)
        obj = load_plugin_module(module_name)
        if plugin_set.manager.is_registered(obj):
            continue  # an installed plugin's module, loaded already through its entry point
        _register(plugin_set, record, obj)
        if record.error is not None:
            raise _explicit_failed(module_name, record.error)
    return plugin_set


def _explicit_failed(name: str, error: str) -> PluginLoadError:
    return PluginLoadError(f"plugin module '{name}' failed: {error}",
                           hint="the module was named with -p, so it must load; fix its hooks (see docs/writing-plugins.md)")


def load_plugin_module(name: str) -> Any:
    """Import a module the user named as a plugin (``-p MODULE``) and check its hooks against
    the specs. Any failure, a ``sys.exit`` in the module included, is a
    :class:`PluginLoadError`: a module named explicitly must load."""
    module = _import_explicit(name)
    error = _hook_error(new_manager(), module, name)
    if error is not None:
        raise _explicit_failed(name, error)
    return module


def _import_explicit(name: str) -> Any:
    hint = "check the module name; -p MODULE imports it from PYTHONPATH or an installed package (the working folder is never searched)"
    try:
        return importlib.import_module(name)
    except SystemExit as exc:
        last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
        where = f" ({last[0].filename}:{last[0].lineno})" if last else ""
        raise PluginLoadError(f"plugin module '{name}' called sys.exit({exc.code!r}) while being imported{where}",
                              hint="a plugin module must not exit when imported; fix the module or leave out -p") from None
    except Exception as exc:  # a module's import may raise anything
        raise PluginLoadError(f"plugin module '{name}' could not be imported: {_short_error(exc)}", hint=hint) from None


def warn_broken(plugin_set: PluginSet, stream=None) -> None:
    """One warning line per broken plugin."""
    stream = stream or sys.stderr
    for record in plugin_set.broken():
        print(f"warning: plugin '{record.name}' skipped: {record.error}", file=stream)
    stream.flush()
