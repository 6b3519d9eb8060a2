"""Calling what plugins give: hooks the pluggy way, each plugin's code contained.

**Hooks.** Every hook implementation is registered behind a guard (:class:`GuardedManager`
does it for any ``register``), and hooks are called the way pluggy calls them,
``manager.hook.NAME(**kwargs)``: ``tryfirst``/``trylast`` keep their order and ``wrapper`` /
``hookwrapper`` implementations wrap the others. The guard sets which plugin is acting (so
``register`` knows who registered a component) and catches what the plugin's code raises, a
``sys.exit`` included. :func:`call_hook` is the one helper the core calls hooks through:

- ``isolate=True`` (the registry hooks): a failing implementation is recorded and skipped, the
  other plugins still run; the caller gets the failures;
- ``isolate=False`` (lifecycle hooks): the first failure stops the call and becomes one
  :class:`~embedtune_core.errors.PluginError` naming the plugin and the hook.

**Components.** :func:`contained` wraps every call into a component's code (a factory, a
miner's ``mine``, a metric's ``compute``, a step's ``run``...): an exception, ``SystemExit``
included, becomes one :class:`~embedtune_core.errors.ComponentError` naming the component, its
plugin and what it was doing; an :class:`~embedtune_core.errors.EmbedtuneError` the component
raised itself (a reader's bad record) passes through, with the plugin named when it names none.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import os
import traceback
from typing import Any, Callable, Iterator

import attrs
import pluggy

from embedtune_core.errors import ComponentError, EmbedtuneError, PluginError

#: the plugin whose hook implementation is running (None outside hooks)
_ACTING: contextvars.ContextVar[str | None] = contextvars.ContextVar("embedtune_acting_plugin", default=None)
#: the :func:`call_hook` in progress (how failures are handled)
_CALL: contextvars.ContextVar["HookCall | None"] = contextvars.ContextVar("embedtune_hook_call", default=None)
#: set to show the full traceback of a plugin's failure (for its author)
DEBUG_ENV = "EMBEDTUNE_DEBUG"


def acting_plugin() -> str | None:
    """The name of the plugin whose hook implementation is running now, or None."""
    return _ACTING.get()


def short_error(exc: BaseException) -> str:
    """``TypeError: message (file.py:12)``: the exception and where it was raised. A
    ``SystemExit`` reads ``called sys.exit(CODE)``."""
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" ({last[0].filename}:{last[0].lineno})" if last and not last[0].filename.startswith("<frozen") else ""
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r}){where}"
    return f"{type(exc).__name__}: {exc}{where}"


def debugging() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")


@attrs.frozen
class HookFailure:
    """A hook implementation that raised: the plugin, the hook and the exception."""

    plugin: str
    hook: str
    error: BaseException

    def describe(self) -> str:
        return f"{self.hook} failed: {short_error(self.error)}"


class HookFailed(Exception):
    """Raised through pluggy to stop a non-isolated hook call at its first failure."""

    def __init__(self, failure: HookFailure) -> None:
        super().__init__(failure.describe())
        self.failure = failure


@attrs.define
class HookCall:
    isolate: bool
    failures: list[HookFailure] = attrs.field(factory=list)


@contextlib.contextmanager
def _as(plugin: str) -> Iterator[None]:
    token = _ACTING.set(plugin)
    try:
        yield
    finally:
        _ACTING.reset(token)


def _failed(plugin: str, hook: str, exc: BaseException) -> None:
    """Record a failure of ``plugin`` in ``hook``; raise to stop the call unless it isolates."""
    failure = HookFailure(plugin, hook, exc)
    call = _CALL.get()
    if call is not None and call.isolate:
        call.failures.append(failure)
        return
    raise HookFailed(failure) from exc


def _guard_call(function: Callable[..., Any], plugin: str, hook: str) -> Callable[..., Any]:
    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        with _as(plugin):
            try:
                return function(*args, **kwargs)
            except HookFailed:
                raise
            except (Exception, SystemExit) as exc:  # a plugin's code may raise anything
                _failed(plugin, hook, exc)
                return None

    return guarded


def _step(generator: Any, plugin: str, hook: str, send: Any = None, throw: BaseException | None = None) -> tuple[str, Any]:
    """Advance a plugin's wrapper generator once (send ``send``, or throw ``throw`` into it):
    ``("yielded", value)``, ``("returned", value)`` or ``("failed", None)`` (recorded). An
    exception thrown in that the generator lets through is raised again."""
    with _as(plugin):
        try:
            value = generator.throw(throw) if throw is not None else generator.send(send)
        except StopIteration as stop:
            return "returned", stop.value
        except HookFailed:
            raise
        except BaseException as exc:  # noqa: BLE001 - a plugin's code may raise anything
            if throw is not None and exc is throw:
                raise
            if isinstance(exc, (KeyboardInterrupt, GeneratorExit)):
                raise
            _failed(plugin, hook, exc)
            return "failed", None
    return "yielded", value


def _start(function: Callable[..., Any], args: tuple, kwargs: dict, plugin: str, hook: str) -> Any:
    """A plugin's wrapper generator advanced to its ``yield``; None when it failed (recorded)."""
    with _as(plugin):
        try:
            generator = function(*args, **kwargs)
        except (Exception, SystemExit) as exc:
            _failed(plugin, hook, exc)
            return None
    state, _ = _step(generator, plugin, hook)
    if state == "returned":
        _failed(plugin, hook, RuntimeError("the wrapper returned without yielding"))
    return generator if state == "yielded" else None


