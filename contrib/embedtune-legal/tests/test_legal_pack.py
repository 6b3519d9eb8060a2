"""Tests of embedtune-legal: registration, the offline readers and what the duty-contrast miner picks."""

import os
import pathlib

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from datasets import Dataset  # noqa: E402

from embedtune_core.errors import DataError, EmbedtuneError  # noqa: E402
from embedtune_core.types import MiningRequest  # noqa: E402

PACK = pathlib.Path(__file__).resolve().parent.parent

CLAUSES = [
    "The tenant must insure the premises against fire and keep the policy in force.",
    "The tenant may insure the premises against fire and keep the policy in force.",
    "The tenant must not sublet the premises without the landlord's written consent.",
    "The tenant may sublet the premises with the landlord's written consent.",
    "The landlord must insure the premises against fire and keep the policy in force.",
    "Rent is payable monthly in advance by bank transfer.",
    "Rent is not payable during the first month of the lease.",
]


@pytest.fixture(scope="module")
def registry():
    """A registry holding this pack only, loaded through the entry point its pyproject declares
    (so it works before the pack is installed too)."""
    from embedtune_core.testing import pack_registry

    return pack_registry("legal", "embedtune_legal")


def test_pack_registers_its_components(registry):
    assert registry.names("dataset_reader") == ["regulatory-faq", "wordnet-law", "wordnet-law-synonyms"]
    assert registry.names("negative_miner") == ["duty-contrast"]
    for kind, name in [("dataset_reader", "regulatory-faq"), ("negative_miner", "duty-contrast")]:
        assert registry.get(kind, f"legal:{name}").name == name
    info = registry.get("dataset_reader", "wordnet-law").info
    assert info.dataset_type == "ir" and info.bundled is True


def test_entry_point_is_declared():
    text = (PACK / "pyproject.toml").read_text(encoding="utf-8")
    assert '[project.entry-points.embedtune]\nlegal = "embedtune_legal"' in text


def ir_texts(ir):
    return set(ir.queries.values()), set(ir.corpus.values())


@pytest.mark.parametrize("name", ["regulatory-faq", "wordnet-law"])
def test_ir_readers_split_without_leakage_and_deterministically(registry, name):
    from embedtune_core.data.loading import load_data

    bundle = load_data(registry, f"builtin:{name}")
    again = load_data(registry, f"builtin:{name}")
    assert bundle.dataset_type == "ir" and bundle.info["licence"]
    train_q, train_docs = ir_texts(bundle.train)
    eval_q = set(bundle.eval.queries.values())
    assert len(train_q) > 300 and len(eval_q) > 50
    assert not train_q & eval_q
    # no held-out query's relevant document is trained on
    for qid, judged in bundle.eval.qrels.items():
        for doc in judged:
            assert bundle.eval.corpus[doc] not in train_docs
    assert set(bundle.eval.corpus.values()) >= train_docs  # held-out queries rank against every document
    assert bundle.corpus == list(bundle.train.corpus.values())
    assert bundle.eval.queries == again.eval.queries and bundle.train.qrels == again.train.qrels


def test_faq_reader_reads_the_packaged_file(registry):
    from embedtune_core.data.loading import load_data

    bundle = load_data(registry, "builtin:regulatory-faq")
    assert bundle.info["queries"] == 497 and bundle.info["documents"] == 503  # 6 questions asked twice
    queries = {**bundle.train.queries, **bundle.eval.queries}
    qid = next(q for q, t in queries.items() if t == "How long does it take to get a building permit?")
    qrels = {**bundle.train.qrels, **bundle.eval.qrels}[qid]
    docs = {**bundle.eval.corpus}
    assert [docs[d] for d in qrels][0].startswith("The statutory processing time is 10 weeks")


