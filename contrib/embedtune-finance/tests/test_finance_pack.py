"""Tests of embedtune-finance: registration, the offline readers and what the confusable-terms miner picks."""

import os
import pathlib

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from datasets import Dataset  # noqa: E402

from embedtune_core.errors import EmbedtuneError  # noqa: E402
from embedtune_core.types import MiningRequest  # noqa: E402

PACK = pathlib.Path(__file__).resolve().parent.parent

BOND = "bond, bond certificate"
STOCK = "stock certificate, stock"
DEBENTURE = "debenture, debenture bond, unsecured bond"
CORPORATE = "corporate bond"
JUNK = "junk bond, high-yield bond"
MORTGAGE = "mortgage"
COLLATERAL = "collateral"
LIEN = "lien"
CORPUS = [BOND, STOCK, DEBENTURE, CORPORATE, JUNK, MORTGAGE, COLLATERAL, LIEN, "balance sheet",
          "note, promissory note, note of hand"]


@pytest.fixture(scope="module")
def registry():
    """A registry holding this pack only, loaded through the entry point its pyproject declares
    (so it works before the pack is installed too)."""
    from embedtune_core.testing import pack_registry

    return pack_registry("finance", "embedtune_finance")


def test_pack_registers_its_components(registry):
    assert registry.names("dataset_reader") == ["wordnet-finance", "wordnet-finance-synonyms"]
    assert registry.names("negative_miner") == ["confusable-terms"]
    assert registry.get("negative_miner", "finance:confusable-terms").name == "confusable-terms"
    info = registry.get("dataset_reader", "wordnet-finance-synonyms").info
    assert info.dataset_type == "pairs" and info.bundled is True


def test_entry_point_is_declared():
    text = (PACK / "pyproject.toml").read_text(encoding="utf-8")
    assert '[project.entry-points.embedtune]\nfinance = "embedtune_finance"' in text


def test_definition_to_term_reader_splits_by_concept(registry):
    from embedtune_core.data.loading import load_data

    bundle = load_data(registry, "builtin:wordnet-finance")
    again = load_data(registry, "builtin:finance:wordnet-finance")
    assert bundle.dataset_type == "ir" and "WordNet" in bundle.info["licence"]
    train_q, train_docs = set(bundle.train.queries.values()), set(bundle.train.corpus.values())
    assert len(train_q) > 800 and len(bundle.eval.queries) > 150
    assert not train_q & set(bundle.eval.queries.values())
    for judged in bundle.eval.qrels.values():
        assert not {bundle.eval.corpus[d] for d in judged} & train_docs
    assert bundle.eval.qrels == again.eval.qrels
    queries = {**bundle.train.queries, **bundle.eval.queries}
    qrels = {**bundle.train.qrels, **bundle.eval.qrels}
    qid = next(q for q, t in queries.items() if t.startswith("a certificate of debt (usually interest-bearing"))
    assert [bundle.eval.corpus[d] for d in qrels[qid]] == [BOND]


def test_term_to_definition_direction(registry):
    from embedtune_core.data.loading import load_data

    bundle = load_data(registry, "builtin:wordnet-finance", options={"direction": "term-definition", "seed": 1})
    assert BOND in {**bundle.train.queries, **bundle.eval.queries}.values()
    with pytest.raises(EmbedtuneError, match="option 'direction' must be one of definition-term, term-definition"):
        load_data(registry, "builtin:wordnet-finance", options={"direction": "up"})


def test_synonym_pairs_never_share_a_term_across_splits(registry):
    from embedtune_core.data.loading import load_data

    bundle = load_data(registry, "builtin:wordnet-finance-synonyms")
    train_terms = {t.lower() for row in bundle.train for t in (row["anchor"], row["positive"])}
    eval_terms = {t.lower() for row in bundle.eval for t in (row["anchor"], row["positive"])}
    assert len(bundle.train) > 500 and len(bundle.eval) > 50
    assert not train_terms & eval_terms
    assert {"anchor": "bond", "positive": "bond certificate"} in list(bundle.train) + list(bundle.eval)


