"""Options, declared once and checked from the declaration.

A component declares its options one way, whatever its kind: **its factory's signature**. Each
keyword parameter after the kind's leading arguments (a loss's model, a reader's source) is an
option, its default the default, its annotation the type (``float``, ``int``, ``bool``, ``str``,
``Literal["a", "b"]``, ``list[int]``, ``dict``, ``X | None``); ``Annotated[float, Range(gt=0),
"help text"]`` adds bounds and a help line. Unannotated parameters take the type of their
default. A factory that is an attrs class declares its fields the same way.

A parameter annotated with an attrs class is an **option set**: its fields are options like the
others (written flat in the config: ``relative_margin = 0.1``, not ``guards.relative_margin``),
the class checks them together (its ``__attrs_post_init__`` raises :class:`OptionError` for a
rule across options), and the factory receives the built instance. Several components share an
option set by annotating a parameter with the same class (every retrieval miner's
:class:`~embedtune_core.mining.guards.GuardOptions`).

:meth:`Declaration.resolve` checks the values once (the registry does it in preflight, before a
model is loaded); :meth:`Declaration.arguments` turns the resolved values into the factory's
keyword arguments without checking them again.

The run config's fields use the same :class:`OptionSpec` (built from their attrs metadata), so a
value from a config file, a ``-s`` override or a ``-O`` option is checked by one function,
:func:`coerce`. Text from the command line is accepted where a number or a flag is expected
(``"2e-5"``, ``"true"``), so what YAML or a shell hands over as a string still works.

Parameters the core fills itself (:data:`CONTEXT_PARAMETERS`: the registry, the run folder, quiet
mode) are never options.
"""

from __future__ import annotations

import inspect
import math
import re
import types
import typing
from typing import Any, Callable, Mapping

import attrs

from embedtune_core.errors import closest

#: parameters a factory may declare to receive them from the core; never options
CONTEXT_PARAMETERS = frozenset({"self", "registry", "run_dir", "quiet"})
TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0"})
NONE_WORDS = frozenset({"none", "null"})
#: the longest integer written out in digits that is accepted (far beyond any real setting)
MAX_DIGITS = 30
_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_FLOAT_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


class _Required:
    """The default of an option that has none."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


class OptionError(ValueError):
    """A value that does not fit its declaration (the caller adds where it came from).

    ``option`` names the option at fault and ``hint`` says how to fix it, when known:
    ``raise OptionError("range_max must be greater than range_min", option="range_max")``."""

    def __init__(self, message: str, *, option: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.option = option
        self.hint = hint


#: ``Annotated[str, MODEL]``: the option names a model (checked like ``model.name`` before a run)
MODEL = object()
#: ``Annotated[bool, STRICT]``: only a real true or false is accepted, never text such as "yes"
#: (a setting that turns on something risky, like running a model's own code)
STRICT = object()


@attrs.frozen
class Matches:
    """A pattern a text must match whole, used inside ``Annotated``:
    ``Annotated[str, Matches(r"cpu|cuda(:[0-9]+)?", "cpu or cuda:N")]``."""

    pattern: str
    description: str

    def check(self, value: str) -> None:
        if not re.fullmatch(self.pattern, value):
            raise OptionError(f"must be {self.description}, got {_show(value)}")


@attrs.frozen
class Range:
    """Bounds for a number, used inside ``Annotated``: ``Annotated[float, Range(gt=0)]``."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def check(self, value: float) -> None:
        if self.ge is not None and value < self.ge:
            raise OptionError(f"must be at least {_num(self.ge)}, got {_num(value)}")
        if self.gt is not None and value <= self.gt:
            raise OptionError(f"must be greater than {_num(self.gt)}, got {_num(value)}")
        if self.le is not None and value > self.le:
            raise OptionError(f"must be at most {_num(self.le)}, got {_num(value)}")
        if self.lt is not None and value >= self.lt:
            raise OptionError(f"must be less than {_num(self.lt)}, got {_num(value)}")


def _num(value: float) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() and abs(value) < 1e15 else str(value)


@attrs.frozen
class OptionSpec:
    """One option: its name, type, default, bounds and help.

    ``kind`` is ``bool``, ``int``, ``float``, ``str``, ``list``, ``dict`` or ``object`` (anything);
    ``item`` is the spec of a list's items; ``choices`` the allowed values of a ``Literal``.
    """

    name: str
    kind: type = object
    default: Any = REQUIRED
    optional: bool = False
    choices: tuple | None = None
    item: "OptionSpec | None" = None
    range: Range | None = None
    matches: Matches | None = None
    help: str = ""
    alternatives: tuple = ()  # for a union of several types: the spec of each
    model: bool = False  # the value names a model (a hub name or a local folder)
    strict: bool = False  # no conversion from text: the value must already have the type

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def describe(self) -> str:
        """The type in words: ``a number >= 0``, ``one of cosine, dot``, ``a list of integers``."""
        if self.alternatives:
            text = " or ".join(a.describe() for a in self.alternatives)
        elif self.choices:
            text = "one of " + ", ".join(map(str, self.choices))
        elif self.kind is list and self.item is not None:
            text = "a list of " + _PLURALS.get(self.item.kind, "values")
        else:
            text = _NAMES.get(self.kind, "a value")
        return text + (" or none" if self.optional else "")


