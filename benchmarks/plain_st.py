"""The plain sentence-transformers script: what a user writes instead of using embedtune.

MiniLM-L6, MultipleNegativesRankingLoss, batch 32, lr 2e-5 (``--lr`` to change it), warmup 10%,
one epoch, no hard negatives, ``SentenceTransformerTrainer`` with the settings its documentation shows for this loss
(the no-duplicates batch sampler, so a batch never holds one text twice) and otherwise its
defaults (linear schedule, AdamW, weight decay 0, fp32 on a CPU).

For a fair comparison it trains on exactly the (query, document) pairs ``embedtune run`` trains on
for ``--data`` (``to_training_dataset`` of the same bundle), and is scored on exactly the same
held-out IR set (same queries, same corpus) with the same function ``embedtune run`` scores with:
``embedtune_core.pipeline.evaluation.evaluate_model`` (NDCG@10 and the other default metrics,
equal to trec_eval's). Only the data loading and the scoring use embedtune; the training in
between is plain sentence-transformers.

    python benchmarks/plain_st.py --data builtin:wordnet-plants --seed 1 [--lr 2e-4] [--out result.json]
        [--base] [--retention builtin:wordnet-general]

Prints the result as JSON and writes it to ``--out`` when given. ``--base`` scores the untrained
model too; ``--retention SOURCE`` also scores the tuned model on another set's held-out part (a
general-language set, to see what the domain training cost elsewhere).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


LEARNING_RATE = 2e-5


def plain_training(model_folder: str, train_dataset, seed: int, output_dir: str, max_steps: int = -1,
                   learning_rate: float = LEARNING_RATE):
    """The twenty lines: load, loss, arguments, trainer, train."""
    from sentence_transformers import (
        SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers

    model = SentenceTransformer(model_folder)
    loss = MultipleNegativesRankingLoss(model)
    args = SentenceTransformerTrainingArguments(
        output_dir=output_dir,
        num_train_epochs=1,
        max_steps=max_steps,
        per_device_train_batch_size=32,
        learning_rate=learning_rate,
        warmup_steps=0.1,  # transformers 5: below 1 is a fraction of the steps (warmup_ratio=0.1 in 4.x)
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        seed=seed,
        save_strategy="no",
        report_to="none",
        logging_steps=50,
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train_dataset, loss=loss)
    trainer.train()
    return model, trainer.state.global_step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a data source embedtune reads, e.g. builtin:wordnet-plants")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--lr", type=float, default=LEARNING_RATE, help=f"peak learning rate (default {LEARNING_RATE:g})")
    parser.add_argument("--type", default=None, help="the data's type when it is not a bundled set (e.g. pairs)")
    parser.add_argument("--model", default=MODEL, help=f"model to train (default {MODEL}, bundled)")
    parser.add_argument("--out", default=None, help="write the result JSON here too")
    parser.add_argument("--base", action="store_true", help="score the untrained model as well")
    parser.add_argument("--retention", action="append", default=[], metavar="SOURCE",
                        help="also score the tuned model on this set's held-out part (repeatable)")
    parser.add_argument("--max-steps", type=int, default=-1, help="stop after N steps (smoke tests)")
    args = parser.parse_args(argv)

    from embedtune_core.config.schema import DEFAULT_METRICS
    from embedtune_core.data.loading import eval_ir, load_data, to_ir, to_training_dataset
    from embedtune_core.embedding.models import load_model, resolve_model
    from embedtune_core.pipeline.evaluation import evaluate_model
    from embedtune_core.plugins.manager import load_plugins
    from embedtune_core.plugins.registry import build_registry

    registry = build_registry(load_plugins())
    bundle = load_data(registry, args.data, dataset_type=args.type)
    train_dataset, train_type = to_training_dataset(bundle)
    if train_type != "pairs":
        print(f"error: {args.data} trains as {train_type}; this script trains (anchor, positive) pairs", file=sys.stderr)
        return 2

    def evaluation_set(data_bundle) -> tuple:  # the held-out part, as `embedtune run` ranks it
        if data_bundle.dataset_type == "sts":
            return (data_bundle.eval if data_bundle.eval is not None else data_bundle.train), "sts"
        if data_bundle.eval is not None:
            return eval_ir(data_bundle), "ir"
        return to_ir(data_bundle.train, data_bundle.dataset_type), "ir"

    eval_data, eval_type = evaluation_set(bundle)

    def score(model, data=eval_data, kind=eval_type) -> dict:
        return evaluate_model(model, data, kind, registry=registry, metrics=DEFAULT_METRICS)[None]

    result = {"script": "benchmarks/plain_st.py", "data": args.data, "seed": args.seed, "learning_rate": args.lr,
              "model": args.model,
              "training_pairs": len(train_dataset), "eval_queries": len(eval_data.queries),
              "eval_corpus": len(eval_data.corpus)}
    if args.base:
        result["before"] = score(load_model(args.model))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="plain-st-") as output_dir:
        model, steps = plain_training(resolve_model(args.model), train_dataset, args.seed, output_dir, args.max_steps,
                                      learning_rate=args.lr)
    result["training_seconds"] = round(time.perf_counter() - start, 1)
    result["steps"] = steps
    result["after"] = score(model)
    if args.retention:
        result["retention"] = {}
        for source in args.retention:
            data, kind = evaluation_set(load_data(registry, source))
            result["retention"][source] = score(model, data, kind)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
