"""Shared machinery of the negative miners: guards against false negatives, candidate selection,
the output dataset and its statistics.

A retrieval-based miner supplies a :class:`CandidateSource` (ranked candidates per query and the
score of any (query, document) pair); :func:`mine_with_source` applies the guards, picks the
negatives and builds the result. Guards, in the order they are checked:

* ``known_positive``: a candidate that is a positive of the anchor (any row with the same anchor);
* ``same_text``: a candidate whose normalised text equals a positive's or the anchor's;
* ``absolute_margin``: kept only if ``score <= positive - absolute_margin``;
* ``relative_margin`` (default 0.05, NV-Retriever's TopK-PercPos): kept only if
  ``score <= positive - |positive| * relative_margin`` (``positive * (1 - relative_margin)`` for a
  non-negative positive score);
* ``max_score``: kept only if ``score <= max_score``; ``min_score`` drops too-easy candidates;
* the rank window: of the candidates left, ranks ``range_min`` to ``range_max`` (0-based);
* ``sampling``: ``top`` takes the best-ranked of the window, ``random`` a seeded sample.

The positive score is the lowest score among the anchor's positives. With ``cross_encoder`` the
candidates and positives are rescored by a cross-encoder and ranked by that score. Memory stays
O(batch x depth) for the selection and O(batch x corpus chunk) in the sources.
"""

from __future__ import annotations

import abc
import math
import re
import unicodedata
from typing import Any, Callable, Iterable, Mapping, Sequence

import attrs

from embedtune_core.errors import ComponentError, ConfigError, DataError
from embedtune_core.types import IRData, MiningRequest, MiningResult, MiningStats

OUTPUTS = ("hard-negatives", "triplets")
SAMPLING = ("top", "random")
SHORT = ("drop", "fill")
GUARD_SCORES = ("auto", "retrieval", "encoder")
#: drop reasons counted as likely false negatives (``known_positive`` and ``min_score`` are not)
FALSE_NEGATIVE_REASONS = ("same_text", "absolute_margin", "relative_margin", "max_score")
DROP_REASONS = ("known_positive",) + FALSE_NEGATIVE_REASONS + ("min_score",)
_NON_WORD = re.compile(r"[^\w]+")


def match_text(text: str) -> str:
    """The form texts are compared in: Unicode NFKC, case-folded, punctuation removed, spaces
    collapsed. ``"The fever."`` and ``"the  FEVER"`` compare equal."""
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", str(text)).casefold()).strip()


# -- options ------------------------------------------------------------------------------------
@attrs.frozen
class Guards:
    """The guard and selection options every retrieval-based miner accepts (see module doc)."""

    range_min: int = 0
    range_max: int | None = None
    absolute_margin: float | None = None
    relative_margin: float | None = 0.05
    max_score: float | None = None
    min_score: float | None = None
    cross_encoder: Any = None
    sampling: str = "top"
    short: str = "fill"
    guard_scores: str = "auto"
    batch_size: int = 1024
    explicit: frozenset = frozenset()

    @property
    def margins(self) -> bool:
        return self.absolute_margin is not None or self.relative_margin is not None or self.max_score is not None

    def without_default_margins(self) -> "Guards":
        """These guards minus the default relative margin (when it was not asked for)."""
        if "relative_margin" in self.explicit:
            return self
        return attrs.evolve(self, relative_margin=None)


GUARD_OPTIONS: dict[str, tuple[Any, str]] = {
    "range_min": (int, "skip this many best-ranked candidates"),
    "range_max": ((int, type(None)), "consider candidates up to this rank"),
    "absolute_margin": ((float, type(None)), "keep a negative only if score <= positive - margin"),
    "relative_margin": ((float, type(None)), "keep a negative only if score <= positive - |positive| * margin"),
    "max_score": ((float, type(None)), "keep a negative only if score <= max_score"),
    "min_score": ((float, type(None)), "keep a negative only if score >= min_score"),
    "cross_encoder": (object, "cross-encoder model (name, folder or CrossEncoder) to rescore candidates"),
    "sampling": (SAMPLING, "top: hardest of the window; random: a seeded sample of it"),
    "short": (SHORT, "anchors with fewer negatives than asked: fill with random corpus texts that pass the guards, or drop their rows"),
    "guard_scores": (GUARD_SCORES, "scores the margins compare: the retrieval's, or the model's cosine"),
    "batch_size": (int, "queries processed together"),
}


