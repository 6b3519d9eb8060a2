"""Comparing texts: the normalised form two texts share, and their words."""

from __future__ import annotations

import re
import unicodedata

_NON_WORD = re.compile(r"[^\w]+")
_WORD = re.compile(r"[a-z0-9]+")


def match_text(text: str) -> str:
    """The form texts are compared in: Unicode NFKC, case-folded, punctuation removed, spaces
    collapsed. ``"The fever."`` and ``"the  FEVER"`` compare equal."""
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", str(text)).casefold()).strip()


def words(text: str) -> list[str]:
    """The lower-cased runs of letters and digits in ``text``: ``"Non-Compete" -> ["non", "compete"]``."""
    return _WORD.findall(text.lower())


def jaccard(a: set[str], b: set[str]) -> float:
    """``|a & b| / |a | b|``; 0.0 when both are empty."""
    if not a and not b:
        return 0.0
    return len(a & b) / len(a | b)
