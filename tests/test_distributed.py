"""`embedtune run` under `torchrun --nproc_per_node 2` (CPU, gloo) against the same run in one process.

Mining and evaluation split their encoding and search over the processes; training is DDP.
Two processes with 4 rows each per step and gathered in-batch negatives train on the same 8 rows a
step as one process with a batch of 8, with the same loss (with the plain batch sampler: the
no-duplicates sampler groups rows by the batch size, so 4 + 4 rows may differ from 8); the tiny model has no dropout, so the
two trainings differ only by the order of floating-point sums. Stated tolerance: 1e-3 on every
metric and on the training loss. Mining and the evaluation before training see the same model
and must agree to 1e-6.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from embedtune_core.testing import build_tiny_model, invoke

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = 1e-3


def _pipeline(model: str) -> str:
    return f'''name = "two"
output_dir = "runs"
steps = ["mine", "evaluate-before", "train", "evaluate-after"]

[model]
name = "{model}"
max_seq_length = 32

[data]
source = "builtin:construction-faq"
limit = 64
eval_limit = 32

[mining]
miner = "dense"
num_negatives = 1

[training]
max_steps = 6
batch_size = 4
learning_rate = 5e-3
warmup_ratio = 0.0
seed = 3
batch_sampler = "batch_sampler"

[evaluation]
metrics = ["ndcg@10", "recall@10", "mrr@10"]
batch_size = 16
'''


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The pipeline run by torchrun in two processes, and in one process with a batch of 8."""
    from embedtune_core.data.loading import load_data
    from embedtune_core.plugins.registry import load_registry

    folder = tmp_path_factory.mktemp("ddp")
    _, registry = load_registry()
    ir = load_data(registry, "builtin:construction-faq").train
    texts = list(ir.queries.values())[:200] + list(ir.corpus.values())[:200]
    model = build_tiny_model(folder / "tiny", texts=texts, hidden_size=64, layers=1, word_embedding_std=0.5,
                             dropout=0.0)
    (folder / "pipeline.toml").write_text(_pipeline(str(model)), encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "embedtune_core", "run", "pipeline.toml"],
                         cwd=folder, env=env, capture_output=True, text=True, timeout=600)
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        one = invoke(["run", "pipeline.toml", "-s", "name=one", "-s", "training.batch_size=8"])
    finally:
        os.chdir(cwd)
    return folder, two, one


def test_two_processes_finish_and_say_each_line_once(runs):
    folder, two, one = runs
    assert two.returncode == 0, two.stderr[-4000:]
    assert one.exit_code == 0, one
    steps = [line for line in two.stderr.splitlines() if line.startswith("» ")]
    assert steps == [line for line in one.stderr.splitlines() if line.startswith("» ")]
    assert steps and all(n == 1 for n in Counter(steps).values())
    # the result table once, the same rows as one process's
    assert [line.split()[0] for line in two.stdout.splitlines()] == [line.split()[0] for line in one.stdout.splitlines()]
    assert two.stdout.count("ndcg@10") == one.stdout.count("ndcg@10") > 0
    assert "process 1" not in two.stderr and "Traceback" not in two.stderr


def test_two_processes_write_one_run_folder_like_one_process(runs):
    folder, two, one = runs
    assert two.returncode == 0, two.stderr[-4000:]
    files = sorted(p.relative_to(folder / "runs" / "two") for p in (folder / "runs" / "two").rglob("*")
                   if "checkpoints" not in p.parts)
    same = sorted(p.relative_to(folder / "runs" / "one") for p in (folder / "runs" / "one").rglob("*")
                  if "checkpoints" not in p.parts)
    assert files == same
    assert sorted(os.listdir(folder / "runs")) == ["one", "two"]
    log = (folder / "runs" / "two" / "training_log.jsonl").read_text().splitlines()
    assert len(log) == len((folder / "runs" / "one" / "training_log.jsonl").read_text().splitlines())


