"""The bundled WordNet sets: term -> gloss retrieval on botany and zoology, and the general-English
retention set. Offline (the data files ship in embedtune_plugins/data), split by connected group of
terms and definitions, with WordNet's licence and citation."""

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

from embedtune_core.data.loading import check_leakage, load_data, to_training_dataset
from embedtune_core.text import text_key
from embedtune_core.types import IRData
from embedtune_plugins import datasets as bundled
from embedtune_plugins.datasets import wordnet

ROOT = Path(__file__).resolve().parent.parent
WORDNET = ("wordnet-plants", "wordnet-animals", "wordnet-general")
#: set -> (synsets in the data file, training pairs, test queries, test corpus)
EXPECTED = {
    "wordnet-plants": (8030, 4004, 1004, 4000),
    "wordnet-animals": (7509, 4000, 1002, 4000),
    "wordnet-general": (5000, 4003, 500, 2000),
}


@pytest.fixture(scope="module")
def built():
    return {name: bundled.load_bundled(name) for name in WORDNET}


def _first_ids(records):
    """normalised definition -> the id of the first synset with it (identical glosses are one document)."""
    first = {}
    for record in records:
        first.setdefault(text_key(record["definition"]), record["id"])
    return first


@pytest.mark.parametrize("name", WORDNET)
def test_loads_offline_as_builtin_with_wordnet_licence_and_citation(registry, name):
    bundle = load_data(registry, f"builtin:{name}")
    assert bundle.dataset_type == "ir" and isinstance(bundle.train, IRData) and isinstance(bundle.eval, IRData)
    info = bundle.info
    assert "WordNet 3.0" in info["licence"] and "WORDNET_LICENSE.txt" in info["licence"]
    assert "Miller" in info["citation"] and "Princeton University" in info["citation"]
    assert info["homepage"] == "https://wordnet.princeton.edu"
    assert wordnet.WORDNET_FILES[name] in info["source"]
    component = registry.get("dataset_reader", name)
    assert component.info.bundled and "WordNet" in component.info.licence


def test_the_wordnet_notice_ships_beside_the_data():
    notice = wordnet.data_file("WORDNET_LICENSE.txt").read_text(encoding="utf-8")
    assert "WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved." in notice
    assert "Permission to use, copy, modify and distribute this software and database" in notice
    for file_name in wordnet.WORDNET_FILES.values():
        assert file_name in notice  # the notice names each extract it travels with
        size = wordnet.data_file(file_name).stat().st_size
        assert 100_000 < size < 3_000_000, file_name
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'embedtune_plugins = ["data/*.jsonl", "data/*.txt"]' in pyproject


@pytest.mark.parametrize("name", WORDNET)
def test_sizes(built, name):
    synsets, pairs, test_queries, test_corpus = EXPECTED[name]
    bundle = built[name]
    assert len(wordnet.wordnet_records(name)) == synsets
    dataset, training_type = to_training_dataset(bundle)
    assert training_type == "pairs" and len(dataset) == pairs
    assert len(bundle.eval.queries) == test_queries and len(bundle.eval.corpus) == test_corpus


@pytest.mark.parametrize("name", WORDNET)
def test_no_held_out_term_or_its_definition_is_trained_on(built, name):
    bundle = built[name]
    train, test = bundle.train, bundle.eval
    assert check_leakage(train, test, "ir") == []
    train_terms = {text_key(t) for t in train.queries.values()}
    assert not train_terms & {text_key(t) for t in test.queries.values()}
    train_texts = {text_key(t) for t in train.corpus.values()}
    # the test corpus (relevant definitions and distractors alike) holds no training definition
    assert not train_texts & {text_key(t) for t in test.corpus.values()}
    assert not set(train.corpus) & set(test.corpus)
    dataset, _ = to_training_dataset(bundle)
    trained = {text_key(t) for t in dataset["anchor"]} | {text_key(t) for t in dataset["positive"]}
    for query_id, text in test.queries.items():
        relevant = test.relevant(query_id)
        assert relevant and set(relevant) <= set(test.corpus)
        assert text_key(text) not in trained
        assert not {text_key(test.corpus[d]) for d in relevant} & trained
    # the mining corpus is the training definitions only
    assert sorted(bundle.corpus) == sorted(train.corpus.values())


@pytest.mark.parametrize("name", WORDNET)
def test_judgements_are_wordnet_senses_and_groups_stay_on_one_side(built, name):
    records = wordnet.wordnet_records(name)
    first = _first_ids(records)
    senses = {}  # normalised term -> ids of the glosses it names
    for record in records:
        for term in record["terms"]:
            senses.setdefault(text_key(term), set()).add(first[text_key(record["definition"])])
    definition = {r["id"]: " ".join(r["definition"].split()) for r in records}
    bundle = built[name]
    side_of = {}
    for side, ir in (("train", bundle.train), ("test", bundle.eval)):
        for query_id, text in ir.queries.items():
            assert set(ir.relevant(query_id)) == senses[text_key(text)], text
            for doc_id in ir.relevant(query_id):
                assert ir.corpus[doc_id] == definition[doc_id]
            side_of[text_key(text)] = side
    # synonyms of one synset are never split: all on one side, or all unused
    for record in records:
        sides = {side_of.get(text_key(t)) for t in record["terms"]}
        assert len(sides) == 1, record["terms"]


