"""The (anchor, positive) rows a miner works on, with the candidate corpus and every anchor's
positives, as integer arrays the guards and the selection share."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import attrs

from embedtune_core.errors import DataError
from embedtune_core.text import loose_text_key
from embedtune_core.types import IRData, MiningRequest


@attrs.define
class PairData:
    """The (anchor, positive) rows of a request, with the candidate corpus and the positives of
    every distinct anchor.

    ``queries`` are the distinct anchors in first-seen order, ``row_query[r]`` the query of row
    ``r``. ``corpus`` is the request's corpus followed by every positive, deduplicated by exact
    text (the order ``sentence_transformers.util.mine_hard_negatives`` uses); ``row_positive[r]``
    is the corpus index of row ``r``'s positive and ``query_positives[q]`` those of query ``q``.
    ``text_group[d]`` numbers the :func:`loose_text_key` form of corpus text ``d``; ``anchor_group[q]``
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


def _form(text: str) -> str:
    """``loose_text_key(text)``; the text itself when it is already in that form, so that a dict of
    forms holds no second copy of every text."""
    form = loose_text_key(text)
    return text if form == text else form


def _positives_by_query(row_query: Any, row_positive: Any, n_queries: int, n_corpus: int) -> list[Any]:
    """Each query's distinct positives (corpus ids), in the order of the rows they first appear
    in: views into one int64 array."""
    import numpy as np

    pairs, first = np.unique(row_query * n_corpus + row_positive, return_index=True)
    order = np.argsort(first, kind="stable")  # first-seen row order ...
    pairs = pairs[order[np.argsort(pairs[order] // n_corpus, kind="stable")]]  # ... within each query
    ends = np.cumsum(np.bincount(pairs // n_corpus, minlength=n_queries))
    return np.split(pairs % n_corpus, ends[:-1])


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
    if {"premise", "hypothesis", "label"} <= set(dataset.column_names):
        from embedtune_core.errors import ComponentError

        raise ComponentError("this miner needs (anchor, positive) rows, not NLI records",
                             hint="mine the triplets built from them (the pipeline does), or use a miner declared "
                                  "with input='nli'")
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
    del corpus_index
    query_positives = _positives_by_query(row_query, row_positive, len(queries), len(all_texts))

    group_of: dict[str, int] = {}
    text_group = np.fromiter(
        (group_of.setdefault(_form(t), len(group_of)) for t in all_texts), dtype=np.int64, count=len(all_texts)
    )
    anchor_group = np.fromiter((group_of.get(loose_text_key(a), -1) for a in queries), dtype=np.int64, count=len(queries))
    del group_of

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