def test_wordnet_law_reader(registry):
    from embedtune_core.data.loading import load_data

    bundle = load_data(registry, "builtin:wordnet-law")
    queries = {**bundle.train.queries, **bundle.eval.queries}
    qrels = {**bundle.train.qrels, **bundle.eval.qrels}
    by_text = {t: q for q, t in queries.items()}
    target = by_text["a person who brings an action in a court of law"]
    assert [bundle.eval.corpus[d] for d in qrels[target]] == ["plaintiff, complainant"]
    reverse = load_data(registry, "builtin:wordnet-law", options={"direction": "term-definition"})
    assert "tort, civil wrong" in {**reverse.train.queries, **reverse.eval.queries}.values()


def test_synonym_pairs_never_share_a_term_across_splits(registry):
    from embedtune_core.data.loading import load_data

    bundle = load_data(registry, "builtin:wordnet-law-synonyms")
    assert bundle.dataset_type == "pairs" and bundle.train.column_names == ["anchor", "positive"]
    train_terms = {t.lower() for row in bundle.train for t in (row["anchor"], row["positive"])}
    eval_terms = {t.lower() for row in bundle.eval for t in (row["anchor"], row["positive"])}
    assert len(bundle.train) > 200 and len(bundle.eval) > 20
    assert not train_terms & eval_terms
    assert {"anchor": "plaintiff", "positive": "complainant"} in list(bundle.train) + list(bundle.eval)


def test_reader_options_are_checked(registry):
    from embedtune_core.data.loading import load_data

    with pytest.raises(EmbedtuneError, match="no option 'eval_fractoin'") as info:
        load_data(registry, "builtin:regulatory-faq", options={"eval_fractoin": 0.1})
    assert "did you mean 'eval_fraction'?" in info.value.hint
    with pytest.raises(EmbedtuneError, match="option 'direction' must be one of"):
        load_data(registry, "builtin:wordnet-law", options={"direction": "sideways"})


