"""The component registry: kind + name -> factory, with the plugin that registered it."""

from __future__ import annotations

import inspect
from typing import Any, Callable, Mapping

import attrs

from embedtune_core.errors import ComponentError, closest
from embedtune_core.plugins.hookspecs import REGISTRY_HOOKS
from embedtune_core.plugins.manager import PluginSet, _short_error
from embedtune_core.plugins.metadata import build_info
from embedtune_core.plugins.options import CONTEXT_PARAMETERS, Declaration, OptionError

KINDS = tuple(REGISTRY_HOOKS)
KIND_LABELS = {
    "dataset_reader": "dataset reader",
    "negative_miner": "negative miner",
    "loss": "loss",
    "metric": "metric",
    "callback": "callback",
    "exporter": "exporter",
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
    "exporters": "exporter",
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


#: how many leading positional arguments each kind's factory takes before its options
POSITIONAL = {"dataset_reader": 2, "negative_miner": 0, "loss": 1, "metric": 0, "callback": 0, "exporter": 0}


@attrs.frozen(eq=False)
class Component:
    """One registered component: its factory, its typed metadata (``info``, see
    :mod:`embedtune_core.plugins.metadata`) and the declaration of its options."""

    kind: str
    name: str
    plugin: str
    factory: Callable[..., Any]
    description: str = ""
    info: Any = None
    declaration: Declaration | None = None

    @property
    def qualified_name(self) -> str:
        return f"{self.plugin}:{self.name}"

    @property
    def label(self) -> str:
        """``loss 'mnrl'``: how messages name it."""
        return f"{KIND_LABELS[self.kind]} '{self.name}'"

    def as_dict(self) -> dict[str, Any]:
        data = {
            "kind": self.kind,
            "name": self.name,
            "plugin": self.plugin,
            "qualified_name": self.qualified_name,
            "description": self.description,
        }
        for key, value in attrs.asdict(self.info, recurse=False).items():
            if isinstance(value, (str, int, float, bool, type(None))):
                data[key] = value
            elif isinstance(value, (list, tuple)):
                data[key] = list(value)
        if self.declaration is not None:
            data["options"] = {name: {"type": spec.describe(), "default": None if spec.required else spec.default,
                                      "help": spec.help} for name, spec in self.declaration.specs.items()}
        return data


class Registry:
    """Every component of every kind, by name and by ``plugin:name``."""

    def __init__(self, builtin_plugins: frozenset[str] = frozenset()) -> None:
        self._components: dict[str, dict[str, list[Component]]] = {kind: {} for kind in KINDS}
        self.builtin_plugins = builtin_plugins

    # -- building -----------------------------------------------------------------------------
    def add(
        self,
        kind: str,
        plugin: str,
        name: str,
        factory: Callable[..., Any],
        description: str | None = None,
        **metadata: Any,
    ) -> Component:
        """Record a component; its metadata and its options' declaration are checked now."""
        label = f"plugin '{plugin}' registered {KIND_LABELS[kind]} '{name}'"
        if not isinstance(name, str) or not name or ":" in name or name != name.strip():
            raise ComponentError(
                f"plugin '{plugin}' registered a {KIND_LABELS[kind]} with an invalid name {name!r}",
                hint="names are non-empty strings without ':' or surrounding spaces",
            )
        if not callable(factory):
            raise ComponentError(f"{label} with a factory that is not callable")
        entries = self._components[kind].setdefault(name, [])
        if any(c.plugin == plugin for c in entries):
            raise ComponentError(f"plugin '{plugin}' registered {KIND_LABELS[kind]} '{name}' twice")
        info = build_info(kind, metadata, label=label)
        declaration = None
        if kind != "dataset_reader":  # a reader's options are its own (column mappings, splits)
            declaration = Declaration.of(factory, getattr(info, "options", None), skip=POSITIONAL[kind])
        component = Component(kind=kind, name=name, plugin=plugin, factory=factory,
                              description=description if description is not None else _first_line(factory),
                              info=info, declaration=declaration)
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
        if not isinstance(name, str):
            raise ComponentError(f"{label} name must be a string, got {name!r}")
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

    def default_for(self, kind: str, dataset_type: str) -> Component | None:
        """The component of ``kind`` declared ``default_for`` ``dataset_type``. A pack's
        declaration wins over a built-in's; two packs claiming the same type is an error."""
        kind = normalise_kind(kind)
        claims = [c for c in self.components(kind) if dataset_type in (getattr(c.info, "default_for", ()) or ())]
        packs = [c for c in claims if c.plugin not in self.builtin_plugins]
        chosen = packs or claims
        if len(chosen) > 1:
            raise ComponentError(
                f"{len(chosen)} {KIND_LABELS[kind]}s are declared the default for {dataset_type} data: "
                + ", ".join(c.qualified_name for c in chosen),
                hint=f"name the {KIND_LABELS[kind]} to use in the config",
            )
        return chosen[0] if chosen else None

    # -- options --------------------------------------------------------------------------------
    def resolve_options(self, kind: str, name: str, options: Mapping[str, Any] | None, *,
                        key: str | None = None) -> dict[str, Any]:
        """Every option of component ``name`` with its checked value, defaults filled in; nothing
        is built. A wrapping component (metadata ``wraps="OPTION"``) has the component named by
        ``OPTION`` checked too, with its options in ``OPTION_options``. Errors name ``key``
        (e.g. ``loss.options``) and the option."""
        component = self.get(kind, name)
        try:
            values = component.declaration.resolve({} if options is None else options, label=component.label)
        except OptionError as exc:
            option = getattr(exc, "option", None)
            raise ComponentError(str(exc), key=f"{key}.{option}" if key and option else key,
                                 hint=getattr(exc, "hint", None)) from None
        wraps = getattr(component.info, "wraps", None)
        if wraps:
            values.update(self._resolve_wrapped(component, wraps, values, key))
        return values

    def _resolve_wrapped(self, component: Component, wraps: str, values: dict[str, Any],
                         key: str | None) -> dict[str, Any]:
        inner_key = f"{key}.{wraps}" if key else None
        inner_name = values.get(wraps)
        try:
            inner = self.get(component.kind, inner_name)
        except ComponentError as exc:
            raise ComponentError(exc.message, key=inner_key, hint=exc.hint) from None
        if getattr(inner.info, "wraps", None):
            raise ComponentError(f"{component.label} cannot wrap '{inner_name}', which wraps one itself",
                                 key=inner_key, hint=f"name a plain {KIND_LABELS[component.kind]}")
        options_key = f"{wraps}_options"
        inner_options = self.resolve_options(component.kind, inner_name, values.get(options_key) or {},
                                             key=f"{key}.{options_key}" if key else None)
        return {options_key: inner_options}

    def chain(self, kind: str, name: str, options: Mapping[str, Any] | None = None) -> list[Component]:
        """The component and, for a wrapping one, the components it wraps (outermost first)."""
        component = self.get(kind, name)
        wraps = getattr(component.info, "wraps", None)
        if not wraps or not isinstance((options or {}).get(wraps), str):
            return [component]
        inner = options[wraps]
        return [component] + self.chain(kind, inner, (options or {}).get(f"{wraps}_options") or {})

    def create(self, kind: str, name: str, *args: Any, context: Mapping[str, Any] | None = None,
               **options: Any) -> Any:
        """Check ``options`` against the declaration of ``name`` and call its factory with them.

        ``args`` are the kind's leading arguments (a loss's model, a reader's source and
        options); ``context`` values (``run_dir``, ``quiet``) go to a factory that declares
        them, and a factory declaring ``registry`` receives this registry."""
        component = self.get(kind, name)
        if component.declaration is not None:
            options = self.resolve_options(kind, name, options)
        return component.factory(*args, **options, **self._context(component.factory, context))

    def _context(self, factory: Callable[..., Any], context: Mapping[str, Any] | None) -> dict[str, Any]:
        target = factory.__init__ if inspect.isclass(factory) else factory
        try:
            params = inspect.signature(target).parameters
        except (TypeError, ValueError):
            return {}
        given = {"registry": self, **(context or {})}
        return {name: value for name, value in given.items() if name in params and name in CONTEXT_PARAMETERS}


def build_registry(plugin_set: PluginSet) -> Registry:
    """Call every plugin's registry hooks, one plugin at a time, so a failing pack is skipped
    (and recorded on ``plugin_set``) without losing the others."""
    registry = Registry(frozenset(r.name for r in plugin_set.records.values() if r.builtin))
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
