"""Negative miners: valid output, guards against planted false negatives, agreement with
sentence-transformers' mine_hard_negatives and with bm25s called directly."""

import pathlib
import random
import re
import zlib

import numpy as np
import pytest

from embedtune_core.errors import ComponentError, ConfigError, DataError
from embedtune_core.mining import loose_text_key, run_miner
from embedtune_core.training.samplers import sequential_batch_sampler
from embedtune_core.types import IRData, MiningRequest, MiningResult, MiningStats

ROOT = pathlib.Path(__file__).resolve().parent.parent

ROWS = [
    ("fever and cough in a patient", "patient with fever, cough and night sweats"),
    ("irregular heart rhythm", "heart rhythm abnormality with palpitations"),
    ("small head size", "head circumference below normal size"),
    ("hearing loss in one ear", "ear hearing loss unilateral deafness"),
    ("tenant lease obligations", "lease agreement obligations of the tenant"),
    ("bond yield increase", "bond yield rose with interest rates"),
    ("building permit requirement", "permit required for building extension"),
    ("seller liability limits", "liability of the seller is limited"),
]
EXTRA = [
    "cough medicine for children", "fever in children after vaccination", "heart failure treatment",
    "heart rate during exercise", "rhythm guitar lessons", "head injury in sports", "hat size chart",
    "ear infection in children", "hearing aid batteries", "lease termination by the landlord",
    "tenant rights in winter", "bond market closed early", "interest rates and mortgage costs",
    "building collapse after storm", "parking permit for residents", "seller fees on marketplace",
    "product liability insurance", "night shift work and sleep", "normal body temperature",
    "patient waiting times in hospital", "limited edition sneakers", "agreement between two parties",
]


