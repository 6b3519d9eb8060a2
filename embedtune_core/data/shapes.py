"""What rows look like: the one owner of each fact about columns and labels.

- **Columns.** The columns of each dataset type are :data:`~embedtune_core.types.DATASET_TYPES`;
  :func:`negative_columns` says which columns hold negatives (``negative``, or ``negative_1`` ...
  ``negative_N`` in number order, nothing else); :func:`training_columns` which columns a loss
  trains on, and :func:`extra_columns` the rest (a group id or a source a reader keeps for a
  miner, dropped before training).
- **NLI labels.** :data:`NLI_LABELS` (0 entailment, 1 neutral, 2 contradiction);
  :func:`nli_label` reads one as readers accept it; :func:`group_premises` groups records by
  premise (compared with :func:`~embedtune_core.text.text_key`), for the conversion to triplets
  and for the contradiction miner alike.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Sequence

import attrs

from embedtune_core.text import text_key
from embedtune_core.types import DATASET_TYPES, NLI_LABELS

_NUMBERED = re.compile(r"negative_([0-9]+)")
#: value columns: an STS score, an NLI label
VALUE_COLUMNS = ("score", "label")
#: every column a loss may train on, besides the numbered negatives
_TRAINING = tuple(dict.fromkeys(c for columns in DATASET_TYPES.values() for c in columns)) + ("negative",)
#: NLI labels that mean "no gold label" (SNLI's "-", HF's -1): such records are skipped
UNLABELLED = frozenset({"-", "-1", -1})
LABEL_NAMES = {value: name for name, value in NLI_LABELS.items()}


def negative_columns(names: Iterable[str]) -> list[str]:
    """The columns of ``names`` that hold negatives: ``negative``, then the numbered ones
    (``negative_1`` ... ``negative_N``) in number order. ``negatives`` or ``negative_x`` are not."""
    names = list(names)
    numbered = sorted((int(m.group(1)), n) for n in names if (m := _NUMBERED.fullmatch(n)))
    return (["negative"] if "negative" in names else []) + [n for _, n in numbered]


def training_columns(names: Iterable[str]) -> list[str]:
    """The columns of ``names`` a loss trains on, in their order: the dataset types' text and
    value columns and the negatives."""
    names = list(names)
    negatives = set(negative_columns(names))
    return [n for n in names if n in _TRAINING or n in negatives]


def extra_columns(names: Iterable[str]) -> list[str]:
    """The columns of ``names`` that are not training columns (kept for a miner, never trained on)."""
    names = list(names)
    keep = set(training_columns(names))
    return [n for n in names if n not in keep]


def nli_label(value: Any) -> int | None:
    """An NLI label as 0, 1 or 2 (from 0/1/2, "0"/"1"/"2", 0.0/1.0/2.0 or entailment/neutral/
    contradiction in any case); None for a record without a gold label ("-", -1). Raises
    ValueError for anything else."""
    if isinstance(value, str):
        key = value.strip().lower()
        if key in NLI_LABELS:
            return NLI_LABELS[key]
        if key in ("0", "1", "2"):
            return int(key)
        if key in UNLABELLED:
            return None
    elif isinstance(value, bool):
        pass
    elif isinstance(value, int):
        if value in (0, 1, 2):
            return value
        if value == -1:
            return None
    elif isinstance(value, float) and value in (0.0, 1.0, 2.0):
        return int(value)
    raise ValueError(f"not an NLI label: {value!r}")


@attrs.define
class PremiseGroups:
    """NLI records grouped by premise: ``premises[key]`` is the premise's first text, and
    ``entailments[key]`` / ``contradictions[key]`` its hypotheses of each label, in record order;
    ``neutral`` counts the neutral records."""

    premises: dict[str, str] = attrs.field(factory=dict)
    entailments: dict[str, list[str]] = attrs.field(factory=dict)
    contradictions: dict[str, list[str]] = attrs.field(factory=dict)
    neutral: int = 0

    def add(self, premise: str, hypothesis: str, label: int) -> None:
        key = text_key(premise)
        self.premises.setdefault(key, premise)
        if label == 0:
            self.entailments.setdefault(key, []).append(hypothesis)
        elif label == 2:
            self.contradictions.setdefault(key, []).append(hypothesis)
        else:
            self.neutral += 1


def group_premises(premises: Sequence[str], hypotheses: Sequence[str], labels: Sequence[int]) -> PremiseGroups:
    """Group NLI records (labels already read: 0, 1 or 2) by premise."""
    groups = PremiseGroups()
    for premise, hypothesis, label in zip(premises, hypotheses, labels):
        groups.add(premise, hypothesis, label)
    return groups
