"""The registry: attribution, duplicates, pack:name, unknown names, factories."""

import pytest

from embedtune_core import hookimpl
from embedtune_core.errors import ComponentError
from embedtune_core.plugins.registry import Registry, build_registry, normalise_kind


def make_loss(model, scale=20.0):
    """A loss for tests."""
    return ("loss", model, scale)


def test_add_records_plugin_and_description():
    registry = Registry()
    component = registry.add("loss", "mypack", "my-loss", make_loss, accepts=("pairs",))
    assert component.plugin == "mypack"
    assert component.description == "A loss for tests."
    assert registry.get("loss", "my-loss") is component
    assert registry.get("loss", "mypack:my-loss") is component


def test_duplicate_name_is_an_error_naming_both_plugins_and_qualified_names_resolve():
    registry = Registry()
    registry.add("loss", "pack-a", "shared", make_loss)
    registry.add("loss", "pack-b", "shared", make_loss)
    with pytest.raises(ComponentError) as info:
        registry.get("loss", "shared")
    text = info.value.format()
    assert "'pack-a'" in text and "'pack-b'" in text and "pack-a:shared" in text
    assert registry.get("loss", "pack-b:shared").plugin == "pack-b"
    assert registry.duplicates() == [("loss", "shared", ["pack-a", "pack-b"])]


def test_same_plugin_registering_twice_is_rejected():
    registry = Registry()
    registry.add("metric", "p", "x", make_loss)
    with pytest.raises(ComponentError, match="twice"):
        registry.add("metric", "p", "x", make_loss)


@pytest.mark.parametrize("bad", ["", "a:b", " pad"])
def test_invalid_names(bad):
    with pytest.raises(ComponentError, match="invalid name"):
        Registry().add("loss", "p", bad, make_loss)


def test_unknown_name_lists_available_and_suggests_closest():
    registry = Registry()
    registry.add("loss", "p", "cosent", make_loss)
    registry.add("loss", "p", "mnrl", make_loss)
    with pytest.raises(ComponentError) as info:
        registry.get("loss", "cosnet")
    assert "did you mean 'cosent'" in info.value.hint
    assert "available: cosent, mnrl" in info.value.hint
    with pytest.raises(ComponentError, match="unknown loss 'q:mnrl'"):
        registry.get("loss", "q:mnrl")


def test_create_passes_options_and_registry_and_rejects_bad_options():
    registry = Registry()
    registry.add("loss", "p", "plain", make_loss)

    def wrapper(model, base="plain", registry=None):
        return ("wrapped", registry.create("loss", base, model))

    registry.add("loss", "p", "wrapper", wrapper)
    assert registry.create("loss", "plain", "M", scale=5.0) == ("loss", "M", 5.0)
    assert registry.create("loss", "wrapper", "M") == ("wrapped", ("loss", "M", 20.0))
    with pytest.raises(ComponentError) as info:
        registry.create("loss", "plain", "M", scael=1.0)
    assert "bad options for loss 'plain'" in info.value.message and "scale" in info.value.hint


def test_kind_aliases_and_unknown_kind():
    assert normalise_kind("miners") == "negative_miner"
    assert normalise_kind("reader") == "dataset_reader"
    with pytest.raises(ComponentError, match="unknown component kind"):
        normalise_kind("lossess")


def test_throwaway_plugin_fixture_registers_and_unregisters(plugin_set, throwaway_plugin):
    class Temp:
        @hookimpl
        def register_callbacks(self, register):
            register("temp-callback", lambda: None, description="temporary")

    throwaway_plugin(Temp(), "temp")
    registry = build_registry(plugin_set)
    assert registry.get("callback", "temp:temp-callback").description == "temporary"


def test_check_options_names_and_values_without_building():
    built = []

    def plain(model, scale=20.0):
        built.append(model)
        return model

    def check_plain(scale=20.0):
        if float(scale) <= 0:
            raise ComponentError("scale must be positive", key="loss.options.scale")

    def open_ended(model, **options):
        return model

    registry = Registry()
    registry.add("loss", "pack", "plain", plain, check=check_plain)
    registry.add("loss", "pack", "open", open_ended)
    registry.check_options("loss", "plain", {"scale": 3}, positional=1, key="loss.options")
    with pytest.raises(ComponentError) as info:
        registry.check_options("loss", "plain", {"scael": 3}, positional=1, key="loss.options")
    assert info.value.key == "loss.options.scael" and "did you mean 'scale'" in info.value.hint
    with pytest.raises(ComponentError, match="scale must be positive"):
        registry.check_options("loss", "plain", {"scale": 0}, positional=1, key="loss.options")
    with pytest.raises(ComponentError, match="has no option 'model'"):
        registry.check_options("loss", "plain", {"model": 1}, positional=1)
    registry.check_options("loss", "open", {"anything": 1}, positional=1)  # **options: names are the factory's business
    with pytest.raises(ComponentError, match="must be a table"):
        registry.check_options("loss", "plain", [("scale", 1)], positional=1)
    assert built == []
    assert "check" not in registry.get("loss", "plain").as_dict()