class WordCountEncoder:
    """texts -> L2-normalised hashed word-count vectors: cosine = word overlap, deterministic."""

    def __init__(self, dim=2048):
        self.dim = dim
        self.calls = 0

    def __call__(self, texts):
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[i, zlib.crc32(word.encode()) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


@pytest.fixture
def pairs():
    import datasets

    return datasets.Dataset.from_dict({"anchor": [a for a, _ in ROWS], "positive": [p for _, p in ROWS]})


@pytest.fixture
def corpus():
    return [p for _, p in ROWS] + EXTRA


def negative_columns(dataset):
    return [c for c in dataset.column_names if c.startswith("negative")]


def check_valid(result, n, output="hard-negatives", positives_of=None):
    """Every row: anchor, positive, n non-empty negatives, none equal to a positive of its anchor."""
    ds = result.dataset
    assert isinstance(result, MiningResult) and isinstance(result.stats, MiningStats)
    if output == "triplets":
        assert ds.column_names == ["anchor", "positive", "negative"]
    else:
        assert ds.column_names == ["anchor", "positive"] + [f"negative_{i + 1}" for i in range(n)]
    assert len(ds) > 0
    if positives_of is None:
        positives_of = {}
        for row in ds:
            positives_of.setdefault(row["anchor"], set()).add(loose_text_key(row["positive"]))
    for row in ds:
        negatives = [row[c] for c in negative_columns(ds)]
        assert all(isinstance(t, str) and t.strip() for t in negatives)
        for t in negatives:
            assert loose_text_key(t) not in positives_of[row["anchor"]], (row["anchor"], t)
            assert loose_text_key(t) != loose_text_key(row["anchor"])
        if output != "triplets":
            assert len(set(negatives)) == n
    written = len(ds) * (n if output != "triplets" else 1)
    assert result.stats.negatives_written == written


# -- every miner --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["bm25", "dense", "partial-match", "domain-confusion", "curriculum"])
@pytest.mark.parametrize("output", ["hard-negatives", "triplets"])
def test_each_retrieval_miner_writes_a_valid_dataset(registry, pairs, corpus, name, output):
    result = run_miner(registry, name, pairs, "pairs", num_negatives=2, options={}, encoder=WordCountEncoder(), corpus=corpus, output=output)
    check_valid(result, 2, output)
    stats = result.stats
    assert stats.queries == len(ROWS)
    assert stats.candidates_seen > 0
    assert stats.mean_score_gap is not None and stats.mean_score_gap > 0


def test_miners_without_a_corpus_use_the_positives(registry, pairs):
    result = run_miner(registry, "dense", pairs, "pairs", num_negatives=1, options={"relative_margin": None}, encoder=WordCountEncoder())
    check_valid(result, 1)
    positives = {p for _, p in ROWS}
    assert all(row["negative_1"] in positives for row in result.dataset)


def test_contradiction_miner(registry, tmp_path):
    from embedtune_core.data.loading import load_data

    bundle = load_data(registry, str(ROOT / "tests" / "data" / "nli.jsonl"), dataset_type="nli")
    result = run_miner(registry, "contradiction", bundle.train, "nli", num_negatives=1, options={"short": "drop"})
    check_valid(result, 1)
    premise = "A man inspects the uniform of a figure in some East Asian country."
    row = next(r for r in result.dataset if r["anchor"] == premise)
    assert row["positive"] == "A man is looking at a uniform." and row["negative_1"] == "The man is sleeping."
    # one premise has an entailment but no contradiction: counted short and dropped
    assert result.stats.queries_short == result.stats.queries - len(result.dataset)
    filled = run_miner(registry, "contradiction", bundle.train, "nli", num_negatives=2, options={})  # fill is the default
    check_valid(filled, 2)
    assert len(filled.dataset) == filled.stats.queries
    assert filled.stats.negatives_filled > 0


def test_contradiction_drops_a_contradiction_equal_to_an_entailment(registry):
    import datasets

    nli = datasets.Dataset.from_dict(
        {
            "premise": ["A dog runs in the park."] * 4,
            "hypothesis": ["A dog is running.", "The dog is asleep.", "a dog is RUNNING", "A cat sits."],
            "label": [0, 2, 2, 2],
        }
    )
    result = run_miner(registry, "contradiction", nli, "nli", num_negatives=2, options={"short": "drop"})
    assert result.dataset.to_list() == [
        {"anchor": "A dog runs in the park.", "positive": "A dog is running.", "negative_1": "The dog is asleep.", "negative_2": "A cat sits."}
    ]
    assert result.stats.extra["dropped"]["same_text"] == 1
    assert result.stats.dropped_false_negatives == 1


def test_contradiction_needs_nli_data(registry, pairs):
    with pytest.raises(DataError, match="NLI data"):
        run_miner(registry, "contradiction", pairs, "pairs", num_negatives=1, options={})


def test_contradiction_pools_labelled_negatives_of_triplets(registry):
    """The pipeline trains NLI data as triplets: the miner pools each anchor's labelled negatives."""
    from embedtune_core.data.loading import load_data, to_training_dataset

    bundle = load_data(registry, str(ROOT / "tests" / "data" / "nli.jsonl"), dataset_type="nli")
    triplets, kind = to_training_dataset(bundle)
    assert kind == "triplets"
    from_triplets = run_miner(registry, "contradiction", triplets, kind, num_negatives=1, options={"short": "drop"})
    from_nli = run_miner(registry, "contradiction", bundle.train, "nli", num_negatives=1, options={"short": "drop"})
    check_valid(from_triplets, 1)
    assert from_triplets.dataset.to_list() == from_nli.dataset.to_list()


# -- the guards ---------------------------------------------------------------------------------
def planted():
    anchor = "fever cough patient"
    positive = "patient fever cough night sweats"
    paraphrase = "patient fever cough chills"  # relevant by the qrels
    duplicate = "Patient fever, COUGH night sweats!"  # the positive in other case and punctuation
    closer = "fever cough patient today"  # scores above the positive
    easy = ["stock prices fell", "bond yield rose with fever", "cough drops for sale", "hearing aid batteries", "patient records office"]
    ir = IRData(
        corpus={"p": positive, "r": paraphrase, "d": duplicate, "x": closer, **{f"e{i}": t for i, t in enumerate(easy)}},
        queries={"q": anchor},
        qrels={"q": {"p": 1, "r": 2, "e0": 0}},
    )
    return ir, positive, paraphrase, duplicate, closer


def test_guards_drop_planted_false_negatives(registry):
    ir, positive, paraphrase, duplicate, closer = planted()
    encoder = WordCountEncoder()
    guarded = run_miner(registry, "dense", ir, "ir", num_negatives=2, options={}, encoder=encoder)
    negatives = {guarded.dataset[0]["negative_1"], guarded.dataset[0]["negative_2"]}
    assert not negatives & {positive, paraphrase, duplicate, closer}
    dropped = guarded.stats.extra["dropped"]
    assert dropped["known_positive"] == 2  # the positive and the paraphrase the qrels mark relevant
    assert dropped["same_text"] == 1  # the duplicate
    assert dropped["relative_margin"] >= 1  # the text scoring above the positive
    assert guarded.stats.dropped_false_negatives == sum(dropped[r] for r in ("same_text", "absolute_margin", "relative_margin", "max_score"))
    # one row per relevant document, with the same negatives
    assert sorted(guarded.dataset["positive"]) == sorted([positive, paraphrase])

    # without the margin the closer text is the hardest negative: the margin is what drops it
    loose = run_miner(registry, "dense", ir, "ir", num_negatives=1, options={"relative_margin": None}, encoder=encoder)
    assert set(loose.dataset["negative_1"]) == {closer}
    # without the qrels' second judgement the paraphrase is a candidate negative
    unjudged = IRData(corpus=ir.corpus, queries=ir.queries, qrels={"q": {"p": 1}})
    exposed = run_miner(registry, "dense", unjudged, "ir", num_negatives=3, options={"relative_margin": None}, encoder=encoder)
    assert paraphrase in {exposed.dataset[0][f"negative_{i}"] for i in (1, 2, 3)}
    assert exposed.stats.extra["dropped"]["known_positive"] == 1


def test_absolute_margin_max_score_and_window(registry):
    ir, positive, *_ = planted()
    encoder = WordCountEncoder()
    pos = float(encoder(["fever cough patient"])[0] @ encoder([positive])[0])
    result = run_miner(registry, "dense", ir, "ir", num_negatives=1, options={"relative_margin": None, "absolute_margin": 0.2, "short": "drop"}, encoder=encoder)
    q = encoder(["fever cough patient"])[0]
    for row in result.dataset:
        assert float(q @ encoder([row["negative_1"]])[0]) <= pos - 0.2 + 1e-6
    capped = run_miner(registry, "dense", ir, "ir", num_negatives=1, options={"relative_margin": None, "max_score": 0.3}, encoder=encoder)
    assert capped.stats.extra["dropped"]["max_score"] > 0
    assert float(q @ encoder([capped.dataset[0]["negative_1"]])[0]) <= 0.3 + 1e-6
    top = run_miner(registry, "dense", ir, "ir", num_negatives=3, options={"relative_margin": None}, encoder=encoder)
    skipped = run_miner(registry, "dense", ir, "ir", num_negatives=1, options={"relative_margin": None, "range_min": 2}, encoder=encoder)
    assert skipped.dataset[0]["negative_1"] == top.dataset[0]["negative_3"]


def test_random_sampling_is_seeded_and_within_the_window(registry, pairs, corpus):
    opts = {"sampling": "random", "range_max": 6, "relative_margin": None}
    a = run_miner(registry, "dense", pairs, "pairs", num_negatives=2, options=opts, encoder=WordCountEncoder(), corpus=corpus, seed=1)
    b = run_miner(registry, "dense", pairs, "pairs", num_negatives=2, options=opts, encoder=WordCountEncoder(), corpus=corpus, seed=1)
    window = run_miner(registry, "dense", pairs, "pairs", num_negatives=6, options={"relative_margin": None, "short": "drop"}, encoder=WordCountEncoder(), corpus=corpus)
    assert a.dataset.to_list() == b.dataset.to_list()
    top6 = {r["anchor"]: {r[f"negative_{i}"] for i in range(1, 7)} for r in window.dataset}
    for row in a.dataset:
        if row["anchor"] in top6:
            assert {row["negative_1"], row["negative_2"]} <= top6[row["anchor"]]


def test_short_anchors_are_dropped_or_filled_and_counted(registry, pairs, corpus):
    opts = {"relative_margin": 0.5, "range_max": 6, "short": "drop"}
    dropped = run_miner(registry, "dense", pairs, "pairs", num_negatives=4, options=opts, encoder=WordCountEncoder(), corpus=corpus)
    assert dropped.stats.queries_short > 0
    assert len(dropped.dataset) == len(ROWS) - dropped.stats.extra["rows_dropped_short"]
    assert dropped.stats.extra["rows_dropped_short"] == dropped.stats.queries_short == dropped.stats.rows_in - dropped.stats.rows_out
    filled = run_miner(registry, "dense", pairs, "pairs", num_negatives=4, options={**opts, "short": "fill"}, encoder=WordCountEncoder(), corpus=corpus)
    assert filled.stats.as_dict() == run_miner(registry, "dense", pairs, "pairs", num_negatives=4, options={"relative_margin": 0.5, "range_max": 6}, encoder=WordCountEncoder(), corpus=corpus).stats.as_dict()  # the default
    check_valid(filled, 4)
    assert len(filled.dataset) == len(ROWS)
    assert filled.stats.queries_short == dropped.stats.queries_short
    assert filled.stats.negatives_filled > 0
    triplets = run_miner(registry, "dense", pairs, "pairs", num_negatives=4, options=opts, encoder=WordCountEncoder(), corpus=corpus, output="triplets")
    per_anchor = {a: list(triplets.dataset["anchor"]).count(a) for a in set(triplets.dataset["anchor"])}
    assert any(count < 4 for count in per_anchor.values())  # short anchors keep what they got
    assert triplets.stats.negatives_written == len(triplets.dataset)


def test_batching_does_not_change_the_result(registry, pairs, corpus):
    one = run_miner(registry, "dense", pairs, "pairs", num_negatives=2, options={"batch_size": 1}, encoder=WordCountEncoder(), corpus=corpus)
    big = run_miner(registry, "dense", pairs, "pairs", num_negatives=2, options={}, encoder=WordCountEncoder(), corpus=corpus)
    assert one.dataset.to_list() == big.dataset.to_list()
    assert one.stats.as_dict() == big.stats.as_dict()


def test_dense_faiss_index_gives_the_same_negatives(registry, pairs, corpus):
    pytest.importorskip("faiss")
    encoder = WordCountEncoder()
    torch_ = run_miner(registry, "dense", pairs, "pairs", num_negatives=2, options={"index": "torch"}, encoder=encoder, corpus=corpus)
    faiss_ = run_miner(registry, "dense", pairs, "pairs", num_negatives=2, options={"index": "faiss"}, encoder=encoder, corpus=corpus)
    assert torch_.dataset["anchor"] == faiss_.dataset["anchor"]
    for a, b in zip(torch_.dataset, faiss_.dataset):  # equal up to ties (word counts tie often)
        q = encoder([a["anchor"]])[0]
        np.testing.assert_allclose(encoder([a["negative_1"], a["negative_2"]]) @ q, encoder([b["negative_1"], b["negative_2"]]) @ q, atol=1e-6)
    # the approximate search reports what it cost against exact search; the exact one finds all
    recall = {k: v for k, v in faiss_.stats.extra.items() if k.startswith("search_recall@")}
    assert len(recall) == 1 and 0.9 <= next(iter(recall.values())) <= 1.0, recall
    assert faiss_.stats.extra["search"].startswith("ivf nlist=")
    assert [v for k, v in torch_.stats.extra.items() if k.startswith("search_recall@")] == [1.0]
    assert torch_.stats.extra["search"] == "exact"


def test_lexical_miner_margins_use_the_model_or_are_off_by_default(registry, pairs, corpus):
    with_model = run_miner(registry, "bm25", pairs, "pairs", num_negatives=1, options={}, encoder=WordCountEncoder(), corpus=corpus)
    assert with_model.stats.extra["score"] == "model cosine scores"
    assert with_model.stats.extra["relative_margin"] == 0.05  # "auto": the default on the model's scores
    lexical = run_miner(registry, "bm25", pairs, "pairs", num_negatives=1, options={}, corpus=corpus)
    assert lexical.stats.extra["score"].startswith("BM25 scores (relative_margin off")
    assert lexical.stats.extra["dropped"]["relative_margin"] == 0 and lexical.stats.extra["relative_margin"] is None
    explicit = run_miner(registry, "bm25", pairs, "pairs", num_negatives=1, options={"relative_margin": 0.05}, corpus=corpus)
    assert explicit.stats.extra["score"] == "BM25 scores" and explicit.stats.extra["relative_margin"] == 0.05
    with pytest.raises(ConfigError, match="guard_scores=encoder"):
        run_miner(registry, "bm25", pairs, "pairs", num_negatives=1, options={"guard_scores": "encoder"}, corpus=corpus)


def test_bad_options_are_clear_errors(registry, pairs):
    with pytest.raises(ComponentError, match="no option 'range_mni'") as info:
        run_miner(registry, "dense", pairs, "pairs", num_negatives=1, options={"range_mni": 3}, encoder=WordCountEncoder())
    assert "range_min" in info.value.hint
    with pytest.raises(ComponentError, match="option 'sampling' must be one of top, random"):
        run_miner(registry, "bm25", pairs, "pairs", num_negatives=1, options={"sampling": "best"})
    with pytest.raises(ComponentError, match="range_max"):
        run_miner(registry, "dense", pairs, "pairs", num_negatives=1, options={"range_min": 5, "range_max": 3}, encoder=WordCountEncoder())
    with pytest.raises(ConfigError, match="cannot mine 4 negatives"):
        run_miner(registry, "dense", pairs, "pairs", num_negatives=4, options={"range_max": 3}, encoder=WordCountEncoder())
    with pytest.raises(ComponentError, match="option 'relative_margin' must be a number or one of auto or none"):
        run_miner(registry, "dense", pairs, "pairs", num_negatives=1, options={"relative_margin": "high"}, encoder=WordCountEncoder())
    with pytest.raises(ConfigError, match="num_negatives"):
        run_miner(registry, "dense", pairs, "pairs", num_negatives=0, options={}, encoder=WordCountEncoder())
    with pytest.raises(ConfigError, match="output"):
        run_miner(registry, "dense", pairs, "pairs", num_negatives=1, output="pairs", encoder=WordCountEncoder())


def test_run_miner_rejects_a_miner_returning_the_wrong_shape(registry, throwaway_plugin, plugin_set, pairs):
    import datasets

    from embedtune_core import hookimpl
    from embedtune_core.plugins.registry import build_registry

    class Broken:
        def __init__(self, **options):
            pass

        def mine(self, request):
            return MiningResult(dataset=datasets.Dataset.from_dict({"anchor": ["a"], "positive": ["b"]}), stats=MiningStats())

    class Pack:
        @hookimpl
        def register_negative_miners(self, register):
            register("broken", Broken)

    throwaway_plugin(Pack(), "broken-pack")
    with pytest.raises(ComponentError, match="returned columns anchor, positive"):
        run_miner(build_registry(plugin_set), "broken", pairs, "pairs", num_negatives=1)


# -- partial match, domain confusion ------------------------------------------------------------
def test_partial_match_prefers_shared_key_terms_and_drops_full_matches(registry):
    import datasets

    ds = datasets.Dataset.from_dict({"anchor": ["Dosage of Aspirin for children"], "positive": ["how much aspirin a child may take"]})
    corpus = [
        "aspirin dosage for children guidelines",  # covers every key term: likely relevant
        "aspirin side effects in adults",  # shares the name (weighted up: capitalised in the query)
        "dosage of ibuprofen",  # shares a plain content word
        "weather report for tomorrow",  # shares nothing
    ]
    result = run_miner(registry, "partial-match", ds, "pairs", num_negatives=2, options={"guard_scores": "retrieval", "short": "drop"}, corpus=corpus)
    row = result.dataset[0]
    assert [row["negative_1"], row["negative_2"]] == ["aspirin side effects in adults", "dosage of ibuprofen"]
    assert result.stats.extra["dropped"]["max_overlap"] == 1
    assert result.stats.dropped_false_negatives >= 1
    short = run_miner(registry, "partial-match", ds, "pairs", num_negatives=3, options={"guard_scores": "retrieval", "short": "drop"}, corpus=corpus)
    assert len(short.dataset) == 0 and short.stats.queries_short == 1


def test_domain_confusion_takes_negatives_from_the_nearest_other_category(registry):
    import datasets

    cardio = ["heart rhythm disorder", "heart valve disease", "heart muscle weakness"]
    pulmo = ["lung rhythm of breathing", "lung disease heart strain", "lung muscle weakness breathing"]
    finance = ["bond market prices", "stock market crash", "interest rates rise"]
    corpus = cardio + pulmo + finance
    categories = ["cardio"] * 3 + ["pulmo"] * 3 + ["finance"] * 3
    ds = datasets.Dataset.from_dict({"anchor": ["heart rhythm problem"], "positive": ["heart rhythm disorder"]})
    result = run_miner(
        registry, "domain-confusion", ds, "pairs", num_negatives=2, options={"relative_margin": None}, encoder=WordCountEncoder(), corpus=corpus, categories=categories
    )
    row = result.dataset[0]
    assert {row["negative_1"], row["negative_2"]} <= set(pulmo)
    assert row["negative_1"] == "lung rhythm of breathing"  # the hardest of that category
    assert result.stats.extra["nearest"]["cardio"] == ["pulmo"]
    assert result.stats.extra["groups"] == "categories"


@pytest.mark.parametrize("use_faiss", [True, False])
def test_domain_confusion_clusters_the_corpus_without_categories(registry, pairs, corpus, monkeypatch, use_faiss):
    from embedtune_core.mining import dense as dense_sources

    if use_faiss:
        pytest.importorskip("faiss")
    else:
        monkeypatch.setattr(dense_sources, "faiss_module", lambda: None)
    encoder = WordCountEncoder()
    result = run_miner(registry, "domain-confusion", pairs, "pairs", num_negatives=1, options={"clusters": 4, "relative_margin": None}, encoder=encoder, corpus=corpus)
    check_valid(result, 1)
    assert result.stats.extra["groups"] == "k-means" and result.stats.extra["group_count"] == 4
    labels, _ = dense_sources.kmeans(encoder(list(dict.fromkeys(corpus))), 4, 42)
    cluster = dict(zip(list(dict.fromkeys(corpus)), labels.tolist()))
    for row in result.dataset:
        assert cluster[row["negative_1"]] != cluster[row["positive"]]


# -- curriculum ---------------------------------------------------------------------------------
def hardness(encoder, row):
    a, p = encoder([row["anchor"]])[0], encoder([row["positive"]])[0]
    negs = [encoder([row[c]])[0] for c in row if c.startswith("negative")]
    return float(np.mean([a @ n for n in negs]) - a @ p)


def test_curriculum_orders_rows_from_easy_to_hard(registry, pairs, corpus):
    encoder = WordCountEncoder()
    options = {"base": "bm25", "base_options": {"relative_margin": None, "short": "fill"}, "bands": 3, "shuffle_within": False}
    result = run_miner(registry, "curriculum", pairs, "pairs", num_negatives=2, options=options, encoder=encoder, corpus=corpus)
    check_valid(result, 2)
    assert registry.get("negative_miner", "curriculum").info.ordered and result.stats.extra["base"] == "bm25"
    values = [hardness(encoder, row) for row in result.dataset]
    assert values == sorted(values)
    assert [b["rows"] for b in result.stats.extra["bands"]] == [3, 3, 2]
    base = run_miner(registry, "bm25", pairs, "pairs", num_negatives=2, options=options["base_options"], encoder=encoder, corpus=corpus)
    assert sorted(map(str, result.dataset.to_list())) == sorted(map(str, base.dataset.to_list()))
    cumulative = run_miner(registry, "curriculum", pairs, "pairs", num_negatives=2, options={**options, "schedule": "cumulative"}, encoder=encoder, corpus=corpus)
    assert len(cumulative.dataset) == 3 + 6 + 8


def test_curriculum_bands_are_ordered_when_shuffled(registry, pairs, corpus):
    encoder = WordCountEncoder()
    result = run_miner(registry, "curriculum", pairs, "pairs", num_negatives=1, options={"bands": 2}, encoder=encoder, corpus=corpus)
    values = [hardness(encoder, row) for row in result.dataset]
    first = result.stats.extra["bands"][0]["rows"]
    assert max(values[:first]) <= min(values[first:]) + 1e-6


def test_curriculum_rejects_itself_as_base(registry):
    with pytest.raises(ComponentError, match="cannot wrap 'curriculum', which wraps one itself"):
        registry.create("negative_miner", "curriculum", base="curriculum")


def test_sequential_batch_sampler_keeps_the_order_in_the_trainer(tiny_model):
    import datasets
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments, losses

    ds = datasets.Dataset.from_dict({"anchor": [f"anchor {i}" for i in range(10)], "positive": [f"positive {i}" for i in range(10)]})
    model = SentenceTransformer(tiny_model, device="cpu")
    args = SentenceTransformerTrainingArguments(output_dir="unused", per_device_train_batch_size=4, batch_sampler=sequential_batch_sampler, report_to=[], use_cpu=True)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=ds, loss=losses.MultipleNegativesRankingLoss(model))
    batches = list(trainer.get_train_dataloader().batch_sampler)
    assert [i for batch in batches for i in batch] == list(range(10))