def _check_value(miner: str, key: str, value: Any, kind: Any) -> Any:
    where = f"mining.options.{key}"
    if kind is object:
        return value
    if isinstance(kind, tuple) and all(isinstance(k, str) for k in kind):
        if value not in kind:
            raise ConfigError(f"miner '{miner}': {key} must be one of {', '.join(kind)}, got {value!r}", key=where)
        return value
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if value is None:
        if type(None) in kinds:
            return None
        raise ConfigError(f"miner '{miner}': {key} must be given, got None", key=where)
    if isinstance(value, bool) and bool not in kinds:
        raise ConfigError(f"miner '{miner}': {key} must be a number, got {value!r}", key=where)
    if float in kinds and isinstance(value, (int, float)):
        if not math.isfinite(float(value)):
            raise ConfigError(f"miner '{miner}': {key} must be finite, got {value!r}", key=where)
        return float(value)
    if int in kinds and isinstance(value, int):
        return value
    if bool in kinds and isinstance(value, bool):
        return value
    if str in kinds and isinstance(value, str):
        return value
    if dict in kinds and isinstance(value, dict):
        return value
    label = {float: "a number", int: "an integer", str: "text", bool: "true or false", dict: "a mapping"}
    names = " or ".join(label.get(k, k.__name__) for k in kinds if k is not type(None))
    raise ConfigError(f"miner '{miner}': {key} must be {names}, got {value!r}", key=where)


def parse_options(
    miner: str,
    options: Mapping[str, Any],
    own: Mapping[str, tuple[Any, Any, str]] | None = None,
    *,
    guards: bool = True,
) -> tuple[Guards | None, dict[str, Any]]:
    """Split and check a miner's options.

    ``own`` maps each miner-specific option to ``(kind, default, help)``; the guard options
    (:data:`GUARD_OPTIONS`) are accepted when ``guards``. Returns ``(Guards or None, own values)``;
    an unknown option or a bad value is a clear error naming the miner and the key.
    """
    own = dict(own or {})
    accepted = list(own) + (list(GUARD_OPTIONS) if guards else [])
    for key in options:
        if key not in accepted:
            from embedtune_core.errors import closest

            guess = closest(key, accepted)
            raise ComponentError(
                f"miner '{miner}' has no option '{key}'",
                key=f"mining.options.{key}",
                hint=(f"did you mean '{guess}'? " if guess else "") + f"it accepts: {', '.join(sorted(accepted))}",
            )
    values = {}
    for key, (kind, default, _help) in own.items():
        values[key] = _check_value(miner, key, options[key], kind) if key in options else default
    if not guards:
        return None, values
    guard_values = {}
    for key, (kind, _help) in GUARD_OPTIONS.items():
        if key in options:
            guard_values[key] = _check_value(miner, key, options[key], kind)
    result = Guards(**guard_values, explicit=frozenset(guard_values))
    if result.range_min < 0:
        raise ConfigError(f"miner '{miner}': range_min must be >= 0, got {result.range_min}", key="mining.options.range_min")
    if result.range_max is not None and result.range_max <= result.range_min:
        raise ConfigError(
            f"miner '{miner}': range_max ({result.range_max}) must be greater than range_min ({result.range_min})",
            key="mining.options.range_max",
        )
    for key in ("absolute_margin", "relative_margin"):
        value = getattr(result, key)
        if value is not None and value < 0:
            raise ConfigError(f"miner '{miner}': {key} must be >= 0, got {value}", key=f"mining.options.{key}")
    if result.batch_size < 1:
        raise ConfigError(f"miner '{miner}': batch_size must be >= 1", key="mining.options.batch_size")
    return result, values


