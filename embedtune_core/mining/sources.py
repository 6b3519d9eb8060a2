"""Candidate sources: what proposes ranked candidates for each anchor, and scores any (anchor,
corpus text) pair. Built-ins and packs write miners from these:

* :class:`ScoreSource`: a function scoring a block of anchors against the whole corpus;
* :class:`TieredSource`: ordered tiers of candidates per anchor (a domain's notion of "confusable":
  sibling terms, then cousins, ...), ranked inside a tier by the model when there is one;
* :class:`EmbeddingCache` and :class:`Rescorer`: the model's (or a cross-encoder's) scores for
  the guards.
"""

from __future__ import annotations

import abc
from typing import Any, Callable, Sequence

from embedtune_core.errors import ConfigError
from embedtune_core.mining.pairs import PairData


class CandidateSource(abc.ABC):
    """Ranked candidates for a retrieval-based miner.

    ``dense`` says the scores are the model's cosine similarities (then the guards use them
    directly); lexical sources set it False. ``dropped`` counts candidates the source itself
    excluded, by reason (they count as likely false negatives). ``default_depth``, when set, is
    how deep the selection looks when ``range_max`` is not given (every candidate the source
    proposes, for a source that proposes few). ``extra`` holds figures the source measured, copied
    into the mining statistics (``search_recall``: the recall@depth of an approximate search
    against exact search on a sample of queries).
    """

    name: str = "score"
    dense: bool = False
    default_depth: int | None = None

    def __init__(self) -> None:
        self.dropped: dict[str, int] = {}
        self.seen_extra = 0
        self.extra: dict[str, Any] = {}

    @abc.abstractmethod
    def search(self, query_ids: Any, depth: int) -> tuple[Any, Any]:
        """``(scores[b, depth] float32, corpus ids[b, depth] int64)``, best first; id -1 pads.
        The ranking to depth d is the first d of the ranking to any greater depth (break ties
        the same way at every depth): a short anchor's deeper windows are cut from one search."""

    @abc.abstractmethod
    def score(self, query_ids: Any, doc_ids: Any) -> Any:
        """Scores of the (query, corpus text) pairs, one per element (float32 array)."""


class ScoreSource(CandidateSource):
    """A source from a function giving the scores of a block of queries against the whole
    corpus: ``score_rows(query_ids) -> array[len(query_ids), len(corpus)]``. Blocks of
    ``block`` queries keep memory at O(block x corpus)."""

    def __init__(self, score_rows: Callable[[Any], Any], name: str = "score", *, dense: bool = False, block: int = 256):
        super().__init__()
        self.score_rows = score_rows
        self.name = name
        self.dense = dense
        self.block = block

    def search(self, query_ids: Any, depth: int) -> tuple[Any, Any]:
        import numpy as np

        out_s, out_i = [], []
        for start in range(0, len(query_ids), self.block):
            rows = np.asarray(self.score_rows(query_ids[start : start + self.block]), dtype=np.float32)
            k = min(depth, rows.shape[1])
            part = np.argpartition(-rows, k - 1, axis=1)[:, :k] if k < rows.shape[1] else np.tile(np.arange(rows.shape[1]), (len(rows), 1))
            part_scores = np.take_along_axis(rows, part, axis=1)
            order = np.lexsort((part, -part_scores), axis=1)
            out_i.append(np.take_along_axis(part, order, axis=1).astype(np.int64))
            out_s.append(np.take_along_axis(part_scores, order, axis=1))
        return _pad(np.concatenate(out_s), np.concatenate(out_i), depth)

    def score(self, query_ids: Any, doc_ids: Any) -> Any:
        import numpy as np

        query_ids, doc_ids = np.asarray(query_ids), np.asarray(doc_ids)
        out = np.empty(len(query_ids), dtype=np.float32)
        unique, inverse = np.unique(query_ids, return_inverse=True)
        for start in range(0, len(unique), self.block):
            block = unique[start : start + self.block]
            rows = np.asarray(self.score_rows(block), dtype=np.float32)
            mask = (inverse >= start) & (inverse < start + len(block))
            out[mask] = rows[inverse[mask] - start, doc_ids[mask]]
        return out