# -- reference implementations ------------------------------------------------------------------
def paraphrase_data(seed=0, n_rows=30, n_corpus=300):
    """Anchors whose positive shares most of their words, over a corpus of random word sets, so
    positives score above most candidates even with the untrained tiny model."""
    import datasets

    from embedtune_core.testing import TINY_CORPUS

    rnd = random.Random(seed)
    words = sorted({w for t in TINY_CORPUS for w in t.split()})
    anchors, positives = [], []
    for _ in range(n_rows):
        w = rnd.sample(words, 5)
        anchors.append(" ".join(w))
        positives.append(" ".join(w[::-1][:4] + rnd.sample(words, 1)))
    corpus = list(dict.fromkeys(" ".join(rnd.sample(words, rnd.randint(3, 8))) for _ in range(n_corpus)))
    return datasets.Dataset.from_dict({"anchor": anchors, "positive": positives}), corpus


class ExactVectors:
    """Texts -> fixed vectors whose components are integers / 4096 (|integer| <= 1000, 16 of
    them): every inner product is exact in float32, so sentence-transformers and embedtune
    compute bit-identical scores whatever the order of their sums. It serves as our miner's
    encoder and, through :class:`ExactModel`, as the model ``mine_hard_negatives`` encodes with."""

    def __init__(self, anchors, positives, corpus, seed=0):
        rng = np.random.default_rng(seed)
        self.vectors = {}
        for anchor, positive in zip(anchors, positives):
            a = rng.integers(-1000, 1001, 16)
            self.vectors.setdefault(anchor, a)
            self.vectors.setdefault(positive, np.clip(a + rng.integers(-350, 351, 16), -1000, 1000))
        for i, text in enumerate(corpus):  # a third of the corpus near some anchor, the rest anywhere
            near = self.vectors[anchors[i % len(anchors)]]
            noise = rng.integers(-600, 601, 16)
            self.vectors.setdefault(text, np.clip(near + noise, -1000, 1000) if i % 3 == 0 else rng.integers(-1000, 1001, 16))

    def __call__(self, texts):
        return np.stack([self.vectors[t] for t in texts]).astype(np.float32) / 4096


