"""Tests of embedtune-medical: registration, the HPO and ICD-10 readers and what the
ontology-siblings miner picks."""

import os
import pathlib

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from datasets import Dataset  # noqa: E402

from embedtune_core.errors import DataError, EmbedtuneError  # noqa: E402
from embedtune_core.types import MiningRequest  # noqa: E402

PACK = pathlib.Path(__file__).resolve().parent.parent
EYE = "HP:0000478"  # Abnormality of the eye: a small branch for quick tests


@pytest.fixture(scope="module")
def registry():
    """A registry holding this pack only, loaded through the entry point its pyproject declares
    (so it works before the pack is installed too)."""
    from embedtune_core.testing import pack_registry

    return pack_registry("medical", "embedtune_medical")


@pytest.fixture(scope="module")
def doc():
    """The document the HPO reader writes for a term, by name."""
    from embedtune_medical.readers import hpo_terms, render_term

    by_name = {t.name: t for t in hpo_terms().values()}
    return lambda name: render_term(by_name[name])


def test_pack_registers_its_components(registry):
    assert registry.names("dataset_reader") == ["hpo-synonyms", "icd10"]
    assert registry.names("negative_miner") == ["ontology-siblings"]
    assert registry.get("negative_miner", "medical:ontology-siblings").plugin == "medical"
    info = registry.get("dataset_reader", "medical:icd10").info
    assert info.dataset_type == "ir" and info.bundled is True


def test_entry_point_is_declared():
    text = (PACK / "pyproject.toml").read_text(encoding="utf-8")
    assert '[project.entry-points.embedtune]\nmedical = "embedtune_medical"' in text


def test_obo_parser_matches_the_file():
    from embedtune_medical.readers import hpo_terms

    terms = hpo_terms()
    mitral = terms["HP:0001718"]
    assert mitral.name == "Mitral stenosis" and mitral.parents == ("HP:0031481",)
    assert mitral.definition == "An abnormal narrowing of the orifice of the mitral valve."
    assert mitral.synonyms[0].text == "Mitral valve stenosis" and mitral.synonyms[0].scope == "EXACT"
    assert "HP:0000001" in terms and not any(t.name.startswith("obsolete") for t in terms.values())


def check_split(bundle):
    train_q = set(bundle.train.queries.values())
    train_docs = set(bundle.train.corpus.values())
    assert not train_q & set(bundle.eval.queries.values())
    for judged in bundle.eval.qrels.values():
        assert not {bundle.eval.corpus[d] for d in judged} & train_docs


def test_hpo_reader_maps_synonyms_to_the_term_and_splits_by_term(registry, doc):
    from embedtune_core.data.loading import load_data

    bundle = load_data(registry, "builtin:hpo-synonyms", options={"root": EYE})
    again = load_data(registry, "builtin:medical:hpo-synonyms", options={"root": EYE})
    assert bundle.dataset_type == "ir" and "HPO" in bundle.info["licence"]
    check_split(bundle)
    assert bundle.eval.qrels == again.eval.qrels and len(bundle.eval.queries) > 50
    queries = {**bundle.train.queries, **bundle.eval.queries}
    qrels = {**bundle.train.qrels, **bundle.eval.qrels}
    qid = next(q for q, t in queries.items() if t == "Lazy eye")  # layperson synonym of Amblyopia
    assert [bundle.eval.corpus[d] for d in qrels[qid]] == [doc("Amblyopia")]
    lay = load_data(registry, "builtin:hpo-synonyms", options={"root": EYE, "layperson_only": True})
    assert 0 < len(lay.train.queries) < len(bundle.train.queries)


def test_hpo_reader_options_are_checked(registry):
    from embedtune_core.data.loading import load_data

    with pytest.raises(DataError, match="HP:9999999"):
        load_data(registry, "builtin:hpo-synonyms", options={"root": "HP:9999999"})
    with pytest.raises(EmbedtuneError, match="no option 'branch'"):
        load_data(registry, "builtin:hpo-synonyms", options={"branch": EYE})


def test_icd10_reader_maps_subcategories_to_categories(registry):
    from embedtune_core.data.loading import load_data

    bundle = load_data(registry, "builtin:icd10", options={"chapters": ["I"]})
    check_split(bundle)
    queries = {**bundle.train.queries, **bundle.eval.queries}
    qrels = {**bundle.train.qrels, **bundle.eval.qrels}
    assert queries["A00.1"] == "Cholera due to Vibrio cholerae 01, biovar eltor"
    assert qrels["A00.1"] == {"A00": 1} and bundle.eval.corpus["A00"] == "Cholera"
    # every subcategory of a category is on the same side of the split
    held = set(bundle.eval.queries)
    assert {q for q in queries if q.startswith("A00.")} <= held or not {q for q in held if q.startswith("A00.")}
    with pytest.raises(DataError, match="chapter 'XXX'"):
        load_data(registry, "builtin:icd10", options={"chapters": ["XXX"]})


