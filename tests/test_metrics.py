"""The six built-in metrics against pytrec_eval (trec_eval) and ranx, on seeded random runs."""

import math

import numpy as np
import pytest
import pytrec_eval

from embedtune_core.errors import DataError, EmbedtuneError
from embedtune_core.ranking.metrics import compute_metrics
from embedtune_core.ranking.ranked import RankedRun

KS = (1, 2, 3, 5, 10, 20, 50)
TREC_NAMES = {"ndcg": "ndcg_cut_{k}", "map": "map_cut_{k}", "precision": "P_{k}", "recall": "recall_{k}"}


def random_case(seed, queries=60, pool=40, max_depth=30, score_levels=None, id_alphabet=None):
    """Graded qrels and a run with: ties (``score_levels`` distinct scores), queries without
    relevant documents, judged non-relevant and negative grades, relevant documents never
    retrieved, runs shorter than the cut-offs, queries missing from the run, run-only queries."""
    rng = np.random.default_rng(seed)

    def doc_id(i):
        if id_alphabet is None:
            return f"d{i}"
        return "".join(id_alphabet[j] for j in rng.integers(0, len(id_alphabet), 3)) + str(i)

    qrels, run = {}, {}
    for i in range(queries):
        q = f"q{i}"
        docs = [doc_id(int(j)) for j in rng.choice(1000, pool, replace=False)]
        kind = rng.random()
        if kind < 0.85:
            judged = rng.choice(len(docs), int(rng.integers(1, 15)), replace=False)
            grades = rng.choice([-1, 0, 0, 1, 1, 2, 3], size=len(judged))
            qrels[q] = {docs[j]: int(g) for j, g in zip(judged, grades)}
            if rng.random() < 0.15:  # judged, but nothing relevant
                qrels[q] = {d: 0 for d in qrels[q]}
        if kind > 0.1 or rng.random() < 0.5:
            n = int(rng.integers(0, max_depth + 1))
            if score_levels is None:
                scores = rng.normal(size=n)
            else:
                scores = rng.integers(0, score_levels, size=n).astype(float) / 2
            run[q] = {docs[j]: float(s) for j, s in zip(range(n), scores)}
    return qrels, run


def trec(qrels, run, ks=KS):
    cuts = ",".join(map(str, ks))
    measures = {f"ndcg_cut.{cuts}", f"map_cut.{cuts}", f"P.{cuts}", f"recall.{cuts}", "recip_rank"}
    return pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)


def trec_order(ranking):
    """trec_eval's order: score descending, then document id descending."""
    return sorted(ranking.items(), key=lambda item: (item[1], item[0]), reverse=True)


def truncated(run, k):
    return {q: dict(trec_order(r)[:k]) for q, r in run.items()}


def expected(qrels, run, name, k, ref=None, ref_cut=None):
    """Per-query pytrec_eval values (dict) of our metric ``name`` at ``k``."""
    if name in TREC_NAMES:
        return {q: v[TREC_NAMES[name].format(k=k)] for q, v in ref.items()}
    if name == "mrr":
        return {q: v["recip_rank"] for q, v in ref_cut[k].items()}
    if name == "f1":
        out = {}
        for q, v in ref.items():
            p, r = v[f"P_{k}"], v[f"recall_{k}"]
            out[q] = 0.0 if p + r == 0 else 2 * p * r / (p + r)
        return out
    raise AssertionError(name)


def assert_matches_trec(registry, qrels, run, ks=KS, ranked=None):
    ranked = ranked or RankedRun.from_run(qrels, run)
    ref = trec(qrels, run, ks)
    ref_cut = {k: trec(qrels, truncated(run, k), ks) for k in ks}
    assert ranked.query_ids == sorted(ref)
    checked = 0
    for name in ("ndcg", "mrr", "map", "recall", "precision", "f1"):
        metric = registry.create("metric", name)
        for k in ks:
            ours = metric.compute(ranked, k)
            theirs = expected(qrels, run, name, k, ref, ref_cut)
            want = np.array([theirs[q] for q in ranked.query_ids])
            np.testing.assert_allclose(ours, want, atol=1e-6, rtol=0, err_msg=f"{name}@{k}")
            checked += len(want)
    assert checked > 0