# -- the pairs a miner works on ----------------------------------------------------------------
@attrs.define
class PairData:
    """The (anchor, positive) rows of a request, with the candidate corpus and the positives of
    every distinct anchor.

    ``queries`` are the distinct anchors in first-seen order, ``row_query[r]`` the query of row
    ``r``. ``corpus`` is the request's corpus followed by every positive, deduplicated by exact
    text (the order ``sentence_transformers.util.mine_hard_negatives`` uses); ``row_positive[r]``
    is the corpus index of row ``r``'s positive and ``query_positives[q]`` those of query ``q``.
    ``text_group[d]`` numbers the :func:`match_text` form of corpus text ``d``; ``anchor_group[q]``
    the anchor's (-1 when no corpus text has that form). ``categories[d]`` is the category of
    corpus text ``d`` (None: unknown) when categories were given.
    """

    anchors: list[str]
    positives: list[str]
    queries: list[str]
    row_query: Any
    corpus: list[str]
    row_positive: Any
    query_positives: list[Any]
    text_group: Any
    anchor_group: Any
    categories: list[Any] | None = None
    _positive_keys: Any = None
    _same_text_keys: Any = None

    @property
    def max_positives(self) -> int:
        return max((len(p) for p in self.query_positives), default=1)

    def positive_pairs(self) -> tuple[Any, Any]:
        """``(query ids, corpus ids)`` of every distinct (query, positive) pair."""
        import numpy as np

        lengths = [len(p) for p in self.query_positives]
        queries = np.repeat(np.arange(len(self.queries), dtype=np.int64), lengths)
        docs = np.concatenate(self.query_positives) if self.query_positives else np.zeros(0, dtype=np.int64)
        return queries, docs.astype(np.int64)

    def is_known_positive(self, query_ids: Any, doc_ids: Any) -> Any:
        """Boolean array: ``doc_ids`` (any shape, broadcast with ``query_ids``) is a positive of its query."""
        import numpy as np

        if self._positive_keys is None:
            q, d = self.positive_pairs()
            self._positive_keys = np.unique(q * len(self.corpus) + d)
        keys = np.asarray(query_ids, dtype=np.int64) * len(self.corpus) + np.asarray(doc_ids, dtype=np.int64)
        return _member(keys, self._positive_keys) & (np.asarray(doc_ids) >= 0)

    def is_same_text(self, query_ids: Any, doc_ids: Any) -> Any:
        """Boolean array: the corpus text's normalised form equals one of the query's positives'
        or the anchor's."""
        import numpy as np

        groups = int(self.text_group.max(initial=-1)) + 1
        if self._same_text_keys is None:
            q, d = self.positive_pairs()
            keys = [q * groups + self.text_group[d]]
            has_anchor = self.anchor_group >= 0
            keys.append(np.flatnonzero(has_anchor) * groups + self.anchor_group[has_anchor])
            self._same_text_keys = np.unique(np.concatenate(keys).astype(np.int64))
        doc_ids = np.asarray(doc_ids, dtype=np.int64)
        safe = np.where(doc_ids >= 0, doc_ids, 0)
        keys = np.asarray(query_ids, dtype=np.int64) * groups + self.text_group[safe]
        return _member(keys, self._same_text_keys) & (doc_ids >= 0)


def _member(keys: Any, sorted_unique: Any) -> Any:
    """``np.isin(keys, sorted_unique)`` for an already sorted, unique array (no re-sorting)."""
    import numpy as np

    if len(sorted_unique) == 0:
        return np.zeros(np.shape(keys), dtype=bool)
    where = np.searchsorted(sorted_unique, keys)
    return sorted_unique[np.minimum(where, len(sorted_unique) - 1)] == keys


def _text_column(dataset: Any, names: Sequence[str], fallback: int) -> str:
    columns = list(dataset.column_names)
    for name in names:
        if name in columns:
            return name
    if len(columns) <= fallback:
        raise DataError(
            f"mining needs (anchor, positive) rows; the data has columns {', '.join(columns) or 'none'}",
            hint="give pairs, triplets, hard-negatives or IR data",
        )
    return columns[fallback]


def _texts(values: Iterable[Any], column: str) -> list[str]:
    out = []
    for index, value in enumerate(values):
        if not isinstance(value, str) or not value.strip():
            raise DataError(f"column '{column}' needs non-empty text, got {value!r}", record=index + 1, key=column)
        out.append(value)
    return out


