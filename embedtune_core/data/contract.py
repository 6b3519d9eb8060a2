"""What a reader or a miner gives is held to the rules a data file is: texts are non-empty text,
scores and labels are what their type says, a negative is never the same text as its anchor or
positive (:func:`~embedtune_core.text.text_key`), IR ids and judgements fit together.

:func:`bundle_problem` checks a reader's :class:`~embedtune_core.types.DataBundle`,
:func:`rows_problem` a dataset of rows (a miner's output); each returns what is wrong, in words,
or None. Rows are checked a block at a time, so a million rows cost seconds and little memory.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Iterator

from embedtune_core.data.shapes import VALUE_COLUMNS, negative_columns
from embedtune_core.text import shorten, text_key
from embedtune_core.types import DATASET_TYPES, DataBundle, IRData

#: rows checked at a time
BLOCK = 65536


def _text_problem(value: Any) -> str | None:
    if type(value) is not str:
        return f"is {'missing' if value is None else f'{type(value).__name__} {shorten(repr(value), 30)}'}, not text"
    if not value.strip():
        return "is empty"
    return None


def _value_problem(column: str, value: Any) -> str | None:
    if column == "score":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and 0 <= value <= 5
        return None if ok else f"is {shorten(repr(value), 30)}, not a score from 0 to 5"
    ok = isinstance(value, int) and not isinstance(value, bool) and value in (0, 1, 2)
    return None if ok else f"is {shorten(repr(value), 30)}, not an NLI label 0, 1 or 2"


def _blocks(dataset: Any, columns: list[str]) -> Iterator[tuple[int, dict[str, list]]]:
    for start in range(0, len(dataset), BLOCK):
        block = dataset.select_columns(columns)[start : start + BLOCK]
        yield start, block


def rows_problem(dataset: Any, dataset_type: str) -> str | None:
    """What is wrong with ``dataset`` as rows of ``dataset_type`` (None: nothing)."""
    names = list(getattr(dataset, "column_names", None) or [])
    if not names and not hasattr(dataset, "select_columns"):
        return f"a {type(dataset).__name__}, not a datasets.Dataset of rows"
    wanted = [c for c in DATASET_TYPES.get(dataset_type, ()) if c != "ir"]
    negatives = negative_columns(names)
    if dataset_type == "hard-negatives" and not [c for c in negatives if c != "negative"]:
        return f"rows without negative_1 ... negative_N columns (columns: {', '.join(names) or 'none'})"
    missing = [c for c in wanted if c not in names]
    if missing:
        return f"rows without the column '{missing[0]}' (columns: {', '.join(names) or 'none'})"
    checked = list(dict.fromkeys(wanted + negatives))
    if not checked or len(dataset) == 0:
        return None
    texts = [c for c in checked if c not in VALUE_COLUMNS]
    for start, block in _blocks(dataset, checked):
        problem = _block_problem(block, start, texts, [c for c in checked if c in VALUE_COLUMNS], negatives)
        if problem:
            return problem
    return None


def _block_problem(block: dict[str, list], start: int, texts: list[str], values: list[str],
                   negatives: list[str]) -> str | None:
    for column in texts:
        for offset, value in enumerate(block[column]):
            problem = _text_problem(value)
            if problem:
                return f"row {start + offset + 1}: '{column}' {problem}"
    for column in values:
        for offset, value in enumerate(block[column]):
            problem = _value_problem(column, value)
            if problem:
                return f"row {start + offset + 1}: '{column}' {problem}"
    return _same_text(block, start, [c for c in ("anchor", "positive") if c in block], negatives)


def _same_text(block: dict[str, list], start: int, kept: list[str], negatives: list[str]) -> str | None:
    """A negative that is the same text as its row's anchor or positive."""
    if not negatives or not kept:
        return None
    for offset in range(len(block[negatives[0]])):
        same = {text_key(block[c][offset]): c for c in kept}
        for column in negatives:
            other = same.get(text_key(block[column][offset]))
            if other:
                return f"row {start + offset + 1}: '{column}' is the same text as the {other}"
    return None


def _ir_problem(data: Any, part: str) -> str | None:
    if not isinstance(data, IRData):
        return f"the {part} part is a {type(data).__name__}, not an IRData"
    for name, table in (("corpus", data.corpus), ("queries", data.queries)):
        if not isinstance(table, dict):
            return f"the {part} {name} is a {type(table).__name__}, not a table of id -> text"
        for key, text in table.items():
            problem = _text_problem(text) or (None if type(key) is str else "has an id that is not text")
            if problem:
                return f"{part} {name} entry '{shorten(str(key), 30)}' {problem}"
    if not isinstance(data.qrels, dict):
        return f"the {part} qrels are a {type(data.qrels).__name__}, not a table"
    for query, judged in data.qrels.items():
        if query not in data.queries or not isinstance(judged, dict):
            return f"{part} qrels: query '{shorten(str(query), 30)}' is not among the queries or has no table"
        for doc, grade in judged.items():
            if doc not in data.corpus:
                return f"{part} qrels: query '{shorten(str(query), 30)}' judges '{shorten(str(doc), 30)}', not in the corpus"
            if not isinstance(grade, int) or isinstance(grade, bool):
                return f"{part} qrels: the grade of '{shorten(str(doc), 30)}' for '{shorten(str(query), 30)}' is not an integer"
    return None


def bundle_problem(bundle: DataBundle) -> str | None:
    """What is wrong with a reader's bundle (None: nothing)."""
    if bundle.dataset_type not in DATASET_TYPES:
        return f"a bundle of type {bundle.dataset_type!r}, not one of {', '.join(DATASET_TYPES)}"
    if bundle.train is None:
        return "a bundle without training data"
    parts = [("train", bundle.train)] + ([("eval", bundle.eval)] if bundle.eval is not None else [])
    for part, data in parts:
        if bundle.dataset_type == "ir":
            problem = _ir_problem(data, part)
        else:
            problem = rows_problem(data, bundle.dataset_type)
            problem = f"{part} {problem}" if problem else None
        if problem:
            return problem
    return _corpus_problem(bundle.corpus)


def _corpus_problem(corpus: Iterable[Any] | None) -> str | None:
    if corpus is None:
        return None
    if isinstance(corpus, (str, bytes)) or not hasattr(corpus, "__iter__"):
        return f"a corpus that is a {type(corpus).__name__}, not a list of texts"
    for index, text in enumerate(corpus):
        problem = _text_problem(text)
        if problem:
            return f"corpus text {index + 1} {problem}"
    return None