@pytest.mark.parametrize("seed", range(6))
def test_random_graded_runs_equal_trec_eval(registry, seed):
    qrels, run = random_case(seed)
    assert_matches_trec(registry, qrels, run)


@pytest.mark.parametrize("seed", range(4))
def test_heavy_ties_equal_trec_eval(registry, seed):
    # Scores from 3 levels: most documents tie and trec_eval orders them by id, descending.
    qrels, run = random_case(100 + seed, score_levels=3)
    assert_matches_trec(registry, qrels, run)


def test_equal_length_runs_equal_trec_eval(registry):
    rng = np.random.default_rng(7)
    qrels, run = {}, {}
    for i in range(50):
        docs = [f"doc-{j}" for j in rng.choice(500, 25, replace=False)]
        run[f"q{i}"] = {d: float(s) for d, s in zip(docs, rng.integers(0, 6, 25))}
        qrels[f"q{i}"] = {d: int(rng.integers(0, 3)) for d in rng.choice(docs, 8, replace=False)}
        qrels[f"q{i}"]["unretrieved"] = 1
    assert_matches_trec(registry, qrels, run)


def test_non_ascii_ids_tie_break_in_byte_order(registry):
    qrels, run = random_case(11, id_alphabet=["a", "B", "é", "z", "Ω", "語", "_", "1"], score_levels=2)
    assert_matches_trec(registry, qrels, run)


def test_tie_break_is_document_id_descending():
    qrels = {"q": {"a": 1, "b": 2, "c": 3}}
    run = {"q": {"a": 1.0, "b": 1.0, "c": 1.0, "z": 2.0}}
    ranked = RankedRun.from_run(qrels, run)
    assert ranked.grades.tolist() == [[0, 3, 2, 1]]  # z, then c, b, a
    ref = trec(qrels, run, (2,))["q"]
    assert ref["P_2"] == 0.5 and ref["recip_rank"] == 0.5


def test_infinite_scores(registry):
    qrels = {"q1": {"a": 1, "b": 2, "c": 1}, "q2": {"x": 1}}
    run = {
        "q1": {"a": -math.inf, "b": math.inf, "c": 0.0, "d": -math.inf, "e": math.inf},
        "q2": {"x": -math.inf, "y": -math.inf},
    }
    assert_matches_trec(registry, qrels, run, ks=(1, 2, 3, 5))


def test_queries_counted_like_trec_eval(registry):
    qrels = {"a": {"d1": 1}, "b": {"d2": 1}, "c": {"d3": 0}}
    run = {"a": {"d1": 1.0}, "c": {"d3": 1.0}, "only_in_run": {"d1": 1.0}}
    ranked = RankedRun.from_run(qrels, run)
    assert ranked.query_ids == ["a", "c"]
    assert sorted(trec(qrels, run)) == ["a", "c"]
    result = compute_metrics(registry, qrels, run, ["precision@1"], per_query=True)
    assert result["precision@1"] == 0.5
    assert result["per_query"] == {"precision@1": {"a": 1.0, "c": 0.0}}


@pytest.mark.parametrize("seed", range(3))
def test_all_queries_is_trec_eval_dash_c(registry, seed):
    qrels, run = random_case(200 + seed)
    missing = [q for q in qrels if q not in run]
    assert missing, "the case must have qrels queries missing from the run"
    specs = [f"{m}@{k}" for m in ("ndcg", "map", "recall", "precision", "f1", "mrr") for k in (1, 5, 20)]
    ours = compute_metrics(registry, qrels, run, specs, all_queries=True, per_query=True)
    ref = trec(qrels, run, (1, 5, 20))
    ref_cut = {k: trec(qrels, truncated(run, k), (1, 5, 20)) for k in (1, 5, 20)}
    for spec in specs:
        name, k = spec.split("@")
        per = expected(qrels, run, name, int(k), ref, ref_cut)
        # trec_eval -c: every qrels query counts, a missing one with 0 for every measure.
        assert ours[spec] == pytest.approx(sum(per.values()) / len(qrels), abs=1e-9)
        assert set(ours["per_query"][spec]) == set(qrels)
        assert all(ours["per_query"][spec][q] == 0.0 for q in missing)


def test_depth_cuts_each_ranking(registry):
    qrels, run = random_case(300, score_levels=4)
    ranked = RankedRun.from_run(qrels, run, depth=7)
    assert ranked.depth == 7 and ranked.grades.shape[1] == 7
    assert_matches_trec(registry, qrels, truncated(run, 7), ks=(1, 5, 7, 20), ranked=ranked)