_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string", list: "a list",
          dict: "a table", object: "a value"}
_PLURALS = {bool: "flags", int: "integers", float: "numbers", str: "strings", dict: "tables", object: "values"}


# -- reading declarations ----------------------------------------------------------------------
def spec_from_annotation(name: str, annotation: Any, default: Any = REQUIRED, help: str = "") -> OptionSpec:
    """The :class:`OptionSpec` of a parameter or field annotated with ``annotation``."""
    rng, texts, model, matches, strict = None, [], False, None, False
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        annotation, *extras = typing.get_args(annotation)
        for extra in extras:
            if isinstance(extra, Range):
                rng = extra
            elif isinstance(extra, Matches):
                matches = extra
            elif extra is MODEL:
                model = True
            elif extra is STRICT:
                strict = True
            elif isinstance(extra, str):
                texts.append(extra)
        origin = typing.get_origin(annotation)
    text = help or " ".join(texts)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(members) < len(typing.get_args(annotation))
        if len(members) == 1:
            inner = spec_from_annotation(name, members[0], default, help)
            return attrs.evolve(inner, optional=optional or inner.optional, range=rng or inner.range,
                                help=text or inner.help, model=model or inner.model, matches=matches or inner.matches)
        alternatives = tuple(attrs.evolve(spec_from_annotation(name, m), range=rng) for m in members)
        return OptionSpec(name=name, kind=object, default=default, optional=optional or default is None,
                          help=text, alternatives=alternatives, model=model)
    kind, choices, item = _kind_of(annotation, default)
    return OptionSpec(name=name, kind=kind, default=default, optional=default is None, choices=choices,
                      item=item, range=rng, help=text, model=model, matches=matches, strict=strict)


def _kind_of(annotation: Any, default: Any) -> tuple[type, tuple | None, OptionSpec | None]:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        choices = typing.get_args(annotation)
        return type(choices[0]) if choices else object, choices, None
    if origin in (list, tuple, typing.Sequence, set, frozenset) or annotation in (list, tuple):
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        item = spec_from_annotation("item", args[0]) if args else None
        return list, None, item
    if origin in (dict, typing.Mapping) or annotation in (dict, typing.Mapping):
        args = typing.get_args(annotation)
        return dict, None, spec_from_annotation("value", args[1]) if len(args) == 2 else None
    if annotation in (bool, int, float, str):
        return annotation, None, None
    if annotation in (inspect.Parameter.empty, typing.Any, object) and default not in (REQUIRED, None):
        for kind in (bool, int, float, str, list, dict):
            if isinstance(default, kind):
                return kind, None, None
    return object, None, None