def test_faq_reader_reads_a_users_file_and_names_bad_lines(registry, tmp_path):
    good = tmp_path / "faq.jsonl"
    good.write_text('{"question": "Is a permit needed?", "answer": "Yes, always."}\n'
                    '{"question": "Who pays?", "answer": "The owner pays."}\n', encoding="utf-8")
    bundle = registry.create("dataset_reader", "regulatory-faq", str(good), eval_fraction=0.5)
    assert len(bundle.train.queries) + len(bundle.eval.queries) == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"q": "ok?", "a": "yes"}\n{"q": "broken"\n', encoding="utf-8")
    with pytest.raises(DataError) as info:
        registry.create("dataset_reader", "regulatory-faq", str(bad))
    assert info.value.line == 2 and "bad.jsonl" in info.value.file


def test_duty_signature():
    from embedtune_legal.miners import duty_signature

    assert duty_signature("The tenant must insure the flat.") == (frozenset({"obligation"}), False)
    assert duty_signature("The tenant may insure the flat.") == (frozenset({"permission"}), False)
    assert duty_signature("The tenant must not sublet.")[0] == frozenset({"prohibition"})
    assert duty_signature("A permit is not required for a friggebod.")[0] == frozenset({"exemption"})
    assert duty_signature("The fee does not include VAT.") == (frozenset(), True)


def test_duty_contrast_picks_same_boilerplate_different_duty(registry):
    miner = registry.create("negative_miner", "duty-contrast")
    dataset = Dataset.from_dict({
        "anchor": ["Who has to insure the building against fire?", "Can the tenant sublet?", "When is rent due?"],
        "positive": [CLAUSES[0], CLAUSES[2], CLAUSES[5]],
    })
    result = miner.mine(MiningRequest(dataset=dataset, dataset_type="pairs", num_negatives=2, corpus=CLAUSES))
    rows = list(result.dataset)
    # must insure -> may insure (same words, a permission): picked first; the landlord's clause
    # has the same duty and comes only second, as the closest by overlap alone
    assert rows[0]["negative_1"] == CLAUSES[1]
    assert rows[0]["negative_2"] == CLAUSES[4]
    # must not sublet -> may sublet
    assert rows[1]["negative_1"] == CLAUSES[3]
    # payable -> not payable (negation)
    assert rows[2]["negative_1"] == CLAUSES[6]
    assert result.stats.extra["picked_by"] == {"duty-contrast": 3, "overlap": 3}
    assert result.stats.negatives_written == 6 and result.stats.queries_short == 0


def test_duty_contrast_without_overlap_fill_and_as_triplets(registry):
    miner = registry.create("negative_miner", "duty-contrast", fill_by_overlap=False, short="drop")
    dataset = Dataset.from_dict({"anchor": ["Who insures?"], "positive": [CLAUSES[0]]})
    result = miner.mine(MiningRequest(dataset=dataset, dataset_type="pairs", num_negatives=3, corpus=CLAUSES,
                                      output="triplets"))
    # only clauses that differ in duty and share enough words: "may insure", "must not sublet",
    # "may sublet" overlap too little with the insurance clause to count
    assert [row["negative"] for row in result.dataset] == [CLAUSES[1]]
    assert result.stats.queries_short == 1


def test_duty_contrast_with_a_model_drops_likely_false_negatives(registry):
    import numpy as np

    def encoder(texts):  # the permission clause scores above the positive for this anchor
        vectors = {CLAUSES[0]: [0.9, 0.1], CLAUSES[1]: [1.0, 0.0]}
        out = np.array([vectors.get(t, [0.0, 1.0]) for t in texts], dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    dataset = Dataset.from_dict({"anchor": [CLAUSES[1]], "positive": [CLAUSES[0]]})
    miner = registry.create("negative_miner", "duty-contrast", short="drop")
    result = miner.mine(MiningRequest(dataset=dataset, dataset_type="pairs", num_negatives=1, corpus=CLAUSES,
                                      encoder=encoder))
    assert result.dataset[0]["negative_1"] != CLAUSES[1]
    assert result.stats.dropped_false_negatives >= 1


def test_miner_on_the_faq_finds_duty_contrasts(registry):
    from embedtune_core.data.loading import load_data

    bundle = load_data(registry, "builtin:regulatory-faq")
    anchors, positives = [], []
    for qid, text in list(bundle.train.queries.items())[:60]:
        for doc in bundle.train.qrels[qid]:
            anchors.append(text)
            positives.append(bundle.train.corpus[doc])
    dataset = Dataset.from_dict({"anchor": anchors, "positive": positives})
    miner = registry.create("negative_miner", "duty-contrast")
    result = miner.mine(MiningRequest(dataset=dataset, dataset_type="ir", num_negatives=1, corpus=bundle.corpus))
    from embedtune_legal.miners import duty_signature

    assert len(result.dataset) == len(dataset)
    contrasted = sum(duty_signature(r["positive"]) != duty_signature(r["negative_1"]) for r in result.dataset)
    # picked for their duty contrast: most rows; rows filled by overlap alone may differ in duty too
    assert 30 < result.stats.extra["picked_by"]["duty-contrast"] <= contrasted
    assert all(r["negative_1"] != r["positive"] for r in result.dataset)


def test_recommended_pipeline_names_this_packs_components(registry):
    from embedtune_core.config.schema import RunConfig

    config = RunConfig.from_file(PACK / "pipeline.toml")
    assert config.data.source.startswith("builtin:legal:")
    assert registry.has("dataset_reader", config.data.source.split(":", 2)[2])
    assert config.mining.miner == "legal:duty-contrast"


def test_shipped_data_is_small_and_carries_the_wordnet_licence():
    data = PACK / "embedtune_legal" / "data"
    assert (data / "wordnet_law.jsonl").stat().st_size < 3_000_000
    assert "WordNet 3.0 Copyright 2006 by Princeton University" in (data / "WORDNET_LICENSE.txt").read_text()


def test_bundled_set_sizes_match_what_the_readers_give(registry):
    from embedtune_core.testing import assert_bundled_sets_described

    assert_bundled_sets_described(registry)
