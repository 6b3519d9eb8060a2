"""The component registry: kind + name -> factory, with the plugin that registered it."""

from __future__ import annotations

import inspect
from typing import Any, Callable, Mapping

import attrs

from embedtune_core.errors import ComponentError, closest
from embedtune_core.plugins.hookspecs import REGISTRY_HOOKS
from embedtune_core.plugins.manager import PluginSet, _short_error

KINDS = tuple(REGISTRY_HOOKS)
KIND_LABELS = {
    "dataset_reader": "dataset reader",
    "negative_miner": "negative miner",
    "loss": "loss",
    "metric": "metric",
    "callback": "callback",
}
KIND_ALIASES = {
    "reader": "dataset_reader",
    "readers": "dataset_reader",
    "dataset-reader": "dataset_reader",
    "dataset-readers": "dataset_reader",
    "dataset_readers": "dataset_reader",
    "miner": "negative_miner",
    "miners": "negative_miner",
    "negative-miner": "negative_miner",
    "negative-miners": "negative_miner",
    "negative_miners": "negative_miner",
    "losses": "loss",
    "metrics": "metric",
    "callbacks": "callback",
}


def normalise_kind(kind: str) -> str:
    kind = kind.strip().lower()
    kind = KIND_ALIASES.get(kind, kind)
    if kind not in KINDS:
        guess = closest(kind, list(KINDS) + list(KIND_ALIASES))
        raise ComponentError(
            f"unknown component kind '{kind}'",
            hint=f"use one of: {', '.join(KINDS)}" + (f" (did you mean '{guess}'?)" if guess else ""),
        )
    return kind