def test_runs_shorter_than_k_divide_precision_by_k(registry):
    qrels = {"q": {"a": 1, "b": 1}}
    run = {"q": {"a": 0.5}}
    ranked = RankedRun.from_run(qrels, run)
    assert registry.create("metric", "precision").compute(ranked, 10).tolist() == [0.1]
    assert trec(qrels, run, (10,))["q"]["P_10"] == pytest.approx(0.1)


def test_empty_inputs():
    ranked = RankedRun.from_run({}, {})
    assert len(ranked) == 0 and ranked.depth == 0
    ranked = RankedRun.from_run({"q": {"a": 1}}, {"q": {}})
    assert ranked.query_ids == ["q"] and ranked.grades.shape == (1, 0)
    assert ranked.num_relevant.tolist() == [1]


def test_compute_metrics_with_no_counted_query_is_a_clear_error(registry):
    with pytest.raises(DataError, match="no query of the run"):
        compute_metrics(registry, {"a": {"d": 1}}, {"b": {"d": 1.0}}, ["ndcg@10"])


def test_bad_scores_are_clear_errors():
    with pytest.raises(EmbedtuneError, match="must be numbers"):
        RankedRun.from_run({"q": {"a": 1}}, {"q": {"a": "high"}})
    with pytest.raises(EmbedtuneError, match="NaN"):
        RankedRun.from_run({"q": {"a": 1}}, {"q": {"a": float("nan")}})


def test_unknown_metric_and_bad_spec(registry):
    from embedtune_core.errors import ComponentError, ConfigError

    with pytest.raises(ComponentError, match="unknown metric 'ndgc'"):
        compute_metrics(registry, {"a": {"d": 1}}, {"a": {"d": 1.0}}, ["ndgc@10"])
    with pytest.raises(ConfigError, match="NAME@K"):
        compute_metrics(registry, {"a": {"d": 1}}, {"a": {"d": 1.0}}, ["ndcg"])


def test_metrics_are_registered(registry):
    for name in ("ndcg", "mrr", "map", "recall", "precision", "f1"):
        component = registry.get("metric", name)
        assert component.plugin == "metrics" and component.description


# -- from_topk --------------------------------------------------------------------------------
@pytest.mark.parametrize("levels", [None, 3])
def test_from_topk_equals_from_run(registry, levels):
    rng = np.random.default_rng(5)
    doc_ids = [f"d{i:03d}" for i in rng.permutation(200)]
    query_ids = [f"q{i}" for i in range(40)]
    k = 15
    if levels is None:
        scores = rng.normal(size=(40, k)).astype(np.float32)
    else:
        scores = rng.integers(0, levels, size=(40, k)).astype(np.float32)
    scores = -np.sort(-scores, axis=1)
    indices = np.stack([rng.choice(200, k, replace=False) for _ in range(40)])
    qrels = {}
    for i, q in enumerate(query_ids[:35]):
        judged = list(rng.choice(indices[i], 4, replace=False)) + list(rng.choice(200, 3, replace=False))
        qrels[q] = {doc_ids[j]: int(rng.integers(0, 3)) for j in judged}
    qrels["not_a_query"] = {"d001": 1}
    run = {q: {doc_ids[j]: float(s) for j, s in zip(indices[i], scores[i])} for i, q in enumerate(query_ids)}
    for all_queries in (False, True):
        a = RankedRun.from_topk(query_ids, doc_ids, indices, scores, qrels, all_queries=all_queries)
        b = RankedRun.from_run(qrels, run, all_queries=all_queries)
        assert a.query_ids == b.query_ids
        np.testing.assert_array_equal(a.grades, b.grades)
        np.testing.assert_array_equal(a.lengths, b.lengths)
        np.testing.assert_array_equal(a.num_relevant, b.num_relevant)
    assert_matches_trec(registry, qrels, run, ks=(1, 5, 15),
                        ranked=RankedRun.from_topk(query_ids, doc_ids, indices, scores, qrels))