def _hints(obj: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(obj, include_extras=True)
    except Exception:  # unresolvable string annotations: fall back to the defaults' types
        return {}


def _parameters(factory: Callable[..., Any], skip: int) -> tuple[list[inspect.Parameter], dict[str, Any]] | None:
    """The parameters of ``factory`` after its first ``skip`` positional ones (a class: of its
    ``__init__``, without ``self``), and their resolved annotations; None when it has no
    readable signature."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        params = list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError):
        return None
    if inspect.isclass(factory) and params and params[0].name == "self":
        params = params[1:]
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    leading = {p.name for p in positional[:skip]}
    return [p for p in params if p.name not in leading], _hints(target)


def option_set(annotation: Any) -> type | None:
    """The attrs class a parameter is annotated with (an option set), or None."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation if inspect.isclass(annotation) and attrs.has(annotation) else None


def class_specs(cls: type, *, skip: int = 0) -> dict[str, OptionSpec]:
    """The options an attrs class declares: one per field, after its first ``skip`` fields."""
    hints = _hints(cls)
    specs = {}
    for field in [f for f in attrs.fields(cls) if f.init][skip:]:
        if field.name.startswith("_"):
            continue
        default = REQUIRED if field.default is attrs.NOTHING else field.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = default.factory() if not default.takes_self else REQUIRED
        annotation = hints.get(field.name, field.type if field.type is not None else inspect.Parameter.empty)
        specs[field.name] = spec_from_annotation(field.name, annotation, default, field.metadata.get("help", ""))
    return specs


def _attrs_init(factory: Any) -> bool:
    """Whether ``factory`` is an attrs class with the ``__init__`` attrs wrote for its fields."""
    code = getattr(getattr(factory, "__init__", None), "__code__", None)
    return inspect.isclass(factory) and attrs.has(factory) and code is not None \
        and code.co_filename.startswith("<attrs generated")


class DeclarationError(TypeError):
    """A factory whose signature cannot declare options (a name given twice)."""


@attrs.frozen
class Declaration:
    """Every option a factory accepts, read from its signature (see the module doc).

    ``sets`` maps each option-set parameter to its attrs class (the class's fields are among
    ``specs``); ``open`` is true for a factory that also takes ``**options`` it does not declare."""

    specs: dict[str, OptionSpec]
    open: bool = False
    sets: dict[str, type] = attrs.field(factory=dict)

    @classmethod
    def of(cls, factory: Callable[..., Any], *, skip: int = 0) -> "Declaration":
        """The declaration of ``factory``'s options, after its first ``skip`` positional
        parameters (the kind's leading arguments). An attrs class's fields are its parameters."""
        if _attrs_init(factory):
            return cls(specs=class_specs(factory, skip=skip))
        found = _parameters(factory, skip)
        if found is None:
            return cls(specs={}, open=True)
        params, hints = found
        specs: dict[str, OptionSpec] = {}
        sets: dict[str, type] = {}
        for p in params:
            if p.name in CONTEXT_PARAMETERS or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            annotation = hints.get(p.name, p.annotation)
            group = option_set(annotation)
            declared = class_specs(group) if group is not None else {
                p.name: spec_from_annotation(p.name, annotation, REQUIRED if p.default is p.empty else p.default)}
            if group is not None:
                sets[p.name] = group
            for name, spec in declared.items():
                if name in specs:
                    raise DeclarationError(f"option '{name}' is declared twice (parameter '{p.name}')")
                specs[name] = spec
        return cls(specs=specs, open=any(p.kind is p.VAR_KEYWORD for p in params), sets=sets)

    def resolve(self, options: Mapping[str, Any], *, label: str, noun: str = "option") -> dict[str, Any]:
        """Every declared option with its checked value (defaults filled in), each option set
        checked by its class. ``label`` names the owner in messages (``loss 'mnrl'``), ``noun``
        what the values are. Raises :class:`OptionError` with ``option`` set to the one at fault."""
        if not isinstance(options, Mapping):
            raise OptionError(f"{noun}s for {label} must be a table, got {_show(options)}")
        accepted = list(self.specs)
        for option in options:
            if option not in self.specs and not self.open:
                guess = closest(str(option), accepted)
                raise OptionError(f"{label} has no {noun} '{option}'", option=str(option),
                                  hint=(f"did you mean '{guess}'? " if guess else "")
                                  + f"it accepts: {', '.join(accepted) or 'no options'}")
        values: dict[str, Any] = {}
        for name, spec in self.specs.items():
            if name in options:
                try:
                    values[name] = coerce(options[name], spec)
                except OptionError as exc:
                    raise OptionError(f"{label} {noun} '{name}' {exc}", option=name, hint=exc.hint) from None
            elif spec.required:
                raise OptionError(f"{label} needs {noun} '{name}' ({spec.describe()})", option=name)
            else:
                values[name] = spec.default
        if self.open:
            values.update({k: v for k, v in options.items() if k not in self.specs})
        self.arguments(values, label=label)  # each option set checks its fields together
        return values

    def arguments(self, values: Mapping[str, Any], *, label: str = "the component") -> dict[str, Any]:
        """The factory's keyword arguments for resolved ``values``: each option set built from
        its fields (an :class:`OptionError` from its checks names ``label``)."""
        kwargs = dict(values)
        for parameter, group in self.sets.items():
            fields = {f.name: kwargs.pop(f.name) for f in attrs.fields(group) if f.init and f.name in kwargs}
            try:
                kwargs[parameter] = group(**fields)
            except OptionError as exc:
                raise OptionError(f"{label}: {exc}", option=exc.option, hint=exc.hint) from None
        return kwargs


# -- checking one value ------------------------------------------------------------------------
def coerce(value: Any, spec: OptionSpec) -> Any:
    """``value`` checked against ``spec`` and converted where a string stands for a number or a
    flag; :class:`OptionError` (``"must be ..., got ..."``) otherwise."""
    if value is None or (isinstance(value, str) and value.strip().lower() in NONE_WORDS
                         and (spec.kind is not str or spec.optional)):
        if spec.optional:
            return None
        raise OptionError(f"must be {spec.describe()}, not empty")
    if spec.strict and not isinstance(value, spec.kind if spec.kind is not object else object):
        raise OptionError(f"must be {spec.describe()} written as such, got {_show(value)}"
                          + (" (text)" if isinstance(value, str) else ""))
    if spec.strict and spec.kind is bool and not isinstance(value, bool):
        raise OptionError(f"must be true or false, got {_show(value)}")
    numeric = {spec.kind, *(a.kind for a in spec.alternatives)} & {int, float}
    if spec.optional and numeric and (value is False or str(value).strip().lower() in ("off", "false")):
        return None  # an optional number turned off
    if spec.alternatives:
        return _first_fit(value, spec)
    if spec.kind is bool:
        result = _flag(value)
    elif spec.kind is int:
        result = _integer(value)
    elif spec.kind is float:
        result = _number(value)
    elif spec.kind is str:
        result = _text(value)
    elif spec.kind is list:
        result = _items(value, spec)
    elif spec.kind is dict:
        result = _table(value, spec)
    else:
        result = value
    if spec.choices is not None and result not in spec.choices:
        guess = closest(str(result), [str(c) for c in spec.choices])
        raise OptionError(f"must be one of {', '.join(map(str, spec.choices))}, got {_show(value)}"
                          + (f" (did you mean '{guess}'?)" if guess else ""))
    if spec.range is not None and isinstance(result, (int, float)) and not isinstance(result, bool):
        spec.range.check(result)
    if spec.matches is not None and isinstance(result, str):
        spec.matches.check(result)
    return result


def _first_fit(value: Any, spec: OptionSpec) -> Any:
    """The value as the first alternative it fits; a number out of that alternative's range (text
    such as ``"-1e-5"`` included) gets the range's message."""
    numeric = (isinstance(value, (int, float)) and not isinstance(value, bool)) or \
        (isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()) is not None)
    number_error = None
    for alternative in spec.alternatives:
        try:
            converted = coerce(value, attrs.evolve(alternative, optional=False, range=None))
        except OptionError as exc:
            if numeric and alternative.kind in (int, float) and number_error is None:
                number_error = exc  # a number the numeric alternative refused (not finite, too large)
            continue
        return coerce(converted, attrs.evolve(alternative, optional=False))
    if number_error is not None and any(word in str(number_error) for word in ("finite", "too large")):
        raise number_error
    raise OptionError(f"must be {spec.describe()}, got {_show(value)}")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, str)) and str(value).strip().lower() in TRUE_WORDS | FALSE_WORDS:
        return str(value).strip().lower() in TRUE_WORDS
    raise OptionError(f"must be true or false, got {_show(value)}")


