"""Model evaluation: IR metrics equal pytrec_eval on the model's own run, STS correlations equal
scipy's, triplet accuracy, Matryoshka dims, before/after comparison, and `embedtune eval`."""

import json

import numpy as np
import pytest
import pytrec_eval

from embedtune_core.pipeline.evaluation import evaluate_model
from embedtune_core.pipeline.results import Comparison, Evaluation, comparison_table
from embedtune_core.testing import TINY_CORPUS, invoke
from embedtune_core.types import IRData

QUERIES = {
    "q1": "fever and cough",
    "q2": "lease indemnification",
    "q3": "interest rates and bonds",
    "q4": "heart rhythm problems",
    "q5": "hearing loss",
    "q6": "growth and stature",
    "q7": "nothing judged relevant here",
}
QRELS = {
    "q1": {"d0": 2, "d1": 1, "d4": 0},
    "q2": {"d2": 1, "d3": 2, "d14": 1},
    "q3": {"d4": 1, "d5": 1},
    "q4": {"d7": 2, "d8": 1},
    "q5": {"d9": 1},
    "q6": {"d12": 1, "d13": 2, "d10": 0},
    "q7": {"d6": 0},
}


@pytest.fixture(scope="module")
def model(tiny_model):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(tiny_model, device="cpu")


@pytest.fixture
def ir_data():
    corpus = {f"d{i}": text for i, text in enumerate(TINY_CORPUS)}
    return IRData(corpus=corpus, queries=dict(QUERIES), qrels={q: dict(j) for q, j in QRELS.items()})