class ExactModel:
    """What ``mine_hard_negatives`` calls on a model, with the vectors of :class:`ExactVectors`
    and their plain inner product."""

    def __init__(self, vectors):
        import torch

        self.vectors = vectors
        self.device = torch.device("cpu")

    def encode_document(self, texts, **kwargs):
        return self.vectors(texts)

    encode_query = encode_document

    def similarity(self, a, b):
        import torch

        return torch.as_tensor(a) @ torch.as_tensor(b).T

    def similarity_pairwise(self, a, b):
        import torch

        return (torch.as_tensor(a) * torch.as_tensor(b)).sum(dim=1)


OURS_ONLY = ("short", "max_depth", "positive_floor")
SETTINGS = [  # short=drop, max_depth=1, positive_floor=none: what mine_hard_negatives does
    {"relative_margin": 0.02, "short": "drop", "max_depth": 1, "positive_floor": None},
    {"range_min": 2, "range_max": 25, "relative_margin": None, "short": "drop", "positive_floor": None},
    {"absolute_margin": 0.01, "max_score": 0.2, "relative_margin": None, "short": "drop", "positive_floor": None,
     "max_depth": 1},
]


def test_the_reference_data_has_no_tie_and_no_score_on_a_threshold():
    """Neither side breaks a tie the way the other does (ours: the lower corpus index first;
    ``torch.topk``: unspecified), so the data has none: every candidate of an anchor scores
    differently, and none sits on a margin's threshold."""
    ds, corpus = paraphrase_data()
    vectors = ExactVectors(ds["anchor"], ds["positive"], corpus)
    texts = list(dict.fromkeys(corpus + list(ds["positive"])))
    scores = vectors(ds["anchor"]).astype(np.float64) @ vectors(texts).astype(np.float64).T
    positive = np.einsum("ij,ij->i", vectors(ds["anchor"]).astype(np.float64), vectors(ds["positive"]).astype(np.float64))
    for row, pos in zip(scores, positive):
        assert len(np.unique(row)) == len(row)
        for threshold in (pos - abs(pos) * 0.02, pos - 0.01, 0.2):
            assert np.abs(row - threshold).min() > 1e-6


