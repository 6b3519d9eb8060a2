"""Text: when two texts are the same, and checks on text and parsed values that every reader of
user input shares.

**Comparing texts** has one function per meaning:

- :func:`text_key`: the same text, up to Unicode compatibility forms (NFKC), case and spacing.
  Anchors, premises, duplicate records, leakage between splits and a negative equal to its
  positive are all judged with it.
- :func:`loose_text_key`: the same wording, punctuation ignored too (``"The fever."`` and
  ``"the  FEVER"``). Miners judge candidates with it: a candidate that differs from a positive, or
  from another candidate, only in punctuation is no new negative.
- :func:`term_key`: the words of a term, lower-cased (hyphens and apostrophes inside a word
  kept), for finding a term's mentions inside texts (taxonomies, abbreviation lists).
- :func:`words` and :func:`jaccard`: a text's words and the overlap of two word sets.

**Checking values:**

Values a parser accepts can still break what comes after it: an integer of thousands of digits
(Python refuses to convert it), nesting deep enough to exhaust the interpreter's recursion, a lone
UTF-16 surrogate from a ``\\ud800`` escape (Python holds it, but cannot write it as UTF-8), or
digits such as ``²`` that ``str.isdigit`` accepts and ``int`` refuses. The helpers here find them
without recursion, so a reader can name the place and refuse the value before anything else
touches it. Nothing here imports a third-party package.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from typing import Any, Iterator

#: the most digits Python converts between text and int (``sys.get_int_max_str_digits``)
INT_DIGITS = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 4300
#: nesting deeper than this in a config file or a data record is refused
MAX_DEPTH = 64
_ASCII_INT = re.compile(r"[0-9]+")
_NON_WORD = re.compile(r"[^\w]+")
_WORD = re.compile(r"[a-z0-9]+")
_TERM = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")
_SURROGATE = re.compile("[\ud800-\udfff]")


def shorten(text: Any, width: int = 40) -> str:
    """``text`` (``str()`` of it) cut to ``width`` characters with ``...`` when longer."""
    text = str(text)
    return text if len(text) <= width else text[: width - 3] + "..."


def ascii_int(text: str, max_digits: int = 9) -> int | None:
    """The integer written in ``text`` with the ASCII digits 0-9 only (no sign, no spaces), or
    None: ``"10"`` -> 10; ``"²"``, ``"1 0"``, ``"-1"`` and more than ``max_digits`` digits -> None."""
    if not isinstance(text, str) or len(text) > max_digits or not _ASCII_INT.fullmatch(text):
        return None
    return int(text)


def text_key(text: str) -> str:
    """The key two texts share when they are the same up to Unicode compatibility forms (NFKC:
    full-width letters, ligatures...), case and spacing."""
    text = str(text)
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return " ".join(text.split()).casefold()


def loose_text_key(text: str) -> str:
    """:func:`text_key` with punctuation ignored too: runs of characters that are not letters,
    digits or ``_`` count as one space. ``"The fever."`` and ``"the  FEVER"`` share it."""
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", str(text)).casefold()).strip()


def term_key(text: str) -> str:
    """``text`` lower-cased, as its words joined by single spaces (hyphens and apostrophes
    inside a word kept): the key a term and its mentions are matched on."""
    return " ".join(_TERM.findall(str(text).lower()))


def words(text: str) -> list[str]:
    """The lower-cased runs of ASCII letters and digits in ``text``: ``"Non-Compete" -> ["non", "compete"]``."""
    return _WORD.findall(str(text).lower())


def jaccard(a: set[str], b: set[str]) -> float:
    """``|a & b| / |a | b|``; 0.0 when both are empty."""
    if not a and not b:
        return 0.0
    return len(a & b) / len(a | b)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: the fewest single-character insertions, deletions and
    substitutions that turn ``a`` into ``b``."""
    previous = list(range(len(b) + 1))
    for i, char in enumerate(a, 1):
        current = [i]
        for j, other in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char != other)))
        previous = current
    return previous[-1]


def lone_surrogate(text: str) -> str | None:
    """The first lone surrogate in ``text`` as a ``\\uXXXX`` escape, or None."""
    match = _SURROGATE.search(text)
    return None if match is None else f"\\u{ord(match.group()):04x}"


def _children(value: Any, path: tuple) -> Iterator[tuple[tuple, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield path + (key,), item
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield path + (index,), item


def find_problem(value: Any, max_depth: int = MAX_DEPTH) -> tuple[tuple, str] | None:
    """The first place in a parsed value (dicts, lists, scalars) that the code after a parser
    cannot handle: ``(path, what)`` where ``path`` is the keys and indexes leading to it, or None.

    Problems: nesting deeper than ``max_depth``; a string (value or key) holding a lone
    surrogate; an int too large to print (more than :data:`INT_DIGITS` digits). Walks the value
    with an explicit stack, so any depth is safe.
    """
    stack = [((), value, 0)]
    while stack:
        path, item, depth = stack.pop()
        if depth > max_depth:
            return path, f"nested more than {max_depth} levels deep"
        if isinstance(item, str):
            bad = lone_surrogate(item)
            if bad:
                return path, f"holds a lone surrogate ({bad}), which is not valid Unicode text"
        elif isinstance(item, int) and not isinstance(item, bool) and item.bit_length() > INT_DIGITS * 3.32:
            return path, f"holds an integer of more than {INT_DIGITS} digits"
        if isinstance(item, dict):
            for key in item:
                if isinstance(key, str) and lone_surrogate(key):
                    return path + (key,), f"has a key with a lone surrogate ({lone_surrogate(key)}), which is not valid Unicode text"
        children = list(_children(item, path))
        stack.extend((p, v, depth + 1) for p, v in reversed(children))
    return None


def dotted(path: tuple, width: int = 60) -> str:
    """A path of keys and indexes as ``a.b[0].c``, shortened to ``width`` characters."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return shorten(text, width)


def long_digit_run(text: str, limit: int = INT_DIGITS) -> int | None:
    """The 1-based line of the first run of more than ``limit`` decimal digits (``_`` allowed
    between them, as TOML writes them) in ``text``, or None."""
    match = re.search(r"[0-9](?:_?[0-9]){%d,}" % limit, text)
    return None if match is None else text.count("\n", 0, match.start()) + 1


def deepest_line(text: str, limit: int = MAX_DEPTH) -> int | None:
    """The 1-based line where brackets (``[`` / ``{``) first nest more than ``limit`` deep in
    ``text``, or None. Brackets inside quotes count too: this only locates an error."""
    depth = 0
    for index, char in enumerate(text):
        if char in "[{":
            depth += 1
            if depth > limit:
                return text.count("\n", 0, index) + 1
        elif char in "]}":
            depth = max(0, depth - 1)
    return None
