"""``confusable-terms``: hard negatives that are sibling terms of the positive in WordNet.

Finance is full of terms that a general model treats as near-synonyms but that are different
instruments or quantities: a *bond* is not a *stock certificate*, a *debenture* is a bond with no
collateral, *revenue* is not *profit*. WordNet files such terms as hyponyms of the same hypernym
(bond and stock certificate are both kinds of *security*). For each (anchor, positive) row this
miner finds the concept the positive names (an exact term or document match, else the longest
term it mentions), then picks candidates that name a sibling concept (same hypernym), then a
cousin (same grandparent), closest in wording to the positive first (or, with a model, closest
to the anchor). Concepts that are a kind of the positive (or the reverse) are never picked.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any

import attrs

from embedtune_core.mining import GuardOptions, TieredMiner, TieredSource, jaccard, words
from embedtune_core.mining.taxonomy import Taxonomy, concept_index


@lru_cache(maxsize=1)
def finance_taxonomy() -> Taxonomy:
    """The shipped finance synsets as a taxonomy (hypernyms as parents)."""
    from embedtune_finance.readers import render_terms, wordnet_finance_records

    return Taxonomy(
        {
            "id": r["id"],
            "terms": r["terms"],
            "definition": r["definition"],
            "texts": [render_terms(r)],
            "parents": r["hypernyms"],
            "grandparents": r.get("grand_hypernyms", []),
        }
        for r in wordnet_finance_records()
    )


def sibling_candidates(taxonomy: Taxonomy, pool: list[str], *, cousins: bool = True):
    """``candidates(anchor, positive) -> [(tier, [pool indices])]``: sibling then cousin
    concepts' pool texts, ordered by word overlap with the positive."""
    per_text, by_concept = concept_index(taxonomy, pool)
    pool_words = [set(words(t)) for t in pool]

    def tier(concepts: list[str], neighbours: list[str], positive_words: set[str]) -> list[int]:
        found: list[int] = []
        for other in neighbours:
            for index in by_concept.get(other, ()):
                # a text that also names the positive's concept (or a kind of it) is no negative
                if any(taxonomy.related(c, o) for c in concepts for o in per_text[index]):
                    continue
                found.append(index)
        found = list(dict.fromkeys(found))
        found.sort(key=lambda i: (-jaccard(positive_words, pool_words[i]), i))
        return found

    def candidates(anchor: str, positive: str):
        concepts = taxonomy.resolve(positive) or taxonomy.resolve(anchor)
        positive_words = set(words(positive))
        siblings = [s for c in concepts for s in taxonomy.siblings(c)]
        tiers = [("sibling", tier(concepts, siblings, positive_words))]
        if cousins:
            cousin_ids = [s for c in concepts for s in taxonomy.cousins(c)]
            tiers.append(("cousin", tier(concepts, cousin_ids, positive_words)))
        return tiers

    return candidates


@attrs.frozen
class ConfusableTermsOptions(GuardOptions):
    """The guards, and how far from the positive's concept candidates come."""

    cousins: Annotated[bool, "after siblings, propose terms with the same grandparent"] = True


class ConfusableTermsMiner(TieredMiner):
    """Negatives naming sibling (same hypernym) or cousin terms of the positive's concept."""

    name = "confusable-terms"

    def __init__(self, options: ConfusableTermsOptions) -> None:
        super().__init__(options)

    def tiers(self, data: Any, request: Any):
        return TieredSource.from_rows(data, sibling_candidates(finance_taxonomy(), data.corpus,
                                                               cousins=self.options.cousins))
