"""Each false-negative guard and selection rule with a case only it catches, on every scoring
path: dense retrieval (the model's cosine ranks and guards), BM25 ranking with the model's
cosine as guard scores, and a cross-encoder rescoring what dense retrieval found.

Scores are set by hand: :class:`TableEncoder` returns unit vectors whose cosine with each anchor
is the one a table gives, and :class:`TableCrossEncoder` returns a table's scores, so no test
depends on a model's weights. No two candidates of an anchor share a score, except the case and
punctuation variants of one text, which are compared by their normalised form. Every candidate
text contains its anchor's word, and a candidate with a higher table score has fewer words, so
BM25 ranks the candidates as the table does.
"""

import numpy as np
import pytest

from embedtune_core.mining import loose_text_key, run_miner

PATHS = ["dense", "bm25", "cross-encoder"]


class TableEncoder:
    """texts -> unit vectors: anchor ``a`` is axis ``a``; any other text has its table score with
    each anchor on that anchor's axis and the rest of its unit length on an axis of its own."""

    def __init__(self, table):
        self.table = table  # {anchor: {text: cosine}}
        self.anchors = list(table)
        self.own = {}

    def vector(self, text):
        out = np.zeros(len(self.anchors) + 512, dtype=np.float64)
        if text in self.table:
            out[self.anchors.index(text)] = 1.0
            return out
        for i, anchor in enumerate(self.anchors):
            out[i] = self.table[anchor].get(text, 0.0)
        rest = 1.0 - float(out @ out)
        assert rest >= 0, text
        out[len(self.anchors) + self.own.setdefault(text, len(self.own))] = np.sqrt(rest)
        return out

    def __call__(self, texts):
        return np.stack([self.vector(t) for t in texts]).astype(np.float32)


class TableCrossEncoder:
    """A cross-encoder whose score of (anchor, text) is the table's (-1 for a text not in it)."""

    def __init__(self, table):
        self.table = table

    def predict(self, pairs, batch_size=32, convert_to_numpy=True, show_progress_bar=False):
        return np.array([self.table[a].get(t, -1.0) for a, t in pairs], dtype=np.float32)


def reordered(table):
    """The same texts with other cosines, in the reverse order: what the dense retrieval of the
    cross-encoder path ranks by (the cross-encoder's table decides the guards and the order)."""
    out = {}
    for anchor, scores in table.items():
        ranked = sorted(scores, key=lambda t: scores[t])
        out[anchor] = {t: round(0.5 - 0.01 * i, 4) for i, t in enumerate(ranked)}
    return out


def mine(registry, path, rows, corpus, table, n, *, dense_table=None, seed=42, output="hard-negatives", **options):
    """Mine ``rows`` ((anchor, positive) pairs) on one scoring path with the scores of ``table``."""
    import datasets

    data = datasets.Dataset.from_dict({"anchor": [a for a, _ in rows], "positive": [p for _, p in rows]})
    if path == "cross-encoder":
        options = {**options, "cross_encoder": TableCrossEncoder(table)}
        encoder = TableEncoder(dense_table or reordered(table))
    else:
        encoder = TableEncoder(table)
    miner = "bm25" if path == "bm25" else "dense"
    return run_miner(registry, miner, data, "pairs", num_negatives=n, options=options, encoder=encoder,
                     corpus=corpus, seed=seed, output=output)


def negatives(result, anchor):
    """The normalised forms of the negatives of ``anchor``'s first row, in column order."""
    row = next(r for r in result.dataset if r["anchor"] == anchor)
    return [loose_text_key(row[c]) for c in result.dataset.column_names if c.startswith("negative")]


def forms(*texts):
    return [loose_text_key(t) for t in texts]


# -- one anchor, every drop reason --------------------------------------------------------------
ANCHOR = "fever"
P1, P2 = "fever pa pb", "fever pc pd pe"  # two rows of the anchor: two positives
C1, C2 = "fever ca", "fever cb cc"  # score above the positive's threshold
N2, N1, N3, E = "fever na nb nc", "fever nd ne nf ng", "fever nh ni nj nk nl", "fever ea eb ec ed ee ef"
ORIGINAL_VARIANTS = {"P1V": "Fever, PA pb!", "AV": "FEVER.", "N1V": "Fever nd NE nf ng."}
SCORES = {P1: 0.80, P2: 0.85, C1: 0.78, C2: 0.765, N2: 0.755, N1: 0.69, N3: 0.2, E: 0.1,
          ORIGINAL_VARIANTS["P1V"]: 0.30, ORIGINAL_VARIANTS["AV"]: 0.35, ORIGINAL_VARIANTS["N1V"]: 0.68}
ROWS = [(ANCHOR, P1), (ANCHOR, P2)]
# the variant of N1 follows N1 in the corpus: where BM25 scores the two alike, N1 ranks first
CORPUS = [C1, C2, N2, N1, ORIGINAL_VARIANTS["N1V"], N3, E, ORIGINAL_VARIANTS["P1V"], ORIGINAL_VARIANTS["AV"]]


