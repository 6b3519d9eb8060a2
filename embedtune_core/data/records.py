"""Checking the records of a table as one of the six dataset types and turning them into
columns: which column holds which field (with a mapping or the usual aliases), texts, scores,
labels and negatives, each bad value named by file, line and field.
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterable, Mapping

from embedtune_core.data.formats import SURROGATE_HINT, Table, _kind, _short
from embedtune_core.data.shapes import negative_columns, nli_label
from embedtune_core.errors import DataError
from embedtune_core.text import lone_surrogate, text_key

#: the text fields and value fields each record of a type has (hard-negatives: plus negatives)
RECORD_FIELDS: dict[str, tuple[str, ...]] = {
    "pairs": ("anchor", "positive"),
    "triplets": ("anchor", "positive", "negative"),
    "sts": ("sentence1", "sentence2", "score"),
    "nli": ("premise", "hypothesis", "label"),
    "hard-negatives": ("anchor", "positive", "negatives"),
}
#: names accepted for a field when the file lacks the conventional one and no mapping is given
ALIASES: dict[str, tuple[str, ...]] = {
    "anchor": ("query", "question", "sentence1", "text1"),
    "positive": ("pos", "answer", "document", "passage", "sentence2", "text2"),
    "negative": ("neg", "hard_negative"),
    "sentence1": ("sentence_1", "text1", "s1"),
    "sentence2": ("sentence_2", "text2", "s2"),
    "score": ("similarity", "similarity_score", "relatedness_score", "label"),
    "premise": ("sentence1", "text1"),
    "hypothesis": ("sentence2", "text2"),
    "label": ("gold_label",),
    "negatives": ("hard_negatives", "negs"),
}


def resolve_columns(table: Table, fields: Iterable[str], mapping: Mapping[str, str]) -> dict[str, str]:
    """Type field -> the source column that holds it (explicit mapping, the field's own name, or a
    known alias such as ``question`` for ``anchor``)."""
    available = set(table.columns)
    resolved: dict[str, str] = {}
    taken: set[str] = set()
    for field in fields:
        if field in mapping:
            column = mapping[field]
            if column not in available:
                raise DataError(
                    f"column '{column}' (mapped to '{field}') is not in the data",
                    **table.first_where(),
                    key=f"columns.{field}",
                    hint=f"columns found: {', '.join(table.columns) or 'none'}",
                )
        elif field in available and field not in mapping.values():
            column = field
        else:
            column = next((a for a in ALIASES.get(field, ()) if a in available and a not in taken and a not in mapping.values()), None)
            if column is None:
                raise DataError(
                    f"missing field '{field}'",
                    **table.first_where(),
                    key=field,
                    hint=(
                        f"columns found: {', '.join(table.columns) or 'none'}; map yours with "
                        f"columns = {{{field} = \"YOUR_COLUMN\"}}"
                    ),
                )
        resolved[field] = column
        taken.add(column)
    return resolved


def _missing(table: Table, index: int, field: str, column: str) -> DataError:
    label = f"'{column}'" + (f" ({field})" if column != field else "")
    return DataError(f"missing field {label}", **table.where(index), key=column, hint="every record needs this field")


def text_value(table: Table, index: int, row: Mapping[str, Any], field: str, column: str) -> str:
    """The field's value in ``row`` (record ``index``) as validated text."""
    if column not in row:
        raise _missing(table, index, field, column)
    return check_text(table, index, column, row[column])


def check_text(table: Table, index: int, column: str, value: Any) -> str:
    """``value`` (of ``column`` in record ``index``) as validated text."""
    if not isinstance(value, str):
        if value is None:
            raise DataError(f"field '{column}' is null, expected text", **table.where(index), key=column, hint="fill it or drop the record")
        raise DataError(
            f"field '{column}' must be text, got {_kind(value)}",
            **table.where(index),
            key=column,
            hint="write the value as a JSON string",
        )
    if not value.strip():
        raise DataError(f"field '{column}' is empty, expected text", **table.where(index), key=column, hint="fill it or drop the record")
    bad = lone_surrogate(value)
    if bad:
        raise DataError(
            f"field '{column}' holds a lone surrogate ({bad}), which is not valid Unicode text",
            **table.where(index),
            key=column,
            hint=SURROGATE_HINT,
        )
    return value