def prepare_pairs(request: MiningRequest) -> PairData:
    """Turn a request's dataset (a ``datasets.Dataset`` of (anchor, positive, ...) rows, or an
    :class:`IRData`) and corpus into :class:`PairData`."""
    import numpy as np

    dataset, corpus, categories = request.dataset, request.corpus, request.categories
    if isinstance(dataset, IRData):
        from embedtune_core.data.loading import ir_to_pairs

        if corpus is None:
            corpus = list(dataset.corpus.values())
            categories = categories if categories is not None and len(categories) == len(corpus) else None
        dataset = ir_to_pairs(dataset)
    if dataset is None or len(dataset) == 0:
        raise DataError("there is nothing to mine: the dataset has no rows")
    anchor_column = _text_column(dataset, ("anchor", "query", "question", "sentence1"), 0)
    positive_column = _text_column(dataset, ("positive", "answer", "document", "sentence2"), 1)
    anchors = _texts(dataset[anchor_column], anchor_column)
    positives = _texts(dataset[positive_column], positive_column)
    corpus_texts = [] if corpus is None else _texts(corpus, "corpus")
    if categories is not None:
        expected = len(corpus_texts) if corpus is not None else len(anchors)
        if len(categories) != expected:
            raise DataError(
                f"{len(categories)} categories for {expected} {'corpus texts' if corpus is not None else 'rows'}",
                hint="give one category per corpus text (or per row when there is no corpus)",
            )

    all_texts = list(dict.fromkeys(corpus_texts + positives)) if corpus is not None else list(dict.fromkeys(positives))
    corpus_index = {text: i for i, text in enumerate(all_texts)}
    query_index: dict[str, int] = {}
    row_query = np.empty(len(anchors), dtype=np.int64)
    for row, anchor in enumerate(anchors):
        row_query[row] = query_index.setdefault(anchor, len(query_index))
    queries = list(query_index)
    row_positive = np.fromiter((corpus_index[p] for p in positives), dtype=np.int64, count=len(positives))
    per_query: list[dict[int, None]] = [{} for _ in queries]
    for q, d in zip(row_query.tolist(), row_positive.tolist()):
        per_query[q][d] = None
    query_positives = [np.fromiter(p, dtype=np.int64, count=len(p)) for p in per_query]

    group_of: dict[str, int] = {}
    text_group = np.fromiter(
        (group_of.setdefault(match_text(t), len(group_of)) for t in all_texts), dtype=np.int64, count=len(all_texts)
    )
    anchor_group = np.fromiter((group_of.get(match_text(a), -1) for a in queries), dtype=np.int64, count=len(queries))

    category_list = None
    row_categories = dataset["category"] if "category" in dataset.column_names else None
    if categories is not None or row_categories is not None:
        category_of: dict[str, Any] = {}
        if row_categories is not None:
            for text, cat in zip(positives, row_categories):
                if cat is not None and cat != "":
                    category_of.setdefault(text, cat)
        if categories is not None:
            source = corpus_texts if corpus is not None else positives
            for text, cat in zip(source, categories):
                if cat is not None and cat != "":
                    category_of[text] = cat
        category_list = [category_of.get(t) for t in all_texts]
    return PairData(
        anchors=anchors,
        positives=positives,
        queries=queries,
        row_query=row_query,
        corpus=all_texts,
        row_positive=row_positive,
        query_positives=query_positives,
        text_group=text_group,
        anchor_group=anchor_group,
        categories=category_list,
    )


# -- candidate sources --------------------------------------------------------------------------
class CandidateSource(abc.ABC):
    """Ranked candidates for a retrieval-based miner.

    ``dense`` says the scores are the model's cosine similarities (then the guards use them
    directly); lexical sources set it False. ``dropped`` counts candidates the source itself
    excluded, by reason (they count as likely false negatives).
    """

    name: str = "score"
    dense: bool = False

    def __init__(self) -> None:
        self.dropped: dict[str, int] = {}
        self.seen_extra = 0

    @abc.abstractmethod
    def search(self, query_ids: Any, depth: int) -> tuple[Any, Any]:
        """``(scores[b, depth] float32, corpus ids[b, depth] int64)``, best first; id -1 pads."""

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


# -- selection ----------------------------------------------------------------------------------
@attrs.define
class Selection:
    """Negatives chosen per query: ``negatives[q]`` corpus ids (-1 pads), ``scores[q]`` their
    guard scores, ``positive_scores[q]`` the anchor's (lowest) positive score."""

    negatives: Any
    scores: Any
    positive_scores: Any
    filled: Any = None


def default_range_max(guards: Guards, num_negatives: int, max_positives: int) -> int:
    """``range_max`` when not given: room for the negatives (ten times more when margins or
    ``max_score`` may drop candidates) plus the positives, after ``range_min``."""
    scored = guards.margins or (guards.cross_encoder is not None and guards.min_score is not None)
    return guards.range_min + num_negatives * (10 if scored else 1) + max_positives


def resolve_guard_scores(guards: Guards, source: CandidateSource, request: MiningRequest) -> tuple[str, Guards, str]:
    """Which scores the margins compare (``retrieval``, ``encoder`` or ``cross-encoder``), the
    guards to apply, and a note for the stats."""
    if guards.cross_encoder is not None:
        return "cross-encoder", guards, "cross-encoder scores"
    if source.dense:
        return "retrieval", guards, f"{source.name} scores"
    if guards.guard_scores == "encoder" or (guards.guard_scores == "auto" and request.encoder is not None):
        if request.encoder is None:
            raise ConfigError(
                "guard_scores=encoder needs a model to score candidates",
                key="mining.options.guard_scores",
                hint="give a model (--model / mining.model) or use guard_scores=retrieval",
            )
        return "encoder", guards, "model cosine scores"
    relaxed = guards.without_default_margins()
    note = f"{source.name} scores"
    if relaxed is not guards:
        note += " (default relative_margin off: no model to score candidates; set it to apply it to these scores)"
    return "retrieval", relaxed, note


