"""What embedtune's training step costs over plain sentence-transformers code.

The same model, data, loss (MNRL), batch, steps and settings are trained through
``embedtune_core.training.trainer.train`` (callbacks, NaN guard, checkpoint at the end: what ``embedtune
train`` runs) and through a plain ``SentenceTransformerTrainer`` script, alternating which goes
first, several times; the medians are compared. Two timings per run:

- loop: from the Trainer's ``on_train_begin`` to ``on_train_end`` less the time spent writing
  the checkpoint (the training steps: data loading, forward, backward, optimizer, callbacks);
- end to end: building the trainer, training and writing the final checkpoint.

ratio = ours / plain throughput (pairs per second); 1.00 means the framework costs nothing.

    python benchmarks/train_overhead.py --quick                      # tiny model, CPU, seconds
    python benchmarks/train_overhead.py --model minilm               # MiniLM on CPU
    python benchmarks/train_overhead.py --model minilm --device cuda --batch 256 --pairs 5000
    python benchmarks/train_overhead.py --model bert-base --device cuda --batch 128 --pairs 5000

On a GPU both sides train in the precision embedtune's ``auto`` picks (bf16 where supported, else
fp16). ``bert-base`` is the hub model when it can be loaded, else a randomly initialised model of
the same shape (12 layers, hidden 768, MiniLM's 30,522-token vocabulary), which trains at the
same speed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

SYLLABLES = ["ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "an", "el", "or", "us", "ve", "di", "gra", "tor",
             "pel", "mon", "ser", "lin", "qua", "tri", "bal", "cor"]


def synthetic_pairs(count: int, seed: int = 0) -> dict[str, list[str]]:
    """``count`` distinct (anchor, positive) pairs of 8-16 made-up words sharing most words."""
    rng = random.Random(seed)
    words = sorted({"".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))) for _ in range(4000)})
    anchors, positives, seen = [], [], set()
    while len(anchors) < count:
        sentence = [rng.choice(words) for _ in range(rng.randint(8, 16))]
        text = " ".join(sentence)
        if text in seen:
            continue
        seen.add(text)
        kept = [w for w in sentence if rng.random() < 0.7] + [rng.choice(words) for _ in range(3)]
        rng.shuffle(kept)
        anchors.append(text)
        positives.append(" ".join(kept))
    return {"anchor": anchors, "positive": positives}


def model_folder(name: str, workdir: Path) -> str:
    """A local folder (or hub name) for ``name``: tiny, minilm, bert-base or a path."""
    if name == "tiny":
        from embedtune_core.testing import build_tiny_model

        return str(build_tiny_model(workdir / "tiny"))
    if name == "minilm":
        from embedtune_core.embedding.models import DEFAULT_MODEL, resolve_model

        return resolve_model(DEFAULT_MODEL)
    if name == "bert-base":
        from sentence_transformers import SentenceTransformer

        try:
            SentenceTransformer("google-bert/bert-base-uncased", device="cpu")
            return "google-bert/bert-base-uncased"
        except Exception:  # offline: build one of the same shape
            return bert_base_shaped(workdir / "bert-base")
    return name


def bert_base_shaped(folder: Path) -> str:
    """A randomly initialised bert-base-sized sentence-transformers model with MiniLM's tokenizer."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoTokenizer, BertConfig, BertModel

    from embedtune_core.embedding.models import DEFAULT_MODEL, resolve_model

    hf = folder / "_hf"
    hf.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(DEFAULT_MODEL))
    tokenizer.save_pretrained(hf)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(tokenizer))).save_pretrained(hf)
    transformer = models.Transformer(str(hf), max_seq_length=256)
    getter = getattr(transformer, "get_embedding_dimension", None) or transformer.get_word_embedding_dimension
    model = SentenceTransformer(modules=[transformer, models.Pooling(getter(), pooling_mode="mean")], device="cpu")
    model.save(str(folder / "model"))
    return str(folder / "model")


class Clock:
    """A TrainerCallback-compatible timer of the training loop."""

    def __new__(cls, device: str):
        from transformers import TrainerCallback

        class _Clock(TrainerCallback):
            """Times the training loop, less the time spent writing checkpoints."""

            def __init__(self) -> None:
                self.start = self.end = self.step_end = None
                self.saving = 0.0

            def _sync(self) -> None:
                if device.startswith("cuda"):
                    import torch

                    torch.cuda.synchronize()

            def on_train_begin(self, args, state, control, **kwargs):
                self._sync()
                self.start = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                self.step_end = time.perf_counter()

            def on_save(self, args, state, control, **kwargs):
                self.saving += time.perf_counter() - self.step_end

            def on_train_end(self, args, state, control, **kwargs):
                self._sync()
                self.end = time.perf_counter()

            @property
            def seconds(self) -> float:
                return self.end - self.start - self.saving

        return _Clock()


def settings(args) -> dict:
    import torch

    from embedtune_core.training.trainer import resolve_precision

    fp16, bf16 = resolve_precision("auto", args.device)
    if args.steps:
        steps = args.steps
    else:
        steps = math.ceil(args.pairs / args.batch)
    return {"steps": steps, "fp16": fp16, "bf16": bf16, "cuda": torch.cuda.is_available() and args.device.startswith("cuda")}