def _guard_wrapper(function: Callable[..., Any], plugin: str, hook: str) -> Callable[..., Any]:
    """A guard for a ``wrapper=True`` / ``hookwrapper=True`` implementation (a generator): the
    plugin's code before and after its ``yield`` is contained; what the inner implementations
    return or raise reaches it exactly as pluggy hands it over. A wrapper that fails is left out
    and the call goes on as if it were not there."""

    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        generator = _start(function, args, kwargs, plugin, hook)
        if generator is None:
            return (yield)
        try:
            outcome = yield
        except BaseException as inner:  # noqa: BLE001 - handed to the plugin's wrapper, as pluggy does
            state, value = _step(generator, plugin, hook, throw=inner)
            if not _returned(state, plugin, hook):
                raise inner
            return value
        state, value = _step(generator, plugin, hook, send=outcome)
        return value if _returned(state, plugin, hook) else outcome

    return guarded


def _returned(state: str, plugin: str, hook: str) -> bool:
    """Whether a wrapper's generator returned after its one yield; one that yields again fails."""
    if state == "yielded":
        _failed(plugin, hook, RuntimeError("the wrapper yielded more than once"))
    return state == "returned"


def guarded_plugin(manager: pluggy.PluginManager, plugin: Any, name: str) -> Any:
    """An object with ``plugin``'s hook implementations, each behind a guard (and the same
    hookimpl options), for ``manager`` to register instead of ``plugin``."""
    proxy = GuardedPlugin(plugin)
    for attr in dir(plugin):
        opts = manager.parse_hookimpl_opts(plugin, attr)
        if opts is None:
            continue
        function = getattr(plugin, attr)
        hook = opts.get("specname") or attr
        wraps = opts.get("wrapper") or opts.get("hookwrapper")
        guard = (_guard_wrapper if wraps and inspect.isgeneratorfunction(function) else _guard_call)(function, name, hook)
        guard.__signature__ = inspect.signature(function)  # type: ignore[attr-defined]
        setattr(guard, manager.project_name + "_impl", dict(opts))
        setattr(proxy, attr, guard)
    return proxy


class GuardedPlugin:
    """What the manager registers for a plugin: its guarded hook implementations; ``plugin`` is
    the plugin itself."""

    def __init__(self, plugin: Any) -> None:
        self.plugin = plugin

    def __repr__(self) -> str:
        return f"<guarded {self.plugin!r}>"