def select_negatives(
    data: PairData,
    source: CandidateSource,
    guards: Guards,
    request: MiningRequest,
    stats: MiningStats,
    *,
    query_ids: Any = None,
    device: str | None = None,
) -> Selection:
    """Run the source and the guards for every query (or ``query_ids``), in batches."""
    import numpy as np

    n = request.num_negatives
    nq = len(data.queries)
    query_ids = np.arange(nq, dtype=np.int64) if query_ids is None else np.asarray(query_ids, dtype=np.int64)
    mode, guards, note = resolve_guard_scores(guards, source, request)
    range_max = guards.range_max if guards.range_max is not None else default_range_max(guards, n, data.max_positives)
    if n > range_max - guards.range_min:
        raise ConfigError(
            f"cannot mine {n} negatives from ranks {guards.range_min} to {range_max}",
            key="mining.options.range_max",
            hint="raise range_max, lower range_min, or ask for fewer negatives",
        )
    depth = min(range_max + data.max_positives, len(data.corpus))
    rescore = None
    if mode == "encoder":
        rescore = Rescorer("encoder", data, cache=EmbeddingCache(request.encoder, data))
    elif mode == "cross-encoder":
        rescore = Rescorer("cross-encoder", data, cross_encoder=load_cross_encoder(guards.cross_encoder, device))

    # positive scores: the lowest among each anchor's positives
    pq, pd = data.positive_pairs()
    pair_scores = rescore(pq, pd) if rescore is not None else np.asarray(source.score(pq, pd), dtype=np.float32)
    positive_scores = np.full(nq, np.inf, dtype=np.float32)
    np.minimum.at(positive_scores, pq, pair_scores)

    dropped = stats.extra.setdefault("dropped", {r: 0 for r in DROP_REASONS})
    negatives = np.full((nq, n), -1, dtype=np.int64)
    neg_scores = np.full((nq, n), np.nan, dtype=np.float32)
    rng = np.random.default_rng(request.seed)
    for start in range(0, len(query_ids), guards.batch_size):
        qids = query_ids[start : start + guards.batch_size]
        scores, idx = source.search(qids, depth)
        scores = np.array(scores, dtype=np.float32, copy=True)
        idx = np.asarray(idx, dtype=np.int64)
        valid = idx >= 0
        stats.candidates_seen += int(valid.sum())
        rows = qids[:, None]
        keep = valid.copy()
        for reason, mask in (("known_positive", data.is_known_positive(rows, idx)), ("same_text", data.is_same_text(rows, idx))):
            hit = keep & mask
            dropped[reason] += int(hit.sum())
            keep &= ~hit
        guard = scores
        if rescore is not None:
            guard = np.full(scores.shape, -np.inf, dtype=np.float32)
            r, c = np.nonzero(keep)
            guard[r, c] = rescore(qids[r], idx[r, c])
        rank = guard if mode == "cross-encoder" else scores
        pos = positive_scores[qids][:, None]
        checks = []
        if guards.absolute_margin is not None:
            checks.append(("absolute_margin", guard + guards.absolute_margin > pos))
        if guards.relative_margin is not None:
            checks.append(("relative_margin", guard > pos - np.abs(pos) * guards.relative_margin))
        if guards.max_score is not None:
            checks.append(("max_score", guard > guards.max_score))
        if guards.min_score is not None:
            checks.append(("min_score", guard < guards.min_score))
        for reason, mask in checks:
            hit = keep & mask
            dropped[reason] += int(hit.sum())
            keep &= ~hit
        key = np.where(keep, rank, -np.inf)
        order = np.argsort(-key, axis=1, kind="stable")
        alive = keep.sum(axis=1)
        window = order[:, guards.range_min : range_max]
        cols = np.arange(guards.range_min, guards.range_min + window.shape[1])
        in_window = cols[None, :] < alive[:, None]
        if guards.sampling == "random":
            draw = np.where(in_window, rng.random(window.shape), np.inf)
            picked = np.sort(np.argsort(draw, axis=1, kind="stable")[:, :n], axis=1)
        else:
            picked = np.tile(np.arange(min(n, window.shape[1])), (len(qids), 1))
        chosen = np.take_along_axis(window, picked, axis=1)
        ok = np.take_along_axis(in_window, picked, axis=1)
        m = chosen.shape[1]
        negatives[qids, :m] = np.where(ok, np.take_along_axis(idx, chosen, axis=1), -1)
        neg_scores[qids, :m] = np.where(ok, np.take_along_axis(guard, chosen, axis=1), np.nan)
    for reason, count in getattr(source, "dropped", {}).items():
        dropped[reason] = dropped.get(reason, 0) + count
    stats.candidates_seen += getattr(source, "seen_extra", 0)
    stats.extra.update(
        {"score": note, "range_max": range_max, "depth": depth, "sampling": guards.sampling}
    )
    selection = Selection(negatives=negatives, scores=neg_scores, positive_scores=positive_scores)
    if guards.short == "fill":
        fill_short(data, selection, guards, rescore or source.score, rng, query_ids, stats)
    return selection