def run_ours(model_path: str, data, args, conf: dict, workdir: Path) -> tuple[float, float]:
    from sentence_transformers import SentenceTransformer

    from embedtune_core.config.schema import TrainingConfig
    from embedtune_core.training.trainer import build_loss, train

    model = SentenceTransformer(model_path, device=args.device)
    loss = build_loss(REGISTRY, "mnrl", model, "pairs", {})
    config = TrainingConfig(max_steps=conf["steps"], batch_size=args.batch, learning_rate=2e-5, warmup_ratio=0.1,
                            save_steps=conf["steps"], logging_steps=10, seed=42)
    run_dir = workdir / f"ours-{time.monotonic_ns()}"
    clock = Clock(args.device)
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        train(model, data, loss, config, run_dir, callbacks=[clock], registry=REGISTRY, quiet=True, loss_name="mnrl")
    total = time.perf_counter() - started
    shutil.rmtree(run_dir, ignore_errors=True)
    return clock.seconds, total


def run_plain(model_path: str, data, args, conf: dict, workdir: Path) -> tuple[float, float]:
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from transformers import TrainingArguments

    try:
        from sentence_transformers.base.sampler import BatchSamplers
    except ImportError:
        from sentence_transformers.training_args import BatchSamplers

    model = SentenceTransformer(model_path, device=args.device)
    loss = MultipleNegativesRankingLoss(model)
    output = workdir / f"plain-{time.monotonic_ns()}"
    warmup = {"warmup_ratio": 0.1} if "warmup_ratio" in TrainingArguments.__dataclass_fields__ else {"warmup_steps": 0.1}
    training_args = SentenceTransformerTrainingArguments(
        output_dir=str(output), max_steps=conf["steps"], per_device_train_batch_size=args.batch, learning_rate=2e-5,
        weight_decay=0.01, seed=42, fp16=conf["fp16"], bf16=conf["bf16"], batch_sampler=BatchSamplers.NO_DUPLICATES,
        logging_steps=10, save_strategy="steps", save_steps=conf["steps"], report_to="none", disable_tqdm=True,
        use_cpu=not conf["cuda"], **warmup,
    )
    clock = Clock(args.device)
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        trainer = SentenceTransformerTrainer(model=model, args=training_args, train_dataset=data, loss=loss,
                                             callbacks=[clock])
        trainer.train()
    total = time.perf_counter() - started
    shutil.rmtree(output, ignore_errors=True)
    return clock.seconds, total


REGISTRY = None


def main(argv: list[str] | None = None) -> int:
    global REGISTRY
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="tiny, minilm, bert-base or a model folder")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default 32; 16 with --quick)")
    parser.add_argument("--pairs", type=int, default=None, help="synthetic training pairs (default 2,000)")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps (default: one pass over the pairs)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per side (default 5; 2 with --quick)")
    parser.add_argument("--quick", action="store_true", help="a few steps only: checks the script runs")
    args = parser.parse_args(argv)
    args.batch = args.batch or (16 if args.quick else 32)
    args.pairs = args.pairs or (args.batch * 6 if args.quick else 2000)
    args.repeats = args.repeats or (2 if args.quick else 5)
    if args.quick and not args.steps:
        args.steps = 6

    import datasets
    import torch
    from transformers.utils import logging as hf_logging

    from embedtune_core.plugins.registry import load_registry

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    datasets.disable_progress_bars()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("error: --device cuda, but no CUDA GPU is available", file=sys.stderr)
        return 2
    _, REGISTRY = load_registry()
    conf = settings(args)
    workdir = Path(tempfile.mkdtemp(prefix="train-overhead-"))
    try:
        model_path = model_folder(args.model, workdir)
        data = datasets.Dataset.from_dict(synthetic_pairs(args.pairs))
        trained = conf["steps"] * args.batch
        device_name = torch.cuda.get_device_name(0) if conf["cuda"] else f"CPU, {torch.get_num_threads()} thread(s)"
        precision = "bf16" if conf["bf16"] else "fp16" if conf["fp16"] else "fp32"
        print(f"model {args.model} ({model_path}); {device_name}; {precision}; MNRL, batch {args.batch}, "
              f"{conf['steps']} steps over {len(data)} synthetic pairs; {args.repeats} runs per side, alternating")
        # one untimed run each: loads kernels, fills caches
        run_ours(model_path, data, args, conf, workdir)
        run_plain(model_path, data, args, conf, workdir)
        results = {"ours": [], "plain": []}
        for repeat in range(args.repeats):
            order = ("ours", "plain") if repeat % 2 == 0 else ("plain", "ours")
            for side in order:
                runner = run_ours if side == "ours" else run_plain
                loop, total = runner(model_path, data, args, conf, workdir)
                results[side].append((loop, total))
                print(f"  run {repeat + 1} {side:5}: loop {trained / loop:8.1f} pairs/s   end to end {trained / total:8.1f} pairs/s")
        summary = {}
        for side, rows in results.items():
            summary[side] = (trained / statistics.median(r[0] for r in rows), trained / statistics.median(r[1] for r in rows))
        print(f"median  ours : loop {summary['ours'][0]:8.1f} pairs/s   end to end {summary['ours'][1]:8.1f} pairs/s")
        print(f"median  plain: loop {summary['plain'][0]:8.1f} pairs/s   end to end {summary['plain'][1]:8.1f} pairs/s")
        loop_ratio = summary["ours"][0] / summary["plain"][0]
        total_ratio = summary["ours"][1] / summary["plain"][1]
        print(f"ratio ours/plain throughput: loop {loop_ratio:.3f}, end to end {total_ratio:.3f} (target >= 0.98)")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
