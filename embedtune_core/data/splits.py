"""Helpers for readers: deterministic, leakage-free splits, and the split options readers declare.

A reader that makes its own split declares ``eval_fraction: EvalFraction`` (and ``seed: Seed``)
among its keyword parameters: the run's ``data.eval_fraction`` is handed to it, and the value it
used is what the run records. :func:`ir_bundle` and :func:`pairs_bundle` build a
:class:`~embedtune_core.types.DataBundle` from rows, holding out whole connected groups
(:class:`ConnectedGroups`: a query with every document it is judged against, a term with all its
synonyms), so nothing held out is ever trained on; the split is fixed by :func:`hash_fraction` /
:func:`eval_groups` (or :func:`seeded_holdout`) and is the same on every machine.
:func:`describe_size` is the one-line size a bundle shows in ``embedtune data list``.
"""

from __future__ import annotations

import hashlib
import random
from typing import Annotated, Any, Iterable

from embedtune_core.plugins.options import Range
from embedtune_core.types import DataBundle, IRData


__all__ = [
    "ConnectedGroups", "DEFAULT_EVAL_FRACTION", "DEFAULT_SEED", "EvalFraction", "Seed", "describe_size", "eval_groups",
    "hash_fraction", "ir_bundle", "pairs_bundle", "seeded_holdout",
]


DEFAULT_EVAL_FRACTION = 0.2
DEFAULT_SEED = 13
#: the annotation of a reader's ``eval_fraction`` (the run's ``data.eval_fraction`` is handed to it)
EvalFraction = Annotated[float, Range(ge=0, lt=1), "fraction of the groups held out for evaluation"]
#: the annotation of a reader's ``seed``
Seed = Annotated[int, Range(ge=0), "seed of the split"]


# -- deterministic splits -----------------------------------------------------------------------
def hash_fraction(key: str, seed: int) -> float:
    """A number in [0, 1) fixed by ``key`` and ``seed`` (same on every machine and run)."""
    digest = hashlib.sha1(f"{seed}\x00{key}".encode("utf-8")).hexdigest()
    return int(digest[:12], 16) / float(16**12)


def eval_groups(keys: Iterable[str], eval_fraction: float, seed: int) -> set[str]:
    """The group keys held out: those whose hash falls under ``eval_fraction``; at least one
    group on each side when there are two or more groups and the fraction is above zero."""
    ordered = sorted(set(keys), key=lambda k: (hash_fraction(k, seed), k))
    if eval_fraction <= 0 or not ordered:
        return set()
    held = {k for k in ordered if hash_fraction(k, seed) < eval_fraction}
    if not held and len(ordered) > 1:
        held = {ordered[0]}
    if len(held) == len(ordered) and len(ordered) > 1:
        held.discard(ordered[-1])
    return held


def seeded_holdout(keys: Iterable[str], fraction: float, seed: int) -> set[str]:
    """A held-out subset of ``keys``: the distinct keys sorted, shuffled with ``seed``, and the
    first ``round(len * fraction)`` of them (the same on every machine)."""
    order = sorted(set(keys))
    random.Random(seed).shuffle(order)
    return set(order[: round(len(order) * fraction)])


