"""The three domain packs in contrib/, installed (editable) by `make venv`: they are listed as
plugins, their components resolve by name and by PACK:NAME, their readers load offline, their
miners pick domain negatives, and each recommended pipeline runs on a slice."""

import json
from pathlib import Path

import pytest
from datasets import Dataset

from embedtune_core.data.loading import load_data
from embedtune_core.testing import invoke
from embedtune_core.types import MiningRequest

ROOT = Path(__file__).resolve().parent.parent
PACKS = {
    "legal": {
        "readers": {"regulatory-faq": "ir", "wordnet-law": "ir", "wordnet-law-synonyms": "pairs"},
        "miners": ["duty-contrast"],
    },
    "medical": {"readers": {"hpo-synonyms": "ir", "icd10": "ir"}, "miners": ["ontology-siblings"]},
    "finance": {"readers": {"wordnet-finance": "ir", "wordnet-finance-synonyms": "pairs"},
                "miners": ["confusable-terms"]},
}
#: reader options that keep the slow-to-encode sets small in these tests
SMALL = {"hpo-synonyms": {"root": "HP:0000478"}, "icd10": {"chapters": ["I"]}}


def test_plugins_lists_the_three_packs():
    result = invoke(["plugins"])
    assert result.exit_code == 0, result
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    for pack in PACKS:
        assert rows[pack]["error"] is None, rows[pack]
        assert rows[pack]["version"] == "0.1.0"
        assert sorted(rows[pack]["hooks"]) == ["register_dataset_readers", "register_negative_miners"]


def test_packs_come_from_their_own_distributions(plugin_set):
    for pack in PACKS:
        record = plugin_set.records[pack]
        assert record.distribution == f"embedtune-{pack}" and not record.builtin
        assert record.module == f"embedtune_{pack}"


def test_components_listing_shows_pack_components():
    result = invoke(["components", "--json"])
    assert result.exit_code == 0, result
    names = {(c["kind"], c["qualified_name"]) for c in json.loads(result.stdout)}
    for pack, parts in PACKS.items():
        for reader in parts["readers"]:
            assert ("dataset_reader", f"{pack}:{reader}") in names
        for miner in parts["miners"]:
            assert ("negative_miner", f"{pack}:{miner}") in names


@pytest.mark.parametrize("pack", sorted(PACKS))
def test_components_resolve_by_name_and_pack_name(registry, pack):
    for kind, names in (("dataset_reader", PACKS[pack]["readers"]), ("negative_miner", PACKS[pack]["miners"])):
        for name in names:
            by_name = registry.get(kind, name)
            assert by_name is registry.get(kind, f"{pack}:{name}")
            assert by_name.plugin == pack and by_name.description


@pytest.mark.parametrize("pack,reader", [(p, r) for p in sorted(PACKS) for r in sorted(PACKS[p]["readers"])])
def test_each_reader_loads_offline_as_a_bundled_set(registry, pack, reader):
    options = SMALL.get(reader, {})
    bundle = load_data(registry, f"builtin:{pack}:{reader}", options=options)
    assert bundle.dataset_type == PACKS[pack]["readers"][reader]
    assert bundle.info["licence"] and bundle.info["citation"]
    assert bundle.train is not None and bundle.eval is not None and bundle.corpus
    if bundle.dataset_type == "ir":
        assert not set(bundle.train.queries.values()) & set(bundle.eval.queries.values())
    else:
        assert not set(bundle.train["anchor"]) & set(bundle.eval["anchor"])
    same = load_data(registry, f"builtin:{reader}", options=options)  # unique names resolve unqualified
    assert same.info == bundle.info


MINER_CASES = {
    "legal:duty-contrast": (
        ["The tenant must insure the premises against fire.", "The tenant may insure the premises against fire.",
         "The landlord must insure the premises against fire.", "Rent is payable monthly."],
        "Who insures the premises?", 0, "The tenant may insure the premises against fire.",
    ),
    "finance:confusable-terms": (
        ["bond, bond certificate", "debenture, debenture bond, unsecured bond", "stock certificate, stock",
         "balance sheet"],
        "a certificate of debt issued to raise money", 0, "stock certificate, stock",
    ),
    "medical:ontology-siblings": (
        ["Mitral stenosis", "Abnormal mitral valve physiology", "Mitral regurgitation", "Multiple sclerosis"],
        "MS", 0, "Mitral regurgitation",
    ),
}


@pytest.mark.parametrize("miner", sorted(MINER_CASES))
def test_each_miner_picks_its_domain_negative(registry, miner):
    corpus, anchor, positive_index, expected = MINER_CASES[miner]
    dataset = Dataset.from_dict({"anchor": [anchor], "positive": [corpus[positive_index]]})
    result = registry.create("negative_miner", miner, short="drop").mine(
        MiningRequest(dataset=dataset, dataset_type="pairs", num_negatives=1, corpus=corpus))
    assert result.dataset[0]["negative_1"].startswith(expected)
    assert result.stats.negatives_written == 1 and result.stats.queries_short == 0


def _pipeline_ready():
    from importlib.util import find_spec

    from embedtune_core.pipeline import runner as pipeline

    missing = [m for m in ("embedtune_core.training.trainer", "embedtune_core.pipeline.evaluation", "embedtune_core.mining.miner")
               if find_spec(m) is None]
    if not hasattr(pipeline, "run_pipeline"):
        missing.insert(0, "embedtune_core.pipeline.runner.run_pipeline")
    return missing


@pytest.mark.parametrize("pack", sorted(PACKS))
def test_each_packs_pipeline_runs_on_a_slice(pack, tiny_model, tmp_path, registry, plugin_set):
    missing = _pipeline_ready()
    if missing:
        pytest.skip("the pipeline runner is not complete here: missing " + ", ".join(missing))
    from embedtune_core.config.files import apply_overrides, load_file
    from embedtune_core.config.schema import RunConfig
    from embedtune_core.pipeline.runner import run_pipeline

    data = load_file(ROOT / "contrib" / f"embedtune-{pack}" / "pipeline.toml")
    apply_overrides(data, [
        f"model.name={tiny_model}", f"output_dir={tmp_path}", "data.limit=24", "data.eval_limit=12",
        "training.max_steps=2", "training.batch_size=8", "evaluation.metrics=[ndcg@10]", "evaluation.batch_size=64",
    ])
    reader = data["data"]["source"].rsplit(":", 1)[1]
    if reader in SMALL:
        data["data"]["options"] = {**data["data"].get("options", {}), **SMALL[reader]}
    config = RunConfig.from_dict(data)
    metrics = run_pipeline(config, registry, plugin_set, quiet=True).to_json()
    assert 0.0 <= metrics["before"]["ndcg@10"] <= 1.0 and 0.0 <= metrics["after"]["ndcg@10"] <= 1.0
    assert metrics["mining"]["negatives_written"] > 0
    assert (tmp_path / config.name / "metrics.json").exists()