@pytest.mark.parametrize("path", PATHS)
def test_each_drop_reason_at_the_defaults_and_the_statistics(registry, path):
    """relative_margin "auto" is 0.05 on model and cross-encoder scores: against the positive's
    0.80 (the lowest of the anchor's two), 0.765 is dropped and 0.755 kept."""
    result = mine(registry, path, ROWS, CORPUS, {ANCHOR: SCORES}, 3)
    stats = result.stats
    assert negatives(result, ANCHOR) == forms(N2, N1, N3)
    assert len(result.dataset) == 2 and result.dataset["positive"] == [P1, P2]
    assert all(negatives(result, ANCHOR) == forms(*[r[f"negative_{i}"] for i in (1, 2, 3)]) for r in result.dataset)
    assert stats.extra["dropped"] == {"known_positive": 2, "duplicate": 1, "same_text": 2, "absolute_margin": 0,
                                      "relative_margin": 2, "max_score": 0, "min_score": 0}
    assert stats.extra["relative_margin"] == 0.05 and stats.extra["positive_floor"] == pytest.approx(0.80)
    assert stats.candidates_seen == 11 and stats.dropped_false_negatives == 4
    assert (stats.queries, stats.queries_short, stats.negatives_written) == (1, 0, 6)
    assert stats.negatives_filled == 0 and stats.rows_in == stats.rows_out == 2
    assert stats.extra["score"] == {"dense": "cosine scores", "bm25": "model cosine scores",
                                    "cross-encoder": "cross-encoder scores"}[path]
    # the gap from the anchor's (lowest) positive score to each negative's, averaged (the
    # cross-encoder path keeps N1's variant, the one dense retrieval ranks first)
    row = result.dataset[0]
    gaps = [0.80 - SCORES[row[f"negative_{i}"]] for i in (1, 2, 3)]
    assert stats.mean_score_gap == pytest.approx(np.mean(gaps), abs=1e-5)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("options, dropped, expected", [
    # absolute: kept only at or below 0.80 - 0.1
    ({"relative_margin": None, "absolute_margin": 0.1}, {"absolute_margin": 3}, (N1, N3, E)),
    ({"relative_margin": None, "max_score": 0.7}, {"max_score": 3}, (N1, N3, E)),
    # a too easy candidate is dropped by min_score in the search ...
    ({"min_score": 0.15}, {"relative_margin": 2, "min_score": 1}, (N2, N1, N3)),
    ({"relative_margin": 0.0}, {"relative_margin": 0}, (C1, C2, N2)),  # 0 keeps up to the positive
    ({"relative_margin": 0.03}, {"relative_margin": 1}, (C2, N2, N1)),  # 0.80 - 0.024 = 0.776
])
def test_each_score_guard_drops_what_only_it_catches(registry, path, options, dropped, expected):
    result = mine(registry, path, ROWS, CORPUS, {ANCHOR: SCORES}, 3, **options)
    counts = result.stats.extra["dropped"]
    want = {"known_positive": 2, "duplicate": 1, "same_text": 2, "absolute_margin": 0, "relative_margin": 0,
            "max_score": 0, "min_score": 0, **dropped}
    assert counts == want
    assert negatives(result, ANCHOR) == forms(*expected)
    assert result.stats.dropped_false_negatives == sum(want[r] for r in ("same_text", "absolute_margin",
                                                                          "relative_margin", "max_score"))


@pytest.mark.parametrize("path", PATHS)
def test_fill_ins_ignore_min_score_but_not_the_other_guards(registry, path):
    """Four negatives asked: the search keeps three (E is under min_score); E, the one text the
    other guards let through, comes back as a random fill-in (fill-ins are easy by design)."""
    result = mine(registry, path, ROWS, CORPUS, {ANCHOR: SCORES}, 4, min_score=0.15)
    assert negatives(result, ANCHOR) == forms(N2, N1, N3, E)
    stats = result.stats
    assert stats.negatives_filled == 1 and stats.queries_short == 1 and stats.negatives_written == 8
    dropped = mine(registry, path, ROWS, CORPUS, {ANCHOR: SCORES}, 4, min_score=0.15, short="drop")
    assert len(dropped.dataset) == 0 and dropped.stats.extra["rows_dropped_short"] == 2
    assert dropped.stats.queries_short == 1 and dropped.stats.negatives_written == 0
    triplets = mine(registry, path, ROWS, CORPUS, {ANCHOR: SCORES}, 4, min_score=0.15, short="drop", output="triplets")
    assert len(triplets.dataset) == 6 and triplets.stats.negatives_written == 6  # short anchors keep what they got
    assert [loose_text_key(t) for t in triplets.dataset["negative"][:3]] == forms(N2, N1, N3)


# -- fill-ins ---------------------------------------------------------------------------------
FILL_ANCHOR, FILL_POSITIVE = "fever", "fever qa"
FILL = {"fever qa": 0.8, "fever ha hb": 0.79, "fever ma mb mc": 0.5, "Fever, MA mb mc!": 0.49,
        "Fever!": 0.3, "FEVER qa.": 0.25, "stock prices fell": 0.1}


@pytest.mark.parametrize("path", PATHS)
def test_fill_ins_pass_the_guards_and_are_never_a_variant_of_a_chosen_text(registry, path):
    """The search keeps one negative of the two asked (the window ends at rank 2; BM25 retrieves
    only texts sharing a word, and the last one shares none). Of the random draws only the
    unrelated text passes: not the positive, the variants of the positive, of the anchor or of the
    negative already chosen, nor the text above the margin."""
    corpus = ["fever ma mb mc"] + [t for t in FILL if t != "fever ma mb mc"]  # the negative found is text 0
    dense_table = {FILL_ANCHOR: {"fever qa": 0.9, "fever ma mb mc": 0.85, "fever ha hb": 0.8, "Fever!": 0.3,
                                 "Fever, MA mb mc!": 0.2, "FEVER qa.": 0.15, "stock prices fell": 0.1}}
    window = {} if path == "bm25" else {"range_max": 2}
    result = mine(registry, path, [(FILL_ANCHOR, FILL_POSITIVE)], corpus, {FILL_ANCHOR: FILL}, 2,
                  dense_table=dense_table, **window)
    assert negatives(result, FILL_ANCHOR) == forms("fever ma mb mc", "stock prices fell")
    stats = result.stats
    assert stats.negatives_filled == 1 and stats.queries_short == 1
    assert stats.extra["dropped"]["relative_margin"] == 1 and stats.extra["dropped"]["known_positive"] == 1
    # the fill-in's score is recorded: the gap counts it
    assert stats.mean_score_gap == pytest.approx(np.mean([0.8 - 0.5, 0.8 - 0.1]), abs=1e-5)
    # three asked, one text to fill with: it is written once, and the anchor stays short
    window = {} if path == "bm25" else {"range_max": 3}
    corpus = ["stock prices fell"] + [t for t in FILL if t != "stock prices fell"]  # the fill-in is text 0
    three = mine(registry, path, [(FILL_ANCHOR, FILL_POSITIVE)], corpus, {FILL_ANCHOR: FILL}, 3,
                 dense_table=dense_table, output="triplets", **window)
    assert [loose_text_key(t) for t in three.dataset["negative"]] == forms("fever ma mb mc", "stock prices fell")
    assert three.stats.negatives_filled == 1 and three.stats.queries_short == 1