def fill_short(
    data: PairData,
    selection: Selection,
    guards: Guards,
    score: Callable[[Any, Any], Any],
    rng: Any,
    query_ids: Any,
    stats: MiningStats,
    *,
    pool: Any = None,
    rounds: int = 8,
) -> None:
    """Complete anchors that got fewer negatives than asked with random corpus texts (or texts
    of ``pool``) that pass the known-positive, same-text, margin and ``max_score`` guards.

    Those negatives are easy ones; ``stats.extra['negatives_filled']`` counts them."""
    import numpy as np

    negatives, scores = selection.negatives, selection.scores
    candidates = np.arange(len(data.corpus), dtype=np.int64) if pool is None else np.asarray(pool, dtype=np.int64)
    filled = np.zeros(negatives.shape, dtype=bool)
    query_ids = np.asarray(query_ids, dtype=np.int64)
    short = query_ids[(negatives[query_ids] < 0).any(axis=1)]
    for _ in range(rounds):
        if not len(short) or not len(candidates):
            break
        need = (negatives[short] < 0).sum(axis=1)
        width = int(min(len(candidates), 4 * need.max() + 4))
        draws = candidates[rng.integers(0, len(candidates), size=(len(short), width))]
        rows = np.repeat(short[:, None], width, axis=1)
        ok = ~data.is_known_positive(rows, draws) & ~data.is_same_text(rows, draws)
        ok &= ~(draws[:, :, None] == negatives[short][:, None, :]).any(axis=2)
        values = np.full(draws.shape, np.nan, dtype=np.float32)
        values[ok] = np.asarray(score(rows[ok], draws[ok]), dtype=np.float32)
        pos = selection.positive_scores[short][:, None]
        if guards.absolute_margin is not None:
            ok &= ~(values + guards.absolute_margin > pos)
        if guards.relative_margin is not None:
            ok &= ~(values > pos - np.abs(pos) * guards.relative_margin)
        if guards.max_score is not None:
            ok &= ~(values > guards.max_score)
        for r, q in enumerate(short.tolist()):
            free = np.flatnonzero(negatives[q] < 0)
            taken = set(negatives[q][negatives[q] >= 0].tolist())
            for d, value in zip(draws[r][ok[r]].tolist(), values[r][ok[r]].tolist()):
                if not len(free):
                    break
                if d in taken:
                    continue
                slot, free = free[0], free[1:]
                negatives[q, slot], scores[q, slot], filled[q, slot] = d, value, True
                taken.add(d)
        short = short[(negatives[short] < 0).any(axis=1)]
    selection.filled = filled
    stats.extra["negatives_filled"] = int(filled.sum())


