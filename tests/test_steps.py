"""Pipelines of plugins: steps are components (registered, planned, checked, run and reported the
way a pack's would be), hooks are called the pluggy way on the production path, a reader's options
are declared like every component's, and a reader's extra columns reach a miner."""

import json
import textwrap

import pytest
from datasets import Dataset

from embedtune_core import hookimpl
from embedtune_core.config.schema import RunConfig
from embedtune_core.errors import ComponentError, ConfigError, EmbedtuneError, PluginError
from embedtune_core.pipeline.preflight import preflight
from embedtune_core.pipeline.runner import run_pipeline
from embedtune_core.pipeline.steps import plan_steps
from embedtune_core.plugins.registry import build_registry
from embedtune_core.testing import invoke

STEP_PACK = '''
from typing import Annotated

from embedtune_core import hookimpl
from embedtune_core.plugins.options import Range


class CountWeights:
    """Count the trained model's parameters and the files in its folder."""

    def __init__(self, every: Annotated[int, Range(ge=1), "count every Nth parameter tensor"] = 1):
        self.every = every

    def run(self, context):
        from pathlib import Path

        context.report("parameters", sum(p.numel() for p in list(context.model().parameters())[::self.every]))
        context.report("model_path", str(context.model_path))
        context.report("files", sorted(f.name for f in Path(context.model_path).iterdir()))


@hookimpl
def register_pipeline_steps(register):
    register("count-weights", CountWeights, needs=("trained-model",), provides=("weight-count",))
'''


def pack_outside_the_repository(tmp_path, monkeypatch, name, source):
    """Write the pack module ``name`` in a folder of its own and make it importable."""
    folder = tmp_path / f"{name}-folder"
    folder.mkdir()
    (folder / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    monkeypatch.syspath_prepend(str(folder))
    return name


@pytest.fixture
def outside_pack(tmp_path, monkeypatch):
    return pack_outside_the_repository(tmp_path, monkeypatch, "step_pack", STEP_PACK)


def write_pipeline(tmp_path, tiny_model, steps, extra=""):
    path = tmp_path / "pipeline.toml"
    path.write_text(
        f'name = "stepped"\noutput_dir = "{tmp_path / "runs"}"\nsteps = {json.dumps(steps)}\n{extra}\n'
        f'[model]\nname = "{tiny_model}"\nmax_seq_length = 32\n'
        '[data]\nsource = "builtin:construction-faq"\nlimit = 24\neval_limit = 8\n'
        '[training]\nmax_steps = 2\nbatch_size = 8\n[evaluation]\nretention = "none"\nmetrics = ["ndcg@10"]\n',
        encoding="utf-8")
    return path


def test_a_pack_step_is_listed_beside_the_builtins(outside_pack):
    result = invoke(["-p", outside_pack, "components", "step", "--json"])
    assert result.exit_code == 0, result
    listed = {c["name"]: c for c in json.loads(result.stdout)}
    assert {"mine", "evaluate-before", "train", "evaluate-after", "count-weights"} <= set(listed)
    step = listed["count-weights"]
    assert step["plugin"] == outside_pack and step["needs"] == ["trained-model"]
    assert step["options"]["every"]["default"] == 1 and "integer" in step["options"]["every"]["type"]


def test_a_pack_step_after_train_runs_on_the_trained_model_and_reports(outside_pack, tiny_model, tmp_path):
    pipeline = write_pipeline(tmp_path, tiny_model, ["train", "count-weights", "evaluate-after"],
                              "[step_options.count-weights]\nevery = 2")
    result = invoke(["-p", outside_pack, "run", str(pipeline), "-q"])
    assert result.exit_code == 0, result
    run = tmp_path / "runs" / "stepped"
    metrics = json.loads((run / "metrics.json").read_text())
    assert list(metrics["steps"]) == ["train", "count-weights", "evaluate-after"]
    reported = metrics["steps"]["count-weights"]
    assert reported["model_path"] == str(run / "model") and "model.safetensors" in reported["files"]
    assert reported["parameters"] > 0 and reported["seconds"] >= 0
    config = RunConfig.from_file(run / "config.toml")
    assert config.step_options == {"count-weights": {"every": 2}}
    assert "count-weights: parameters" in (run / "report.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("steps,fragment,hint", [
    (["train", "count-weigths"], "unknown step 'count-weigths'", "did you mean 'count-weights'?"),
    (["count-weights", "train"], "step 'count-weights' needs 'trained-model', which no step before it provides",
     "put 'train' before it"),
    (["count-weights"], "step 'count-weights' needs 'trained-model'", "put 'train' before it"),
    (["train", "evaluate-before"], "step 'evaluate-before' must come before step 'train', which provides "
                                   "'trained-model'", "move 'evaluate-before' earlier"),
])
def test_an_impossible_pipeline_is_refused_before_anything_is_written(outside_pack, tiny_model, tmp_path, steps,
                                                                      fragment, hint):
    result = invoke(["-p", outside_pack, "run", str(write_pipeline(tmp_path, tiny_model, steps))])
    assert result.exit_code == 2 and fragment in result.stderr and hint in result.stderr, result
    assert "Traceback" not in result.output and "loading model" not in result.stderr
    assert not (tmp_path / "runs").exists()