def test_from_topk_negative_index_is_no_document():
    ranked = RankedRun.from_topk(["q"], ["a", "b", "c"], np.array([[2, -1, 0]]), np.array([[0.9, 0.8, 0.1]]),
                                 {"q": {"a": 1, "c": 2}})
    assert ranked.lengths.tolist() == [2]
    assert ranked.grades.tolist() == [[2, 1]]


# -- F1 against ranx ------------------------------------------------------------------------
def test_f1_equals_ranx(registry):
    ranx = pytest.importorskip("ranx")
    rng = np.random.default_rng(9)
    qrels, run = {}, {}
    for i in range(80):
        docs = [f"d{j}" for j in rng.choice(300, 40, replace=False)]
        n = int(rng.integers(1, 40))
        run[f"q{i}"] = {d: float(s) for d, s in zip(docs[:n], rng.normal(size=n))}
        grades = rng.choice([0, 1, 1, 2], size=10)
        qrels[f"q{i}"] = {d: int(g) for d, g in zip(rng.choice(docs, 10, replace=False), grades)}
    ranked = RankedRun.from_run(qrels, run)
    f1 = registry.create("metric", "f1")
    for k in (1, 5, 10, 30, 60):
        theirs = ranx.evaluate(ranx.Qrels(qrels), ranx.Run(run), f"f1@{k}", return_mean=False)
        np.testing.assert_allclose(f1.compute(ranked, k), np.asarray(theirs), atol=1e-9, err_msg=f"f1@{k}")


def test_non_integer_grades_are_clear_errors():
    for grade in (0.5, float("nan"), "high"):
        with pytest.raises(EmbedtuneError, match="grades must be integers"):
            RankedRun.from_run({"q": {"a": grade}}, {"q": {"a": 1.0}})
    ranked = RankedRun.from_run({"q": {"a": 2.0, "b": np.int32(1), "c": True}}, {"q": {"a": 1.0, "b": 0.5}})
    assert ranked.grades.tolist() == [[2, 1]] and ranked.num_relevant.tolist() == [3]


@pytest.mark.parametrize("levels", [None, 3])
def test_metric_results_from_trec_tables_equal_those_from_dicts(registry, tmp_path, levels):
    """Read from TREC files (the ``embedtune metrics`` path), with and without heavy ties."""
    from embedtune_core.ranking.metrics import metrics_of_tables
    from embedtune_core.ranking.trec import format_qrels, format_run, read_qrels_table, read_run_table

    qrels, run = random_case(5, queries=30, score_levels=levels)
    run = {q: ranking for q, ranking in run.items() if ranking}  # a TREC file cannot hold an empty ranking
    (tmp_path / "qrels.txt").write_text(format_qrels(qrels))
    (tmp_path / "run.txt").write_text(format_run(run))
    specs = ["ndcg@10", "MRR@5", "recall@20"]
    for all_queries in (False, True):
        got, counted = metrics_of_tables(registry, read_qrels_table(tmp_path / "qrels.txt"),
                                         read_run_table(tmp_path / "run.txt"), specs, all_queries=all_queries,
                                         per_query=True)
        want = compute_metrics(registry, qrels, run, specs, all_queries=all_queries, per_query=True)
        assert counted == len(RankedRun.from_run(qrels, run, all_queries=all_queries))
        assert set(got) == set(want) == {*specs, "per_query"}
        for spec in specs:
            assert got[spec] == pytest.approx(want[spec], abs=1e-12)
            assert got["per_query"][spec] == pytest.approx(want["per_query"][spec], abs=1e-12)
    plain, _ = metrics_of_tables(registry, read_qrels_table(tmp_path / "qrels.txt"), read_run_table(tmp_path / "run.txt"),
                                 ["ndcg@10"])
    assert set(plain) == {"ndcg@10"}  # per-query values only when asked
    assert set(compute_metrics(registry, qrels, run, ["ndcg@10"])) == {"ndcg@10"}