def test_abbreviation_table():
    from embedtune_medical.miners import Abbreviations

    table = Abbreviations.bundled()
    assert table.abbreviations_in("Pt with MS, SOB; all tests normal") == ["MS", "SOB"]  # "all" is not ALL
    assert table.confusables("Mitral stenosis: narrowing of the valve") == ["multiple sclerosis", "morphine sulfate"]
    assert table.expand("SOB on exertion") == ["shortness of breath on exertion"]


def test_siblings_and_abbreviations_picked_in_order(registry, doc):
    corpus = [
        doc("Mitral stenosis"),
        doc("Mitral regurgitation"),  # sibling: same parent (abnormal mitral valve physiology)
        doc("Abnormal mitral valve physiology"),  # the parent: a kind-of relation, never a negative
        "Multiple sclerosis: a demyelinating disease of the central nervous system.",  # MS
        doc("Tricuspid regurgitation"),
        doc("Dyspnea"),
        doc("Tachypnea"),  # sibling of dyspnea
        doc("Apnea"),  # sibling of dyspnea
    ]
    dataset = Dataset.from_dict({"anchor": ["MS", "SOB"], "positive": [corpus[0], corpus[5]]})
    miner = registry.create("negative_miner", "ontology-siblings", short="drop")
    result = miner.mine(MiningRequest(dataset=dataset, dataset_type="pairs", num_negatives=2, corpus=corpus))
    rows = {row["positive"]: [row["negative_1"], row["negative_2"]] for row in result.dataset}
    # mitral stenosis: its sibling, then the other expansion of "MS"
    assert rows[doc("Mitral stenosis")] == [doc("Mitral regurgitation"), corpus[3]]
    # dyspnea ("SOB" expanded): two sibling patterns of respiration
    assert sorted(rows[doc("Dyspnea")]) == sorted([doc("Tachypnea"), doc("Apnea")])
    assert doc("Abnormal mitral valve physiology") not in {n for negs in rows.values() for n in negs}
    assert result.stats.extra["picked_by"] == {"sibling": 3, "abbreviation": 1}


def test_icd10_ontology(registry):
    corpus = ["Cholera", "Typhoid and paratyphoid fevers", "Acute myocardial infarction", "Shigellosis"]
    dataset = Dataset.from_dict({"anchor": ["Cholera due to Vibrio cholerae 01, biovar eltor"],
                                 "positive": ["Cholera"]})
    miner = registry.create("negative_miner", "ontology-siblings", ontology="icd10", short="drop")
    result = miner.mine(MiningRequest(dataset=dataset, dataset_type="ir", num_negatives=2, corpus=corpus,
                                      output="triplets"))
    # other intestinal infectious diseases (same block), never the heart attack
    assert sorted(result.dataset["negative"]) == ["Shigellosis", "Typhoid and paratyphoid fevers"]
    with pytest.raises(Exception, match="ontology"):
        registry.create("negative_miner", "ontology-siblings", ontology="snomed")


def test_miner_on_the_bundled_set(registry):
    from embedtune_core.data.loading import load_data

    bundle = load_data(registry, "builtin:hpo-synonyms", options={"root": EYE})
    pairs = [(bundle.train.queries[q], bundle.train.corpus[d]) for q in bundle.train.queries
             for d in bundle.train.qrels[q]]
    dataset = Dataset.from_dict({"anchor": [a for a, _ in pairs], "positive": [p for _, p in pairs]})
    result = registry.create("negative_miner", "ontology-siblings").mine(
        MiningRequest(dataset=dataset, dataset_type="ir", num_negatives=1, corpus=bundle.corpus))
    assert len(result.dataset) == len(dataset)
    assert result.stats.extra["picked_by"]["sibling"] > 0.6 * len(dataset)
    assert all(r["negative_1"] != r["positive"] for r in result.dataset)


def test_recommended_pipeline_names_this_packs_components(registry):
    from embedtune_core.config.schema import RunConfig

    config = RunConfig.from_file(PACK / "pipeline.toml")
    assert registry.has("dataset_reader", config.data.source.split(":", 2)[2])
    assert config.mining.miner == "medical:ontology-siblings"


def test_shipped_data_is_small():
    assert (PACK / "embedtune_medical" / "data" / "abbreviations.tsv").stat().st_size < 3_000_000


def test_bundled_set_sizes_match_what_the_readers_give(registry):
    from embedtune_core.testing import assert_bundled_sets_described

    assert_bundled_sets_described(registry)