def test_two_processes_compute_what_one_process_computes(runs):
    folder, two, one = runs
    assert two.returncode == 0, two.stderr[-4000:]
    a = json.loads((folder / "runs" / "two" / "metrics.json").read_text())
    b = json.loads((folder / "runs" / "one" / "metrics.json").read_text())
    assert (folder / "runs" / "two" / "mined.jsonl").read_text() == (folder / "runs" / "one" / "mined.jsonl").read_text()
    for metric, value in b["before"].items():
        assert a["before"][metric] == pytest.approx(value, abs=1e-6)
    for metric, value in b["after"].items():
        assert a["after"][metric] == pytest.approx(value, abs=TOLERANCE), metric
    assert a["training"]["loss"] == pytest.approx(b["training"]["loss"], abs=TOLERANCE)
    assert a["training"]["steps"] == b["training"]["steps"] == 6
    assert a["processes"] == 2 and b["processes"] == 1
    # the same weights, and training moved them far more than the two runs differ
    from sentence_transformers import SentenceTransformer

    two_w, one_w, base_w = (SentenceTransformer(str(p), device="cpu").state_dict()
                            for p in (folder / "runs" / "two" / "model", folder / "runs" / "one" / "model",
                                      folder / "tiny" / "model"))
    apart = max((two_w[k] - one_w[k]).abs().max().item() for k in one_w)
    moved = max((one_w[k] - base_w[k]).abs().max().item() for k in one_w)
    # (all-reduced gradients sum in another order; Adam's normalised steps carry that rounding
    # into the weights, measured 1.8e-4 apart against 1.8e-2 moved)
    assert apart < 1e-3 and moved > 20 * apart, (apart, moved)


def test_the_resolved_config_records_gathered_negatives(runs):
    folder, two, one = runs
    assert two.returncode == 0, two.stderr[-4000:]
    from embedtune_core.config.schema import RunConfig

    resolved = RunConfig.from_file(folder / "runs" / "two" / "config.toml")
    assert resolved.loss.options["gather_across_devices"] is True
    assert RunConfig.from_file(folder / "runs" / "one" / "config.toml").loss.options["gather_across_devices"] is False


def test_split_rows_computes_this_process_share_and_gathers(monkeypatch):
    """Process 1 of 3 computes rows 4..7 of 10 and receives everyone's rows in order."""
    import numpy as np

    from embedtune_core import distributed

    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "1")
    assert [distributed.shard(10)] == [(4, 7)]
    asked = []

    def gather(part):
        asked.append(part.copy())
        return np.concatenate([np.arange(0, 4), part, np.arange(7, 10)])

    monkeypatch.setattr(distributed, "gather_rows", gather)
    with distributed.sharing():
        out = distributed.split_rows(10, lambda a, b: np.arange(a, b))
    assert [a.tolist() for a in asked] == [[4, 5, 6]] and out.tolist() == list(range(10))
    # outside the block nothing is split
    assert distributed.split_rows(10, lambda a, b: np.arange(a, b)).tolist() == list(range(10))


def test_shared_encoding_equals_encoding_everything(monkeypatch, tiny_model):
    """Each process's shard of the texts, gathered, gives exactly the embeddings of one process."""
    import numpy as np

    from embedtune_core import distributed
    from embedtune_core.embedding.encode import encode
    from embedtune_core.embedding.models import load_model

    model = load_model(tiny_model, device="cpu")
    texts = [f"text number {i} " + "word " * (i % 7) for i in range(23)]
    whole = encode(model, texts, batch_size=4)
    monkeypatch.setenv("WORLD_SIZE", "2")
    parts = {}
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setattr(distributed, "gather_rows", lambda part, rank=rank: parts.setdefault(rank, part))
        with distributed.sharing():
            encode(model, texts, batch_size=4)
    assert len(parts[0]) == 12 and len(parts[1]) == 11
    np.testing.assert_allclose(np.concatenate([parts[0], parts[1]]), whole, atol=1e-6)