def test_metric_errors_say_what_is_wrong(registry):
    from embedtune_core.ranking.metrics import metrics_of_ranked

    with pytest.raises(DataError) as caught:
        compute_metrics(registry, {"a": {"d": 1}}, {"b": {"d": 1.0}}, ["ndcg@10"])
    assert (caught.value.message, caught.value.hint) == (
        "no query of the run has relevance judgements", "check that the run and the qrels use the same query ids")

    class Wrong:
        def compute(self, ranked, k):
            return np.zeros(len(ranked) + 1)

    ranked = RankedRun.from_run({"q": {"a": 1}, "r": {"a": 1}}, {"q": {"a": 1.0}, "r": {"b": 1.0}})
    with pytest.raises(EmbedtuneError) as caught:
        metrics_of_ranked(ranked, [("wrong@3", Wrong(), 3)])
    assert (caught.value.message, caught.value.hint) == (
        "metric 'wrong@3' returned an array of shape (3,), expected (2,)",
        "compute(ranked, k) must return one value per query")

    class Ones:
        def compute(self, ranked, k):
            return [1] * len(ranked)

    assert metrics_of_ranked(RankedRun.from_run({}, {}), [("ones@1", Ones(), 1)]) == {"ones@1": 0.0}
    result = metrics_of_ranked(ranked, [("ones@1", Ones(), 1)], per_query=True)
    assert result == {"ones@1": 1.0, "per_query": {"ones@1": {"q": 1.0, "r": 1.0}}}
    assert isinstance(result["per_query"]["ones@1"]["q"], float)


def test_metric_specs_are_parsed_or_refused_with_the_spec_named():
    from embedtune_core.errors import ConfigError
    from embedtune_core.ranking.metrics import K_DIGITS, parse_metric, split_metric_specs

    assert parse_metric(" NDCG@10 ") == ("ndcg", 10) and parse_metric("mrr@1") == ("mrr", 1)
    for bad in ("ndcg", "@10", "ndcg@0", "ndcg@x", "ndcg@-1", "ndcg@１"):
        with pytest.raises(ConfigError) as caught:
            parse_metric(bad)
        assert caught.value.message == f"metric '{bad}' must be NAME@K with K a positive integer"
        assert caught.value.hint == "e.g. ndcg@10 (K written with the digits 0-9)"
    long = "ndcg@" + "1" * (K_DIGITS + 1)
    with pytest.raises(ConfigError) as caught:
        parse_metric(long)
    assert caught.value.message.endswith(f"must be NAME@K with K a positive integer of at most {K_DIGITS} digits")
    assert split_metric_specs(["ndcg@10, mrr@10", "map@100", "p@5,"]) == ["ndcg@10", "mrr@10", "map@100", "p@5"]
    with pytest.raises(ConfigError) as caught:
        split_metric_specs(["ndcg@10", " , "])
    assert (caught.value.message, caught.value.key, caught.value.hint) == (
        "metric ' , ' must be NAME@K with K a positive integer", "--metric", "e.g. -m ndcg@10,mrr@10")


class _Misbehaving:
    """A pack's metric objects, each breaking the compute contract one way."""

    def __init__(self, what):
        self.what = what

    def compute(self, ranked, k):
        n = len(ranked)
        if self.what == "raises":
            return 1 / 0
        return {"text": ["high"] * n, "shape": [[1.0, 2.0]] * n, "nan": [1.0] + [float("nan")] * (n - 1),
                "inf": [float("inf")] * n, "good": [0.5] * n}[self.what]


@pytest.fixture
def misbehaving(registry, plugin_set, throwaway_plugin):
    from embedtune_core import hookimpl
    from embedtune_core.plugins.registry import build_registry

    class Pack:
        @hookimpl
        def register_metrics(self, register):
            for what in ("text", "shape", "nan", "inf", "raises", "good"):
                register(f"{what}-metric", lambda what=what: _Misbehaving(what), description=what)

    throwaway_plugin(Pack(), "misbehaving_pack")
    return build_registry(plugin_set)


@pytest.mark.parametrize("what,message,hint", [
    ("text", "metric 'text-metric' from plugin 'misbehaving_pack' returned list ['high', 'high', 'high'], not numbers",
     "compute(ranked, k) must return one number per query"),
    ("shape", "metric 'shape-metric' from plugin 'misbehaving_pack' returned an array of shape (3, 2), expected (3,)",
     "compute(ranked, k) must return one value per query"),
    ("nan", "metric 'nan-metric' from plugin 'misbehaving_pack' returned 2 value(s) that are not finite numbers "
     "(first: nan for query 'q2')", "compute(ranked, k) must return a finite number per query"),
    ("inf", "metric 'inf-metric' from plugin 'misbehaving_pack' returned 3 value(s) that are not finite numbers "
     "(first: inf for query 'q1')", "compute(ranked, k) must return a finite number per query"),
])
def test_a_metric_breaking_its_contract_is_one_error_naming_it(misbehaving, what, message, hint):
    """The exact message and hint for each way a metric's values can be wrong."""
    from embedtune_core.errors import ComponentError
    from embedtune_core.ranking.metrics import compute_metrics

    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 1}}
    run = {"q1": {"a": 1.0}, "q2": {"b": 1.0}, "q3": {"c": 1.0}}
    with pytest.raises(ComponentError) as caught:
        compute_metrics(misbehaving, qrels, run, [f"{what}-metric@10"])
    assert (caught.value.message, caught.value.hint) == (message, hint)