@pytest.mark.parametrize("settings", SETTINGS)
def test_dense_miner_matches_sentence_transformers(registry, settings):
    """The same negatives as ``mine_hard_negatives``, in the same order, on scores both compute
    exactly alike (see ``test_the_reference_data_has_no_tie_and_no_score_on_a_threshold``)."""
    from sentence_transformers.util import mine_hard_negatives

    ds, corpus = paraphrase_data()
    vectors = ExactVectors(ds["anchor"], ds["positive"], corpus)
    reference_options = {k: v for k, v in settings.items() if v is not None and k not in OURS_ONLY}
    reference = mine_hard_negatives(ds, ExactModel(vectors), corpus=corpus, num_negatives=3, output_format="n-tuple",
                                    verbose=False, **reference_options)
    ours = run_miner(registry, "dense", ds, "pairs", num_negatives=3, options=settings, encoder=vectors, corpus=corpus)
    assert len(ours.dataset) >= 10
    if settings.get("relative_margin") or settings.get("absolute_margin"):
        assert ours.stats.dropped_false_negatives > 0
    assert ours.dataset.to_list() == reference.to_list()
    ref_triplets = mine_hard_negatives(ds, ExactModel(vectors), corpus=corpus, num_negatives=3, output_format="triplet",
                                       verbose=False, **reference_options)
    our_triplets = run_miner(registry, "dense", ds, "pairs", num_negatives=3, options=settings, encoder=vectors,
                             corpus=corpus, output="triplets")
    assert our_triplets.dataset.to_list() == ref_triplets.to_list()