def test_step_options_are_checked_like_every_components(outside_pack, tiny_model, tmp_path):
    pipeline = write_pipeline(tmp_path, tiny_model, ["train", "count-weights"])
    result = invoke(["-p", outside_pack, "config", "validate", str(pipeline), "-s", "step_options.count-weights.evry=2"])
    assert result.exit_code == 2 and "step 'count-weights' has no option 'evry'" in result.stderr
    assert "did you mean 'every'?" in result.stderr
    result = invoke(["-p", outside_pack, "config", "validate", str(pipeline), "-s", "step_options.export.x=1"])
    assert result.exit_code == 2 and "options are set for step 'export', which the run does not have" in result.stderr
    assert not (tmp_path / "runs").exists()


# -- planning from declarations ---------------------------------------------------------------
class Recorder:
    """A step that records what its context holds."""

    seen: list = []

    def __init__(self, label: str = "x"):
        self.label = label

    def run(self, context):
        Recorder.seen.append((context.name, self.label, context.has("trained-model"), context.model_path,
                              len(context.training_rows) if context.training_rows is not None else None))
        context.report("label", self.label)


class FilterRows:
    """A step before training that keeps half the training rows."""

    def run(self, context):
        rows = context.training_rows
        context.training_rows = rows.select(range(len(rows) // 2))
        context.report("kept", len(context.training_rows))


class StepPack:
    @hookimpl
    def register_pipeline_steps(self, register):
        register("record", Recorder, uses=("training-rows",))
        register("filter-rows", FilterRows, needs=("data",), before=("trained-model",), uses=("training-rows",))
        register("needs-nothing-known", Recorder, needs=("vector-index",))


@pytest.fixture
def step_registry(plugin_set, throwaway_plugin):
    throwaway_plugin(StepPack(), "step-pack")
    return build_registry(plugin_set)


def config(tiny_model, tmp_path, steps, **extra):
    return RunConfig.from_dict({
        "name": "planned", "output_dir": str(tmp_path / "runs"), "steps": steps,
        "model": {"name": tiny_model, "max_seq_length": 32},
        "data": {"source": "builtin:construction-faq", "limit": 24, "eval_limit": 8},
        "training": {"max_steps": 2, "batch_size": 8}, "evaluation": {"retention": "none", "metrics": ["ndcg@10"]},
        **extra})


def test_the_default_pipeline_comes_from_the_steps_declared_positions(step_registry, tiny_model, tmp_path):
    planned = plan_steps(config(tiny_model, tmp_path, []), step_registry)
    assert [s.name for s in planned] == ["evaluate-before", "train", "evaluate-after"]  # mine: no miner set
    with_miner = config(tiny_model, tmp_path, [], mining={"miner": "bm25"})
    assert [s.name for s in plan_steps(with_miner, step_registry)] == ["mine", "evaluate-before", "train",
                                                                       "evaluate-after"]


def test_a_need_nobody_provides_is_named(step_registry, tiny_model, tmp_path):
    with pytest.raises(ConfigError) as info:
        plan_steps(config(tiny_model, tmp_path, ["needs-nothing-known"]), step_registry)
    assert "needs 'vector-index'" in info.value.message and "no registered step provides it" in info.value.hint


def test_a_left_out_step_is_named_when_a_later_step_needed_it(plugin_set, throwaway_plugin, tiny_model, tmp_path):
    class NeedsMined:
        @hookimpl
        def register_pipeline_steps(self, register):
            register("use-mined", Recorder, needs=("mined-rows",))

    throwaway_plugin(NeedsMined(), "mined-pack")
    registry = build_registry(plugin_set)
    with pytest.raises(ConfigError) as info:
        plan_steps(config(tiny_model, tmp_path, ["mine", "use-mined"]), registry)
    assert "'mine' is left out while mining.miner is unset" in info.value.hint


def test_steps_share_the_run_context_in_order(step_registry, tiny_model, tmp_path):
    Recorder.seen = []
    record = run_pipeline(config(tiny_model, tmp_path, ["record", "filter-rows", "train", "record"],
                                 step_options={"record": {"label": "y"}}), step_registry, quiet=True)
    run = tmp_path / "runs" / "planned"
    # steps are deduplicated; the recorder ran before training, on every row
    assert [s[0] for s in Recorder.seen] == ["record"] and Recorder.seen[0][1] == "y"
    assert Recorder.seen[0][2] is False and Recorder.seen[0][4] == 24
    assert record.steps["filter-rows"]["kept"] == 12 and record.training["examples"] == 12
    assert list(json.loads((run / "metrics.json").read_text())["steps"]) == ["record", "filter-rows", "train"]


def test_a_step_after_training_sees_the_trained_model(step_registry, tiny_model, tmp_path):
    Recorder.seen = []
    run_pipeline(config(tiny_model, tmp_path, ["train", "record"]), step_registry, quiet=True)
    _, _, trained, model_path, _ = Recorder.seen[0]
    assert trained is True and model_path == str(tmp_path / "runs" / "planned" / "model")


class Exploding:
    def __init__(self, how: str = "raise"):
        self.how = how

    def run(self, context):
        if self.how == "exit":
            raise SystemExit(0)
        return {}["missing"]


def test_a_failing_pack_step_names_its_plugin_and_the_step(plugin_set, throwaway_plugin, tiny_model, tmp_path):
    class Pack:
        @hookimpl
        def register_pipeline_steps(self, register):
            register("explode", Exploding)

    throwaway_plugin(Pack(), "boom-pack")
    registry = build_registry(plugin_set)
    for how, what in (("raise", "KeyError: 'missing'"), ("exit", "called sys.exit(0)")):
        with pytest.raises(ComponentError) as info:
            run_pipeline(config(tiny_model, tmp_path, ["explode"], step_options={"explode": {"how": how}}),
                         registry, quiet=True, overwrite=True)
        message = info.value.message
        assert "step 'explode' from plugin 'boom-pack' failed while running in step 'explode'" in message
        assert what in message


# -- hooks, the pluggy way, on the production path ------------------------------------------------
def test_registry_hooks_keep_pluggys_order_and_wrappers(plugin_set, throwaway_plugin):
    calls = []

    def impl(label, **marks):
        @hookimpl(**marks)
        def register_metrics(register):
            calls.append(label)
            register(f"m-{label}", lambda: None)

        return register_metrics

    class Wrapping:
        @hookimpl(wrapper=True)
        def register_metrics(self, register):
            calls.append("wrapper before")
            result = yield
            calls.append("wrapper after")
            register("m-wrapped", lambda: None)  # registered after every other plugin
            return result

    for label, marks in (("last", {"trylast": True}), ("plain-1", {}), ("first", {"tryfirst": True}),
                         ("plain-2", {})):
        throwaway_plugin(type(label, (), {"register_metrics": staticmethod(impl(label, **marks))})(), label)
    throwaway_plugin(Wrapping(), "wrapping")
    registry = build_registry(plugin_set, kinds=["metric"])
    assert calls == ["wrapper before", "first", "plain-2", "plain-1", "last", "wrapper after"]
    assert registry.get("metric", "m-wrapped").plugin == "wrapping"
    assert registry.get("metric", "m-first").plugin == "first"


def test_a_failing_hook_is_isolated_and_a_failing_wrapper_left_out(plugin_set, throwaway_plugin):
    class Exits:
        @hookimpl
        def register_losses(self, register):
            register("half-registered", lambda model: None)
            raise SystemExit(3)

    class BadWrapper:
        @hookimpl(wrapper=True)
        def register_losses(self, register):
            raise RuntimeError("before the yield")
            yield  # noqa: unreachable - a generator

    throwaway_plugin(Exits(), "exits")
    throwaway_plugin(BadWrapper(), "bad-wrapper")
    registry = build_registry(plugin_set)
    assert "mnrl" in registry.names("loss") and not registry.has("loss", "half-registered")
    assert "called sys.exit(3)" in plugin_set.records["exits"].error
    assert "RuntimeError: before the yield" in plugin_set.records["bad-wrapper"].error


def test_a_lifecycle_hook_that_exits_stops_the_run_naming_its_plugin(plugin_set, throwaway_plugin, tiny_model,
                                                                      tmp_path):
    class Quits:
        @hookimpl
        def run_started(self, run_dir):
            raise SystemExit(0)

    throwaway_plugin(Quits(), "quits")
    registry = build_registry(plugin_set)
    with pytest.raises(PluginError) as info:
        run_pipeline(config(tiny_model, tmp_path, ["train"]), registry, plugin_set, quiet=True)
    assert "plugin 'quits' failed in run_started: called sys.exit(0)" in info.value.message
    assert not (tmp_path / "runs" / "planned").exists()


# -- readers declare their options; extra columns reach a miner ------------------------------------
READER_PACK = '''
from typing import Annotated, Literal

from embedtune_core import hookimpl
from embedtune_core.data.splits import EvalFraction, pairs_bundle
from embedtune_core.mining import GuardOptions, RetrievalMiner, ScoreSource

RECIPES = [("r%d" % (i // 4), "how do I cook dish %d" % i, "cook dish %d slowly in an oven" % i) for i in range(40)]


def recipes(source, unit: Literal["g", "oz"] = "g", eval_fraction: EvalFraction = 0.25):
    """recipe questions -> steps, each row with its recipe id"""
    import datasets
    from embedtune_core.types import DataBundle

    train = datasets.Dataset.from_dict({"anchor": [q for _, q, _ in RECIPES], "positive": [a for _, _, a in RECIPES],
                                        "recipe": [r for r, _, _ in RECIPES]})
    return DataBundle(dataset_type="pairs", train=train, info={"unit": unit, "fraction": eval_fraction})


class SameRecipe(RetrievalMiner):
    """Negatives from the same recipe: the request carries each row's recipe."""

    seen = {}

    def __init__(self, options: GuardOptions):
        super().__init__(options)

    def source(self, data, request):
        import numpy as np

        SameRecipe.seen = dict(request.columns)
        recipe_of = dict(zip(request.dataset["positive"], request.columns["recipe"]))
        query_recipe = dict(zip(request.dataset["anchor"], request.columns["recipe"]))
        same = np.array([[float(recipe_of.get(d) == query_recipe[q]) for d in data.corpus] for q in data.queries],
                        dtype=np.float32)
        return ScoreSource(lambda ids: same[ids], name="same recipe")


@hookimpl
def register_dataset_readers(register):
    register("recipes", recipes, dataset_type="pairs", bundled=True)


@hookimpl
def register_negative_miners(register):
    register("same-recipe", SameRecipe, columns=("recipe",))
'''


@pytest.fixture
def reader_pack(tmp_path, monkeypatch):
    return pack_outside_the_repository(tmp_path, monkeypatch, "reader_pack", READER_PACK)


def test_a_pack_readers_misspelt_option_gets_the_closest_name_before_any_model_loads(reader_pack, tiny_model,
                                                                                     tmp_path):
    result = invoke(["-p", reader_pack, "train", "--model", tiny_model, "--data", "builtin:recipes",
                     "--output", str(tmp_path / "run"), "-s", "data.options.unti=oz"])
    assert result.exit_code == 2 and "dataset reader 'recipes' has no option 'unti'" in result.stderr
    assert "did you mean 'unit'?" in result.stderr and "loading model" not in result.stderr
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()
    result = invoke(["-p", reader_pack, "data", "validate", "builtin:recipes", "-o", "unit=kg"])
    assert result.exit_code == 2 and "option 'unit' must be one of g, oz" in result.stderr


def test_a_readers_extra_column_arrives_in_a_pack_miners_request(reader_pack, tiny_model, tmp_path):
    import importlib

    from embedtune_core.plugins.manager import load_plugins

    plugin_set = load_plugins(modules=[reader_pack])
    registry = build_registry(plugin_set)
    record = run_pipeline(config(tiny_model, tmp_path, ["mine", "train"], data={"source": "builtin:recipes"},
                                 mining={"miner": "same-recipe", "options": {"relative_margin": None}}),
                          registry, plugin_set, quiet=True)
    seen = importlib.import_module(reader_pack).SameRecipe.seen
    assert set(seen) == {"recipe"} and len(seen["recipe"]) == record.training["examples"]
    mined = [json.loads(line) for line in (tmp_path / "runs" / "planned" / "mined.jsonl").read_text().splitlines()]
    assert all("recipe" not in row for row in mined)  # extra columns are never trained on
    by_text = {q: r for r, q, _ in importlib.import_module(reader_pack).RECIPES}
    by_answer = {a: r for r, _, a in importlib.import_module(reader_pack).RECIPES}
    assert all(by_answer[row["negative_1"]] == by_text[row["anchor"]] for row in mined)


def test_a_miner_needing_a_column_the_data_lacks_is_refused_in_preflight(reader_pack, tiny_model, tmp_path):
    from embedtune_core.plugins.manager import load_plugins

    registry = build_registry(load_plugins(modules=[reader_pack]))
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"anchor": f"q{i}", "positive": f"a{i}"}) + "\n" for i in range(20)))
    with pytest.raises(ComponentError) as info:
        preflight(config(tiny_model, tmp_path, ["mine", "train"], data={"source": str(pairs), "type": "pairs"},
                         mining={"miner": "same-recipe"}), registry)
    assert "reads column 'recipe' of the training rows, which the data does not have" in info.value.message
    assert "data.options.keep" in info.value.hint


