"""Meta-tests: every hook is documented with its exact signature and exercised by a test."""

import inspect
import pathlib
import re

from embedtune_core import hookspecs

ROOT = pathlib.Path(__file__).resolve().parent.parent
HOOKS = sorted(
    name for name, obj in vars(hookspecs).items()
    if callable(obj) and hasattr(obj, "embedtune_spec")
)


def signature(name):
    fn = getattr(hookspecs, name)
    return f"{name}({', '.join(inspect.signature(fn).parameters)})"


def test_there_are_hooks():
    assert "register_losses" in HOOKS and "run_started" in HOOKS


def test_every_hook_is_documented_with_its_exact_signature():
    text = (ROOT / "docs" / "hooks.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^### `([^`]+)`", text, flags=re.M))
    for name in HOOKS:
        assert signature(name) in headings, f"docs/hooks.md lacks '### `{signature(name)}`'"
    documented = {h.split("(")[0] for h in headings}
    assert documented == set(HOOKS), documented ^ set(HOOKS)


def test_every_hook_has_a_docstring():
    for name in HOOKS:
        assert (getattr(hookspecs, name).__doc__ or "").strip(), name


def test_every_hook_has_a_test():
    sources = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").rglob("test_*.py"))
    for name in HOOKS:
        assert re.search(rf"def test_hook_{name}\b", sources), f"no test_hook_{name} in tests/"


def test_hookspec_parameters_are_plain():
    for name in HOOKS:
        for param in inspect.signature(getattr(hookspecs, name)).parameters.values():
            assert param.kind is param.POSITIONAL_OR_KEYWORD and param.default is param.empty, (name, param)
