import os
import types

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

HERE = os.path.dirname(__file__)
DATA = os.path.join(HERE, "data")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """Folder of a tiny BERT sentence-transformers model, built once per session."""
    import torch

    torch.set_num_threads(1)
    from embedtune_core.testing import build_tiny_model

    return str(build_tiny_model(tmp_path_factory.mktemp("tiny")))


@pytest.fixture
def plugin_set():
    """A fresh plugin manager with the installed plugins."""
    from embedtune_core.plugins.manager import load_plugins

    return load_plugins(strict=False)


@pytest.fixture
def registry(plugin_set):
    from embedtune_core.plugins.registry import build_registry

    return build_registry(plugin_set)


@pytest.fixture
def throwaway_plugin(plugin_set):
    """Register throwaway plugin objects by name; they are unregistered at the end."""
    from embedtune_core.testing import registered_plugin
    import contextlib

    stack = contextlib.ExitStack()

    def register(obj, name):
        stack.enter_context(registered_plugin(plugin_set, obj, name))
        return obj

    with stack:
        yield register


class FakeDist:
    def __init__(self, name, version="1.0"):
        self.name = name
        self.version = version


class FakeEntryPoint:
    """Stands in for importlib.metadata.EntryPoint: no distribution is installed."""

    def __init__(self, name, obj=None, dist="embedtune-fake", error=None, value=None):
        self.name = name
        self.value = value or f"fake_{name}"
        self.group = "embedtune"
        self.dist = FakeDist(dist) if dist else None
        self._obj = obj
        self._error = error

    def load(self):
        if self._error is not None:
            raise self._error
        return self._obj


@pytest.fixture
def fake_entry_points(monkeypatch):
    """Replace the installed entry points with the given fakes (plus, optionally, the real ones)."""
    from embedtune_core.plugins import manager as plugins

    real = list(plugins.iter_entry_points())

    def install(*fakes, keep_real=True):
        eps = (real if keep_real else []) + list(fakes)
        monkeypatch.setattr(plugins, "iter_entry_points", lambda: eps)
        return eps

    return install


def make_module(name, **attrs):
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    return module