def score_value(table: Table, index: int, row: Mapping[str, Any], column: str, low: float, high: float) -> float:
    if column not in row:
        raise _missing(table, index, "score", column)
    value = row[column]
    number: float | None = None
    if isinstance(value, bool) or value is None:
        number = None
    elif isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None:
        raise DataError(
            f"field '{column}' must be a number from {low:g} to {high:g}, got {_short(value)}",
            **table.where(index),
            key=column,
            hint="scores are similarity judgements (0-5 by default; set score_range for another scale)",
        )
    if math.isnan(number):
        raise DataError(f"field '{column}' is NaN, expected a number from {low:g} to {high:g}", **table.where(index), key=column)
    if not low <= number <= high:
        raise DataError(
            f"field '{column}' is {number:g}, outside the score range {low:g} to {high:g}",
            **table.where(index),
            key=column,
            hint="set the reader option score_range = [MIN, MAX] if your scale differs",
        )
    return (number - low) * 5.0 / (high - low)


def label_value(table: Table, index: int, row: Mapping[str, Any], column: str) -> int | None:
    """0, 1 or 2; None for an unlabelled record (SNLI's '-', -1)."""
    if column not in row:
        raise _missing(table, index, "label", column)
    try:
        return nli_label(row[column])
    except ValueError:
        value = row[column]
    raise DataError(
        f"field '{column}' is {_short(value)}, expected an NLI label",
        **table.where(index),
        key=column,
        hint="use 0/entailment, 1/neutral or 2/contradiction ('-' or -1 marks a record without a gold label)",
    )


def negatives_of(table: Table, index: int, row: Mapping[str, Any], spec: tuple[str, Any]) -> list[str]:
    kind, value = spec
    if kind == "list":
        column = value
        if column not in row:
            raise _missing(table, index, "negatives", column)
        items = row[column]
        if isinstance(items, str) and table.lines is not None and items.lstrip().startswith("["):
            try:
                items = json.loads(items)
            except (ValueError, RecursionError):  # not JSON after all: reported as not a list below
                pass
        if not isinstance(items, (list, tuple)) or not items:
            raise DataError(
                f"field '{column}' must be a non-empty list of texts, got {_kind(items) if items else 'nothing'}",
                **table.where(index),
                key=column,
                hint='e.g. "negatives": ["first wrong answer", "second wrong answer"]',
            )
        return [check_text(table, index, f"{column}[{i}]", item) for i, item in enumerate(items)]
    return [text_value(table, index, row, "negative", column) for column in value]


def check_negatives(table: Table, index: int, anchor: str, positive: str, columns: list[str], negatives: list[str]) -> None:
    """Refuse a negative that is the same text as the record's positive or anchor (compared
    after Unicode NFKC, case folding and collapsing whitespace): training on such a row pushes
    the positive away from its anchor."""
    same = {text_key(anchor): "anchor"}
    same[text_key(positive)] = "positive"
    for column, negative in zip(columns, negatives):
        other = same.get(text_key(negative))
        if other:
            raise DataError(
                f"field '{column}' is the same text as the {other}",
                **table.where(index),
                key=column,
                hint=f"a negative must be a wrong match for the anchor (compared ignoring case, spacing and Unicode "
                     f"forms); training on this row would push the {other} away. Fix the negative or drop the record",
            )


def negative_spec(table: Table, mapping: Mapping[str, str]) -> tuple[str, Any]:
    """How a hard-negatives source holds its negatives: a list column, numbered columns, or one
    ``negative`` column."""
    if "negatives" in mapping:
        resolve_columns(table, ["negatives"], mapping)
        return ("list", mapping["negatives"])
    numbered = [c for c in negative_columns(table.columns) if c != "negative"]
    if numbered:
        return ("columns", numbered)
    for name in ("negatives",) + ALIASES["negatives"]:
        if name in table.columns:
            return ("list", name)
    for name in ("negative",) + ALIASES["negative"]:
        if name in table.columns or name in mapping:
            column = mapping.get("negative", name)
            return ("columns", [column])
    raise DataError(
        "no negatives found",
        **table.first_where(),
        key="negatives",
        hint="give a 'negatives' list, numbered columns negative_1 ... negative_N, or map yours with columns = {negatives = \"COLUMN\"}",
    )


def records_to_columns(table: Table, dataset_type: str, *, columns: Mapping[str, str] | None = None,
                       score_range: tuple[float, float] = (0.0, 5.0), keep: Iterable[str] = ()) -> tuple[dict[str, list], dict[str, Any]]:
    """Validate every record of ``table`` as ``dataset_type`` and return the columns in the type's
    conventional order, then the ``keep`` fields as extra text columns, plus notes (columns used,
    skipped records). ``columns`` maps type fields to the table's columns; STS scores are
    rescaled from ``score_range`` to 0-5."""
    out, notes, rows = _type_columns(table, dataset_type, dict(columns or {}), score_range)
    for name in keep:
        out[name] = kept_column(table, name, rows)
    return out, notes