def test_bm25_miner_matches_bm25s(registry):
    import bm25s

    from embedtune_core.mining.lexical import BM25Source
    from embedtune_core.mining import prepare_pairs

    ds, corpus = paraphrase_data(seed=3, n_rows=20, n_corpus=150)
    n, depth_extra = 3, 1
    result = run_miner(registry, "bm25", ds, "pairs", num_negatives=n, options={"relative_margin": None, "guard_scores": "retrieval", "range_max": 10, "short": "drop"}, corpus=corpus)
    full_corpus = list(dict.fromkeys(corpus + list(ds["positive"])))
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(full_corpus, stopwords="en", show_progress=False), show_progress=False)
    # bm25s' score of every text; ranked best first, equal scores in corpus order (bm25s' own
    # retrieve orders ties as np.argpartition leaves them)
    tokens = bm25s.tokenize(list(ds["anchor"]), stopwords="en", return_ids=False, show_progress=False)
    got = {r["anchor"]: [r[f"negative_{i}"] for i in (1, 2, 3)] for r in result.dataset}
    assert len(got) > 0
    compared = 0
    for anchor, positive, query in zip(ds["anchor"], ds["positive"], tokens):
        s = retriever.get_scores(query)
        ids = np.lexsort((np.arange(len(s)), -s))[: 10 + depth_extra]
        expected = [full_corpus[d] for d in ids if s[d] > 0 and full_corpus[d] != positive][:n]
        if len(expected) < n:
            assert anchor not in got
            continue
        assert got[anchor] == expected
        compared += 1
    assert compared >= 10
    # positive scores are bm25s' own, to the bit
    request = MiningRequest(dataset=ds, dataset_type="pairs", corpus=corpus)
    data = prepare_pairs(request)
    source = BM25Source(data)
    q, d = data.positive_pairs()
    ours = source.score(q, d)
    query_tokens = bm25s.tokenize(data.queries, stopwords="en", return_ids=False, show_progress=False)
    reference = [retriever.get_scores(query_tokens[i])[j] if query_tokens[i] else 0.0 for i, j in zip(q, d)]
    np.testing.assert_array_equal(ours, np.asarray(reference, dtype=np.float32))


