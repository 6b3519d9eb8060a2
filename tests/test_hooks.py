"""Each registry hook, exercised through a throwaway plugin and the real registry build."""

from embedtune_core import hookimpl
from embedtune_core.plugins.registry import build_registry


def _one(plugin_set, throwaway_plugin, hook_name, kind, **meta):
    def impl(register):
        register("throwaway", lambda *a, **k: ("built", a, k), description="x", **meta)

    impl.__name__ = hook_name
    plugin = type("P", (), {hook_name: staticmethod(hookimpl(impl))})()
    throwaway_plugin(plugin, "throwaway-pack")
    registry = build_registry(plugin_set)
    component = registry.get(kind, "throwaway-pack:throwaway")
    assert component.plugin == "throwaway-pack" and component.description == "x"
    return component


def test_hook_register_dataset_readers(plugin_set, throwaway_plugin):
    c = _one(plugin_set, throwaway_plugin, "register_dataset_readers", "dataset_reader", dataset_type="pairs")
    assert c.info.dataset_type == "pairs"


def test_hook_register_negative_miners(plugin_set, throwaway_plugin):
    _one(plugin_set, throwaway_plugin, "register_negative_miners", "negative_miner")


def test_hook_register_losses(plugin_set, throwaway_plugin):
    c = _one(plugin_set, throwaway_plugin, "register_losses", "loss", accepts=("pairs",))
    assert c.info.accepts == ("pairs",)


def test_hook_register_metrics(plugin_set, throwaway_plugin):
    _one(plugin_set, throwaway_plugin, "register_metrics", "metric")


def test_hook_register_callbacks(plugin_set, throwaway_plugin):
    _one(plugin_set, throwaway_plugin, "register_callbacks", "callback")


def test_hook_register_pipeline_steps(plugin_set, throwaway_plugin):
    c = _one(plugin_set, throwaway_plugin, "register_pipeline_steps", "step", needs=("trained-model",),
             uses=("held-out",), default=50)
    assert c.info.needs == ("trained-model",) and c.info.uses == ("held-out",) and c.info.default == 50


class Listener:
    """Takes a subset of each lifecycle hook's parameters, as implementations may."""

    def __init__(self):
        self.seen = []

    @hookimpl
    def run_started(self, run_dir):
        self.seen.append(("run_started", run_dir))

    @hookimpl
    def evaluation_finished(self, stage, results):
        self.seen.append(("evaluation_finished", stage, results))

    @hookimpl
    def run_finished(self, metrics):
        self.seen.append(("run_finished", metrics))


def test_hook_run_started(plugin_set, throwaway_plugin, tmp_path):
    listener = throwaway_plugin(Listener(), "listener")
    plugin_set.manager.hook.run_started(config="cfg", run_dir=tmp_path)
    assert listener.seen == [("run_started", tmp_path)]


def test_hook_evaluation_finished(plugin_set, throwaway_plugin, tmp_path):
    listener = throwaway_plugin(Listener(), "listener")
    plugin_set.manager.hook.evaluation_finished(stage="before", results={None: {"ndcg@10": 0.5}}, run_dir=tmp_path)
    assert listener.seen == [("evaluation_finished", "before", {None: {"ndcg@10": 0.5}})]


def test_hook_run_finished(plugin_set, throwaway_plugin, tmp_path):
    listener = throwaway_plugin(Listener(), "listener")
    plugin_set.manager.hook.run_finished(run_dir=tmp_path, metrics={"after": {}})
    assert listener.seen == [("run_finished", {"after": {}})]
