"""The error messages listed in docs/troubleshooting.md, as patterns a real message can match.

Each table row starts with the message in backticks; ``<...>`` stands for a name, value or
number, ``...`` for the rest of a longer message.
"""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "troubleshooting.md"
AREAS = ("Command line", "Config files", "Data", "IR folders", "TREC qrels and run files", "Plugins and components",
         "Models", "Training", "Mining", "Evaluation", "Run folders")


def templates() -> list[str]:
    return re.findall(r"^\| `([^`]+)` \|", DOC.read_text(encoding="utf-8"), flags=re.M)


def _pattern(template: str) -> re.Pattern:
    parts = re.split(r"(<[^>]+>|\.\.\.)", template)
    regex = "".join(".+?" if p.startswith("<") else ".*" if p == "..." else re.escape(p) for p in parts)
    return re.compile(regex + r"\.?$")


PATTERNS = [(t, _pattern(t)) for t in templates()]


def message_of(stderr: str) -> str:
    """The line of the ``error: ...`` message in ``stderr``, without ``error: ``."""
    for line in stderr.splitlines():
        if "error: " in line:
            return line.split("error: ", 1)[1]
    return stderr.strip().splitlines()[0] if stderr.strip() else ""


def documented(stderr: str) -> str | None:
    """The template in docs/troubleshooting.md that the message matches, or None."""
    line = message_of(stderr)
    for template, pattern in PATTERNS:
        if pattern.search(line):
            return template
    return None
