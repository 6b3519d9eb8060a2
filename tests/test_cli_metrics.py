"""`embedtune metrics`: TREC files in, trec_eval's numbers out."""

import json

import numpy as np
import pytest

from embedtune_core.testing import invoke
from embedtune_core.ranking.trec import format_qrels, format_run, read_qrels, read_run
from test_metrics import expected, random_case, trec, truncated

SPECS = ["ndcg@10", "mrr@10", "map@100", "recall@5", "precision@3", "f1@10", "ndcg@1"]


@pytest.fixture
def files(tmp_path):
    qrels, run = random_case(42, score_levels=4)
    qrels_path, run_path = tmp_path / "qrels.txt", tmp_path / "run.txt"
    qrels_path.write_text(format_qrels(qrels), encoding="utf-8")
    run_path.write_text(format_run(run), encoding="utf-8")
    return qrels, run, qrels_path, run_path


def reference_means(qrels, run, specs, all_queries=False):
    ks = sorted({int(s.split("@")[1]) for s in specs})
    ref = trec(qrels, run, ks)
    ref_cut = {k: trec(qrels, truncated(run, k), ks) for k in ks}
    out = {}
    for spec in specs:
        name, k = spec.split("@")
        per = expected(qrels, run, name, int(k), ref, ref_cut)
        out[spec] = sum(per.values()) / (len(qrels) if all_queries else len(per))
    return out


def test_files_round_trip(files):
    qrels, run, qrels_path, run_path = files
    assert read_qrels(qrels_path) == {q: j for q, j in qrels.items() if j}
    assert read_run(run_path) == {q: r for q, r in run.items() if r}


@pytest.mark.parametrize("all_queries", [False, True])
def test_json_equals_pytrec_eval(files, all_queries):
    qrels, run, qrels_path, run_path = files
    args = ["metrics", qrels_path, run_path, "--json"] + [a for s in SPECS for a in ("-m", s)]
    if all_queries:
        args.append("--all-queries")
    result = invoke(args)
    assert result.exit_code == 0, result
    got = json.loads(result.stdout)
    assert list(got) == SPECS
    # The file drops queries with an empty ranking, as a run file cannot express them.
    file_run = {q: r for q, r in run.items() if r}
    want = reference_means(qrels, file_run, SPECS, all_queries)
    for spec in SPECS:
        assert got[spec] == pytest.approx(want[spec], abs=1e-6), spec


def test_table_and_per_query(files):
    qrels, run, qrels_path, run_path = files
    result = invoke(["metrics", qrels_path, run_path, "-m", "ndcg@10", "-m", "precision@3", "--per-query"])
    assert result.exit_code == 0, result
    lines = [line.split("\t") for line in result.stdout.strip().splitlines()]
    counted = sorted(q for q in run if q in qrels and run[q])
    per_query = [row for row in lines if row[1] != "all"]
    assert [row[1] for row in per_query[::2]] == counted
    summary = {row[0].strip(): row[2] for row in lines if row[1] == "all"}
    assert summary["num_q"] == str(len(counted))
    ref = trec(qrels, {q: run[q] for q in counted}, (10,))
    assert float(summary["ndcg@10"]) == pytest.approx(np.mean([v["ndcg_cut_10"] for v in ref.values()]), abs=5e-5)
    q0 = counted[0]
    row = next(r for r in per_query if r[0].strip() == "ndcg@10" and r[1] == q0)
    assert float(row[2]) == pytest.approx(ref[q0]["ndcg_cut_10"], abs=5e-5)


def test_json_per_query(files):
    qrels, run, qrels_path, run_path = files
    result = invoke(["metrics", qrels_path, run_path, "-m", "mrr@5", "--json", "--per-query"])
    assert result.exit_code == 0, result
    got = json.loads(result.stdout)
    counted = sorted(q for q in run if q in qrels and run[q])
    assert list(got["per_query"]["mrr@5"]) == counted
    assert got["mrr@5"] == pytest.approx(np.mean(list(got["per_query"]["mrr@5"].values())))


def test_comma_separated_and_repeated_metrics(files):
    _, _, qrels_path, run_path = files
    result = invoke(["metrics", qrels_path, run_path, "-m", "ndcg@10,mrr@10", "-m", "map@100", "--json"])
    assert result.exit_code == 0, result
    got = json.loads(result.stdout)
    assert list(got) == ["ndcg@10", "mrr@10", "map@100"]
    separate = json.loads(invoke(["metrics", qrels_path, run_path, "-m", "ndcg@10", "-m", "mrr@10", "-m", "map@100",
                                  "--json"]).stdout)
    assert got == separate
    result = invoke(["metrics", qrels_path, run_path, "-m", ",", "--json"])
    assert result.exit_code == 2 and "NAME@K" in result.stderr


def test_default_metrics(files):
    _, _, qrels_path, run_path = files
    result = invoke(["metrics", qrels_path, run_path, "--json"])
    assert result.exit_code == 0, result
    assert list(json.loads(result.stdout)) == ["ndcg@10", "mrr@10", "map@100", "recall@10", "precision@10", "f1@10"]


