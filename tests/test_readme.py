"""The README's code runs: its custom miner works through the registry; its pipeline is valid."""

import pathlib
import re
import tomllib
import types

from embedtune_core.config.schema import RunConfig

README = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def blocks(lang):
    return re.findall(rf"^```{lang}\n(.*?)^```", README, flags=re.M | re.S)


def test_readme_starts_with_the_two_commands():
    first = blocks("sh")[0]
    assert first.splitlines()[0].startswith("make quickstart") and first.splitlines()[1].startswith("make test")


def test_readme_custom_miner_runs(plugin_set, throwaway_plugin):
    import datasets

    from embedtune_core.mining import run_miner
    from embedtune_core.plugins.registry import build_registry

    (code,) = blocks("python")
    module = types.ModuleType("readme_miner")
    exec(compile(code, "README.md", "exec"), module.__dict__)
    throwaway_plugin(module, "readme")
    registry = build_registry(plugin_set)
    data = datasets.Dataset.from_dict({"anchor": ["a", "b", "c"], "positive": ["long text", "mid", "x"]})
    result = run_miner(registry, "readme:shortest-other", data, "pairs", num_negatives=1)
    assert result.dataset["negative_1"] == ["x", "x", "mid"]


def test_readme_pipeline_is_a_valid_config():
    (text,) = blocks("toml")
    config = RunConfig.from_dict(tomllib.loads(text))
    assert config.loss.options["base"] == "cached-mnrl" and config.mining.miner == "legal:duty-contrast"


def test_readme_counts_the_bad_inputs_it_claims():
    root = pathlib.Path(__file__).resolve().parent / "bad_inputs"
    counts = {d.name: len(tomllib.loads((d / "cases.toml").read_text(encoding="utf-8"))["case"])
              for d in root.iterdir() if (d / "cases.toml").exists()}
    claimed = re.search(r"\*\*(\d+) malformed inputs\*\* under\s+`tests/bad_inputs/` \((\d+) config files, (\d+) data "
                        r"files and IR folders, (\d+) TREC qrels/run files, (\d+)\s+pipelines that parse but cannot "
                        r"run, (\d+) bad command invocations\)", README)
    assert claimed, "the README's sentence about tests/bad_inputs/"
    total, config, data, trec, pipeline, commands = map(int, claimed.groups())
    assert (config, data, trec, pipeline, commands) == (counts["config"], counts["data"], counts["trec"],
                                                         counts["pipeline"], counts["commands"])
    assert total == sum(counts.values())