class GuardedManager(pluggy.PluginManager):
    """pluggy's plugin manager, registering every plugin behind guards. Methods that take or
    return a plugin speak of the plugin itself, never of its guard."""

    def __init__(self, project_name: str) -> None:
        super().__init__(project_name)
        self._guards: dict[int, tuple[Any, GuardedPlugin]] = {}

    def register(self, plugin: Any, name: str | None = None) -> str | None:
        if plugin is None:
            return None
        if id(plugin) in self._guards and self._guards[id(plugin)][0] is plugin:
            raise ValueError(f"Plugin already registered under a different name: {name}={plugin}")
        name = name or self.get_canonical_name(plugin)
        proxy = guarded_plugin(self, plugin, name)
        registered = super().register(proxy, name)
        if registered is not None:
            self._guards[id(plugin)] = (plugin, proxy)
        return registered

    def _guard_of(self, plugin: Any) -> Any:
        entry = self._guards.get(id(plugin))
        return entry[1] if entry is not None and entry[0] is plugin else plugin

    def unregister(self, plugin: Any = None, name: str | None = None) -> Any:
        guard = self._guard_of(plugin) if plugin is not None else super().get_plugin(name) if name else None
        removed = super().unregister(guard, name)
        if isinstance(removed, GuardedPlugin):
            self._guards.pop(id(removed.plugin), None)
            return removed.plugin
        return removed

    def is_registered(self, plugin: Any) -> bool:
        return super().is_registered(self._guard_of(plugin))

    def get_name(self, plugin: Any) -> str | None:
        return super().get_name(self._guard_of(plugin))

    def get_hookcallers(self, plugin: Any) -> Any:
        return super().get_hookcallers(self._guard_of(plugin))

    def get_plugin(self, name: str) -> Any:
        found = super().get_plugin(name)
        return found.plugin if isinstance(found, GuardedPlugin) else found

    def get_plugins(self) -> set[Any]:
        return {p.plugin if isinstance(p, GuardedPlugin) else p for p in super().get_plugins()}

    def list_name_plugin(self) -> list[tuple[str, Any]]:
        return [(n, p.plugin if isinstance(p, GuardedPlugin) else p) for n, p in super().list_name_plugin()]


def call_hook(manager: pluggy.PluginManager, name: str, *, isolate: bool, **kwargs: Any) -> list[HookFailure]:
    """Call hook ``name`` with ``kwargs`` as pluggy does (order, wrappers). With ``isolate``, a
    failing implementation is skipped and returned among the failures; without, the first
    failure raises :class:`~embedtune_core.errors.PluginError` naming the plugin."""
    call = HookCall(isolate=isolate)
    token = _CALL.set(call)
    try:
        getattr(manager.hook, name)(**kwargs)
    except HookFailed as exc:
        raise plugin_error(exc.failure) from (exc.failure.error if debugging() else None)
    finally:
        _CALL.reset(token)
    return call.failures


def plugin_error(failure: HookFailure) -> PluginError:
    return PluginError(f"plugin '{failure.plugin}' failed in {failure.hook}: {short_error(failure.error)}",
                       hint=f"fix or uninstall the pack, or skip it with -p no:{failure.plugin}")


@contextlib.contextmanager
def contained(component: Any, doing: str, *, step: str | None = None) -> Iterator[None]:
    """Run a call into ``component``'s code (``doing``: "building it", "mining"...): what it
    raises becomes one :class:`ComponentError` naming the component, its plugin and ``step``;
    a ``KeyboardInterrupt`` passes as it is. With ``EMBEDTUNE_DEBUG=1`` the original
    traceback is chained."""
    try:
        yield
    except EmbedtuneError as exc:
        if getattr(exc, "plugin", None) is None:
            exc.plugin = component.plugin
        raise
    except (OSError, UnicodeError) as exc:  # the system refusing the user's path is no bug of the plugin
        from embedtune_core.io import os_refusal

        error = os_refusal(exc, getattr(exc, "filename", None) or ".", f"{component.label} was {doing}")
        if error is None:
            raise _component_failed(component, doing, step, exc) from (exc if debugging() else None)
        error.plugin = component.plugin
        raise error from None
    except (Exception, SystemExit) as exc:  # a component's code may raise anything
        raise _component_failed(component, doing, step, exc) from (exc if debugging() else None)


def _component_failed(component: Any, doing: str, step: str | None, exc: BaseException) -> ComponentError:
    where = f" in step '{step}'" if step else ""
    return ComponentError(
        f"{component.label} from plugin '{component.plugin}' failed while {doing}{where}: {short_error(exc)}",
        hint=f"this is a bug in plugin '{component.plugin}'; set {DEBUG_ENV}=1 to see its traceback, or use "
             f"another {component.kind_label}",
    )


def contain_methods(obj: Any, component: Any, prefix: str = "on_") -> Any:
    """Route every method of ``obj`` whose name starts with ``prefix`` (a callback's events)
    through :func:`contained`, on the object itself: its type and attributes stay as they are, so
    code that checks them (the Trainer's saved callback state) sees the same object."""
    for name in dir(type(obj)):
        method = getattr(obj, name, None) if name.startswith(prefix) else None
        if not callable(method):
            continue

        def guarded(*args: Any, _method: Any = method, _name: str = name, **kwargs: Any) -> Any:
            with contained(component, f"handling {_name}"):
                return _method(*args, **kwargs)

        try:
            setattr(obj, name, guarded)
        except (AttributeError, TypeError):  # __slots__ or a read-only attribute: left as it is
            return obj
    return obj