@pytest.fixture
def ir_folder(tmp_path, ir_data):
    folder = tmp_path / "ir"
    (folder / "qrels").mkdir(parents=True)
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as handle:
        for doc_id, text in ir_data.corpus.items():
            handle.write(json.dumps({"_id": doc_id, "title": "", "text": text}) + "\n")
    with open(folder / "queries.jsonl", "w", encoding="utf-8") as handle:
        for query_id, text in ir_data.queries.items():
            handle.write(json.dumps({"_id": query_id, "text": text}) + "\n")
    lines = ["query-id\tcorpus-id\tscore"]
    lines += [f"{q}\t{d}\t{g}" for q, j in QRELS.items() if q != "q7" for d, g in j.items()]
    (folder / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def reference_ir(model, data, dim=None):
    """pytrec_eval on the full cosine ranking from model.encode's embeddings."""
    doc_ids = list(data.corpus)
    query_ids = [q for q in data.queries if q in data.qrels]
    d = model.encode([data.corpus[i] for i in doc_ids], convert_to_numpy=True).astype(np.float64)
    q = model.encode([data.queries[i] for i in query_ids], convert_to_numpy=True).astype(np.float64)
    if dim is not None:
        d, q = d[:, :dim], q[:, :dim]
    scores = unit(q) @ unit(d).T
    run = {qid: {doc_ids[j]: float(scores[i, j]) for j in range(len(doc_ids))} for i, qid in enumerate(query_ids)}
    ref = pytrec_eval.RelevanceEvaluator(data.qrels, {"ndcg_cut.10", "map_cut.100", "recall.5", "P.3"}).evaluate(run)
    cut = {qid: dict(sorted(r.items(), key=lambda x: (x[1], x[0]), reverse=True)[:10]) for qid, r in run.items()}
    rr = pytrec_eval.RelevanceEvaluator(data.qrels, {"recip_rank"}).evaluate(cut)
    mean = lambda key, src=ref: float(np.mean([v[key] for v in src.values()]))  # noqa: E731
    return {"ndcg@10": mean("ndcg_cut_10"), "map@100": mean("map_cut_100"), "recall@5": mean("recall_5"),
            "precision@3": mean("P_3"), "mrr@10": mean("recip_rank", rr)}


SPECS = ["ndcg@10", "map@100", "recall@5", "precision@3", "mrr@10"]


def test_ir_metrics_equal_pytrec_eval_on_the_models_run(model, ir_data, registry):
    results = evaluate_model(model, ir_data, "ir", registry=registry, metrics=SPECS, dims=[16, 8])
    assert list(results) == [None, 16, 8]
    for dim in (None, 16, 8):
        want = reference_ir(model, ir_data, dim)
        for spec in SPECS:
            assert results[dim][spec] == pytest.approx(want[spec], abs=1e-6), (dim, spec)
    assert results[16] != results[None]


def test_ir_all_queries_counts_queries_without_text(model, ir_data, registry):
    ir_data.qrels["q_without_text"] = {"d0": 1}
    plain = evaluate_model(model, ir_data, "ir", registry=registry, metrics=["ndcg@10"])
    every = evaluate_model(model, ir_data, "ir", registry=registry, metrics=["ndcg@10"], all_queries=True)
    assert every[None]["ndcg@10"] == pytest.approx(plain[None]["ndcg@10"] * 7 / 8)


def test_sts_correlations_equal_scipy(model):
    import datasets
    from scipy.stats import pearsonr, spearmanr

    rng = np.random.default_rng(0)
    words = " ".join(TINY_CORPUS).split()
    # distinct texts, so no two pairs tie exactly
    s1 = [f"{i} " + " ".join(rng.choice(words, 6)) for i in range(40)]
    s2 = [f"{i} " + " ".join(rng.choice(words, 6)) for i in range(40)]
    score = rng.uniform(0, 5, 40).round(1).tolist()
    data = datasets.Dataset.from_dict({"sentence1": s1, "sentence2": s2, "score": score})
    results = evaluate_model(model, data, "sts", registry=None, metrics=[], dims=[8])
    for dim in (None, 8):
        a = model.encode(s1, convert_to_numpy=True).astype(np.float64)
        b = model.encode(s2, convert_to_numpy=True).astype(np.float64)
        if dim:
            a, b = a[:, :dim], b[:, :dim]
        cos = np.sum(unit(a) * unit(b), axis=1)
        assert results[dim]["spearman"] == pytest.approx(spearmanr(cos, score).statistic, abs=1e-5)
        assert results[dim]["pearson"] == pytest.approx(pearsonr(cos, score).statistic, abs=1e-5)


def test_bad_dims_and_types(model, ir_data, registry):
    from embedtune_core.errors import DataError, EmbedtuneError

    with pytest.raises(EmbedtuneError, match="outside the model's embedding size"):
        evaluate_model(model, ir_data, "ir", registry=registry, metrics=["ndcg@10"], dims=[64])
    with pytest.raises(DataError, match="no evaluation for dataset type 'nli'"):
        evaluate_model(model, [], "nli", registry=registry, metrics=["ndcg@10"])


def test_comparison_rows_and_table():
    before = Evaluation("base", {None: {"ndcg@10": 0.5, "mrr@10": 0.0}, 64: {"ndcg@10": 0.4}}, full_dim=384)
    after = Evaluation("tuned", {None: {"ndcg@10": 0.6, "mrr@10": 0.1}, 64: {"ndcg@10": 0.3}}, full_dim=384)
    comparison = Comparison(before=before, after=after)
    rows = comparison.all_rows()
    assert [(r.metric, r.dim) for r in rows] == [("ndcg@10", None), ("mrr@10", None), ("ndcg@10", 64)]
    assert rows[0].change == pytest.approx(0.1) and rows[0].relative == pytest.approx(20.0)
    assert rows[1].relative is None  # before is 0
    assert rows[2].change == pytest.approx(-0.1) and rows[2].relative == pytest.approx(-25.0)
    text = comparison_table(comparison)
    assert "+20.0%" in text and "-25.0%" in text and "full" in text and "–" in text
    assert list(comparison.by_dim()) == ["384", "64"] and comparison.by_dim()["384"]["after"]["ndcg@10"] == 0.6
    assert [(r.before, r.after) for r in comparison.rows(384)] == [(r.before, r.after) for r in comparison.rows(None)]


# -- the CLI --------------------------------------------------------------------------------
def test_cli_eval_ir_folder_json(tiny_model, ir_folder, model, ir_data, registry):
    result = invoke(["eval", "--model", tiny_model, "--data", ir_folder, "--type", "ir", "--dims", "16,8",
                     "-m", "ndcg@10,map@100", "-m", "mrr@10", "--json"])
    assert result.exit_code == 0, result
    payload = json.loads(result.stdout)
    assert payload["evaluation"]["type"] == "ir" and list(payload["dims"]) == ["32", "16", "8"]
    assert list(payload["steps"]) == ["evaluate-after"] and payload["before"] is None
    # the folder's qrels leave out q7 (nothing relevant), so it is not a query of the set
    del ir_data.qrels["q7"]
    assert payload["evaluation"]["queries"] == 6 and payload["evaluation"]["corpus"] == len(ir_data.corpus)
    want = reference_ir(model, ir_data, 16)
    assert payload["dims"]["16"]["after"]["ndcg@10"] == pytest.approx(want["ndcg@10"], abs=1e-6)
    assert payload["dims"]["16"]["after"]["mrr@10"] == pytest.approx(want["mrr@10"], abs=1e-6)


@pytest.fixture
def other_model(tiny_model, tmp_path):
    """The tiny model with its weights disturbed: a model that ranks differently."""
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(tiny_model, device="cpu")
    torch.manual_seed(1)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.5)
    folder = tmp_path / "other"
    model.save(str(folder), safe_serialization=True)
    return str(folder)