def test_taxonomy_knows_which_terms_are_kinds_of_others():
    from embedtune_finance.miners import finance_taxonomy

    taxonomy = finance_taxonomy()
    (bond,) = taxonomy.resolve(BOND)
    (debenture,) = taxonomy.resolve(DEBENTURE)
    (stock,) = taxonomy.resolve(STOCK)
    assert taxonomy.related(bond, debenture)  # a debenture is a kind of bond
    assert stock in taxonomy.siblings(bond) and debenture not in taxonomy.siblings(bond)
    # free text resolves through the longest term it mentions
    assert taxonomy.resolve("Investors bought the corporate bond at a discount") == taxonomy.resolve(CORPORATE)


def test_confusable_terms_picks_sibling_instruments(registry):
    miner = registry.create("negative_miner", "confusable-terms", short="drop")
    dataset = Dataset.from_dict({
        "anchor": ["a certificate of debt that pays a fixed sum until maturity",
                   "a bond that is not secured by collateral",
                   "a conditional conveyance of property as security for the repayment of a loan"],
        "positive": [BOND, DEBENTURE, MORTGAGE],
    })
    result = miner.mine(MiningRequest(dataset=dataset, dataset_type="pairs", num_negatives=2, corpus=CORPUS))
    rows = {row["positive"]: [row["negative_1"], row["negative_2"]] for row in result.dataset}
    # bond: the stock certificate first (a sibling security sharing the word "certificate"), then the
    # promissory note; never a debenture, corporate or junk bond, which are kinds of bond
    assert rows[BOND] == [STOCK, "note, promissory note, note of hand"]
    # debenture: other kinds of bond, never the bond it is a kind of
    assert rows[DEBENTURE] == [CORPORATE, JUNK]
    # mortgage: collateral and lien, other kinds of security interest
    assert rows[MORTGAGE] == [COLLATERAL, LIEN]
    assert result.stats.extra["picked_by"]["sibling"] >= 5


def test_confusable_terms_falls_back_to_random_and_triplets(registry):
    miner = registry.create("negative_miner", "confusable-terms", cousins=False)
    dataset = Dataset.from_dict({"anchor": ["a document"], "positive": ["balance sheet"]})
    result = miner.mine(MiningRequest(dataset=dataset, dataset_type="pairs", num_negatives=3, corpus=CORPUS,
                                      output="triplets"))
    assert len(result.dataset) == 3 and result.stats.queries_short == 1
    assert "balance sheet" not in result.dataset["negative"]
    with pytest.raises(Exception, match="fill"):
        registry.create("negative_miner", "confusable-terms", short="sometimes")


def test_confusable_terms_on_the_bundled_set(registry):
    from embedtune_core.data.loading import load_data

    bundle = load_data(registry, "builtin:wordnet-finance")
    pairs = [(bundle.train.queries[q], bundle.train.corpus[d]) for q in bundle.train.queries
             for d in bundle.train.qrels[q]]
    dataset = Dataset.from_dict({"anchor": [a for a, _ in pairs], "positive": [p for _, p in pairs]})
    result = registry.create("negative_miner", "confusable-terms").mine(
        MiningRequest(dataset=dataset, dataset_type="ir", num_negatives=1, corpus=bundle.corpus))
    picked = result.stats.extra["picked_by"]
    assert len(result.dataset) == len(dataset)
    assert picked["sibling"] > 0.6 * len(dataset)
    assert not set(result.dataset["negative_1"]) - set(bundle.corpus)  # negatives come from the training corpus


def test_recommended_pipeline_names_this_packs_components(registry):
    from embedtune_core.config.schema import RunConfig

    config = RunConfig.from_file(PACK / "pipeline.toml")
    assert registry.has("dataset_reader", config.data.source.split(":", 2)[2])
    assert config.mining.miner == "finance:confusable-terms"


def test_shipped_data_is_small_and_carries_the_wordnet_licence():
    data = PACK / "embedtune_finance" / "data"
    assert (data / "wordnet_finance.jsonl").stat().st_size < 3_000_000
    assert "WordNet 3.0 Copyright 2006 by Princeton University" in (data / "WORDNET_LICENSE.txt").read_text()


def test_bundled_set_sizes_match_what_the_readers_give(registry):
    from embedtune_core.testing import assert_bundled_sets_described

    assert_bundled_sets_described(registry)
