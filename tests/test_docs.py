"""Meta-tests: every hook is documented with its exact signature and exercised by a test."""

import inspect
import pathlib
import re

from embedtune_core.plugins import hookspecs

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


def test_generated_docs_are_current():
    """docs/cli.md and docs/configuration.md match the real --help and config classes."""
    from embedtune_core import docgen

    for name, render in docgen.DOCS.items():
        current = (ROOT / "docs" / name).read_text(encoding="utf-8")
        assert current == render(), f"docs/{name} is stale: run python -m embedtune_core.docgen"


def test_cli_reference_covers_every_command():
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    for command in ("run", "init", "advise", "data validate", "data stats", "data list", "train", "eval",
                    "metrics", "mine", "plugins", "components", "config show", "config validate", "new-pack"):
        assert f"## `embedtune {command}`" in text, command


def test_every_metadata_key_is_documented_under_its_hook():
    """docs/hooks.md has a row for every metadata keyword each kind accepts, under its hook."""
    from embedtune_core.plugins.kinds import KINDS, describe_metadata

    text = (ROOT / "docs" / "hooks.md").read_text(encoding="utf-8")
    sections = dict(re.findall(r"^### `(\w+)\(register\)`\n(.*?)(?=^##)", text, flags=re.M | re.S))
    for kind, keys in describe_metadata().items():
        section = sections[KINDS[kind].hook]
        documented = set(re.findall(r"^\| `(\w+)` \|", section, flags=re.M))
        assert documented == {key for key, _, _ in keys}, (kind, documented)