def test_a_file_readers_kept_field_becomes_an_extra_column(registry, tmp_path):
    from embedtune_core.data.loading import load_data, to_training_dataset

    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps({"anchor": f"q{i}", "positive": f"a{i}", "group": i // 3}) + "\n"
                            for i in range(9)))
    bundle = load_data(registry, str(path), dataset_type="pairs", options={"keep": ["group"]})
    rows, _ = to_training_dataset(bundle)
    assert rows.column_names == ["anchor", "positive", "group"] and rows["group"][:4] == ["0", "0", "0", "1"]
    with pytest.raises(EmbedtuneError, match="field 'grup' \\(data.options.keep\\) is not in the data"):
        load_data(registry, str(path), dataset_type="pairs", options={"keep": ["grup"]})


def test_one_eval_fraction_reaches_a_splitting_reader_and_is_recorded(registry, tiny_model, tmp_path):
    default = preflight(config(tiny_model, tmp_path, ["train", "evaluate-after"],
                               data={"source": "builtin:construction-faq"}), registry)
    assert default.config.data.eval_fraction == 0.2  # the reader's own, recorded as used
    given = preflight(config(tiny_model, tmp_path, ["train", "evaluate-after"],
                             data={"source": "builtin:construction-faq", "eval_fraction": 0.4}), registry)
    assert given.config.data.eval_fraction == 0.4
    assert len(given.data.evaluation.queries) > len(default.data.evaluation.queries)
    with pytest.raises(EmbedtuneError) as info:  # a set with a fixed held-out part
        preflight(config(tiny_model, tmp_path, ["train", "evaluate-after"],
                         data={"source": "builtin:wordnet-plants", "eval_fraction": 0.3}), registry)
    assert info.value.key == "data.eval_fraction"