# -- the positive floor -------------------------------------------------------------------------
FLOOR = {
    "fever": {"fever pa": 0.8, "fever ka kb": 0.7},
    "rash": {"rash pa": 0.85, "rash ka kb": 0.7},
    # the weak anchor: its positive scores 0.3, the data's median is 0.8
    "cough": {"cough pa": 0.3, "cough wa": 0.77, "cough wb wc": 0.65, "cough wd we wf": 0.1},
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("floor, kept, threshold_note", [
    ("auto", ["cough wb wc", "cough wd we wf"], 0.8),  # compared with the median 0.8: 0.65 is kept, 0.77 is not
    (None, ["cough wd we wf"], None),  # the anchor's own 0.3: both are dropped
    (0.5, ["cough wd we wf"], 0.5),  # 0.65 > 0.5 - 0.025
])
def test_the_positive_floor_is_the_median_positive_score(registry, path, floor, kept, threshold_note):
    rows = [("fever", "fever pa"), ("rash", "rash pa"), ("cough", "cough pa")]
    corpus = [t for scores in FLOOR.values() for t in scores]
    options = {"positive_floor": floor, "max_score": 0.75}  # every other anchor's text stays a candidate
    result = mine(registry, path, rows, corpus, FLOOR, 3, short="drop", range_max=6, **options)
    got = mine(registry, path, rows, corpus, FLOOR, 1, range_max=6, **options)
    assert got.stats.extra["positive_floor"] == (pytest.approx(threshold_note) if threshold_note else None)
    assert negatives(got, "cough") == forms(kept[0])
    filled = mine(registry, path, rows, corpus, FLOOR, 2, range_max=6, **options)
    cough = negatives(filled, "cough")
    assert cough[: len(kept)] == forms(*kept[:2])
    assert result.stats.extra["dropped"]["relative_margin"] == (1 if floor == "auto" else 2)
    # counted per anchor of the batch: each anchor's positive once, and what each one saw
    assert result.stats.extra["dropped"]["known_positive"] == 3
    assert result.stats.candidates_seen == (8 if path == "bm25" else 3 * 7)


# -- the window and random sampling -------------------------------------------------------------
WINDOW = {"fever": {"fever " + " ".join(f"x{i}{j}" for j in range(i + 1)): round(0.6 - 0.04 * i, 4) for i in range(10)}}
WINDOW_POSITIVE = "fever p1 p2 p3 p4 p5 p6 p7 p8 p9 p10 p11 p12"  # the longest text: ranked last by BM25
WINDOW["fever"][WINDOW_POSITIVE] = 0.9
RANKED = sorted((t for t in WINDOW["fever"] if t != WINDOW_POSITIVE), key=lambda t: -WINDOW["fever"][t])


@pytest.mark.parametrize("path", PATHS)
def test_the_window_and_random_sampling_inside_it(registry, path):
    corpus = RANKED[::-1]
    rows = [("fever", WINDOW_POSITIVE)]
    window = {"range_min": 2, "range_max": 7}
    if path == "cross-encoder":  # retrieval must find the window's texts: it ranks as the cross-encoder
        window["dense_table"] = WINDOW
    top = mine(registry, path, rows, corpus, WINDOW, 3, **window)
    assert negatives(top, "fever") == forms(*RANKED[2:5])
    assert top.stats.extra["range_max"] == 7 and top.stats.extra["sampling"] == "top"
    drawn = set()
    for seed in range(12):
        sampled = mine(registry, path, rows, corpus, WINDOW, 3, seed=seed, sampling="random", **window)
        got = negatives(sampled, "fever")
        assert set(got) <= set(forms(*RANKED[2:7])), seed  # inside ranks 2-6, never above or below
        positions = [forms(*RANKED).index(t) for t in got]
        assert positions == sorted(positions) and len(set(got)) == 3  # in rank order, each once
        drawn.update(got)
        assert sampled.stats.negatives_filled == 0
    assert drawn == set(forms(*RANKED[2:7]))  # every text of the window can be drawn
    again = [negatives(mine(registry, path, rows, corpus, WINDOW, 3, seed=3, sampling="random", **window), "fever")
             for _ in range(2)]
    assert again[0] == again[1]


# -- the deeper search --------------------------------------------------------------------------
def deep_table():
    """20 texts above the positive's threshold, the positive, one negative, then the second
    negative at rank 22: just past the first search (2 negatives: ranks up to 2 x 10 + 1)."""
    scores = {}
    for i in range(20):
        scores["fever " + " ".join(f"c{i}x{j}" for j in range(1 + i // 4))] = round(0.95 - 0.005 * i, 4)
    positive = "fever " + " ".join(f"p{j}" for j in range(6))
    scores[positive] = 0.7
    scores["fever " + " ".join(f"ok{j}" for j in range(7))] = 0.6
    scores["fever " + " ".join(f"deep{j}" for j in range(8))] = 0.3
    for i in range(100):  # texts sharing no word, below every other: the corpus is 123 texts
        scores[f"stock filler {i}"] = round(0.001 * i, 4)
    return {"fever": scores}, positive


@pytest.mark.parametrize("path", PATHS)
def test_an_anchor_only_partly_short_is_searched_deeper(registry, path):
    table, positive = deep_table()
    corpus = [t for t in table["fever"] if t != positive]
    deep = dict(dense_table=table) if path == "cross-encoder" else {}
    result = mine(registry, path, [("fever", positive)], corpus, table, 2, **deep)
    ok, deep_text = [t for t in table["fever"] if "ok0" in t or "deep0" in t]
    assert negatives(result, "fever") == forms(ok, deep_text)
    stats = result.stats
    assert stats.negatives_filled == 0 and stats.queries_short == 0
    # the second search is four times deeper; BM25 proposes only the 23 texts sharing the word
    assert stats.extra["depth"] == 22 and stats.extra["deepest"] == 88 and stats.extra["range_max"] == 21
    assert stats.extra["dropped"]["relative_margin"] == 20
    assert stats.candidates_seen == (23 if path == "bm25" else 88)
    # a fixed window is never searched deeper: the second negative is a fill-in
    fixed = mine(registry, path, [("fever", positive)], corpus, table, 2, range_max=21, **deep)
    assert fixed.stats.extra["deepest"] == 22 and fixed.stats.negatives_filled == 1
    assert negatives(fixed, "fever")[0] == forms(ok)[0]
    # nor past max_depth
    capped = mine(registry, path, [("fever", positive)], corpus, table, 2, max_depth=22, **deep)
    assert capped.stats.extra["deepest"] == 22 and capped.stats.negatives_filled == 1


def test_bm25_without_a_model_keeps_lexical_candidates_above_the_positive(registry):
    """No model: the margins are off ("auto"), only the text guards apply, on BM25's ranking."""
    import datasets

    data = datasets.Dataset.from_dict({"anchor": [a for a, _ in ROWS], "positive": [p for _, p in ROWS]})
    result = run_miner(registry, "bm25", data, "pairs", num_negatives=3, options={"range_max": 20}, corpus=CORPUS)
    assert result.stats.extra["relative_margin"] is None
    assert result.stats.extra["dropped"] == {"known_positive": 2, "duplicate": 1, "same_text": 2, "absolute_margin": 0,
                                             "relative_margin": 0, "max_score": 0, "min_score": 0}
    assert negatives(result, ANCHOR) == forms(C1, C2, N2)  # the shortest texts sharing the word, in order


def test_pairs_group_rows_of_one_anchor_and_keep_the_corpus_order():
    import datasets

    from embedtune_core.mining.pairs import prepare_pairs
    from embedtune_core.types import MiningRequest

    data = datasets.Dataset.from_dict({"anchor": ["b", "a", "b", "b"], "positive": ["x", "y", "z", "x"]})
    pairs = prepare_pairs(MiningRequest(dataset=data, dataset_type="pairs", corpus=["w", "X.", "x"]))
    assert pairs.queries == ["b", "a"] and pairs.row_query.tolist() == [0, 1, 0, 0]
    assert pairs.corpus == ["w", "X.", "x", "y", "z"]  # the corpus, then new positives, each text once
    assert [p.tolist() for p in pairs.query_positives] == [[2, 4], [3]] and pairs.max_positives == 2
    assert pairs.row_positive.tolist() == [2, 3, 4, 2]
    assert pairs.is_known_positive(np.array([[0], [1]]), np.array([[2, 3, 4, -1]])).tolist() == [
        [True, False, True, False], [False, True, False, False]]
    # "X." is the positive "x" in another case: the same text for b, not for a
    assert pairs.is_same_text(np.array([0, 1, 0]), np.array([1, 1, -1])).tolist() == [True, False, False]
    assert pairs.text_group[1] == pairs.text_group[2] != pairs.text_group[0]
    # corpus text 0 is a text like any other: "W" is the same text as it
    first = prepare_pairs(MiningRequest(dataset=datasets.Dataset.from_dict({"anchor": ["W", "b"], "positive": ["y", "z"]}),
                                        dataset_type="pairs", corpus=["w", "v"]))
    assert first.corpus == ["w", "v", "y", "z"] and first.anchor_group.tolist()[0] == first.text_group[0] == 0
    assert first.is_same_text(np.array([0, 0, 1, 1]), np.array([0, 1, 0, -1])).tolist() == [True, False, False, False]


def test_the_statistics_table_the_cli_prints(registry):
    from embedtune_core.mining.output import expected_columns, stats_rows

    result = mine(registry, "dense", ROWS, CORPUS, {ANCHOR: SCORES}, 3, min_score=0.15)
    stats = result.stats
    assert stats_rows(stats) == [
        ["queries", 1], ["candidates seen", 11], ["dropped as likely false negatives", 4], ["negatives written", 6],
        ["queries with fewer negatives than asked", 0], ["mean score gap (positive - negative)", stats.mean_score_gap],
        ["  dropped: known_positive", 2], ["  dropped: duplicate", 1], ["  dropped: same_text", 2],
        ["  dropped: relative_margin", 2], ["  dropped: min_score", 1],
        ["rows in", 2], ["rows out", 2], ["negatives filled", 0], ["rows dropped short", 0], ["searched deeper", 0],
        ["score", "cosine scores"], ["search", "exact"], ["search recall@11 (against exact search)", 1.0],
    ]
    stats.extra["search_recall@40"] = 0.97
    stats.extra["ordered"] = True
    assert stats_rows(stats)[-4:] == [["ordered", True], ["search", "exact"],
                                      ["search recall@11 (against exact search)", 1.0],
                                      ["search recall@40 (against exact search)", 0.97]]
    assert expected_columns("triplets", 3) == ["anchor", "positive", "negative"]
    assert expected_columns("hard-negatives", 2) == ["anchor", "positive", "negative_1", "negative_2"]


def test_pairs_refuse_what_cannot_be_mined():
    import datasets

    from embedtune_core.errors import ComponentError, DataError
    from embedtune_core.mining.pairs import prepare_pairs
    from embedtune_core.types import MiningRequest

    def refused(error, data, **request):
        with pytest.raises(error) as caught:
            prepare_pairs(MiningRequest(dataset=data, dataset_type="pairs", **request))
        return caught.value

    assert refused(DataError, datasets.Dataset.from_dict({"anchor": [], "positive": []})).message == \
        "there is nothing to mine: the dataset has no rows"
    nli = refused(ComponentError, datasets.Dataset.from_dict({"premise": ["a"], "hypothesis": ["b"], "label": [0]}))
    assert nli.message == "this miner needs (anchor, positive) rows, not NLI records"
    blank = refused(DataError, datasets.Dataset.from_dict({"anchor": ["a", "b"], "positive": ["x", " "]}))
    assert (blank.message, blank.record, blank.key) == ("column 'positive' needs non-empty text, got ' '", 2, "positive")
    assert refused(DataError, datasets.Dataset.from_dict({"text": ["a"]})).message == \
        "mining needs (anchor, positive) rows; the data has columns text"
    assert refused(DataError, datasets.Dataset.from_dict({"anchor": ["a"], "positive": ["x"]}), corpus=["c", "d"],
                   categories=["k", "k", "k"]).message == "3 categories for 2 corpus texts"
    assert refused(DataError, datasets.Dataset.from_dict({"anchor": ["a"], "positive": ["x"]}),
                   categories=["k", "k"]).message == "2 categories for 1 rows"
    # other column names: question/answer, or the first two columns
    renamed = prepare_pairs(MiningRequest(dataset=datasets.Dataset.from_dict({"question": ["a"], "answer": ["x"]}),
                                          dataset_type="pairs"))
    plain = prepare_pairs(MiningRequest(dataset=datasets.Dataset.from_dict({"left": ["a"], "right": ["x"]}),
                                        dataset_type="pairs"))
    assert renamed.queries == plain.queries == ["a"] and renamed.corpus == plain.corpus == ["x"]
    # each known name is found wherever its column stands (the first two columns are only the fallback)
    for anchor, positive in (("anchor", "positive"), ("query", "answer"), ("question", "document"),
                             ("sentence1", "sentence2")):
        data = datasets.Dataset.from_dict({"extra": ["e"], anchor: ["a"], positive: ["x"]})
        found = prepare_pairs(MiningRequest(dataset=data, dataset_type="pairs"))
        assert (found.queries, found.corpus) == (["a"], ["x"]), (anchor, positive)
    # the hints, word for word
    assert nli.hint == "mine the triplets built from them (the pipeline does), or use a miner declared with input='nli'"
    columns = refused(DataError, datasets.Dataset.from_dict({"text": ["a"]}))
    assert columns.hint == "give pairs, triplets, hard-negatives or IR data"
    counted = refused(DataError, datasets.Dataset.from_dict({"anchor": ["a"], "positive": ["x"]}), categories=["k", "k"])
    assert counted.hint == "give one category per corpus text (or per row when there is no corpus)"
    # a bad text names its column (or the corpus) and its record
    for data, corpus, named, record in (({"query": ["a", None], "answer": ["x", "y"]}, None, "query", 2),
                                        ({"anchor": ["a"], "positive": ["x"]}, ["c", ""], "corpus", 2)):
        bad = refused(DataError, datasets.Dataset.from_dict(data), corpus=corpus)
        assert (bad.key, bad.record) == (named, record) and bad.message.startswith(f"column '{named}' needs non-empty text")


def test_pairs_carry_categories_from_the_rows_and_the_corpus():
    import datasets

    from embedtune_core.mining.pairs import prepare_pairs
    from embedtune_core.types import IRData, MiningRequest

    rows = datasets.Dataset.from_dict({"anchor": ["a", "b", "c"], "positive": ["x", "y", "z"],
                                       "category": ["law", "", "med"]})
    pairs = prepare_pairs(MiningRequest(dataset=rows, dataset_type="pairs", corpus=["w", "y"],
                                        categories=["fin", "tax"]))
    # the corpus's categories win over the rows'; an empty one is unknown
    assert pairs.corpus == ["w", "y", "x", "z"] and pairs.categories == ["fin", "tax", "law", "med"]
    no_corpus = prepare_pairs(MiningRequest(dataset=rows, dataset_type="pairs", categories=["p", None, "r"]))
    assert no_corpus.categories == ["p", None, "r"]
    # an empty category, in the rows or given, is unknown (None), not a category named ""
    assert prepare_pairs(MiningRequest(dataset=rows, dataset_type="pairs")).categories == ["law", None, "med"]
    given = prepare_pairs(MiningRequest(dataset=rows.remove_columns("category"), dataset_type="pairs",
                                        categories=["p", "", None]))
    assert given.categories == ["p", None, None]
    ir = IRData(corpus={"d1": "x", "d2": "w"}, queries={"q1": "a"}, qrels={"q1": {"d1": 1}})
    from_ir = prepare_pairs(MiningRequest(dataset=ir, dataset_type="ir", categories=["k1", "k2"]))
    assert from_ir.corpus == ["x", "w"] and from_ir.categories == ["k1", "k2"]
    mismatched = prepare_pairs(MiningRequest(dataset=ir, dataset_type="ir", categories=["k1"]))
    assert mismatched.categories is None  # not one per IR corpus text: dropped
    assert prepare_pairs(MiningRequest(dataset=rows.remove_columns("category"), dataset_type="pairs")).categories is None


# -- the guards' formulas and the output, exactly -----------------------------------------------
def test_guard_options_refuse_an_empty_window_and_an_unusable_cross_encoder():
    from embedtune_core.mining.guards import GuardOptions
    from embedtune_core.plugins.options import OptionError

    with pytest.raises(OptionError) as caught:
        GuardOptions(range_min=3, range_max=3)
    assert str(caught.value) == "range_max (3) must be greater than range_min (3)" and caught.value.option == "range_max"
    with pytest.raises(OptionError) as caught:
        GuardOptions(cross_encoder=5)
    assert str(caught.value) == "cross_encoder must be a model name or folder, got 5"
    assert caught.value.option == "cross_encoder"
    assert GuardOptions(range_min=3, range_max=4).range_max == 4
    assert GuardOptions(cross_encoder="some/folder").cross_encoder == "some/folder"
    table = TableCrossEncoder({})
    assert GuardOptions(cross_encoder=table).cross_encoder is table


def test_guard_positives_and_the_floor():
    from embedtune_core.mining.guards import guard_positives

    positives = np.array([0.8, 0.7, 0.2, np.inf], dtype=np.float32)  # inf: an anchor without a scored positive
    compared, floor = guard_positives(positives, "auto")
    assert floor == pytest.approx(0.7) and compared.dtype == np.float32
    assert compared[:3].tolist() == pytest.approx([0.8, 0.7, 0.7]) and np.isinf(compared[3])
    assert guard_positives(positives, 0.75)[0][:3].tolist() == pytest.approx([0.8, 0.75, 0.75])
    same, none = guard_positives(positives, None)
    assert same is positives and none is None
    nothing = np.full(2, np.inf, dtype=np.float32)
    unchanged, no_floor = guard_positives(nothing, "auto")
    assert no_floor is None and np.isinf(unchanged).all()


def test_a_score_on_a_threshold_is_kept():
    """``score <= positive - margin`` keeps the score equal to the threshold (values exact in binary)."""
    from embedtune_core.mining.guards import GuardOptions, failed_guards

    positive = np.array([[0.5]])
    values = np.array([[0.25, 0.2500001, 0.5, 0.125, 0.1249999]])
    checks = dict(failed_guards(values, positive, GuardOptions(relative_margin=0.5, absolute_margin=0.25,
                                                               max_score=0.25, min_score=0.125)))
    assert checks["absolute_margin"].tolist() == [[False, True, True, False, False]]
    assert checks["relative_margin"].tolist() == [[False, True, True, False, False]]
    assert checks["max_score"].tolist() == [[False, True, True, False, False]]
    assert checks["min_score"].tolist() == [[False, False, False, False, True]]
    easy = dict(failed_guards(values, positive, GuardOptions(relative_margin=None, min_score=0.125), easy=False))
    assert easy == {}


@pytest.mark.parametrize("path", PATHS)
def test_the_first_corpus_text_as_a_negative_in_both_outputs(registry, path):
    """The best candidate is corpus text 0: both outputs write it (index 0 is a text, -1 none)."""
    rows = [("fever", WINDOW_POSITIVE), ("fever", "fever q1 q2 q3 q4 q5 q6 q7 q8 q9 q10 q11 q12 q13")]
    fillers = {f"stock filler {i}": round(0.001 * i, 4) for i in range(20)}
    table = {"fever": {**WINDOW["fever"], rows[1][1]: 0.95, **fillers}}
    extra = {"dense_table": table} if path == "cross-encoder" else {}
    corpus = RANKED + list(fillers)
    hard = mine(registry, path, rows, corpus, table, 2, **extra)
    # found in the first search (ranks up to 2 x 10 + 2, of 32 texts): no deeper one
    assert hard.stats.extra["depth"] == hard.stats.extra["deepest"] == 24
    assert hard.dataset.to_list() == [{"anchor": "fever", "positive": p, "negative_1": RANKED[0],
                                       "negative_2": RANKED[1]} for _, p in rows]
    assert hard.stats.extra["output"] == "hard-negatives" and hard.stats.rows_out == 2
    assert hard.stats.mean_score_gap == pytest.approx(0.9 - (0.6 + 0.56) / 2, abs=1e-5)  # the lowest positive, 0.9
    triplets = mine(registry, path, rows, corpus, table, 2, output="triplets", **extra)
    assert triplets.dataset.to_list() == [{"anchor": "fever", "positive": p, "negative": n}
                                          for _, p in rows for n in RANKED[:2]]
    stats = triplets.stats
    assert stats.extra["output"] == "triplets" and stats.rows_out == 4 and stats.negatives_written == 4
    assert "rows_dropped_short" not in stats.extra and stats.rows_in == 2


@pytest.mark.parametrize("path", PATHS)
def test_short_anchors_count_and_their_gaps(registry, path):
    """Two anchors, one of which the guards leave one negative of two: short, its rows go
    and the mean gap is the other anchor's; triplets keep its one negative and count its gap."""
    # for rash, every fever text scores above its threshold (0.6 - 0.03): nothing to fill it with
    table = {"fever": {"fever pa": 0.8, "fever na": 0.5, "fever nb nc": 0.3},
             "rash": {"rash pa": 0.6, "rash ra": 0.59, "rash rb rc": 0.1, "fever pa": 0.58, "fever na": 0.58,
                      "fever nb nc": 0.585}}
    rows = [("fever", "fever pa"), ("rash", "rash pa")]
    corpus = ["fever na", "fever nb nc", "rash ra", "rash rb rc"]
    extra = {"dense_table": table} if path == "cross-encoder" else {}
    options = dict(range_max=8, positive_floor=None, **extra)
    dropped = mine(registry, path, rows, corpus, table, 2, short="drop", **options)
    assert dropped.dataset["anchor"] == ["fever"] and dropped.stats.queries_short == 1
    assert dropped.stats.mean_score_gap == pytest.approx(np.mean([0.8 - 0.5, 0.8 - 0.3]), abs=1e-5)
    triplets = mine(registry, path, rows, corpus, table, 2, short="drop", output="triplets", **options)
    assert triplets.dataset["anchor"] == ["fever", "fever", "rash"] and triplets.stats.queries_short == 1
    assert triplets.stats.mean_score_gap == pytest.approx(np.mean([0.3, 0.5, 0.6 - 0.1]), abs=1e-5)
    filled = mine(registry, path, rows, corpus, table, 2, **options)
    assert filled.stats.queries_short == 1 and filled.dataset["anchor"] == ["fever"]
    nothing = mine(registry, path, rows[1:], corpus, table, 3, short="drop", **options)
    assert len(nothing.dataset) == 0 and nothing.stats.mean_score_gap is None


def test_build_result_without_gaps_and_with_a_sources_own_drop_reasons():
    import datasets

    from embedtune_core.mining.output import build_result
    from embedtune_core.mining.pairs import prepare_pairs
    from embedtune_core.mining.selection import Selection
    from embedtune_core.types import MiningRequest, MiningStats

    request = MiningRequest(dataset=datasets.Dataset.from_dict({"anchor": ["a"], "positive": ["x"]}),
                            dataset_type="pairs", corpus=["y", "z"], num_negatives=1)
    data = prepare_pairs(request)
    selection = Selection(negatives=np.array([[0]]), scores=np.array([[0.25]], dtype=np.float32),
                          positive_scores=np.array([0.75], dtype=np.float32))
    plain = build_result(data, selection, request, MiningStats())
    assert plain.dataset.to_list() == [{"anchor": "a", "positive": "x", "negative_1": "y"}]
    assert plain.stats.mean_score_gap == 0.5 and plain.stats.dropped_false_negatives == 0
    stats = MiningStats(extra={"dropped": {"same_text": 2, "duplicate": 5, "max_score": 1, "overlap": 3}})
    result = build_result(data, selection, request, stats, score_gaps=False)
    assert result.stats.mean_score_gap is None
    assert result.stats.dropped_false_negatives == 6  # same_text, max_score and the source's own reason


# -- the selection's plan, directly -------------------------------------------------------------
class FakeSource:
    """A candidate source as the plan sees one: its name, whether its scores are a model's, how
    deep it proposes."""

    def __init__(self, name="lexical", dense=False, default_depth=None):
        self.name, self.dense, self.default_depth = name, dense, default_depth


def test_default_range_max_leaves_room_for_what_the_guards_drop():
    from embedtune_core.mining.guards import GuardOptions
    from embedtune_core.mining.selection import default_range_max

    margins = GuardOptions(range_min=2, relative_margin=0.05)
    plain = GuardOptions(range_min=2, relative_margin=None)
    assert default_range_max(margins, 3, 2) == 2 + 30 + 2
    assert default_range_max(plain, 3, 2) == 2 + 3 + 2
    assert default_range_max(GuardOptions(relative_margin=None, max_score=0.9), 3, 1) == 31
    # a cross-encoder's min_score drops candidates too; either alone does not
    assert default_range_max(GuardOptions(relative_margin=None, cross_encoder="ce", min_score=0.1), 3, 1) == 31
    assert default_range_max(GuardOptions(relative_margin=None, cross_encoder="ce"), 3, 1) == 4
    assert default_range_max(GuardOptions(relative_margin=None, min_score=0.1), 3, 1) == 4
    # a source that proposes few candidates: all of them
    assert default_range_max(margins, 3, 2, source_depth=7) == 2 + 7
    assert default_range_max(margins, 9, 2, source_depth=7) == 2 + 9


def test_which_scores_the_guards_compare():
    from embedtune_core.errors import ConfigError
    from embedtune_core.mining.guards import GuardOptions
    from embedtune_core.mining.selection import resolve_guard_scores
    from embedtune_core.types import MiningRequest

    with_model = MiningRequest(dataset=None, dataset_type="pairs", encoder=TableEncoder({}))
    without = MiningRequest(dataset=None, dataset_type="pairs")
    auto = GuardOptions()

    def resolved(guards, source, request):
        mode, decided, note = resolve_guard_scores(guards, source, request)
        return mode, decided.relative_margin, note

    assert resolved(auto, FakeSource("dense", dense=True), without) == ("retrieval", 0.05, "dense scores")
    assert resolved(auto, FakeSource("bm25"), with_model) == ("encoder", 0.05, "model cosine scores")
    assert resolved(auto, FakeSource("bm25"), without) == (
        "retrieval", None,
        "bm25 scores (relative_margin off: no model to score candidates; set it to apply it to these scores)")
    assert resolved(GuardOptions(relative_margin=0.1), FakeSource("bm25"), without) == ("retrieval", 0.1, "bm25 scores")
    assert resolved(GuardOptions(guard_scores="retrieval"), FakeSource("bm25"), with_model) == (
        "retrieval", None,
        "bm25 scores (relative_margin off: no model to score candidates; set it to apply it to these scores)")
    assert resolved(GuardOptions(cross_encoder="ce"), FakeSource("bm25"), without) == (
        "cross-encoder", 0.05, "cross-encoder scores")
    assert resolved(GuardOptions(cross_encoder="ce", relative_margin=None), FakeSource("dense", dense=True),
                    with_model)[:2] == ("cross-encoder", None)
    with pytest.raises(ConfigError) as caught:
        resolve_guard_scores(GuardOptions(guard_scores="encoder"), FakeSource("bm25"), without)
    error = caught.value
    assert (error.message, error.key, error.hint) == (
        "guard_scores=encoder needs a model to score candidates", "mining.options.guard_scores",
        "give a model (--model / mining.model) or use guard_scores=retrieval")


def test_the_plan_of_a_source_that_proposes_few_candidates_and_a_window_too_small():
    import datasets

    from embedtune_core.errors import ConfigError
    from embedtune_core.mining.guards import GuardOptions
    from embedtune_core.mining.pairs import prepare_pairs
    from embedtune_core.mining.selection import plan_selection
    from embedtune_core.types import MiningRequest

    rows = datasets.Dataset.from_dict({"anchor": ["a", "a"], "positive": ["x", "y"]})
    request = MiningRequest(dataset=rows, dataset_type="pairs", corpus=[f"t{i}" for i in range(20)], num_negatives=2)
    data = prepare_pairs(request)
    plan = plan_selection(data, FakeSource(default_depth=5), GuardOptions(range_min=1), request)
    assert (plan.range_max, plan.depth, plan.mode) == (6, 8, "retrieval")  # 1 + 5 ranks, + 2 positives deep
    assert plan_selection(data, FakeSource(), GuardOptions(range_max=30), request).depth == 22  # the whole corpus
    with pytest.raises(ConfigError) as caught:
        plan_selection(data, FakeSource(), GuardOptions(range_min=2, range_max=3), request)
    error = caught.value
    assert (error.message, error.key, error.hint) == (
        "cannot mine 2 negatives from ranks 2 to 3", "mining.options.range_max",
        "raise range_max, lower range_min, or ask for fewer negatives")
    assert plan_selection(data, FakeSource(), GuardOptions(range_min=2, range_max=4), request).range_max == 4


def test_select_negatives_for_some_queries_only_and_in_batches_of_one():
    """``query_ids`` mines those anchors and leaves the others' slots empty (-1, no score); a
    batch of one anchor at a time gives what one batch gives."""
    import datasets

    from embedtune_core.mining import GuardOptions, ScoreSource, prepare_pairs, select_negatives
    from embedtune_core.types import MiningRequest, MiningStats

    table = {a: {t: round(0.55 - 0.1 * i - 0.01 * k, 3) for i, t in enumerate(["u", "v", "w", "z"])}
             for k, a in enumerate(["a", "b", "c"])}
    rows = datasets.Dataset.from_dict({"anchor": ["a", "b", "c"], "positive": ["pa", "pb", "pc"]})
    request = MiningRequest(dataset=rows, dataset_type="pairs", corpus=["u", "v", "w", "z"], num_negatives=2)
    data = prepare_pairs(request)
    vectors = TableEncoder(table)

    def score_rows(query_ids):
        return vectors([data.queries[q] for q in query_ids]) @ vectors(data.corpus).T

    guards = GuardOptions(relative_margin=None, positive_floor=None)
    some = select_negatives(data, ScoreSource(score_rows), guards, request, MiningStats(), query_ids=[1])
    assert some.negatives.tolist() == [[-1, -1], [0, 1], [-1, -1]]
    assert np.isnan(some.scores[[0, 2]]).all() and some.scores[1].tolist() == pytest.approx([0.54, 0.44])
    everyone = select_negatives(data, ScoreSource(score_rows), guards, request, MiningStats())
    one_by_one = select_negatives(data, ScoreSource(score_rows), attrs_evolve(guards, batch_size=1), request,
                                  MiningStats())
    assert everyone.negatives.tolist() == one_by_one.negatives.tolist() == [[0, 1]] * 3


def attrs_evolve(options, **changes):
    import attrs

    return attrs.evolve(options, **changes)


def test_statistics_add_up_over_calls_and_count_what_the_source_dropped():
    """A miner may select for a few anchors at a time into one statistics object; a source may
    exclude candidates itself (counted as likely false negatives, by its own reason)."""
    import datasets

    from embedtune_core.mining import GuardOptions, ScoreSource, build_result, prepare_pairs, select_negatives
    from embedtune_core.types import MiningRequest, MiningStats

    table = {a: {t: round(0.5 - 0.1 * i - 0.01 * k, 3) for i, t in enumerate(["u", "v", "w"])}
             for k, a in enumerate(["a", "b"])}
    table["a"]["pa"], table["b"]["pb"] = 0.45, 0.45  # each anchor's positive: u scores above it
    rows = datasets.Dataset.from_dict({"anchor": ["a", "b"], "positive": ["pa", "pb"]})
    request = MiningRequest(dataset=rows, dataset_type="pairs", corpus=["u", "v", "w"], num_negatives=1)
    data = prepare_pairs(request)
    vectors = TableEncoder(table)

    class Dropping(ScoreSource):
        def __init__(self):
            super().__init__(lambda q: vectors([data.queries[i] for i in q]) @ vectors(data.corpus).T)
            self.dropped = {"overlap": 3}
            self.seen_extra = 2
            self.extra = {"search_recall@5": 0.97}

    stats = MiningStats()
    guards = GuardOptions(relative_margin=0.05, positive_floor=None)
    for query in (0, 1):
        select_negatives(data, Dropping(), guards, request, stats, query_ids=[query])
    assert stats.extra["dropped"]["relative_margin"] == 2 and stats.extra["dropped"]["known_positive"] == 2
    assert stats.extra["dropped"]["overlap"] == 6
    assert stats.candidates_seen == 2 * (5 + 2)  # every text of the corpus, and the source's own, twice
    assert stats.extra["search_recall@5"] == 0.97  # what the source measured
    selection = select_negatives(data, Dropping(), guards, request, MiningStats())
    result = build_result(data, selection, request, stats)
    assert result.stats.dropped_false_negatives == 2 + 6


def test_fill_ins_from_a_pool_take_each_text_once():
    """``fill_short`` with a ``pool``: only its texts, each (and its variants) written once even
    when every draw is the same text."""
    import datasets

    from embedtune_core.mining import GuardOptions, Selection, fill_short, prepare_pairs
    from embedtune_core.types import MiningRequest, MiningStats

    rows = datasets.Dataset.from_dict({"anchor": ["a"], "positive": ["p"]})
    request = MiningRequest(dataset=rows, dataset_type="pairs", corpus=["x", "Y.", "y", "z"], num_negatives=3)
    data = prepare_pairs(request)
    selection = Selection(negatives=np.array([[0, -1, -1]]), scores=np.array([[0.2, np.nan, np.nan]], np.float32),
                          positive_scores=np.array([0.9], np.float32), guard_positives=np.array([0.9], np.float32))
    stats = MiningStats()
    guards = GuardOptions(relative_margin=None)
    fill_short(data, selection, guards, lambda q, d: np.full(len(d), 0.1, np.float32), np.random.default_rng(0),
               np.array([0]), stats, pool=[1, 2])  # "Y." and "y": one text
    assert selection.negatives[0, 0] == 0 and (selection.negatives[0, 1:] >= 0).sum() == 1
    assert data.corpus[selection.negatives[0, 1]] in ("Y.", "y") and selection.negatives[0, 2] == -1
    assert selection.filled.tolist() == [[False, True, False]] and stats.negatives_filled == 1
    assert selection.scores[0, 1] == pytest.approx(0.1)
    again = Selection(negatives=np.array([[0, -1, -1]]), scores=np.zeros((1, 3), np.float32),
                      positive_scores=np.array([0.9], np.float32))
    fill_short(data, again, guards, lambda q, d: np.full(len(d), 0.1, np.float32), np.random.default_rng(0),
               np.array([0]), MiningStats(), pool=[3])
    assert again.negatives.tolist() == [[0, 3, -1]]


@pytest.mark.parametrize("path", ["dense", "bm25"])
def test_equal_scores_keep_the_retrieval_order(registry, path):
    """Twenty texts the model scores alike (and BM25 too: the same length): the negatives are the
    first ones the source returns, in corpus order, and of two variants the earlier is kept."""
    texts = [f"fever w{i:02d}" for i in range(20)]
    variants = {7: "Fever W03.", 9: "FEVER w01"}  # variants of texts 3 and 1, later in the corpus
    corpus = [variants.get(i, t) for i, t in enumerate(texts)]
    table = {"fever": {**{t: 0.3 for t in corpus}, "fever pos": 0.8}}
    result = mine(registry, path, [("fever", "fever pos")], corpus, table, 6, short="drop")
    row = result.dataset[0]
    assert [row[f"negative_{i}"] for i in range(1, 7)] == [corpus[i] for i in (0, 1, 2, 3, 4, 5)]
    assert result.stats.extra["dropped"]["duplicate"] == 2


def test_bm25_with_a_model_ranks_by_bm25_and_guards_by_the_model(registry):
    """The model's cosine decides what the margins drop; BM25 decides the order of what is left."""
    table = {"fever": {"fever pos": 0.8, "fever a": 0.1, "fever b c": 0.3, "fever d e f": 0.5, "fever g h i j": 0.79}}
    result = mine(registry, "bm25", [("fever", "fever pos")], list(table["fever"])[1:], table, 3)
    assert negatives(result, "fever") == ["fever a", "fever b c", "fever d e f"]  # shortest first, not by cosine
    assert result.stats.extra["dropped"]["relative_margin"] == 1  # 0.79 > 0.8 - 0.04