def _pad(scores: Any, indices: Any, depth: int) -> tuple[Any, Any]:
    import numpy as np

    missing = depth - scores.shape[1]
    if missing > 0:
        scores = np.concatenate([scores, np.full((len(scores), missing), -np.inf, dtype=np.float32)], axis=1)
        indices = np.concatenate([indices, np.full((len(indices), missing), -1, dtype=np.int64)], axis=1)
    return scores.astype(np.float32), indices.astype(np.int64)


class EmbeddingCache:
    """Embeddings of corpus texts and queries, encoded on first use and kept."""

    def __init__(self, encoder: Callable[[Sequence[str]], Any], data: PairData) -> None:
        self.encoder = encoder
        self.data = data
        self._corpus = None
        self._corpus_done = None
        self._queries = None
        self._queries_done = None

    def _get(self, texts: list[str], ids: Any, which: str) -> Any:
        import numpy as np

        store, done = getattr(self, f"_{which}"), getattr(self, f"_{which}_done")
        ids = np.asarray(ids, dtype=np.int64)
        if done is None:
            done = np.zeros(len(texts), dtype=bool)
        missing = np.unique(ids[~done[ids]])
        if len(missing):
            emb = np.asarray(self.encoder([texts[i] for i in missing]), dtype=np.float32)
            if store is None:
                store = np.zeros((len(texts), emb.shape[1]), dtype=np.float32)
            store[missing] = emb
            done[missing] = True
        setattr(self, f"_{which}", store)
        setattr(self, f"_{which}_done", done)
        return store

    def set_all(self, query_embeddings: Any, corpus_embeddings: Any) -> None:
        import numpy as np

        self._queries, self._corpus = query_embeddings, corpus_embeddings
        self._queries_done = np.ones(len(query_embeddings), dtype=bool)
        self._corpus_done = np.ones(len(corpus_embeddings), dtype=bool)

    def queries(self, ids: Any) -> Any:
        return self._get(self.data.queries, ids, "queries")[ids]

    def corpus(self, ids: Any) -> Any:
        return self._get(self.data.corpus, ids, "corpus")[ids]

    def pair_scores(self, query_ids: Any, doc_ids: Any) -> Any:
        import numpy as np

        query_ids, doc_ids = np.asarray(query_ids, dtype=np.int64), np.asarray(doc_ids, dtype=np.int64)
        if len(query_ids) == 0:
            return np.zeros(0, dtype=np.float32)
        q = self.queries(query_ids)
        d = self.corpus(doc_ids)
        return np.einsum("ij,ij->i", q, d).astype(np.float32)