# -- output -------------------------------------------------------------------------------------
def build_result(
    data: PairData,
    selection: Selection,
    request: MiningRequest,
    stats: MiningStats,
    *,
    score_gaps: bool = True,
) -> MiningResult:
    """The output dataset and the final statistics.

    ``hard-negatives``: one row per input row, columns anchor, positive, negative_1..n; an anchor
    still short of n negatives after filling (``short="fill"``, the default) or with
    ``short="drop"`` loses its rows (all n columns must hold a text). ``triplets``: one row (anchor, positive, negative) per input
    row and negative, so short anchors keep what they have. ``queries_short`` counts the anchors
    that got fewer negatives than asked before any filling.
    """
    import datasets
    import numpy as np

    n = request.num_negatives
    negatives = selection.negatives
    counts = (negatives >= 0).sum(axis=1)
    filled = selection.filled if selection.filled is not None else np.zeros(negatives.shape, dtype=bool)
    mined_counts = ((negatives >= 0) & ~filled).sum(axis=1)
    stats.queries = len(data.queries)
    stats.queries_short = int((mined_counts < n).sum())
    corpus = data.corpus
    if request.output == "triplets":
        anchors, positives, negs = [], [], []
        for row in range(len(data.anchors)):
            q = data.row_query[row]
            for d in negatives[q][negatives[q] >= 0].tolist():
                anchors.append(data.anchors[row])
                positives.append(data.positives[row])
                negs.append(corpus[d])
        columns = {"anchor": anchors, "positive": positives, "negative": negs}
        stats.negatives_written = len(negs)
        rows_out = len(anchors)
    else:
        keep_rows = [row for row in range(len(data.anchors)) if counts[data.row_query[row]] >= n]
        columns = {
            "anchor": [data.anchors[r] for r in keep_rows],
            "positive": [data.positives[r] for r in keep_rows],
        }
        for i in range(n):
            columns[f"negative_{i + 1}"] = [corpus[negatives[data.row_query[r], i]] for r in keep_rows]
        stats.negatives_written = len(keep_rows) * n
        rows_out = len(keep_rows)
    if score_gaps and selection.scores is not None:
        mask = negatives >= 0
        if request.output != "triplets":
            mask &= (counts >= n)[:, None]
        gaps = (selection.positive_scores[:, None] - selection.scores)[mask]
        gaps = gaps[np.isfinite(gaps)]
        stats.mean_score_gap = float(gaps.mean()) if len(gaps) else None
    dropped = stats.extra.get("dropped", {})
    stats.dropped_false_negatives = int(sum(dropped.get(r, 0) for r in FALSE_NEGATIVE_REASONS) + sum(
        v for r, v in dropped.items() if r not in DROP_REASONS
    ))
    stats.extra.update({"rows_in": len(data.anchors), "rows_out": rows_out, "output": request.output})
    if request.output != "triplets":
        stats.extra["rows_dropped_short"] = len(data.anchors) - rows_out
    return MiningResult(dataset=datasets.Dataset.from_dict(columns), stats=stats)


def mine_with_source(
    data: PairData,
    source: CandidateSource,
    guards: Guards,
    request: MiningRequest,
    *,
    stats: MiningStats | None = None,
    device: str | None = None,
) -> MiningResult:
    """Select negatives from ``source`` through ``guards`` and build the result."""
    stats = stats or MiningStats()
    selection = select_negatives(data, source, guards, request, stats, device=device)
    return build_result(data, selection, request, stats)


class RetrievalMiner(abc.ABC):
    """Base of the retrieval-based miners: subclass it, set ``name`` (and ``own_options``, a
    mapping ``option -> (kind, default, help)``) and implement :meth:`source`. Every guard
    option is accepted; ``self.options`` holds the miner's own option values."""

    name = "retrieval"
    own_options: Mapping[str, tuple[Any, Any, str]] = {}

    def __init__(self, **options: Any) -> None:
        self.guards, self.options = parse_options(self.name, options, self.own_options)

    @abc.abstractmethod
    def source(self, data: PairData, request: MiningRequest) -> CandidateSource:
        """The candidate source for this request."""

    def mine(self, request: MiningRequest) -> MiningResult:
        check_request(request)
        data = prepare_pairs(request)
        stats = MiningStats()
        source = self.source(data, request)
        return mine_with_source(data, source, self.guards, request, stats=stats, device=self.options.get("device"))


def check_request(request: MiningRequest) -> None:
    """Clear errors for a request no miner can serve."""
    if not isinstance(request.num_negatives, int) or isinstance(request.num_negatives, bool) or request.num_negatives < 1:
        raise ConfigError(f"num_negatives must be a positive integer, got {request.num_negatives!r}", key="mining.num_negatives")
    if request.output not in OUTPUTS:
        raise ConfigError(f"output must be one of {', '.join(OUTPUTS)}, got {request.output!r}", key="mining.output")


