"""Helpers for readers: option checks and deterministic, leakage-free splits.

:func:`reader_options` checks a reader's options (``eval_fraction``, ``seed`` and the reader's own)
and raises :class:`~embedtune_core.errors.DataError` naming a bad key. :func:`ir_bundle` and
:func:`pairs_bundle` build a :class:`~embedtune_core.types.DataBundle` from rows, holding out whole
connected groups (a query with every document it is judged against, a term with all its
synonyms), so nothing held out is ever trained on; the split is fixed by :func:`hash_fraction` /
:func:`eval_groups` and is the same on every machine. :func:`describe_size` is the one-line size
a bundle shows in ``embedtune data list``.
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterable, Mapping

from embedtune_core.errors import DataError
from embedtune_core.types import DataBundle, IRData


__all__ = [
    "DEFAULT_EVAL_FRACTION", "DEFAULT_SEED", "describe_size", "eval_groups", "hash_fraction", "ir_bundle",
    "pairs_bundle", "reader_options",
]


DEFAULT_EVAL_FRACTION = 0.2


DEFAULT_SEED = 13


# -- options ----------------------------------------------------------------------------------
def reader_options(reader: str, options: Mapping[str, Any] | None, extra: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` checked against ``eval_fraction``, ``seed`` and the reader's own ``extra``
    defaults; an unknown key or a bad fraction is a :class:`DataError` naming the key."""
    defaults = {"eval_fraction": DEFAULT_EVAL_FRACTION, "seed": DEFAULT_SEED, **extra}
    given = dict(options or {})
    if not given.get("columns"):
        given.pop("columns", None)
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise DataError(
            f"reader '{reader}' has no option '{unknown[0]}'",
            key=f"data.options.{unknown[0]}",
            hint="its options: " + ", ".join(sorted(defaults)),
        )
    merged = {**defaults, **given}
    fraction = merged["eval_fraction"]
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 <= fraction < 1.0:
        raise DataError(f"eval_fraction must be a number in [0, 1), got {fraction!r}", key="data.options.eval_fraction")
    if isinstance(merged["seed"], bool) or not isinstance(merged["seed"], int):
        raise DataError(f"seed must be an integer, got {merged['seed']!r}", key="data.options.seed")
    return merged


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


class _Components:
    """Union-find over string nodes."""

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
            self.parent[max(ra, rb)] = min(ra, rb)


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
    components = _Components()
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
    components = _Components()
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
