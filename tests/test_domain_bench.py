"""benchmarks/domain_bench.py: the starter config it runs, and the table it reports (no training)."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("domain_bench", ROOT / "benchmarks" / "domain_bench.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["domain_bench"] = module
    spec.loader.exec_module(module)
    return module


def test_set_key_replaces_a_commented_key_inside_its_section_only(bench):
    text = '[data]\n# the source\nsource = "builtin:hpo-lay"\n# eval_source =\n\n[training]\n# seed = 42\n'
    out = bench.set_key(bench.set_key(text, "data", "source", '"builtin:x"'), "training", "seed", "3")
    assert out == '[data]\n# the source\nsource = "builtin:x"\n# eval_source =\n\n[training]\nseed = 3\n'
    added = bench.set_key("[a]\nx = 1\n\n[b]\ny = 2\n", "a", "z", "5")
    assert added == "[a]\nx = 1\nz = 5\n\n[b]\ny = 2\n"
    assert bench.set_key("[a]\nx = 1\n", "c", "k", "1").endswith("\n[c]\nk = 1\n")


def test_starter_config_changes_only_source_and_seed(bench, tmp_path):
    from embedtune_core.testing import invoke

    def resolved(path):
        result = invoke(["config", "show", str(path), "--json"])
        assert result.exit_code == 0, result
        return json.loads(result.stdout)

    path = bench.starter_config(tmp_path / "bench.toml", "builtin:wordnet-plants", 7)
    bench.run([bench.embedtune(), "init", "--type", "ir", "-o", str(tmp_path / "plain.toml")], log=None)
    ours, starter = resolved(path), resolved(tmp_path / "plain.toml")
    assert ours["data"]["source"] == "builtin:wordnet-plants" and ours["training"]["seed"] == 7
    ours["data"]["source"], ours["training"]["seed"] = starter["data"]["source"], starter["training"]["seed"]
    assert ours == starter


def _result(seed, after, before=0.2, retention=0.38):
    return {"seed": seed, "before": {"ndcg@10": before}, "after": {"ndcg@10": after},
            "retention": {"builtin:wordnet-general": {"ndcg@10": retention}},
            "mining": {"negatives_written": 10, "dropped_false_negatives": 4}, "wall_seconds": 1.0}


def test_summary_and_table_compare_the_starter_with_the_plain_script_at_its_best_rate(bench):
    plain = {2e-5: [_result(s, v) for s, v in zip((1, 2, 3), (0.26, 0.27, 0.28))],
             2e-4: [_result(s, v) for s, v in zip((1, 2, 3), (0.30, 0.31, 0.32))]}
    ours = [_result(s, v, retention=0.36) for s, v in zip((1, 2, 3), (0.33, 0.33, 0.36))]
    row = bench.summarise("toy", plain, ours)
    assert row["base"] == 0.2 and row["best_lr"] == 2e-4
    assert row["plain"]["mean"] == pytest.approx(0.31) and row["plain"]["std"] == pytest.approx(0.01)
    assert row["plain_by_lr"]["2e-5"]["mean"] == pytest.approx(0.27)
    assert row["embedtune"]["min"] == 0.33 and row["embedtune"]["max"] == 0.36
    assert row["relative"] == pytest.approx(0.34 / 0.31 - 1) and row["target_met"] is True
    assert row["retention"]["embedtune"]["mean"] == pytest.approx(0.36)
    table = bench.markdown([row], [1, 2, 3], retention_base=0.38)
    assert "| toy | 0.2000 | 2e-4: 0.3100 ± 0.0100 (0.3000–0.3200) | 0.3400 ± 0.0173 (0.3300–0.3600) | +9.7% | yes |" in table
    assert "| toy | 0.2700 ± 0.0100 | **0.3100 ± 0.0100** |" in table
    assert "base model 0.3800" in table and "| toy | 1 | 0.3000 | 0.3300 |" in table
    worse = bench.summarise("toy", plain, [_result(s, 0.33) for s in (1, 2, 3)])
    assert worse["target_met"] is False and worse["relative"] == pytest.approx(0.33 / 0.31 - 1)


def test_learning_rates_name_files_the_same_way_however_they_are_written(bench):
    assert [bench.lr_tag(lr) for lr in (2e-5, 0.00005, 1e-4, 0.0002, 1.5e-4)] == ["2e-5", "5e-5", "1e-4", "2e-4", "1.5e-4"]


def test_the_plain_script_trains_and_scores_on_what_embedtune_reads(tiny_model, tmp_path):
    """benchmarks/plain_st.py runs against the current embedtune API: it trains the given steps
    on every pair of the data and scores the held-out set with embedtune's evaluation."""
    import subprocess

    rows = [{"anchor": f"question {i} about topic {i % 7}", "positive": f"answer {i} on topic {i % 7}"} for i in range(40)]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "plain.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "plain_st.py"), "--data", str(data), "--type", "pairs", "--seed", "3", "--lr", "1e-4",
                           "--model", str(tiny_model), "--max-steps", "1", "--base", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["steps"] == 1 and result["training_pairs"] == 40 and result["eval_queries"] == 40
    assert result["learning_rate"] == 1e-4
    assert set(result["after"]) == set(result["before"]) >= {"ndcg@10", "mrr@10"}
    assert all(0.0 <= v <= 1.0 for v in result["after"].values())