@pytest.mark.parametrize("stopwords", ["en", None])
def test_bm25_top_k_equals_bm25s_scores_on_every_text(stopwords):
    """The pruned top-k of each query against bm25s' scores of the whole corpus: the same
    float32 scores bit for bit, the same texts, ties in corpus order."""
    import bm25s

    from embedtune_core.mining.lexical import BM25Source
    from embedtune_core.mining.pairs import prepare_pairs

    ds, corpus = paraphrase_data(seed=7, n_rows=120, n_corpus=900)
    data = prepare_pairs(MiningRequest(dataset=ds, dataset_type="pairs", corpus=corpus))
    source = BM25Source(data, stopwords=stopwords)
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(data.corpus, stopwords=stopwords, show_progress=False), show_progress=False)
    tokens = bm25s.tokenize(data.queries, stopwords=stopwords, return_ids=False, show_progress=False)
    query_ids = np.arange(len(data.queries))
    depth = 25
    scores, idx = source.search(query_ids, depth)
    ties = 0
    for q in query_ids:
        full = retriever.get_scores(tokens[q]) if tokens[q] else np.zeros(len(data.corpus), np.float32)
        order = np.lexsort((np.arange(len(full)), -full))[:depth]
        order = order[full[order] > 0]
        assert idx[q, : len(order)].tolist() == order.tolist()
        assert (idx[q, len(order):] == -1).all()
        np.testing.assert_array_equal(scores[q, : len(order)], full[order])
        ties += int((np.diff(full[order]) == 0).sum())
    assert ties > 20  # the data does tie, so the tie order was checked


def test_bm25_pruning_is_exact_where_it_skips_texts():
    """Zipf-distributed words (a few terms in most texts): MaxScore leaves most texts unscored,
    and the top-k still equals the one from bm25s' scores of every text."""
    import bm25s

    from embedtune_core.mining.lexical import BM25Source
    from embedtune_core.mining.pairs import prepare_pairs

    import datasets

    rng = np.random.default_rng(11)
    words = [f"w{i}x" for i in range(3000)]

    def text(n):
        return " ".join(words[i % 3000] for i in rng.zipf(1.3, n))

    ds = datasets.Dataset.from_dict({"anchor": [text(8) for _ in range(150)], "positive": [text(20) for _ in range(150)]})
    corpus = [text(20) for _ in range(3000)]
    data = prepare_pairs(MiningRequest(dataset=ds, dataset_type="pairs", corpus=corpus))
    source = BM25Source(data, stopwords=None)
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(data.corpus, stopwords=None, show_progress=False), show_progress=False)
    tokens = bm25s.tokenize(data.queries, stopwords=None, return_ids=False, show_progress=False)
    scores, idx = source.search(np.arange(len(data.queries)), 10)
    scored, touched = 0, 0
    for q in range(len(data.queries)):
        full = retriever.get_scores(tokens[q])
        order = np.lexsort((np.arange(len(full)), -full))[:10]
        order = order[full[order] > 0]
        assert idx[q, : len(order)].tolist() == order.tolist()
        np.testing.assert_array_equal(scores[q, : len(order)], full[order])
        ids = source.query_tokens_matrix[q].indices
        scored += len(source._candidates(ids, 10)[0])
        touched += int((full > 0).sum())
    assert scored < touched / 3  # most texts that share a term with a query were never scored


