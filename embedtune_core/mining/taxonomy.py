"""A small is-a taxonomy: concepts with terms, definitions and parents; which concept a text is
about; which concepts are its siblings (same parent) and cousins (same grandparent).

For miners that pick negatives from a domain's hierarchy (an ontology, a thesaurus, WordNet's
hypernyms): a sibling of the concept a positive names is a good hard negative, an ancestor or a
descendant never is (:meth:`Taxonomy.related`). :func:`concept_index` maps a candidate pool to
concepts once, for the tiers of a :class:`~embedtune_core.mining.miner.TieredMiner`. Standard library only.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from embedtune_core.text import term_key

__all__ = ["Taxonomy", "concept_index"]


class Taxonomy:
    """Concepts by id. ``records`` are mappings with ``id``, ``terms`` (names, best first),
    optional ``definition``, ``texts`` (other exact renderings, e.g. a reader's documents),
    ``parents`` and optional ``grandparents`` (ids, which need not be concepts themselves)."""

    def __init__(self, records: Iterable[Mapping[str, Any]], *, max_mention_words: int = 6) -> None:
        self.terms: dict[str, list[str]] = {}
        self.parents: dict[str, list[str]] = {}
        self.grandparents: dict[str, list[str]] = {}
        self.children: dict[str, list[str]] = {}
        self.exact: dict[str, list[str]] = {}
        self.mentions: dict[str, list[str]] = {}
        self.max_mention_words = max_mention_words
        for record in records:
            cid = str(record["id"])
            terms = [str(t) for t in record.get("terms", ()) if str(t).strip()]
            self.terms[cid] = terms
            self.parents[cid] = [str(p) for p in record.get("parents", ())]
            if record.get("grandparents") is not None:
                self.grandparents[cid] = [str(g) for g in record["grandparents"]]
            for parent in self.parents[cid]:
                self.children.setdefault(parent, []).append(cid)
            texts = list(terms) + [str(t) for t in record.get("texts", ())]
            if record.get("definition"):
                texts.append(str(record["definition"]))
            for text in texts:
                key = term_key(text)
                if key:
                    _add(self.exact, key, cid)
            for term in terms:
                key = term_key(term)
                if key and len(key.split()) <= max_mention_words:
                    _add(self.mentions, key, cid)
        self._ancestors: dict[str, frozenset[str]] = {}
        self._by_grandparent: dict[str, list[str]] | None = None

    def __contains__(self, cid: str) -> bool:
        return cid in self.terms

    def __len__(self) -> int:
        return len(self.terms)

    # -- which concept a text is about ------------------------------------------------------------
    def resolve(self, text: str) -> list[str]:
        """The concepts ``text`` names: an exact match of a term or rendering first, else the
        longest term mentioned in it (all concepts sharing that term)."""
        key = term_key(text)
        if key in self.exact:
            return list(self.exact[key])
        tokens = key.split()
        for size in range(min(self.max_mention_words, len(tokens)), 0, -1):
            found: list[str] = []
            for start in range(len(tokens) - size + 1):
                for cid in self.mentions.get(" ".join(tokens[start:start + size]), ()):
                    if cid not in found:
                        found.append(cid)
            if found:
                return found
        return []

    # -- neighbours -----------------------------------------------------------------------------
    def ancestors(self, cid: str) -> frozenset[str]:
        """Every concept above ``cid`` (parents, their parents, ...) plus its given grandparents."""
        cached = self._ancestors.get(cid)
        if cached is not None:
            return cached
        seen: set[str] = set()
        stack = list(self.parents.get(cid, ()))
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            stack.extend(self.parents.get(node, ()))
        seen.update(self.grandparents.get(cid, ()))
        result = frozenset(seen)
        self._ancestors[cid] = result
        return result

    def related(self, a: str, b: str) -> bool:
        """True when one is an ancestor of the other (a kind of the other: not a negative)."""
        return a == b or a in self.ancestors(b) or b in self.ancestors(a)

    def siblings(self, cid: str) -> list[str]:
        """Concepts sharing a parent with ``cid``, neither an ancestor nor a descendant of it."""
        out: list[str] = []
        for parent in self.parents.get(cid, ()):
            for other in self.children.get(parent, ()):
                if other not in out and not self.related(cid, other):
                    out.append(other)
        return out

    def _grandparents(self, cid: str) -> list[str]:
        if cid in self.grandparents:
            return self.grandparents[cid]
        return [g for p in self.parents.get(cid, ()) for g in self.parents.get(p, ())]

    def cousins(self, cid: str) -> list[str]:
        """Concepts sharing a grandparent (but no parent) with ``cid``, unrelated to it."""
        siblings = set(self.siblings(cid))
        mine = set(self._grandparents(cid))
        if not mine:
            return []
        out: list[str] = []
        candidates: Iterable[str]
        if cid in self.grandparents:  # grandparents given per concept: look them up
            if self._by_grandparent is None:
                self._by_grandparent = {}
                for concept, grands in self.grandparents.items():
                    for g in grands:
                        self._by_grandparent.setdefault(g, []).append(concept)
            candidates = (c for g in mine for c in self._by_grandparent.get(g, ()))
        else:
            candidates = (c for g in mine for p in self.children.get(g, ()) for c in self.children.get(p, ()))
        for other in candidates:
            if other not in out and other not in siblings and not self.related(cid, other):
                out.append(other)
        return out


def _add(index: dict[str, list[str]], key: str, cid: str) -> None:
    bucket = index.setdefault(key, [])
    if cid not in bucket:
        bucket.append(cid)


def concept_index(taxonomy: Taxonomy, pool: Sequence[str]) -> tuple[list[list[str]], dict[str, list[int]]]:
    """Each pool text's concepts, and concept -> pool indices."""
    per_text = [taxonomy.resolve(text) for text in pool]
    by_concept: dict[str, list[int]] = {}
    for index, concepts in enumerate(per_text):
        for cid in concepts:
            by_concept.setdefault(cid, []).append(index)
    return per_text, by_concept
