"""``construction-faq``: question -> answer retrieval over the English Swedish-construction FAQ
(``zaragoza-construction-faq``)."""

from __future__ import annotations

import json
from typing import Any


from embedtune_core.data.splits import EvalFraction, seeded_holdout
from embedtune_core.errors import DataError
from embedtune_core.text import text_key
from embedtune_core.types import DataBundle, IRData
from embedtune_plugins.datasets.packaged import SEED, package_file

#: what `embedtune data list` shows for construction-faq
CONSTRUCTION_FAQ: dict[str, Any] = {
    "dataset_type": "ir",
    "description": "regulatory IR: Swedish construction-law FAQ (English), question -> answer (split by question)",
    "size": "train 398 queries over 401 answers; test 99 queries over 503 answers",
    "licence": "CC-BY-4.0",
    "package": "zaragoza-construction-faq==1.2.1",
}


def construction_faq(source: Any = None, eval_fraction: EvalFraction = 0.2) -> DataBundle:
    """Question -> answer retrieval over the English Swedish-construction FAQ.

    Questions that occur twice (same text, two answers) are one query with both answers relevant.
    ``eval_fraction`` of the questions are held out (seeded). Train: train questions over their answers. Test: test
    questions over every answer in the FAQ (the whole FAQ is what a user searches).
    """
    path = package_file("zaragoza_construction_faq", "data/faq-en.jsonl", "zaragoza-construction-faq==1.2.1")
    records = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataError(f"invalid JSON in the packaged FAQ: {exc.msg}", file=path, line=number) from None
    answers = {r["id"]: r["a"].strip() for r in records}
    questions: dict[str, dict[str, Any]] = {}
    for r in records:
        entry = questions.setdefault(text_key(r["q"]), {"text": r["q"].strip(), "ids": []})
        entry["ids"].append(r["id"])
    held_out = seeded_holdout(list(questions), eval_fraction, SEED)
    sides = {}
    for side in ("train", "test"):
        queries, qrels, used = {}, {}, set()
        for key in sorted(questions):
            if (key in held_out) != (side == "test"):
                continue
            entry = questions[key]
            query_id = f"q:{entry['ids'][0]}"
            queries[query_id] = entry["text"]
            qrels[query_id] = {doc: 1 for doc in entry["ids"]}
            used.update(entry["ids"])
        corpus = dict(answers) if side == "test" else {d: answers[d] for d in sorted(used)}
        sides[side] = IRData(corpus=corpus, queries=queries, qrels=qrels)
    return DataBundle(
        dataset_type="ir",
        train=sides["train"],
        eval=sides["test"],
        corpus=list(sides["train"].corpus.values()),
        source="builtin:construction-faq",
        info={
            "name": "construction-faq",
            "description": CONSTRUCTION_FAQ["description"],
            "source": "zaragoza-construction-faq 1.2.1: data/faq-en.jsonl",
            "builder": "embedtune_plugins.datasets.faq.construction_faq",
            "split": f"by question ({eval_fraction:g} held out, seeded); test corpus = every answer",
            "licence": "CC-BY-4.0",
            "citation": "Zaragoza AB, Swedish Construction FAQ (2026), doi:10.5281/zenodo.19630803",
            "homepage": "https://github.com/zaragoza-ab/swedish-construction-faq-1000",
        },
    )