# -- cross-encoder ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory, tiny_model):
    """A tiny BERT cross-encoder (one output), built in code with the tiny model's tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    folder = tmp_path_factory.mktemp("tiny-ce")
    tokenizer = AutoTokenizer.from_pretrained(str(pathlib.Path(tiny_model).parent / "_hf"))
    torch.manual_seed(1)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, max_position_embeddings=130, num_labels=1, initializer_range=0.5)
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def test_cross_encoder_rescoring_decides_the_guards_and_the_order(registry, pairs, corpus, tiny_cross_encoder):
    from sentence_transformers import CrossEncoder

    ce = CrossEncoder(tiny_cross_encoder, device="cpu")
    anchor, positive = ROWS[0]
    candidates = [t for t in dict.fromkeys(corpus) if t != positive]
    ce_scores = ce.predict([(anchor, t) for t in candidates], convert_to_numpy=True, show_progress_bar=False)
    threshold = float(np.median(ce_scores))
    options = {"cross_encoder": tiny_cross_encoder, "relative_margin": None, "max_score": threshold, "range_max": len(corpus)}
    result = run_miner(registry, "dense", pairs.select([0]), "pairs", num_negatives=3, options=options, encoder=WordCountEncoder(), corpus=corpus)
    assert result.stats.extra["score"] == "cross-encoder scores"
    # the three best cross-encoder scores at or under the threshold, best first (compared as
    # scores: the random weights of the tiny cross-encoder may score two texts alike)
    by_ce = dict(zip(candidates, ce_scores.tolist()))
    row = result.dataset[0]
    got = [by_ce[row[f"negative_{i}"]] for i in (1, 2, 3)]
    assert got == pytest.approx(sorted((s for s in ce_scores.tolist() if s <= threshold), reverse=True)[:3], abs=1e-6)
    assert result.stats.extra["dropped"]["max_score"] == sum(1 for s in ce_scores if s > threshold)


# -- docs ---------------------------------------------------------------------------------------
def test_docs_custom_miner_example_runs(registry, throwaway_plugin, plugin_set, pairs, corpus):
    import types

    from embedtune_core.plugins.registry import build_registry

    text = (ROOT / "docs" / "mining.md").read_text(encoding="utf-8")
    section = text.split("## Writing a custom miner in a pack", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    module = types.ModuleType("doc_pack")
    exec(compile(code, "docs/mining.md", "exec"), module.__dict__)
    throwaway_plugin(module, "doc-pack")
    registry = build_registry(plugin_set)
    assert registry.get("negative_miner", "char-ngram").plugin == "doc-pack"
    result = run_miner(registry, "char-ngram", pairs, "pairs", num_negatives=2, options={"ngram": 4}, encoder=WordCountEncoder(), corpus=corpus)
    check_valid(result, 2)
    assert result.stats.extra["dropped"]["known_positive"] == len(ROWS)


def test_docs_list_every_builtin_miner_and_guard(registry):
    import attrs

    from embedtune_core.mining import GuardOptions

    text = (ROOT / "docs" / "mining.md").read_text(encoding="utf-8")
    builtin = [c for c in registry.components("negative_miner") if c.plugin in registry.builtin_plugins]
    assert len(builtin) == 6
    for component in builtin:
        assert f"`{component.name}`" in text, component.name
        for option in component.declaration.specs:
            assert f"`{option}`" in text, (component.name, option)
    for field in attrs.fields(GuardOptions):
        assert f"`{field.name}`" in text, field.name


def test_gather_scores_is_exact_and_masks_padding():
    from embedtune_core.embedding.search import gather_scores

    rng = np.random.default_rng(0)
    q, c = rng.normal(size=(130, 8)).astype(np.float32), rng.normal(size=(50, 8)).astype(np.float32)
    idx = rng.integers(-1, 50, size=(130, 7))
    got = gather_scores(q, c, idx, block=16)
    full = q @ c.T
    expected = np.where(idx >= 0, np.take_along_axis(full, np.maximum(idx, 0), axis=1), -np.inf)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_positive_floor_guards_weak_positives_like_typical_ones():
    from embedtune_core.mining.guards import GuardOptions, failed_guards, guard_positives

    positives = np.array([0.8, 0.7, 0.2, np.inf], dtype=np.float32)  # inf: an anchor without a scored positive
    compared, floor = guard_positives(positives, "auto")
    assert floor == pytest.approx(0.7)
    assert compared.tolist()[:3] == pytest.approx([0.8, 0.7, 0.7]) and np.isinf(compared[3])
    assert guard_positives(positives, None)[0] is positives and guard_positives(positives, 0.5)[1] == 0.5
    # the weak anchor (positive 0.2): a 0.5 candidate is a hard negative to keep, a 0.69 one
    # scores like a typical positive and is dropped; without the floor both are dropped
    guards = GuardOptions(relative_margin=0.05)
    values = np.array([[0.5, 0.69]], dtype=np.float32)
    with_floor = failed_guards(values, compared[2:3, None], guards)[0][1]
    without = failed_guards(values, positives[2:3, None], guards)[0][1]
    assert with_floor.tolist() == [[False, True]] and without.tolist() == [[True, True]]


def test_the_floor_turns_fill_ins_into_hard_negatives(registry):
    import datasets

    strong = [("alpha beta gamma delta", "alpha beta gamma delta epsilon"),
              ("one two three four", "one two three four five"),
              ("north south east west", "north south east west centre"),
              ("spring summer autumn winter", "spring summer autumn winter season")]
    weak = ("red green blue", "colour palette")  # the positive shares no word: it scores 0
    rows = strong + [weak]
    ds = datasets.Dataset.from_dict({"anchor": [a for a, _ in rows], "positive": [p for _, p in rows]})
    hard = ["red green orange yellow", "red blue"]
    corpus = [p for _, p in rows] + hard + [f"filler text number {i}" for i in range(20)]
    options = {"relative_margin": 0.05}
    floored = run_miner(registry, "dense", ds, "pairs", num_negatives=2, options=options,
                        encoder=WordCountEncoder(), corpus=corpus)
    plain = run_miner(registry, "dense", ds, "pairs", num_negatives=2, options={**options, "positive_floor": None},
                      encoder=WordCountEncoder(), corpus=corpus)

    def negatives_of(result):
        row = next(r for r in result.dataset if r["anchor"] == weak[0])
        return {row["negative_1"], row["negative_2"]}

    assert floored.stats.extra["positive_floor"] == pytest.approx(4 / np.sqrt(20), abs=1e-5)
    assert negatives_of(floored) == set(hard)  # above the weak positive, below a typical one
    assert not negatives_of(plain) & set(hard)  # dropped as likely false negatives: unrelated texts instead
    assert floored.stats.extra["dropped"]["relative_margin"] < plain.stats.extra["dropped"]["relative_margin"]
