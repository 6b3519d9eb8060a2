"""``ontology-siblings``: hard negatives from sibling terms in a medical ontology and from
confusable expansions of clinical abbreviations.

Two phenotypes under the same parent in the HPO read alike and mean different things (*Mitral
stenosis* and *Mitral regurgitation* are both an *Abnormal mitral valve physiology*); so do two
expansions of one abbreviation (*MS*: multiple sclerosis, mitral stenosis, morphine sulfate).
For each (anchor, positive) row the miner finds the term the positive names (an exact
name, synonym or document match, else the longest name it mentions; an abbreviation in the
anchor is expanded to find it), then picks, in order:

1. ``sibling``: texts naming a term with the same is-a parent (never an ancestor or descendant);
2. ``abbreviation``: texts mentioning another expansion of an abbreviation that the anchor uses
   or whose expansion the anchor or positive mentions (``data/abbreviations.tsv``);
3. ``cousin``: texts naming a term with the same grandparent.

Inside a tier, the closest in wording to the positive come first (with a model: the closest to
the anchor). ``ontology = "icd10"`` uses the ICD-10 hierarchy instead of the HPO.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from typing import Annotated, Any, Literal, Sequence

import attrs

from embedtune_core.mining import GuardOptions, TieredMiner, TieredSource, jaccard, words
from embedtune_core.mining.taxonomy import Taxonomy, concept_index
from embedtune_core.text import term_key



class Abbreviations:
    """Clinical abbreviations and their expansions (several for an ambiguous abbreviation)."""

    def __init__(self, rows: Sequence[tuple[str, str]]) -> None:
        self.expansions: dict[str, list[str]] = {}
        self.abbreviations_of: dict[str, list[str]] = {}
        for abbreviation, expansion in rows:
            self.expansions.setdefault(abbreviation, []).append(expansion)
            self.abbreviations_of.setdefault(term_key(expansion), []).append(abbreviation)
        self._token = re.compile(r"\b(" + "|".join(sorted(map(re.escape, self.expansions), key=len, reverse=True))
                                 + r")\b") if self.expansions else None

    @classmethod
    def bundled(cls) -> "Abbreviations":
        """The table shipped in this pack (``embedtune_medical/data/abbreviations.tsv``)."""
        text = resources.files("embedtune_medical").joinpath("data", "abbreviations.tsv").read_text(encoding="utf-8")
        rows = []
        for line in text.splitlines():
            if line.strip() and not line.startswith("#"):
                abbreviation, _, expansion = line.partition("\t")
                rows.append((abbreviation.strip(), expansion.strip()))
        return cls(rows)

    def abbreviations_in(self, text: str) -> list[str]:
        """Abbreviations written in ``text`` (case-sensitive: "MS", not "ms")."""
        return list(dict.fromkeys(self._token.findall(text))) if self._token else []

    def expansions_in(self, text: str) -> list[str]:
        """Expansions mentioned in ``text`` (whole words, any case)."""
        padded = f" {term_key(text)} "
        return [e for e in self.abbreviations_of if f" {e} " in padded]

    def expand(self, text: str) -> list[str]:
        """``text`` with each abbreviation it contains replaced by each of its expansions."""
        variants = []
        for abbreviation in self.abbreviations_in(text):
            for expansion in self.expansions[abbreviation]:
                variants.append(re.sub(rf"\b{re.escape(abbreviation)}\b", expansion, text))
        return variants

    def confusables(self, *texts: str) -> list[str]:
        """Other expansions of the abbreviations the texts use or whose expansions they mention."""
        own: set[str] = set()
        abbreviations: list[str] = []
        for text in texts:
            abbreviations += self.abbreviations_in(text)
            for expansion in self.expansions_in(text):
                own.add(expansion)
                abbreviations += self.abbreviations_of[expansion]
        out = []
        for abbreviation in dict.fromkeys(abbreviations):
            for expansion in self.expansions[abbreviation]:
                key = term_key(expansion)
                if key not in own and key not in out:
                    out.append(key)
        return out


@lru_cache(maxsize=1)
def hpo_taxonomy() -> Taxonomy:
    """The HPO as a taxonomy: names and exact synonyms as terms, is-a parents."""
    from embedtune_medical.readers import hpo_terms, render_term

    return Taxonomy(
        ({
            "id": t.id,
            "terms": [t.name] + [s.text for s in t.synonyms if s.scope == "EXACT"],
            "definition": t.definition,
            "texts": [render_term(t)],
            "parents": list(t.parents),
        } for t in hpo_terms().values()),
        max_mention_words=8,
    )


@lru_cache(maxsize=1)
def icd10_taxonomy() -> Taxonomy:
    """ICD-10 as a taxonomy: chapter > block > category > subcategory."""
    from embedtune_medical.readers import icd_items, icd_records

    return Taxonomy(icd_records(icd_items()), max_mention_words=8)


@attrs.frozen
class OntologySiblingsOptions(GuardOptions):
    """The guards, and where candidates come from."""

    ontology: Annotated[Literal["hpo", "icd10"], "the hierarchy siblings come from"] = "hpo"
    abbreviations: Annotated[bool, "propose other expansions of the abbreviations an anchor uses"] = True
    cousins: Annotated[bool, "after siblings, propose terms with the same grandparent"] = True


class OntologySiblingsMiner(TieredMiner):
    """Negatives naming sibling terms in the HPO (or ICD-10) and confusable abbreviation expansions."""

    name = "ontology-siblings"

    def __init__(self, options: OntologySiblingsOptions) -> None:
        super().__init__(options)

    def taxonomy(self) -> Taxonomy:
        return hpo_taxonomy() if self.options.ontology == "hpo" else icd10_taxonomy()

    def tiers(self, data: Any, request: Any):
        pool = data.corpus
        taxonomy = self.taxonomy()
        table = Abbreviations.bundled() if self.options.abbreviations else None
        per_text, by_concept = concept_index(taxonomy, pool)
        pool_words = [set(words(t)) for t in pool]
        padded_pool = [f" {term_key(t)} " for t in pool]
        mentions: dict[str, list[int]] = {}

        def mentioning(expansion: str) -> list[int]:
            if expansion not in mentions:
                mentions[expansion] = [i for i, t in enumerate(padded_pool) if f" {expansion} " in t]
            return mentions[expansion]

        def usable(concepts: list[str], index: int) -> bool:
            return not any(taxonomy.related(c, o) for c in concepts for o in per_text[index])

        def ranked(found: list[int], positive_words: set[str]) -> list[int]:
            found = list(dict.fromkeys(found))
            found.sort(key=lambda i: (-jaccard(positive_words, pool_words[i]), i))
            return found

        def concepts_of(anchor: str, positive: str) -> list[str]:
            concepts = taxonomy.resolve(positive) or taxonomy.resolve(anchor)
            if not concepts and table is not None:
                for variant in table.expand(anchor):
                    concepts = taxonomy.resolve(variant)
                    if concepts:
                        break
            return concepts

        def abbreviation_tier(anchor: str, positive: str, concepts: list[str]) -> list[int]:
            own = {f" {e} " for e in table.expansions_in(positive)}
            return [i for expansion in table.confusables(anchor, positive) for i in mentioning(expansion)
                    if usable(concepts, i) and not any(o in padded_pool[i] for o in own)]

        def row_tiers(anchor: str, positive: str):
            concepts = concepts_of(anchor, positive)
            positive_words = set(words(positive))
            siblings = [s for c in concepts for s in taxonomy.siblings(c)]
            tiers = [("sibling", ranked([i for s in siblings for i in by_concept.get(s, ()) if usable(concepts, i)],
                                        positive_words))]
            if table is not None:
                tiers.append(("abbreviation", ranked(abbreviation_tier(anchor, positive, concepts), positive_words)))
            if self.options.cousins:
                cousins = [s for c in concepts for s in taxonomy.cousins(c)]
                tiers.append(("cousin", ranked([i for s in cousins for i in by_concept.get(s, ())
                                                if usable(concepts, i)], positive_words)))
            return tiers

        return TieredSource.from_rows(data, row_tiers)
