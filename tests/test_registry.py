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


class Scaled:
    """A metric for tests: its options are kept so the test can see them."""

    def __init__(self, scale: float = 20.0, inner=None):
        self.scale, self.inner = scale, inner

    def compute(self, ranked, k):
        return [self.scale]


def test_create_passes_options_and_registry_and_rejects_bad_options():
    registry = Registry()
    registry.add("metric", "p", "plain", Scaled)

    def wrapper(base: str = "plain", registry=None):
        return Scaled(inner=registry.create("metric", base))

    registry.add("metric", "p", "wrapper", wrapper)
    assert registry.create("metric", "plain", scale="5").scale == 5.0
    assert registry.create("metric", "wrapper").inner.scale == 20.0
    with pytest.raises(ComponentError) as info:
        registry.create("metric", "plain", scael=1.0)
    assert "metric 'plain' has no option 'scael'" in info.value.message and "did you mean 'scale'" in info.value.hint


@pytest.mark.parametrize("kind,leading,built,contract", [
    ("loss", ("model",), ("a", "tuple"), "not a torch.nn.Module"),
    ("negative_miner", (), object(), "has no mine() method"),
    ("metric", (), Scaled, "built the class Scaled (not an instance)"),
    ("step", (), 3, "has no run() method"),
    ("dataset_reader", ("source",), {"train": []}, "not an embedtune_core.types.DataBundle"),
    ("callback", (), "progress", "not a transformers.TrainerCallback"),
])
def test_what_a_factory_builds_is_checked_against_its_kind(kind, leading, built, contract):
    registry = Registry()
    registry.add(kind, "sloppy-pack", "broken", lambda *args: built)
    with pytest.raises(ComponentError) as info:
        registry.create(kind, "broken", *leading)
    assert "from plugin 'sloppy-pack'" in info.value.message and contract in info.value.message


@pytest.mark.parametrize("raised", [ZeroDivisionError("boom"), SystemExit(0), KeyError("k")])
def test_a_factory_that_raises_is_named_with_its_plugin(raised):
    registry = Registry()

    def factory():
        raise raised

    registry.add("metric", "sloppy-pack", "broken", factory)
    with pytest.raises(ComponentError) as info:
        registry.create("metric", "broken")
    message = info.value.message
    assert message.startswith("metric 'broken' from plugin 'sloppy-pack' failed while being built")
    assert type(raised).__name__ in message or "sys.exit(0)" in message
    assert "EMBEDTUNE_DEBUG=1" in info.value.hint


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


def test_options_are_checked_from_the_declaration_without_building():
    from typing import Annotated

    from embedtune_core.plugins.options import Range

    built = []

    def plain(model, scale: Annotated[float, Range(gt=0)] = 20.0, names: list[str] | None = None):
        built.append(model)
        return model

    def open_ended(model, **options):
        return model

    registry = Registry()
    registry.add("loss", "pack", "plain", plain)
    registry.add("loss", "pack", "open", open_ended)
    assert registry.resolve_options("loss", "plain", {"scale": "3"}, key="loss.options") == {"scale": 3.0, "names": None}
    with pytest.raises(ComponentError) as info:
        registry.resolve_options("loss", "plain", {"scael": 3}, key="loss.options")
    assert info.value.key == "loss.options.scael" and "did you mean 'scale'" in info.value.hint
    with pytest.raises(ComponentError, match="option 'scale' must be greater than 0") as info:
        registry.resolve_options("loss", "plain", {"scale": 0}, key="loss.options")
    assert info.value.key == "loss.options.scale"
    with pytest.raises(ComponentError, match="option 'names' must be a list of strings or none|item 1 must be a string"):
        registry.resolve_options("loss", "plain", {"names": [3]})
    with pytest.raises(ComponentError, match="has no option 'model'"):
        registry.resolve_options("loss", "plain", {"model": 1})
    assert registry.resolve_options("loss", "open", {"anything": 1}) == {"anything": 1}  # **options: the factory's
    with pytest.raises(ComponentError, match="must be a table"):
        registry.resolve_options("loss", "plain", [("scale", 1)])
    assert built == []
    declared = registry.get("loss", "plain").as_dict()["options"]
    assert declared["scale"] == {"type": "a number", "default": 20.0, "help": ""}


def test_metadata_is_typed_and_checked_at_registration():
    registry = Registry()
    component = registry.add("loss", "pack", "l", make_loss, accepts=["pairs"], in_batch_negatives=True)
    assert component.info.accepts == ("pairs",) and component.info.in_batch_negatives is True
    with pytest.raises(ComponentError) as info:
        registry.add("loss", "pack", "m", make_loss, in_batch_negative=True)
    assert "plugin 'pack' registered loss 'm' has no metadata 'in_batch_negative'" in info.value.message
    assert "did you mean 'in_batch_negatives'" in info.value.hint
    with pytest.raises(ComponentError, match="metadata 'accepts' item 1 must be one of pairs"):
        registry.add("loss", "pack", "n", make_loss, accepts=["pears"])
    with pytest.raises(ComponentError, match="metadata 'model' must be one of required, guards, no"):
        registry.add("negative_miner", "pack", "x", lambda: None, model="always")