class Rescorer:
    """Scores of (query, corpus text) pairs from a cross-encoder or the model's embeddings."""

    def __init__(self, kind: str, data: PairData, *, cross_encoder: Any = None, cache: EmbeddingCache | None = None, batch_size: int = 64):
        self.kind = kind
        self.data = data
        self.cross_encoder = cross_encoder
        self.cache = cache
        self.batch_size = batch_size

    def __call__(self, query_ids: Any, doc_ids: Any) -> Any:
        import numpy as np

        if len(query_ids) == 0:
            return np.zeros(0, dtype=np.float32)
        if self.kind == "encoder":
            return self.cache.pair_scores(query_ids, doc_ids)
        pairs = [(self.data.queries[q], self.data.corpus[d]) for q, d in zip(query_ids.tolist(), doc_ids.tolist())]
        scores = self.cross_encoder.predict(pairs, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(scores, dtype=np.float32).reshape(len(pairs))


def load_cross_encoder(spec: Any, device: str | None = None) -> Any:
    """A ``CrossEncoder`` from a name or folder; an object with ``predict`` is used as it is."""
    if hasattr(spec, "predict"):
        return spec
    if not isinstance(spec, str) or not spec:
        raise ConfigError(f"cross_encoder must be a model name or folder, got {spec!r}", key="mining.options.cross_encoder")
    import os

    from sentence_transformers import CrossEncoder

    from embedtune_core.errors import EmbedtuneError

    path = os.path.expanduser(spec)
    if os.path.isdir(path):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        return CrossEncoder(path if os.path.isdir(path) else spec, device=device)
    except (OSError, ValueError) as exc:
        raise EmbedtuneError(
            f"could not load cross-encoder '{spec}': {str(exc).splitlines()[0]}",
            key="mining.options.cross_encoder",
            hint="give a local cross-encoder folder (no model hub access here)",
        ) from None




#: ``tiers_of(query_id) -> [(tier name, [corpus ids, best first]), ...]``
TiersFn = Callable[[int], Sequence[tuple[str, Sequence[int]]]]


class TieredSource(CandidateSource):
    """Candidates in tiers: a miner says, per anchor, which corpus texts are confusable and in
    which order of preference (``tiers_of``). Tiers keep their order; inside a tier, candidates
    are ranked by ``scorer(query_ids, doc_ids)`` (the model's cosine) when one is given, else
    kept in the order proposed. Every proposed candidate is considered (``default_depth``), and
    :meth:`tier_of` tells which tier a chosen negative came from."""

    name = "tiers"

    def __init__(self, data: PairData, tiers_of: TiersFn, *, scorer: Callable[[Any, Any], Any] | None = None) -> None:
        import numpy as np

        super().__init__()
        self.data = data
        self.scorer = scorer
        self.ranked: list[Any] = []
        self.tier_names: list[str] = []
        self._tier: dict[tuple[int, int], int] = {}
        for q in range(len(data.queries)):
            order: list[int] = []
            seen: set[int] = set()
            for tier, ids in tiers_of(q):
                ids = [i for i in dict.fromkeys(int(i) for i in ids) if i not in seen]
                seen.update(ids)
                if not ids:
                    continue
                if tier not in self.tier_names:
                    self.tier_names.append(tier)
                if scorer is not None and len(ids) > 1:
                    values = np.asarray(scorer(np.full(len(ids), q), np.asarray(ids)), dtype=np.float32)
                    ids = [ids[i] for i in np.argsort(-values, kind="stable")]
                for d in ids:
                    self._tier[(q, d)] = self.tier_names.index(tier)
                order.extend(ids)
            self.ranked.append(np.asarray(order, dtype=np.int64))
        self.default_depth = max((len(r) for r in self.ranked), default=0)

    def search(self, query_ids: Any, depth: int) -> tuple[Any, Any]:
        import numpy as np

        scores = np.full((len(query_ids), depth), -np.inf, dtype=np.float32)
        idx = np.full((len(query_ids), depth), -1, dtype=np.int64)
        for r, q in enumerate(np.asarray(query_ids).tolist()):
            ids = self.ranked[q][:depth]
            idx[r, : len(ids)] = ids
            scores[r, : len(ids)] = -np.arange(len(ids), dtype=np.float32)  # proposal order, best first
        return scores, idx

    def score(self, query_ids: Any, doc_ids: Any) -> Any:
        import numpy as np

        if self.scorer is not None:
            return np.asarray(self.scorer(query_ids, doc_ids), dtype=np.float32)
        return np.zeros(len(np.asarray(doc_ids)), dtype=np.float32)

    def tier_of(self, query_id: int, doc_id: int) -> str | None:
        """The tier a candidate was proposed in (None: not proposed, e.g. a random fill-in)."""
        position = self._tier.get((int(query_id), int(doc_id)))
        return None if position is None else self.tier_names[position]

    @staticmethod
    def from_rows(data: PairData, row_tiers: Callable[[str, str], Sequence[tuple[str, Sequence[int]]]]) -> TiersFn:
        """A ``tiers_of`` from a function of one (anchor, positive) pair: an anchor with several
        positives gets each tier's candidates of every positive, tier by tier."""
        def tiers_of(q: int) -> list[tuple[str, list[int]]]:
            merged: dict[str, list[int]] = {}
            anchor = data.queries[q]
            for d in data.query_positives[q].tolist():
                for tier, ids in row_tiers(anchor, data.corpus[d]):
                    merged.setdefault(tier, []).extend(int(i) for i in ids)
            return list(merged.items())

        return tiers_of