# -- running a registered miner -----------------------------------------------------------------
def check_miner(registry: Any, name: str, options: Mapping[str, Any] | None = None, *,
                dataset_type: str | None = None, key: str | None = "mining.options") -> None:
    """Check miner ``name``'s options (by building it: a miner's constructor only reads its
    options) and, when the miner declares the dataset types it ``accepts``, that
    ``dataset_type`` is one of them. Nothing is loaded or mined."""
    from embedtune_core.errors import EmbedtuneError
    from embedtune_core.embedding.models import check_model

    component = registry.get("negative_miner", name)
    options = dict(options or {})
    try:
        registry.create("negative_miner", name, **options)
        if isinstance(options.get("cross_encoder"), str):
            check_model(options["cross_encoder"], key=f"{key}.cross_encoder" if key else "cross_encoder")
    except EmbedtuneError as exc:
        if exc.key is None and key:
            exc.key = key
        raise
    accepts = component.meta.get("accepts")
    if dataset_type and accepts and dataset_type not in accepts:
        raise ComponentError(
            f"negative miner '{name}' works on {', '.join(accepts)} data, but the data is {dataset_type}",
            key="mining.miner",
            hint=f"use a retrieval miner such as bm25 or dense, or give data of type {' / '.join(accepts)}",
        )


def expected_columns(output: str, num_negatives: int) -> list[str]:
    if output == "triplets":
        return ["anchor", "positive", "negative"]
    return ["anchor", "positive"] + [f"negative_{i + 1}" for i in range(num_negatives)]


def run_miner(
    registry: Any,
    name: str,
    dataset: Any,
    dataset_type: str,
    *,
    num_negatives: int,
    options: Mapping[str, Any] | None = None,
    encoder: Any = None,
    corpus: list[str] | None = None,
    categories: list[Any] | None = None,
    output: str = "hard-negatives",
    seed: int = 42,
) -> MiningResult:
    """Build the miner ``name`` with ``options``, mine ``dataset`` and check what it returns.

    The result's dataset has the columns anchor, positive, negative_1..n (``hard-negatives``) or
    anchor, positive, negative (``triplets``), ready for training; a miner that returns anything
    else is a :class:`ComponentError` naming it.
    """
    request = MiningRequest(
        dataset=dataset,
        dataset_type=dataset_type,
        num_negatives=num_negatives,
        corpus=corpus,
        encoder=encoder,
        categories=categories,
        output=output,
        seed=seed,
    )
    check_request(request)
    miner = registry.create("negative_miner", name, **dict(options or {}))
    if not callable(getattr(miner, "mine", None)):
        raise ComponentError(f"negative miner '{name}' built an object without a mine(request) method")
    result = miner.mine(request)
    if not isinstance(result, MiningResult) or not isinstance(result.stats, MiningStats):
        raise ComponentError(
            f"negative miner '{name}' returned {type(result).__name__}, not a MiningResult with MiningStats"
        )
    columns = list(getattr(result.dataset, "column_names", []) or [])
    wanted = expected_columns(output, num_negatives)
    if columns != wanted:
        raise ComponentError(
            f"negative miner '{name}' returned columns {', '.join(columns) or 'none'}",
            hint=f"a {output} result has columns {', '.join(wanted)}",
        )
    return result


def sequential_batch_sampler(
    dataset: Any,
    batch_size: int,
    drop_last: bool,
    valid_label_columns: list[str] | None = None,
    generator: Any = None,
    seed: int = 0,
) -> Any:
    """A sentence-transformers batch sampler that keeps the dataset's row order.

    Pass it as ``SentenceTransformerTrainingArguments(batch_sampler=sequential_batch_sampler)``
    when a mining result says ``stats.extra["ordered"]`` (the curriculum miner's easy-to-hard
    order); the default sampler shuffles and would undo the order."""
    from sentence_transformers.base.sampler import DefaultBatchSampler
    from torch.utils.data import SequentialSampler

    return DefaultBatchSampler(
        SequentialSampler(range(len(dataset))),
        batch_size=batch_size,
        drop_last=drop_last,
        valid_label_columns=valid_label_columns,
        generator=generator,
        seed=seed,
    )


def stats_rows(stats: MiningStats) -> list[list[Any]]:
    """``[name, value]`` rows of the statistics table the CLI prints."""
    rows = [
        ["queries", stats.queries],
        ["candidates seen", stats.candidates_seen],
        ["dropped as likely false negatives", stats.dropped_false_negatives],
        ["negatives written", stats.negatives_written],
        ["queries with fewer negatives than asked", stats.queries_short],
        ["mean score gap (positive - negative)", stats.mean_score_gap],
    ]
    for reason, count in (stats.extra.get("dropped") or {}).items():
        if count:
            rows.append([f"  dropped: {reason}", count])
    for key in ("rows_in", "rows_out", "rows_dropped_short", "negatives_filled", "score", "ordered"):
        if key in stats.extra:
            rows.append([key.replace("_", " "), stats.extra[key]])
    return rows