def test_a_metric_that_raises_is_named_with_its_k(misbehaving):
    from embedtune_core.errors import ComponentError
    from embedtune_core.ranking.metrics import compute_metrics

    with pytest.raises(ComponentError) as caught:
        compute_metrics(misbehaving, {"q1": {"a": 1}}, {"q1": {"a": 1.0}}, ["raises-metric@7"])
    assert "metric 'raises-metric' from plugin 'misbehaving_pack' failed while computing it at 7" in caught.value.message
    assert "division by zero" in caught.value.message
    # a good pack metric's values arrive as float64, one per query
    assert compute_metrics(misbehaving, {"q1": {"a": 1}}, {"q1": {"a": 1.0}}, ["good-metric@1"]) == {"good-metric@1": 0.5}


def test_metric_specs_at_the_digit_limit_and_with_two_ats():
    from embedtune_core.errors import ConfigError
    from embedtune_core.ranking.metrics import K_DIGITS, parse_metric

    assert parse_metric("ndcg@" + "9" * K_DIGITS) == ("ndcg", int("9" * K_DIGITS))
    for bad in ("ndcg@" + "0" * K_DIGITS, "a@b@10"):
        with pytest.raises(ConfigError) as caught:
            parse_metric(bad)
        assert caught.value.message == f"metric '{bad}' must be NAME@K with K a positive integer"


def test_tables_count_only_queries_of_both_files_unless_asked(registry, tmp_path):
    from embedtune_core.ranking.metrics import metrics_of_tables
    from embedtune_core.ranking.trec import read_qrels_table, read_run_table

    (tmp_path / "q").write_text("q1 0 a 1\nq2 0 b 1\n")
    (tmp_path / "r").write_text("q1 Q0 a 1 1.0 t\n")
    qrels, run = read_qrels_table(tmp_path / "q"), read_run_table(tmp_path / "r")
    assert metrics_of_tables(registry, qrels, run, ["recall@10"]) == ({"recall@10": 1.0}, 1)
    assert metrics_of_tables(registry, qrels, run, ["recall@10"], all_queries=True) == ({"recall@10": 0.5}, 2)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("k", [1, 3, 10, 100])
def test_ideal_grades_are_each_querys_relevant_grades_best_first(seed, k):
    """``ideal_grades(k)``: the positive grades of the qrels, highest first, cut at k and padded
    with 0 to the widest query; the rows follow the ranked run's queries."""
    qrels, run = random_case(seed)
    for all_queries in (False, True):
        ranked = RankedRun.from_run(qrels, run, all_queries=all_queries)
        expected = [sorted((g for g in qrels.get(q, {}).values() if g > 0), reverse=True)[:k]
                    for q in ranked.query_ids]
        width = max(map(len, expected), default=0)
        got = ranked.ideal_grades(k)
        assert got.dtype == np.int64 and got.shape == (len(ranked), width)
        assert got.tolist() == [row + [0] * (width - len(row)) for row in expected]
    assert RankedRun.from_run({"q": {"a": 0}}, {"q": {"a": 1.0}}).ideal_grades(5).shape == (1, 0)


