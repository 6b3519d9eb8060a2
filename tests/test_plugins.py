"""Plugin loading: entry points (fake distributions), broken packs, strict mode, selection."""

import pytest

from embedtune_core import hookimpl
from embedtune_core.errors import PluginLoadError
from embedtune_core.plugins.manager import load_plugins
from embedtune_core.plugins.registry import build_registry
from embedtune_core.testing import invoke

from conftest import FakeEntryPoint, make_module

BUILTINS = {"readers", "miners", "losses", "metrics", "callbacks"}


class GoodPack:
    @hookimpl
    def register_losses(self, register):
        register("pack-loss", lambda model: None, description="a loss from a pack", accepts=("pairs",))


class BrokenRegistration:
    @hookimpl
    def register_metrics(self, register):
        register("fine-metric", lambda: None)
        raise RuntimeError("boom in registration")


class TypoPack:
    @hookimpl
    def register_lossez(self, register):  # no such hook
        pass


def test_builtins_load_through_entry_points():
    plugin_set = load_plugins(strict=False)
    names = {r.name for r in plugin_set.loaded() if r.builtin}
    assert BUILTINS <= names
    assert all(r.distribution == "embedtune" for r in plugin_set.records.values() if r.name in BUILTINS)


def test_fake_distribution_is_loaded(fake_entry_points):
    fake_entry_points(FakeEntryPoint("goodpack", GoodPack(), dist="embedtune-good"))
    plugin_set = load_plugins(strict=False)
    record = plugin_set.records["goodpack"]
    assert record.error is None and not record.builtin
    assert record.hooks == ["register_losses"]
    registry = build_registry(plugin_set)
    component = registry.get("loss", "goodpack:pack-loss")
    assert component.plugin == "goodpack" and component.info.accepts == ("pairs",)


def test_import_error_is_reported_and_skipped(fake_entry_points, capsys):
    fake_entry_points(
        FakeEntryPoint("brokenpack", error=ImportError("No module named 'missing_dep'")),
        FakeEntryPoint("goodpack", GoodPack()),
    )
    plugin_set = load_plugins(strict=False)
    assert "missing_dep" in plugin_set.records["brokenpack"].error
    assert plugin_set.records["goodpack"].error is None
    registry = build_registry(plugin_set)
    assert registry.has("loss", "pack-loss")


def test_import_error_is_fatal_in_strict_mode(fake_entry_points):
    fake_entry_points(FakeEntryPoint("brokenpack", error=ImportError("nope")))
    with pytest.raises(PluginLoadError, match="brokenpack"):
        load_plugins(strict=True)


def test_failing_registration_removes_only_that_pack(fake_entry_points):
    fake_entry_points(FakeEntryPoint("badreg", BrokenRegistration()), FakeEntryPoint("goodpack", GoodPack()))
    plugin_set = load_plugins(strict=False)
    registry = build_registry(plugin_set)
    assert "boom in registration" in plugin_set.records["badreg"].error
    assert not registry.has("metric", "fine-metric")  # partial registrations are rolled back
    assert registry.has("loss", "pack-loss")


def test_unknown_hook_name_is_rejected(fake_entry_points):
    fake_entry_points(FakeEntryPoint("typo", TypoPack()))
    plugin_set = load_plugins(strict=False)
    assert "register_lossez" in plugin_set.records["typo"].error
    assert plugin_set.manager.get_plugin("typo") is None


def test_same_plugin_name_twice_keeps_first_and_reports_second(fake_entry_points):
    fake_entry_points(
        FakeEntryPoint("samename", GoodPack(), dist="embedtune-a"),
        FakeEntryPoint("samename", GoodPack(), dist="embedtune-b"),
        keep_real=False,
    )
    plugin_set = load_plugins(strict=False)
    assert plugin_set.records["samename"].error is None
    broken = plugin_set.broken()
    assert len(broken) == 1 and "already used by embedtune-a" in broken[0].error


def test_env_load_only_and_disable(fake_entry_points, monkeypatch):
    fake_entry_points(FakeEntryPoint("goodpack", GoodPack()))
    monkeypatch.setenv("EMBEDTUNE_LOAD_PLUGINS", "goodpack,losses")
    plugin_set = load_plugins(strict=False)
    assert {r.name for r in plugin_set.loaded()} == {"goodpack", "losses"}
    monkeypatch.delenv("EMBEDTUNE_LOAD_PLUGINS")
    plugin_set = load_plugins(strict=False, disabled=["goodpack"])
    assert plugin_set.records["goodpack"].disabled
    assert plugin_set.manager.get_plugin("goodpack") is None


def test_cli_reports_broken_pack_and_keeps_working(fake_entry_points):
    fake_entry_points(FakeEntryPoint("brokenpack", error=ImportError("No module named 'missing_dep'")))
    result = invoke(["plugins"])
    assert result.exit_code == 0, result
    assert '"brokenpack"' in result.stdout and "missing_dep" in result.stdout
    assert result.stderr.count("warning: plugin 'brokenpack' skipped") == 1
    result = invoke(["components", "--json"])
    assert result.exit_code == 0, result


def test_cli_strict_mode_is_fatal(fake_entry_points):
    fake_entry_points(FakeEntryPoint("brokenpack", error=ImportError("No module named 'missing_dep'")))
    result = invoke(["plugins"], env={"EMBEDTUNE_STRICT_PLUGINS": "1"})
    assert result.exit_code == 2
    assert "brokenpack" in result.stderr and "Traceback" not in result.output


def test_cli_plugins_all_shows_builtins_with_hooks():
    import json

    result = invoke(["plugins", "--all"])
    assert result.exit_code == 0, result
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert BUILTINS <= set(rows)
    assert rows["callbacks"]["hooks"] == ["register_callbacks"]
    without_all = json.loads(invoke(["plugins"]).stdout)
    assert not BUILTINS & {row["name"] for row in without_all}


def test_cli_disable_plugin_option():
    import json

    result = invoke(["-p", "no:losses", "components", "--json"])
    assert result.exit_code == 0, result
    assert all(row["plugin"] != "losses" for row in json.loads(result.stdout))
    result = invoke(["--disable-plugin", "metrics", "components", "metric", "--json"])
    assert json.loads(result.stdout) == []


def test_explicit_module_plugin(monkeypatch):
    import json
    import sys

    module = make_module("embedtune_test_explicit_pack", GoodPack=GoodPack)
    module.register_losses = hookimpl(lambda register: register("explicit-loss", lambda model: None))
    monkeypatch.setitem(sys.modules, "embedtune_test_explicit_pack", module)
    result = invoke(["-p", "embedtune_test_explicit_pack", "components", "loss", "--json"])
    assert result.exit_code == 0, result
    assert "explicit-loss" in {row["name"] for row in json.loads(result.stdout)}
