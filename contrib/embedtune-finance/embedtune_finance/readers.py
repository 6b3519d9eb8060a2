"""Finance and economics terms from WordNet 3.0, shipped in this package, working offline.

``data/wordnet_finance.jsonl`` holds the 1,251 synsets whose topic domain is finance, economics,
banking, accounting, commerce, business, tax, the stock market or investing, plus WordNet's
``noun.possession`` nouns (money, securities, debts, payments), extracted by
``contrib/tools/extract_wordnet.py --pack finance`` from Debian's ``wordnet-base``.

- ``wordnet-finance``: definition -> term retrieval (a finance reverse dictionary), or term ->
  definition with ``direction = "term-definition"``.
- ``wordnet-finance-synonyms``: pairs of terms that WordNet lists as synonyms.

Both are split deterministically by concept (connected groups of texts), never by row.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Annotated, Any, Literal


from embedtune_core.data.splits import DEFAULT_EVAL_FRACTION, DEFAULT_SEED, EvalFraction, Seed, ir_bundle, pairs_bundle

WORDNET_FILE = "wordnet_finance.jsonl"
WORDNET_INFO = {
    "licence": "WordNet 3.0 licence (see embedtune_finance/data/WORDNET_LICENSE.txt)",
    "citation": "Princeton University. WordNet 3.0 (2006); George A. Miller (1995), WordNet: A Lexical "
    "Database for English, Communications of the ACM 38(11): 39-41",
}


@lru_cache(maxsize=1)
def _records() -> tuple[dict[str, Any], ...]:
    text = resources.files("embedtune_finance").joinpath("data", WORDNET_FILE).read_text(encoding="utf-8")
    return tuple(json.loads(line) for line in text.splitlines() if line.strip())


def wordnet_finance_records() -> list[dict[str, Any]]:
    """The shipped WordNet finance synsets, one dict per synset."""
    return [dict(r) for r in _records()]


def render_terms(record: dict[str, Any]) -> str:
    """A synset as a document: its terms, most common first (``"bond, bond certificate"``)."""
    return ", ".join(record["terms"])


def wordnet_finance(
    source: str | None,
    direction: Annotated[Literal["definition-term", "term-definition"],
                         "definition -> term (a reverse dictionary), or term -> definition"] = "definition-term",
    eval_fraction: EvalFraction = DEFAULT_EVAL_FRACTION,
    seed: Seed = DEFAULT_SEED,
):
    """WordNet's finance and economics terms: definition -> term retrieval (1,251 synsets)."""
    rows = []
    for record in wordnet_finance_records():
        if not record["definition"]:
            continue
        pair = (record["definition"], render_terms(record))
        query, doc = pair if direction == "definition-term" else pair[::-1]
        rows.append((record["id"], query, record["id"], doc))
    info = {**WORDNET_INFO, "description": f"WordNet 3.0 finance and economics, {direction.replace('-', ' -> ')}"}
    return ir_bundle(rows, eval_fraction=eval_fraction, seed=seed,
                     source="embedtune_finance/data/" + WORDNET_FILE, info=info)


def wordnet_finance_synonyms(source: str | None, eval_fraction: EvalFraction = DEFAULT_EVAL_FRACTION,
                             seed: Seed = DEFAULT_SEED):
    """Pairs of finance terms that WordNet lists as synonyms (split by connected terms)."""
    rows = []
    for record in wordnet_finance_records():
        terms = record["terms"]
        for i, first in enumerate(terms):
            for second in terms[i + 1:]:
                rows.append((first, second))
    info = {**WORDNET_INFO, "description": "WordNet 3.0 finance and economics: synonym pairs"}
    return pairs_bundle(rows, eval_fraction=eval_fraction, seed=seed,
                        source="embedtune_finance/data/" + WORDNET_FILE, info=info)