def test_ranking_refuses_malformed_input_with_one_message():
    """Each refusal of the ranking layer, word for word (what a pack or API user sees)."""

    def refused(call, *args, **kwargs):
        with pytest.raises(EmbedtuneError) as caught:
            call(*args, **kwargs)
        return caught.value.message, caught.value.hint

    ids = ["a", "b"]
    assert refused(RankedRun.from_topk, ["q"], ids, np.array([[0, 1]]), np.array([[0.5]]), {}) == (
        "indices (1, 2) and scores (1, 1) must both be (queries=1, k)", None)
    assert refused(RankedRun.from_topk, ["q", "r"], ids, np.array([[0, 1]]), np.array([[0.5, 0.4]]), {}) == (
        "indices (1, 2) and scores (1, 2) must both be (queries=2, k)", None)
    assert refused(RankedRun.from_topk, ["q", "q"], ids, np.zeros((2, 1), int), np.zeros((2, 1)), {}) == (
        "query ids must be unique", None)
    assert refused(RankedRun.from_topk, ["q"], ids, np.array([[0]]), np.array([[np.nan]]), {"q": {"a": 1}}) == (
        "scores must not be NaN", None)
    assert refused(RankedRun.from_run, {"q": {"a": 1}}, {"q": {"a": "high"}}) == (
        "run scores must be numbers", "a run maps query -> {doc id: score}")
    assert refused(RankedRun.from_run, {"q": {"a": 1}}, {"q": {"a": float("nan")}}) == (
        "run scores must not be NaN", None)
    for grade in ("high", 1.5, float("inf")):
        assert refused(RankedRun.from_run, {"q": {"a": grade}}, {"q": {"a": 1.0}}) == (
            "qrels grades must be integers", "qrels map query -> {doc id: grade}")
    assert refused(RankedRun.from_run, {"q": {"a": 1}}, {"q": {"a": 1.0}}, depth=-1) == (
        "depth must be >= 0, got -1", None)
    nothing = RankedRun.from_run({"q": {"a": 1}}, {"q": {"a": 1.0}}, depth=0)
    assert nothing.depth == 0 and nothing.first_relevant.tolist() == [0]


def test_ideal_ranking_of_grades_too_large_for_the_packed_sort():
    """Grades whose packed sort key would overflow go through the two-key sort: the same order."""
    huge = 2**61
    qrels = {"q1": {"a": 3, "b": huge, "c": 2**60, "d": 0}, "q2": {"e": 1, "f": huge}}
    ranked = RankedRun.from_run(qrels, {"q1": {"a": 1.0}, "q2": {"e": 1.0}})
    assert ranked.ideal_grades(10).tolist() == [[huge, 2**60, 3], [huge, 1, 0]]
    assert ranked.ideal_dcg(2).tolist() == pytest.approx([huge + 2**60 / math.log2(3), huge + 1 / math.log2(3)])


def test_every_constructor_honours_depth_and_empty_runs(tmp_path):
    """``depth`` cuts every query's ranking the same way whichever constructor ranks it; a
    relevant document outside the corpus counts in the ideal ranking only; the run's first lines
    may belong to a query the qrels do not judge."""
    from embedtune_core.ranking.trec import format_qrels, format_run, read_qrels_table, read_run_table

    doc_ids = ["a", "b", "c", "d"]
    qrels = {"q1": {"b": 1, "d": 2, "zz": 3}, "q2": {"a": 1}}
    indices, scores = np.array([[0, 1, 3], [2, 0, 1]]), np.array([[0.9, 0.8, 0.7], [0.9, 0.5, 0.1]])
    run = {q: {doc_ids[j]: float(s) for j, s in zip(indices[i], scores[i])} for i, q in enumerate(["q1", "q2"])}
    (tmp_path / "q").write_text(format_qrels(qrels))
    (tmp_path / "r").write_text("x9 Q0 a 1 5.0 t\n" + format_run(run))  # an unjudged query first
    for depth, grades in ((None, [[0, 1, 2], [0, 1, 0]]), (2, [[0, 1], [0, 1]]), (1, [[0], [0]])):
        built = [RankedRun.from_run(qrels, run, depth=depth),
                 RankedRun.from_topk(["q1", "q2"], doc_ids, indices, scores, qrels, depth=depth),
                 RankedRun.from_tables(read_qrels_table(tmp_path / "q"), read_run_table(tmp_path / "r"), depth=depth)]
        for ranked in built:
            assert ranked.query_ids == ["q1", "q2"] and ranked.grades.tolist() == grades, depth
            assert ranked.num_relevant.tolist() == [3, 1] and ranked.ideal_grades(5).tolist() == [[3, 2, 1], [1, 0, 0]]
    empty = RankedRun.from_run({}, {})
    assert len(empty) == 0 and empty.ideal_grades(5).shape == (0, 0)