def test_domain_sets_hold_their_lexicographer_file_and_general_holds_the_rest(built):
    assert {r["domain"] for r in wordnet.wordnet_records("wordnet-plants")} == {"plant"}
    assert {r["domain"] for r in wordnet.wordnet_records("wordnet-animals")} == {"animal"}
    general = wordnet.wordnet_records("wordnet-general")
    domains = {r["domain"] for r in general}
    assert "noun.plant" not in domains and "noun.animal" not in domains
    assert {r["pos"] for r in general} == {"n", "v", "a", "r"}
    assert len({d for d in domains if d.startswith("noun.")}) >= 20 and len(domains) >= 35
    domain_ids = {r["id"] for n in ("wordnet-plants", "wordnet-animals") for r in wordnet.wordnet_records(n)}
    assert not domain_ids & {r["id"] for r in general}


def test_term_definition_bundle_splits_connected_groups():
    concepts = [
        (f"c{i}", [f"term {i}", f"synonym {i}"], f"definition number {i}") for i in range(40)
    ] + [
        ("p1", ["bank"], "sloping land beside a river"),
        ("p2", ["bank", "depository"], "a financial institution"),
        ("dup", ["same gloss"], "Definition   number 3"),  # the same gloss as c3, up to case and spacing
        ("x1", ["leaf miner"], "a small insect"),
        ("x2", ["Fenusa"], "Leaf miner"),  # a gloss that is another entry's name
    ]
    bundle = wordnet.term_definition_bundle(
        concepts, name="toy", test_queries=10, test_corpus=12, train_pairs=30, info={"licence": "x"})
    train, test = bundle.train, bundle.eval
    assert 10 <= len(test.queries) <= 11 and len(test.corpus) == 12
    assert 30 <= len(to_training_dataset(bundle)[0]) <= 31
    # "bank" names two glosses, "depository" one of them: all three terms and both glosses go together
    sides = [ir for ir in (train, test) if any(text_key(q) == "bank" for q in ir.queries.values())]
    if sides:
        ir = sides[0]
        assert {"bank", "depository"} <= {text_key(q) for q in ir.queries.values()}
        bank = next(q for q, t in ir.queries.items() if t == "bank")
        assert set(ir.relevant(bank)) == {"p1", "p2"}
    # identical glosses are one document: "same gloss" is judged against c3's
    for ir in (train, test):
        for query_id, text in ir.queries.items():
            if text == "same gloss":
                assert ir.relevant(query_id) == {"c3": 1}
    assert not set(train.corpus) & set(test.corpus)
    # x2's gloss is x1's name: both entries on the same side, or neither used
    where = {t: side for side, ir in (("train", train), ("test", test)) for t in ir.queries.values()}
    assert where.get("leaf miner") == where.get("Fenusa")
    for ir in (train, test):
        texts = {text_key(t) for t in ir.queries.values()} | {text_key(t) for t in ir.corpus.values()}
        other = test if ir is train else train
        assert not texts & {text_key(t) for t in other.queries.values()}
    assert bundle.info["licence"] == "x" and "seed" in bundle.info["split"]


@pytest.mark.skipif(not os.path.exists("/usr/share/wordnet/data.noun"),
                    reason="needs Debian's wordnet-base (the data files are committed; this checks they are reproducible)")
@pytest.mark.parametrize("name", ["plants", "animals", "general"])
def test_the_shipped_extracts_are_what_the_tool_writes(tmp_path, name):
    spec = importlib.util.spec_from_file_location("extract_wordnet", ROOT / "contrib" / "tools" / "extract_wordnet.py")
    tool = importlib.util.module_from_spec(spec)
    sys.modules["extract_wordnet"] = tool
    spec.loader.exec_module(tool)
    assert tool.main(["--set", name, "--out", str(tmp_path)]) == 0
    shipped = ROOT / "plugins" / "data"
    file_name = tool.DOMAINS[name].output_name
    assert (tmp_path / file_name).read_bytes() == (shipped / file_name).read_bytes()
    assert (tmp_path / "WORDNET_LICENSE.txt").read_bytes() == (shipped / "WORDNET_LICENSE.txt").read_bytes()
    first = json.loads((tmp_path / file_name).read_text(encoding="utf-8").splitlines()[0])
    assert {"id", "pos", "terms", "definition", "examples", "hypernyms", "domain"} <= set(first)


def test_general_eval_slice_runs_through_embedtune_eval(tiny_model):
    from embedtune_core.testing import invoke

    result = invoke(["eval", "--model", tiny_model, "--data", "builtin:wordnet-general", "-m", "ndcg@10", "--json"])
    assert result.exit_code == 0, result
    payload = json.loads(result.stdout)
    assert payload["evaluation"]["type"] == "ir" and payload["evaluation"]["part"] == "eval split"
    assert payload["evaluation"]["queries"] == 500 and payload["evaluation"]["corpus"] == 2000
    assert 0.0 <= payload["after"]["ndcg@10"] < 1.0