def test_the_core_split_records_its_fraction(registry, tiny_model, tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps({"anchor": f"question {i}", "positive": f"answer {i}"}) + "\n"
                            for i in range(40)))
    plan = preflight(config(tiny_model, tmp_path, ["train", "evaluate-after"],
                            data={"source": str(path), "type": "pairs"}), registry)
    assert plan.config.data.eval_fraction == 0.1 and plan.data.eval_part == "0.1 of the anchors held out"
    read_only = preflight(config(tiny_model, tmp_path, ["evaluate-after"], data={"source": str(path), "type": "pairs"}),
                          registry)
    assert read_only.config.data.eval_fraction is None and read_only.data.eval_part == "all data"


def test_a_reader_option_that_does_not_apply_to_the_type_is_refused(registry, tmp_path):
    from embedtune_core.data.loading import load_data

    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"anchor": "q", "positive": "a"}) + "\n")
    with pytest.raises(ComponentError, match="dataset reader 'pairs' has no option 'score_range'"):
        load_data(registry, str(path), dataset_type="pairs", options={"score_range": [0, 1]})


def test_extra_columns_of_a_dataset_go_to_the_request():
    from embedtune_core.mining.miner import run_miner
    from embedtune_core.plugins.registry import Registry
    from embedtune_core.types import MiningResult, MiningStats

    captured = {}

    class Capture:
        def mine(self, request):
            captured.update(request.columns)
            rows = request.dataset.select_columns(["anchor", "positive"]).add_column("negative_1", ["z", "x", "y"])
            return MiningResult(rows, MiningStats(queries=3, negatives_written=3))

    registry = Registry()
    registry.add("negative_miner", "pack", "capture", Capture)
    dataset = Dataset.from_dict({"anchor": ["a", "b", "c"], "positive": ["x", "y", "z"], "doc": ["1", "2", "3"],
                                 "negative": ["n1", "n2", "n3"]})
    result = run_miner(registry, "capture", dataset, "triplets", num_negatives=1)
    assert captured == {"doc": ["1", "2", "3"]}  # the triplet's negative is a training column, not an extra one
    assert result.dataset.column_names == ["anchor", "positive", "negative_1"]