class ConnectedGroups:
    """Texts (or ids) joined into groups: :meth:`union` joins two groups, :meth:`find` names a
    member's group (the group of :meth:`union`'s first argument names the joined group), so
    splitting by group keeps every connected text on one side."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, node: str) -> str:
        self.parent.setdefault(node, node)
        root = node
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[node] != root:
            self.parent[node], node = root, self.parent[node]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def ir_bundle(
    pairs: Iterable[tuple[str, str, str, str]],
    *,
    eval_fraction: float,
    seed: int,
    source: str,
    info: dict[str, Any],
) -> DataBundle:
    """An IR :class:`DataBundle` from ``(query_id, query, doc_id, doc)`` rows.

    Identical texts are merged (first id wins). Queries and documents joined by a judgement form
    one group, and whole groups are held out, so no held-out query or its answer is ever trained
    on. The held-out queries are ranked against every document; the training corpus (also the
    mining corpus) holds only training documents.
    """
    query_ids: dict[str, str] = {}
    doc_ids: dict[str, str] = {}
    edges: list[tuple[str, str]] = []
    for qid, query, did, doc in pairs:
        query, doc = query.strip(), doc.strip()
        if not query or not doc:
            continue
        qid = query_ids.setdefault(query, qid)
        did = doc_ids.setdefault(doc, did)
        edges.append((qid, did))
    components = ConnectedGroups()
    for qid, did in edges:
        components.union("q:" + qid, "d:" + did)
    queries = {qid: text for text, qid in query_ids.items()}
    corpus = {did: text for text, did in doc_ids.items()}
    group_key: dict[str, str] = {}
    for qid in queries:  # a group is named by its smallest query text: stable under id changes
        root = components.find("q:" + qid)
        text = queries[qid].lower()
        group_key[root] = min(group_key.get(root, text), text)
    held = eval_groups(group_key.values(), eval_fraction, seed)

    def held_out(node: str) -> bool:
        return group_key[components.find(node)] in held

    train_q = {q: t for q, t in queries.items() if not held_out("q:" + q)}
    eval_q = {q: t for q, t in queries.items() if held_out("q:" + q)}
    qrels: dict[str, dict[str, int]] = {}
    for qid, did in edges:
        qrels.setdefault(qid, {})[did] = 1
    judged = {d for q in train_q for d in qrels[q]}
    train_docs = {d: t for d, t in corpus.items() if d in judged}
    train = IRData(corpus=train_docs, queries=train_q, qrels={q: qrels[q] for q in train_q})
    held_ir = IRData(corpus=dict(corpus), queries=eval_q, qrels={q: qrels[q] for q in eval_q})
    info = {**info, "queries": len(queries), "documents": len(corpus), "train_queries": len(train_q),
            "eval_queries": len(eval_q), "split": f"by connected query/document group, seed {seed}"}
    return DataBundle(dataset_type="ir", train=train, eval=held_ir if eval_q else None,
                      corpus=list(train_docs.values()), source=source, info=info)


def pairs_bundle(
    rows: Iterable[tuple[str, str]],
    *,
    eval_fraction: float,
    seed: int,
    source: str,
    info: dict[str, Any],
) -> DataBundle:
    """A pairs :class:`DataBundle` from ``(anchor, positive)`` rows. Texts joined by a pair form
    one group and whole groups are held out, so no held-out text is ever trained on."""
    from datasets import Dataset

    rows = [(a.strip(), p.strip()) for a, p in rows]
    rows = list(dict.fromkeys((a, p) for a, p in rows if a and p and a.lower() != p.lower()))
    components = ConnectedGroups()
    for a, p in rows:
        components.union(a.lower(), p.lower())
    group_key: dict[str, str] = {}
    for a, _ in rows:
        root = components.find(a.lower())
        group_key[root] = min(group_key.get(root, a.lower()), a.lower())
    held = eval_groups(group_key.values(), eval_fraction, seed)
    in_eval = [group_key[components.find(a.lower())] in held for a, _ in rows]
    train = [r for r, e in zip(rows, in_eval) if not e]
    held_rows = [r for r, e in zip(rows, in_eval) if e]

    def dataset(part):
        return Dataset.from_dict({"anchor": [r[0] for r in part], "positive": [r[1] for r in part]})

    info = {**info, "train_rows": len(train), "eval_rows": len(held_rows),
            "split": f"by connected group of terms, seed {seed}"}
    corpus = list(dict.fromkeys(r[1] for r in train))
    return DataBundle(dataset_type="pairs", train=dataset(train), eval=dataset(held_rows) if held_rows else None,
                      corpus=corpus, source=source, info=info)


def describe_size(bundle: DataBundle) -> str:
    """``"train N queries over M documents; test ..."`` (or ``"train N pairs; test M pairs"``):
    the size line ``embedtune data list`` shows for a bundled set."""
    def part(data) -> str:
        if isinstance(data, IRData):
            return f"{len(data.queries):,} queries over {len(data.corpus):,} documents"
        return f"{len(data):,} pairs"

    text = f"train {part(bundle.train)}"
    return text + (f"; test {part(bundle.eval)}" if bundle.eval is not None else "")