def parse_flag(value: Any) -> bool:
    """A boolean given as a bool or as true/false, yes/no, on/off, 1/0 (any case); ValueError
    otherwise."""
    try:
        return _flag(value)
    except OptionError:
        raise ValueError(f"not a boolean: {value!r}") from None


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise OptionError(f"must be an integer, got {_show(value)}")
    if isinstance(value, int):
        if abs(value) >= 10 ** MAX_DIGITS:
            raise OptionError(f"is too large ({len(str(abs(value)))} digits)")
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        digits = value.strip().lstrip("+-")
        if len(digits) > MAX_DIGITS:
            raise OptionError(f"is too large ({len(digits)} digits)")
        return int(value.strip())
    raise OptionError(f"must be an integer, got {_show(value)}")


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise OptionError(f"must be a number, got {_show(value)}")
    if isinstance(value, int):
        if abs(value) >= 10 ** MAX_DIGITS:
            raise OptionError(f"is too large ({len(str(abs(value)))} digits)")
        return float(value)
    if isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()) and len(value.strip()) <= 64:
        value = float(value.strip())
    if isinstance(value, float):
        if not math.isfinite(value):
            raise OptionError(f"must be a finite number, got {_show(value)}")
        return value
    raise OptionError(f"must be a number, got {_show(value)}")


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise OptionError(f"must be a string, got {_show(value)}")
    if "\x00" in value:
        raise OptionError("must not contain a NUL character")
    return value


def _table(value: Any, spec: OptionSpec) -> dict:
    if not isinstance(value, Mapping):
        raise OptionError(f"must be a table, got {_show(value)}")
    if spec.item is None:
        return dict(value)
    out = {}
    for key, item in value.items():
        try:
            out[str(key)] = coerce(item, spec.item)
        except OptionError as exc:
            raise OptionError(f"entry '{key}' {exc}") from None
    return out


def _items(value: Any, spec: OptionSpec) -> list:
    if isinstance(value, str):
        value = [part.strip() for part in value.strip().strip("[]").split(",") if part.strip()]
    elif isinstance(value, (tuple, set, frozenset)):
        value = list(value)
    elif not isinstance(value, list):
        value = [value]
    if spec.item is None:
        return list(value)
    out = []
    for position, item in enumerate(value):
        try:
            out.append(coerce(item, spec.item))
        except OptionError as exc:
            raise OptionError(f"item {position + 1} {exc}") from None
    return out