def test_cli_eval_against_reads_the_baseline_as_before(tiny_model, other_model, ir_folder):
    """--against names the baseline: it is "before" whatever the order on the line, and each
    column equals that model's own evaluation."""
    def alone(name):
        out = invoke(["eval", "--model", name, "--data", ir_folder, "--type", "ir", "--dims", "16", "--json"])
        assert out.exit_code == 0, out
        return json.loads(out.stdout)["after"]

    base, other = alone(tiny_model), alone(other_model)
    assert base != other
    for tuned, baseline in [(other_model, tiny_model), (tiny_model, other_model)]:
        result = invoke(["eval", "--model", tuned, "--against", baseline, "--data", ir_folder, "--type", "ir",
                         "--dims", "16", "--json"])
        payload = json.loads(result.stdout)
        assert payload["before"] == (base if baseline == tiny_model else other)
        assert payload["after"] == (other if tuned == other_model else base)
        assert payload["baseline"] == baseline and payload["model"] == tuned
    result = invoke(["eval", "--model", other_model, "--data", ir_folder, "--type", "ir", "--dims", "16",
                     "--against", tiny_model])
    assert result.exit_code == 0, result
    lines = result.stdout.splitlines()
    assert f"before: {tiny_model}" in lines and f"after:  {other_model}" in lines
    header = next(line for line in lines if line.startswith("metric"))
    assert header.split() == ["metric", "dim", "before", "after", "change", "relative"]
    rows = [line.split() for line in lines if line.startswith(("ndcg", "mrr", "map", "recall", "precision", "f1"))]
    assert len(rows) == 12 and {r[1] for r in rows} == {"full", "16"}
    ndcg = next(r for r in rows if r[0] == "ndcg@10" and r[1] == "full")
    assert float(ndcg[2]) == pytest.approx(base["ndcg@10"], abs=1e-4)
    assert float(ndcg[3]) == pytest.approx(other["ndcg@10"], abs=1e-4)
    assert float(ndcg[4]) == pytest.approx(other["ndcg@10"] - base["ndcg@10"], abs=2e-4)


def test_cli_eval_bundled_ir_set(tiny_model):
    result = invoke(["eval", "--model", tiny_model, "--data", "builtin:construction-faq", "--dims", "16",
                     "--against", tiny_model, "--json"])
    assert result.exit_code == 0, result
    payload = json.loads(result.stdout)
    assert payload["evaluation"]["type"] == "ir" and payload["evaluation"]["part"] == "eval split"
    assert list(payload["dims"]) == ["32", "16"]
    assert all(0.0 <= v <= 1.0 for v in payload["after"].values())


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dims", "16,abc"], "'abc' is not a positive integer"),
        (["--dims", "999"], "dim 999 is outside the model's embedding size"),
        (["-m", "ndgc@10"], "unknown metric 'ndgc'"),
        (["-m", "ndcg"], "NAME@K"),
    ],
)
def test_cli_eval_errors(tiny_model, ir_folder, args, message):
    result = invoke(["eval", "--model", tiny_model, "--data", ir_folder, "--type", "ir", *args])
    assert result.exit_code == 2, result
    assert message in result.output and "Traceback" not in result.output


def test_ir_with_an_approximate_index_reports_its_recall(model, ir_data, registry):
    pytest.importorskip("faiss")
    from embedtune_core.pipeline.evaluation import evaluate_ir

    exact = evaluate_ir(model, ir_data, registry=registry, metrics=["ndcg@10", "recall@5"], device="cpu")
    approx = evaluate_ir(model, ir_data, registry=registry, metrics=["ndcg@10", "recall@5"], device="cpu",
                         approximate_from=1)
    assert "search_recall@10" not in exact[None]
    # a corpus this small gets one IVF list: the search is exhaustive and its recall 1
    assert approx[None].pop("search_recall@10") == 1.0
    assert approx == exact


def test_approximate_from_reaches_the_evaluation_of_a_run(tiny_model, ir_folder, tmp_path):
    """evaluation.approximate_from (eval --approximate-from) reaches the search: a corpus past it
    is searched with the faiss index and the run reports its recall; the metrics are the exact
    search's (one IVF list for 15 documents: the search is exhaustive)."""
    pytest.importorskip("faiss")
    import tomllib

    base = ["eval", "--model", tiny_model, "--data", ir_folder, "--type", "ir", "-m", "ndcg@10,recall@5", "--json"]
    exact = invoke(base)
    approx = invoke(base + ["--approximate-from", "1", "--output", str(tmp_path / "run")])
    never = invoke(base + ["--approximate-from", "none"])
    assert exact.exit_code == approx.exit_code == never.exit_code == 0, (exact, approx, never)
    exact, approx, never = (json.loads(r.stdout)["after"] for r in (exact, approx, never))
    assert "search_recall@10" not in exact and "search_recall@10" not in never
    assert approx.pop("search_recall@10") == 1.0
    assert approx == exact == never
    config = tomllib.loads((tmp_path / "run" / "config.toml").read_text(encoding="utf-8"))
    assert config["evaluation"]["approximate_from"] == 1
    result = invoke(base + ["--approximate-from", "0"])
    assert result.exit_code == 2 and "--approximate-from" in result.output and "at least 1" in result.output


def test_approximate_from_config_key():
    from embedtune_core.config.schema import RunConfig
    from embedtune_core.embedding.search import APPROXIMATE_FROM
    from embedtune_core.errors import ConfigError

    assert RunConfig().evaluation.approximate_from == APPROXIMATE_FROM
    assert RunConfig.from_dict({"evaluation": {"approximate_from": None}}).evaluation.approximate_from is None
    assert RunConfig.from_dict({"evaluation": {"approximate_from": "5000"}}).evaluation.approximate_from == 5000
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict({"evaluation": {"approximate_from": 0}})
    assert info.value.key == "evaluation.approximate_from"