def _first_line(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


@attrs.frozen
class Component:
    """One registered component."""

    kind: str
    name: str
    plugin: str
    factory: Callable[..., Any]
    description: str = ""
    meta: dict[str, Any] = attrs.field(factory=dict)

    @property
    def qualified_name(self) -> str:
        return f"{self.plugin}:{self.name}"

    def as_dict(self) -> dict[str, Any]:
        data = {
            "kind": self.kind,
            "name": self.name,
            "plugin": self.plugin,
            "qualified_name": self.qualified_name,
            "description": self.description,
        }
        for key, value in self.meta.items():
            if isinstance(value, (str, int, float, bool, type(None))):
                data[key] = value
            elif isinstance(value, (list, tuple, set, frozenset)):
                data[key] = sorted(value) if isinstance(value, (set, frozenset)) else list(value)
        return data


class Registry:
    """Every component of every kind, by name and by ``plugin:name``."""

    def __init__(self) -> None:
        self._components: dict[str, dict[str, list[Component]]] = {kind: {} for kind in KINDS}

    # -- building -----------------------------------------------------------------------------
    def add(
        self,
        kind: str,
        plugin: str,
        name: str,
        factory: Callable[..., Any],
        description: str | None = None,
        **meta: Any,
    ) -> Component:
        if not isinstance(name, str) or not name or ":" in name or name != name.strip():
            raise ComponentError(
                f"plugin '{plugin}' registered a {KIND_LABELS[kind]} with an invalid name {name!r}",
                hint="names are non-empty strings without ':' or surrounding spaces",
            )
        if not callable(factory):
            raise ComponentError(
                f"plugin '{plugin}' registered {KIND_LABELS[kind]} '{name}' with a factory that is not callable"
            )
        entries = self._components[kind].setdefault(name, [])
        if any(c.plugin == plugin for c in entries):
            raise ComponentError(f"plugin '{plugin}' registered {KIND_LABELS[kind]} '{name}' twice")
        component = Component(
            kind=kind,
            name=name,
            plugin=plugin,
            factory=factory,
            description=description if description is not None else _first_line(factory),
            meta=dict(meta),
        )
        entries.append(component)
        return component

    def remove_plugin(self, plugin: str) -> None:
        for by_name in self._components.values():
            for name in list(by_name):
                by_name[name] = [c for c in by_name[name] if c.plugin != plugin]
                if not by_name[name]:
                    del by_name[name]

    # -- lookup -------------------------------------------------------------------------------
    def names(self, kind: str) -> list[str]:
        return sorted(self._components[normalise_kind(kind)])

    def components(self, kind: str | None = None) -> list[Component]:
        kinds = KINDS if kind is None else (normalise_kind(kind),)
        out = []
        for k in kinds:
            for name in sorted(self._components[k]):
                out.extend(self._components[k][name])
        return out

    def duplicates(self) -> list[tuple[str, str, list[str]]]:
        return [
            (kind, name, [c.plugin for c in entries])
            for kind, by_name in self._components.items()
            for name, entries in sorted(by_name.items())
            if len(entries) > 1
        ]

    def has(self, kind: str, name: str) -> bool:
        try:
            self.get(kind, name)
        except ComponentError:
            return False
        return True

    def get(self, kind: str, name: str) -> Component:
        """The component ``name`` (or ``plugin:name``) of ``kind``; a clear error otherwise."""
        kind = normalise_kind(kind)
        label = KIND_LABELS[kind]
        by_name = self._components[kind]
        if ":" in name:
            plugin, _, short = name.partition(":")
            for component in by_name.get(short, []):
                if component.plugin == plugin:
                    return component
            qualified = [c.qualified_name for entries in by_name.values() for c in entries]
            raise ComponentError(
                f"unknown {label} '{name}'",
                hint=self._available_hint(name, qualified),
            )
        entries = by_name.get(name)
        if not entries:
            raise ComponentError(f"unknown {label} '{name}'", hint=self._available_hint(name, list(by_name)))
        if len(entries) > 1:
            plugins = " and ".join(f"'{c.plugin}'" for c in entries)
            raise ComponentError(
                f"{label} '{name}' is registered by both {plugins}",
                hint="name it as " + " or ".join(f"'{c.qualified_name}'" for c in entries),
            )
        return entries[0]

    @staticmethod
    def _available_hint(name: str, available: list[str]) -> str:
        guess = closest(name, available)
        listing = ", ".join(sorted(available)) or "none registered"
        return (f"did you mean '{guess}'? " if guess else "") + f"available: {listing}"

    def check_options(self, kind: str, name: str, options: Mapping[str, Any], *, positional: int = 0,
                      key: str | None = None) -> None:
        """Check ``options`` for component ``name`` without building it (no model is needed).

        Every option must name a parameter of the factory after its first ``positional``
        arguments (a loss factory's ``model``), unless the factory takes ``**options``. A
        ``check`` callable registered with the component (``register(name, factory,
        check=fn)``) is then called with the options to check their values; it receives the
        registry too when it has a ``registry`` parameter. ``key`` (e.g. ``loss.options``) is the
        config section the errors name.
        """
        component = self.get(kind, name)
        label = f"{KIND_LABELS[component.kind]} '{component.name}'"
        if not isinstance(options, Mapping):
            raise ComponentError(f"options for {label} must be a table, got {options!r}", key=key)
        try:
            params = list(inspect.signature(component.factory).parameters.values())
        except (TypeError, ValueError):
            params = None
        if params is not None and not any(p.kind is p.VAR_KEYWORD for p in params):
            named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
            leading = [p for p in params if p.kind is not p.KEYWORD_ONLY][:positional]
            accepted = [p.name for p in params if p.kind in named and p not in leading
                        and p.name not in {"self", "registry"}]
            for option in options:
                if option not in accepted:
                    guess = closest(str(option), accepted)
                    raise ComponentError(
                        f"{label} has no option '{option}'",
                        key=f"{key}.{option}" if key else None,
                        hint=(f"did you mean '{guess}'? " if guess else "")
                        + f"it accepts: {', '.join(accepted) or 'no options'}",
                    )
        check = component.meta.get("check")
        if callable(check):
            kwargs = dict(options)
            try:
                takes_registry = "registry" in inspect.signature(check).parameters
            except (TypeError, ValueError):
                takes_registry = False
            if takes_registry:
                kwargs["registry"] = self
            check(**kwargs)

    def create(self, kind: str, name: str, *args: Any, **options: Any) -> Any:
        """Look up ``name`` and call its factory. A factory that declares a ``registry`` keyword
        receives this registry. Bad options become a :class:`ComponentError` naming the component."""
        component = self.get(kind, name)
        factory = component.factory
        try:
            params = inspect.signature(factory).parameters
        except (TypeError, ValueError):
            params = {}
        if "registry" in params and "registry" not in options:
            options["registry"] = self
        try:
            inspect.signature(factory).bind(*args, **options)
        except TypeError as exc:
            accepted = [p for p in params if p not in {"self", "registry", "model", "source", "options"}]
            raise ComponentError(
                f"bad options for {KIND_LABELS[component.kind]} '{component.name}': {exc}",
                hint=f"it accepts: {', '.join(accepted) or 'no options'}",
            ) from None
        except ValueError:
            pass
        return factory(*args, **options)


def build_registry(plugin_set: PluginSet) -> Registry:
    """Call every plugin's registry hooks, one plugin at a time, so a failing pack is skipped
    (and recorded on ``plugin_set``) without losing the others."""
    registry = Registry()
    manager = plugin_set.manager
    for kind, hook_name in REGISTRY_HOOKS.items():
        caller = getattr(manager.hook, hook_name)
        for impl in list(caller.get_hookimpls()):
            plugin = impl.plugin_name
            if plugin_set.records.get(plugin) is not None and plugin_set.records[plugin].error:
                continue

            def register(name, factory, description=None, _kind=kind, _plugin=plugin, **meta):
                return registry.add(_kind, _plugin, name, factory, description, **meta)

            try:
                impl.function(register=register)
            except Exception as exc:  # a pack's registration may raise anything
                registry.remove_plugin(plugin)
                if plugin in plugin_set.records:
                    plugin_set.mark_broken(plugin, f"{hook_name} failed: {_short_error(exc)}")
                else:
                    manager.unregister(name=plugin)
    if plugin_set.strict:
        for kind, name, plugins in registry.duplicates():
            raise ComponentError(
                f"{KIND_LABELS[kind]} '{name}' is registered by both " + " and ".join(f"'{p}'" for p in plugins)
            )
    return registry


def load_registry(**kwargs: Any) -> tuple[PluginSet, Registry]:
    """Load plugins (see :func:`embedtune_core.plugins.manager.load_plugins`) and build the registry."""
    from embedtune_core.plugins.manager import load_plugins

    plugin_set = load_plugins(**kwargs)
    return plugin_set, build_registry(plugin_set)
