"""The helpers domain packs build their readers and miners from: embedtune_core.data.splits
(split, bundle, option checks), the tiered miner of embedtune_core.mining and its concept
hierarchy (embedtune_core.mining.taxonomy)."""

import hashlib
import math
from typing import Literal
import subprocess
import sys

import attrs
import numpy as np
import pytest
from datasets import Dataset

from embedtune_core.data import splits as packkit
from embedtune_core.errors import ComponentError, DataError
from embedtune_core.data.splits import describe_size, eval_groups, hash_fraction, ir_bundle, pairs_bundle
from embedtune_core.mining import GuardOptions, TieredMiner, jaccard, words
from embedtune_core.mining.taxonomy import Taxonomy, concept_index
from embedtune_core.text import term_key as normal
from embedtune_core.types import DataBundle, IRData, MiningRequest


def test_importing_the_helpers_stays_light():
    code = ("import sys\nimport embedtune_core.data.splits, embedtune_core.mining.taxonomy\n"
            "print([m for m in ('torch', 'datasets', 'numpy', 'transformers') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_public_name_is_exported():
    for name in packkit.__all__:
        assert hasattr(packkit, name), name


# -- options ----------------------------------------------------------------------------------
def glossary(source, direction: Literal["term-definition", "definition-term"] = "definition-term",
             eval_fraction: packkit.EvalFraction = packkit.DEFAULT_EVAL_FRACTION, seed: packkit.Seed = packkit.DEFAULT_SEED):
    """A pack reader declaring its options the one way every component does: its signature."""
    return DataBundle(dataset_type="ir", info={"direction": direction, "eval_fraction": eval_fraction, "seed": seed})


@pytest.fixture
def reader_registry():
    from embedtune_core.plugins.registry import Registry

    registry = Registry()
    registry.add("dataset_reader", "pack", "glossary", glossary, dataset_type="ir", bundled=True)
    return registry


def test_reader_options_fill_defaults_and_reach_the_reader(reader_registry):
    resolved = reader_registry.resolve_options("dataset_reader", "glossary", {"direction": "term-definition"})
    assert resolved == {"direction": "term-definition", "eval_fraction": packkit.DEFAULT_EVAL_FRACTION,
                        "seed": packkit.DEFAULT_SEED}
    built = reader_registry.create("dataset_reader", "glossary", None, eval_fraction=0, seed=3)
    assert built.info == {"direction": "definition-term", "eval_fraction": 0.0, "seed": 3}


def test_reader_options_name_an_unknown_key_with_the_closest_one(reader_registry):
    with pytest.raises(ComponentError, match="dataset reader 'glossary' has no option 'sed'") as info:
        reader_registry.resolve_options("dataset_reader", "glossary", {"sed": 1}, key="data.options")
    assert info.value.key == "data.options.sed"
    assert "did you mean 'seed'?" in info.value.hint and "direction, eval_fraction, seed" in info.value.hint


@pytest.mark.parametrize("fraction", [1.0, -0.1, True, "x", None])
def test_reader_options_reject_a_bad_fraction(reader_registry, fraction):
    with pytest.raises(ComponentError, match="option 'eval_fraction'") as info:
        reader_registry.resolve_options("dataset_reader", "glossary", {"eval_fraction": fraction}, key="data.options")
    assert info.value.key == "data.options.eval_fraction"


@pytest.mark.parametrize("value,message", [("both", "must be one of term-definition, definition-term"),
                                           (3, "must be a string")])
def test_reader_options_reject_a_value_outside_a_literal(reader_registry, value, message):
    with pytest.raises(ComponentError, match=message):
        reader_registry.resolve_options("dataset_reader", "glossary", {"direction": value}, key="data.options")


@pytest.mark.parametrize("seed", [True, 1.5, "seven"])
def test_reader_options_reject_a_bad_seed(reader_registry, seed):
    with pytest.raises(ComponentError, match="option 'seed' must be an integer"):
        reader_registry.resolve_options("dataset_reader", "glossary", {"seed": seed})


# -- deterministic splits -----------------------------------------------------------------------
def test_hash_fraction_is_the_sha1_of_seed_and_key():
    digest = hashlib.sha1("7\x00contract".encode()).hexdigest()
    assert hash_fraction("contract", 7) == int(digest[:12], 16) / 16**12
    values = [hash_fraction(f"key {i}", 1) for i in range(4000)]
    assert all(0.0 <= v < 1.0 for v in values)
    assert abs(sum(values) / len(values) - 0.5) < 0.02  # spread evenly
    assert hash_fraction("contract", 8) != hash_fraction("contract", 7)


def test_eval_groups_holds_out_about_the_fraction_whatever_the_order():
    keys = [f"group {i}" for i in range(2000)]
    held = eval_groups(keys, 0.2, 5)
    assert abs(len(held) / len(keys) - 0.2) < 0.03
    assert held == {k for k in keys if hash_fraction(k, 5) < 0.2}
    assert eval_groups(reversed(keys + keys), 0.2, 5) == held
    assert eval_groups(keys, 0.2, 6) != held


def test_eval_groups_keeps_a_group_on_each_side():
    assert eval_groups(["a", "b", "c"], 0.0, 1) == set()
    assert eval_groups([], 0.5, 1) == set()
    for seed in range(20):
        assert len(eval_groups(["a", "b"], 1e-9, seed)) == 1  # nothing would fall under: one is held
        assert len(eval_groups(["a", "b"], 0.999999, seed)) == 1  # everything would: one is kept
    lone = eval_groups(["only"], 0.999999, 1)
    assert lone == {"only"}  # a single group is not split


# -- bundles ------------------------------------------------------------------------------------
def test_ir_split_keeps_questions_sharing_an_answer_together():
    rows = [(f"q{i}", f"question {i}", f"d{i // 2}", f"answer {i // 2}") for i in range(40)]
    rows.append(("q-dup", "question 0", "d-other", "another answer to question 0"))
    bundle = ir_bundle(rows, eval_fraction=0.3, seed=5, source="test", info={"licence": "CC0"})
    train, held = bundle.train, bundle.eval
    assert bundle.dataset_type == "ir" and bundle.source == "test" and bundle.info["licence"] == "CC0"
    assert held.queries and train.queries and not set(train.queries) & set(held.queries)
    for i in range(0, 40, 2):  # questions 2k and 2k+1 share answer k: same side of the split
        assert (f"q{i}" in held.queries) == (f"q{i + 1}" in held.queries)
    assert "q-dup" not in train.queries and "q-dup" not in held.queries  # same text: merged into q0
    assert set(held.qrels.get("q0", {})) | set(train.qrels.get("q0", {})) == {"d0", "d-other"}
    assert not {d for q in held.qrels for d in held.qrels[q]} & set(train.corpus)
    assert len(held.corpus) == 21 and sorted(bundle.corpus) == sorted(train.corpus.values())
    assert bundle.info["queries"] == 40 and bundle.info["eval_queries"] == len(held.queries)
    assert ir_bundle(rows, eval_fraction=0.3, seed=5, source="test", info={}).eval.queries == held.queries


def test_ir_bundle_skips_blank_rows_and_has_no_eval_at_fraction_zero():
    rows = [("q1", " a question ", "d1", "an answer"), ("q2", "  ", "d2", "x"), ("q3", "y", "d3", "")]
    bundle = ir_bundle(rows, eval_fraction=0.0, seed=1, source="s", info={})
    assert bundle.eval is None
    assert bundle.train.queries == {"q1": "a question"} and bundle.train.corpus == {"d1": "an answer"}
    assert bundle.train.qrels == {"q1": {"d1": 1}}


def test_pairs_split_keeps_connected_terms_together():
    rows = [(f"term {i}", f"synonym {i}") for i in range(60)]
    rows += [("Term 0", "alias of 0"), ("alias of 0", "another alias of 0")]  # chain, case-insensitive
    rows += [("term 1", "synonym 1"), ("same", "SAME"), ("", "empty")]  # duplicate, self pair, blank
    bundle = pairs_bundle(rows, eval_fraction=0.25, seed=2, source="s", info={})
    assert bundle.dataset_type == "pairs" and bundle.train.column_names == ["anchor", "positive"]
    train_texts = {t.lower() for t in list(bundle.train["anchor"]) + list(bundle.train["positive"])}
    eval_texts = {t.lower() for t in list(bundle.eval["anchor"]) + list(bundle.eval["positive"])}
    assert train_texts and eval_texts and not train_texts & eval_texts
    group_0 = {"term 0", "synonym 0", "alias of 0", "another alias of 0"}
    assert group_0 <= train_texts or group_0 <= eval_texts
    assert len(bundle.train) + len(bundle.eval) == 62  # duplicate, self pair and blank dropped
    assert bundle.corpus == list(dict.fromkeys(bundle.train["positive"]))
    assert bundle.info["train_rows"] == len(bundle.train)
    assert pairs_bundle(rows, eval_fraction=0.0, seed=2, source="s", info={}).eval is None


def test_describe_size():
    ir = IRData(corpus={"d1": "x", "d2": "y"}, queries={"q1": "z"}, qrels={"q1": {"d1": 1}})
    bundle = ir_bundle([("q1", "z", "d1", "x")], eval_fraction=0.0, seed=1, source="s", info={})
    assert describe_size(bundle) == "train 1 queries over 1 documents"
    bundle.eval = ir
    assert describe_size(bundle) == "train 1 queries over 1 documents; test 1 queries over 2 documents"
    pairs = pairs_bundle([(f"a{i}", f"b{i}") for i in range(1500)], eval_fraction=0.2, seed=1, source="s", info={})
    assert describe_size(pairs) == f"train {len(pairs.train):,} pairs; test {len(pairs.eval):,} pairs"
    assert "1," in describe_size(pairs)


# -- text ---------------------------------------------------------------------------------------
def test_words_and_jaccard():
    assert words("The Non-Compete clause (2024)!") == ["the", "non", "compete", "clause", "2024"]
    assert jaccard({"a", "b"}, {"b", "c"}) == pytest.approx(1 / 3)
    assert jaccard(set(), set()) == 0.0 and jaccard({"a"}, {"a"}) == 1.0


# -- picking negatives --------------------------------------------------------------------------
class Tiers(TieredMiner):
    """A tiered miner proposing the same tiers for every anchor."""

    name = "listed"

    def __init__(self, options: GuardOptions, listed: list = ()):
        super().__init__(options)
        self.listed = list(listed)

    def tiers(self, data, request):
        return lambda query: self.listed


def ListedTiers(tiers, **options):
    """The miner as the registry builds it: options checked against its declaration."""
    from embedtune_core.plugins.registry import Registry

    registry = Registry()
    registry.add("negative_miner", "pack", "listed", Tiers)
    return registry.create("negative_miner", "listed", listed=tiers, **options)


def test_tiered_miner_options_are_the_toolkits():
    with pytest.raises(ComponentError, match="option 'short' must be one of fill, drop"):
        ListedTiers([], short="sometimes")
    with pytest.raises(ComponentError, match="option 'relative_margin' must be less than 1"):
        ListedTiers([], relative_margin=1.0)
    with pytest.raises(ComponentError, match=r"range_max \(3\) must be greater than range_min \(5\)") as info:
        ListedTiers([], range_min=5, range_max=3)
    assert info.value.key is None or info.value.key.endswith("range_max")
    assert ListedTiers([], relative_margin="0.1").options.relative_margin == 0.1


def _request(anchors, positives, **kw):
    return MiningRequest(dataset=Dataset.from_dict({"anchor": anchors, "positive": positives}),
                         dataset_type="pairs", **kw)


def test_tiers_are_walked_in_order_and_other_positives_are_dropped():
    pool = ["p1", "p2", "n1", "n2", "n3"]
    miner = ListedTiers([("close", [0, 1, 2]), ("far", [3, 2, 4])], short="drop")
    result = miner.mine(_request(["a", "a"], ["p1", "p2"], num_negatives=2, corpus=pool))
    rows = result.dataset.to_list()
    assert [r["negative_1"] for r in rows] == ["n1", "n1"] and [r["negative_2"] for r in rows] == ["n2", "n2"]
    stats = result.stats
    assert stats.extra["dropped"]["known_positive"] == 2  # p1 and p2: both positives of "a"
    assert stats.extra["picked_by"] == {"close": 2, "far": 2} and stats.extra["pool_size"] == 5
    assert stats.negatives_written == 4 and stats.queries_short == 0


def test_short_rows_are_filled_at_random_or_dropped():
    pool = ["p", "n1", "r1", "r2", "r3"]
    request = _request(["a"], ["p"], num_negatives=3, seed=4, corpus=pool)
    filled = ListedTiers([("tier", [1])]).mine(request)
    row = filled.dataset[0]
    negatives = [row["negative_1"], row["negative_2"], row["negative_3"]]
    assert negatives[0] == "n1" and set(negatives[1:]) <= {"r1", "r2", "r3"} and len(set(negatives)) == 3
    assert filled.stats.extra["picked_by"] == {"tier": 1, "random": 2} and filled.stats.queries_short == 1
    assert ListedTiers([("tier", [1])]).mine(request).dataset.to_list() == filled.dataset.to_list()  # seeded

    short = ListedTiers([("tier", [1])], short="drop").mine(request)
    assert len(short.dataset) == 0 and short.stats.negatives_written == 0  # hard-negatives: row dropped
    triplets = ListedTiers([("tier", [1])], short="drop").mine(attrs.evolve(request, output="triplets"))
    assert triplets.dataset.to_list() == [{"anchor": "a", "positive": "p", "negative": "n1"}]


def _fake_encoder(angles):
    def encode(texts):
        return np.array([[math.cos(math.radians(angles[t])), math.sin(math.radians(angles[t]))] for t in texts])
    return encode


def test_with_a_model_hardest_first_and_near_duplicates_dropped():
    angles = {"a": 0, "p": 10, "too close": 5, "hard": 30, "easy": 60}
    pool = ["easy", "hard", "too close", "p"]
    tiers = [("tier", [0, 1, 2, 3])]
    request = _request(["a"], ["p"], num_negatives=2, encoder=_fake_encoder(angles), corpus=pool)
    result = ListedTiers(tiers, short="drop").mine(request)
    row = result.dataset[0]
    assert (row["negative_1"], row["negative_2"]) == ("hard", "easy")
    assert result.stats.dropped_false_negatives == 1  # "too close" scores above 0.95 x the positive
    expected_gap = np.mean([math.cos(math.radians(10)) - math.cos(math.radians(a)) for a in (30, 60)])
    assert result.stats.mean_score_gap == pytest.approx(expected_gap, abs=1e-6)

    plain = ListedTiers(tiers, short="drop", guard_scores="retrieval").mine(request)  # proposal order, no margin
    assert (plain.dataset[0]["negative_1"], plain.dataset[0]["negative_2"]) == ("easy", "hard")


def test_tiered_miner_rejects_unusable_datasets():
    nli = MiningRequest(dataset=Dataset.from_dict({"premise": ["x"], "hypothesis": ["y"], "label": [0]}),
                        dataset_type="nli")
    with pytest.raises(ComponentError, match="not NLI records"):
        ListedTiers([]).mine(nli)
    single = MiningRequest(dataset=Dataset.from_dict({"text": ["x"]}), dataset_type="pairs")
    with pytest.raises(DataError, match="anchor, positive"):
        ListedTiers([]).mine(single)


# -- taxonomy -----------------------------------------------------------------------------------
RECORDS = [
    {"id": "valve", "terms": ["valve disease"], "parents": ["heart"]},
    {"id": "stenosis", "terms": ["mitral stenosis", "MS"], "parents": ["valve"],
     "definition": "narrowing of the mitral valve"},
    {"id": "regurgitation", "terms": ["mitral regurgitation"], "parents": ["valve"], "texts": ["MR (mitral)"]},
    {"id": "prolapse", "terms": ["mitral valve prolapse"], "parents": ["valve", "stenosis"]},
    {"id": "rhythm", "terms": ["arrhythmia"], "parents": ["heart"]},
    {"id": "afib", "terms": ["atrial fibrillation"], "parents": ["rhythm"]},
]


def test_normal_keeps_hyphens_and_apostrophes_inside_words():
    assert normal("  Crohn's  DISEASE, non-specific!") == "crohn's disease non-specific"


def test_resolve_prefers_an_exact_text_then_the_longest_mention():
    taxonomy = Taxonomy(RECORDS)
    assert len(taxonomy) == 6 and "afib" in taxonomy and "heart" not in taxonomy
    assert taxonomy.resolve("Narrowing of the mitral valve.") == ["stenosis"]
    assert taxonomy.resolve("mr mitral") == ["regurgitation"]
    assert taxonomy.resolve("history of mitral valve prolapse and MS") == ["prolapse"]
    assert taxonomy.resolve("MS or atrial fibrillation") == ["afib"]  # longest mention wins
    assert taxonomy.resolve("nothing known") == []
    assert Taxonomy(RECORDS, max_mention_words=2).resolve("a mitral valve prolapse") == []


def test_siblings_cousins_and_related():
    taxonomy = Taxonomy(RECORDS)
    assert taxonomy.ancestors("prolapse") == {"valve", "stenosis", "heart"}
    assert taxonomy.related("prolapse", "stenosis") and taxonomy.related("stenosis", "prolapse")
    assert not taxonomy.related("stenosis", "regurgitation")
    assert taxonomy.siblings("stenosis") == ["regurgitation"]  # prolapse is a kind of stenosis
    assert taxonomy.siblings("regurgitation") == ["stenosis", "prolapse"]
    assert taxonomy.cousins("stenosis") == ["afib"]
    assert taxonomy.cousins("valve") == []  # no grandparent known


def test_given_grandparents_are_used_for_cousins():
    records = [
        {"id": "a", "terms": ["alpha"], "parents": ["p1"], "grandparents": ["g"]},
        {"id": "b", "terms": ["beta"], "parents": ["p2"], "grandparents": ["g"]},
        {"id": "c", "terms": ["gamma"], "parents": ["p1"], "grandparents": ["g"]},
        {"id": "d", "terms": ["delta"], "parents": ["p3"], "grandparents": ["h"]},
    ]
    taxonomy = Taxonomy(records)
    assert taxonomy.ancestors("a") == {"p1", "g"}
    assert taxonomy.siblings("a") == ["c"] and taxonomy.cousins("a") == ["b"]


def test_concept_index_maps_a_pool_both_ways():
    taxonomy = Taxonomy(RECORDS)
    pool = ["mitral stenosis", "severe mitral regurgitation", "a cough", "MS"]
    per_text, by_concept = concept_index(taxonomy, pool)
    assert per_text == [["stenosis"], ["regurgitation"], [], ["stenosis"]]
    assert by_concept == {"stenosis": [0, 3], "regurgitation": [1]}