def kept_column(table: Table, name: str, rows: list[int]) -> list[str]:
    """Field ``name`` of the records ``rows``, as text: an extra column kept for a miner (a group
    id...). Every record must have a text or number there."""
    if name not in table.columns:
        raise DataError(f"field '{name}' (data.options.keep) is not in the data", **table.first_where(),
                        key="data.options.keep", hint=f"fields found: {', '.join(table.columns) or 'none'}")
    out, wanted = [], set(rows)
    for index, row in enumerate(table.rows):
        if index not in wanted:
            continue
        value = row.get(name)
        if isinstance(value, bool) or not isinstance(value, (str, int, float)) or (isinstance(value, str) and not value.strip()):
            raise DataError(f"field '{name}' is {_short(value) if value is not None else 'missing'}, expected a text or "
                            "a number (it is kept as an extra column)", **table.where(index), key=name,
                            hint="give every record a value, or leave the field out of data.options.keep")
        out.append(str(value))
    return out


def _type_columns(table: Table, dataset_type: str, mapping: dict[str, str],
                  score_range: tuple[float, float]) -> tuple[dict[str, list], dict[str, Any], list[int]]:
    """The type's columns, the notes and the indices of the records kept."""
    fields = RECORD_FIELDS[dataset_type]
    allowed = set(fields) | ({"negative"} if dataset_type == "hard-negatives" else set())
    for key in mapping:
        if key not in allowed:
            raise DataError(
                f"'{key}' is not a field of type '{dataset_type}'",
                key=f"columns.{key}",
                hint=f"fields: {', '.join(sorted(allowed))}",
            )
    notes: dict[str, Any] = {"rows_read": len(table.rows)}
    if dataset_type == "hard-negatives":
        out, notes = _hard_negative_columns(table, mapping, notes)
        return out, notes, list(range(len(table.rows)))
    resolved = resolve_columns(table, fields, mapping)
    notes["columns"] = resolved
    text_fields = [f for f in fields if f not in ("score", "label")]
    out: dict[str, list] = {f: [] for f in fields}
    low, high = score_range
    skipped, kept = 0, []
    for index, row in enumerate(table.rows):
        label = None
        if dataset_type == "nli":
            label = label_value(table, index, row, resolved["label"])
            if label is None:
                skipped += 1
                continue
        kept.append(index)
        texts = [text_value(table, index, row, f, resolved[f]) for f in text_fields]
        if dataset_type == "triplets":
            check_negatives(table, index, texts[0], texts[1], [resolved["negative"]], texts[2:])
        for f, t in zip(text_fields, texts):
            out[f].append(t)
        if dataset_type == "sts":
            out["score"].append(score_value(table, index, row, resolved["score"], low, high))
        elif dataset_type == "nli":
            out["label"].append(label)
    if skipped:
        notes["skipped_unlabelled"] = skipped
    if not out[fields[0]]:
        raise DataError("no labelled records", file=table.file, hint="every record has '-' or -1 as its label")
    return out, notes, kept


def _hard_negative_columns(table: Table, mapping: Mapping[str, str], notes: dict[str, Any]) -> tuple[dict[str, list], dict[str, Any]]:
    """:func:`records_to_columns` for hard negatives: anchor, positive, negative_1 ... negative_N."""
    resolved = resolve_columns(table, ("anchor", "positive"), mapping)
    spec = negative_spec(table, mapping)
    out: dict[str, list] = {"anchor": [], "positive": []}
    negatives: list[list[str]] = []
    labels = None if spec[0] == "list" else spec[1]
    for index, row in enumerate(table.rows):
        anchor = text_value(table, index, row, "anchor", resolved["anchor"])
        positive = text_value(table, index, row, "positive", resolved["positive"])
        found = negatives_of(table, index, row, spec)
        check_negatives(table, index, anchor, positive, labels or [f"{spec[1]}[{i}]" for i in range(len(found))], found)
        if index == 0:
            negatives = [[] for _ in found]
        elif len(found) != len(negatives):
            raise DataError(
                f"record has {len(found)} negatives, the first record has {len(negatives)}",
                **table.where(index),
                key="negatives",
                hint="give every record the same number of negatives",
            )
        out["anchor"].append(anchor)
        out["positive"].append(positive)
        for column, text in zip(negatives, found):
            column.append(text)
    for n, column in enumerate(negatives):
        out[f"negative_{n + 1}"] = column
    notes["columns"] = {**resolved, "negatives": spec[1]}
    return out, notes


def to_dataset(columns: dict[str, list]) -> Any:
    from embedtune_core.data.columns import dataset_from_columns

    return dataset_from_columns(columns)