@pytest.mark.parametrize(
    "which, text, message",
    [
        ("qrels", "q1 0 d1 1\nq1 0 d2\n", "qrels.txt:2: expected 4 fields"),
        ("qrels", "q1 0 d1 high\n", "qrels.txt:1: relevance 'high' is not an integer"),
        ("qrels", "q1 0 d1 1\n\nq1 0 d1 2\n", "qrels.txt:3: document 'd1' is judged twice"),
        ("qrels", "\n", "no judgements"),
        ("run", "q1 Q0 d1 1 0.5 tag\nq1 Q0 d2 2 tag\n", "run.txt:2: expected 6 fields"),
        ("run", "q1 Q0 d1 1 abc tag\n", "run.txt:1: score 'abc' is not a number"),
        ("run", "q1 Q0 d1 1 nan tag\n", "run.txt:1: score is NaN"),
        ("run", "q1 Q0 d1 1 0.5 t\nq1 Q0 d1 2 0.4 t\n", "run.txt:2: document 'd1' is listed twice"),
        ("run", "q9 Q0 d1 1 0.5 t\n", "no query of the run has relevance judgements"),
    ],
)
def test_bad_files_are_one_clear_error(tmp_path, which, text, message):
    good = {"qrels": "q1 0 d1 1\n", "run": "q1 Q0 d1 1 0.5 tag\n"}
    good[which] = text
    (tmp_path / "qrels.txt").write_text(good["qrels"], encoding="utf-8")
    (tmp_path / "run.txt").write_text(good["run"], encoding="utf-8")
    result = invoke(["metrics", tmp_path / "qrels.txt", tmp_path / "run.txt"])
    assert result.exit_code == 2, result
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_missing_file_and_unknown_metric(tmp_path):
    (tmp_path / "qrels.txt").write_text("q1 0 d1 1\n", encoding="utf-8")
    (tmp_path / "run.txt").write_text("q1 Q0 d1 1 0.5 tag\n", encoding="utf-8")
    result = invoke(["metrics", tmp_path / "nope.txt", tmp_path / "run.txt"])
    assert result.exit_code == 2 and "nope.txt: file not found" in result.stderr
    result = invoke(["metrics", tmp_path / "qrels.txt", tmp_path / "run.txt", "-m", "ndcg10"])
    assert result.exit_code == 2 and "NAME@K" in result.stderr
    result = invoke(["metrics", tmp_path / "qrels.txt", tmp_path / "run.txt", "-m", "nDCG@10"])
    assert result.exit_code == 0, result  # names are case-insensitive
    result = invoke(["metrics", tmp_path / "qrels.txt", tmp_path / "run.txt", "-m", "bleu@10"])
    assert result.exit_code == 2 and "unknown metric 'bleu'" in result.stderr


def test_not_utf8(tmp_path):
    (tmp_path / "qrels.txt").write_bytes(b"q1 0 d1 1\nq1 0 \xff\xfe 1\n")
    (tmp_path / "run.txt").write_text("q1 Q0 d1 1 0.5 tag\n", encoding="utf-8")
    result = invoke(["metrics", tmp_path / "qrels.txt", tmp_path / "run.txt"])
    assert result.exit_code == 2 and "qrels.txt:2: not UTF-8" in result.stderr


def test_a_byte_order_mark_is_not_part_of_the_first_query_id(tmp_path):
    qrels = tmp_path / "qrels.txt"
    run = tmp_path / "run.txt"
    qrels.write_bytes("\ufeff101 0 d1 1\n101 0 d2 0\n".encode("utf-8"))
    run.write_bytes("\ufeff101 Q0 d1 1 2.0 r\n101 Q0 d2 2 1.0 r\n".encode("utf-8"))
    result = invoke(["metrics", str(qrels), str(run), "-m", "ndcg@10", "--json"])
    assert result.exit_code == 0, result
    assert json.loads(result.stdout)["ndcg@10"] == 1.0


def test_metrics_imports_no_model_or_dataframe_library(files):
    """`embedtune metrics` reads and scores in its own process without torch, the model
    libraries, datasets or pandas, and its values are
    trec_eval's."""
    import subprocess
    import sys

    qrels, run, qrels_path, run_path = files
    code = (
        "import json, sys\nfrom embedtune_core.cli.main import main\n"
        f"try:\n    main(['metrics', {str(qrels_path)!r}, {str(run_path)!r}, '-m', 'ndcg@10,map@100', '--json'])\n"
        "except SystemExit as exc:\n    assert exc.code in (0, None), exc.code\n"
        "heavy = ('torch', 'sentence_transformers', 'transformers', 'datasets', 'pandas')\n"
        "print(json.dumps([m for m in heavy if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert json.loads(lines[-1]) == []
    values = json.loads("\n".join(lines[:-1]))
    want = reference_means(qrels, {q: r for q, r in run.items() if r}, ["ndcg@10", "map@100"])
    assert values == pytest.approx(want, abs=1e-6)
