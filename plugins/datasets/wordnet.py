"""The WordNet 3.0 sets: ``wordnet-plants`` and ``wordnet-animals`` (domains the base MiniLM is
weak at) and ``wordnet-general`` (everyday English, a retention set), term -> gloss retrieval from
extracts shipped in this package."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Mapping

import attrs

from embedtune_core.data.splits import ConnectedGroups, hash_fraction
from embedtune_core.errors import DataError
from embedtune_core.text import text_key
from embedtune_core.types import DataBundle, IRData
from embedtune_plugins.datasets.packaged import SEED, WORDNET_INFO

#: what `embedtune data list` shows for wordnet-plants
WORDNET_PLANTS: dict[str, Any] = {
    "dataset_type": "ir",
    "description": "botany IR: plant, fungus or genus name -> its WordNet 3.0 gloss (noun.plant; split by connected terms)",
    "size": "train 3,838 queries over 1,713 definitions; test 1,004 queries over 4,000 definitions",
    "licence": "WordNet 3.0 licence (attribution; notice shipped)",
    "package": None,
}

#: what `embedtune data list` shows for wordnet-animals
WORDNET_ANIMALS: dict[str, Any] = {
    "dataset_type": "ir",
    "description": "zoology IR: animal, breed or genus name -> its WordNet 3.0 gloss (noun.animal; split by connected terms)",
    "size": "train 3,881 queries over 1,962 definitions; test 1,002 queries over 4,000 definitions",
    "licence": "WordNet 3.0 licence (attribution; notice shipped)",
    "package": None,
}

#: what `embedtune data list` shows for wordnet-general
WORDNET_GENERAL: dict[str, Any] = {
    "dataset_type": "ir",
    "description": "general English IR (retention check): word -> WordNet 3.0 gloss, every part of speech (split by connected terms)",
    "size": "train 3,529 queries over 1,898 definitions; test 500 queries over 2,000 definitions",
    "licence": "WordNet 3.0 licence (attribution; notice shipped)",
    "package": None,
}
SETS = {"wordnet-plants": WORDNET_PLANTS, "wordnet-animals": WORDNET_ANIMALS, "wordnet-general": WORDNET_GENERAL}


#: the WordNet extracts shipped in this package: set name -> file under data/
WORDNET_FILES = {
    "wordnet-plants": "wordnet_plants.jsonl",
    "wordnet-animals": "wordnet_animals.jsonl",
    "wordnet-general": "wordnet_general.jsonl",
}


def data_file(name: str) -> Path:
    """A data file shipped in the ``embedtune_plugins/data/`` folder."""
    path = Path(__file__).resolve().parent.parent / "data" / name
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
    from embedtune_core.data.formats import read_jsonl

    table = read_jsonl(data_file(WORDNET_FILES[name]))
    for index, record in enumerate(table.rows):
        if not isinstance(record.get("terms"), list) or not isinstance(record.get("definition"), str):
            raise DataError("a WordNet record needs 'terms' (a list) and 'definition'", **table.where(index))
    return tuple(table.rows)


@attrs.define
class TermTexts:
    """Terms and definitions of term -> definition data, by id, and the edges between them."""

    term_text: dict[str, str]  # normalised term -> first spelling
    doc_id_of: dict[str, str]  # normalised definition -> concept id (first wins)
    definitions: dict[str, str]  # doc id -> text
    query_id_of: dict[str, str]  # normalised term -> query id
    edges: list[tuple[str, str]]

    @classmethod
    def of(cls, concepts: list[tuple[str, list[str], str]]) -> "TermTexts":
        texts = cls({}, {}, {}, {}, [])
        for concept_id, terms, definition in concepts:
            definition = " ".join(definition.split())
            if not definition:
                continue
            doc_id = texts.doc_id_of.setdefault(text_key(definition), concept_id)
            texts.definitions.setdefault(doc_id, definition)
            for position, term in enumerate(terms):
                key = text_key(term)
                if not key:
                    continue
                texts.term_text.setdefault(key, " ".join(term.split()))
                texts.query_id_of.setdefault(key, f"{concept_id}/{position}")
                texts.edges.append((key, doc_id))
        return texts

    def groups(self) -> list[dict[str, Any]]:
        """The connected groups: ``{"terms": {term: {doc id: 1}}, "docs": [doc id, ...]}``."""
        components = ConnectedGroups()
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
    texts = TermTexts.of(concepts)
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
            "builder": f"embedtune_plugins.datasets.wordnet.{name.replace('-', '_')}",
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
        "description": SETS[name]["description"],
        "source": f"WordNet 3.0 (Debian wordnet-base 1:3.0-37): {selection}; "
        f"shipped as embedtune_plugins/data/{WORDNET_FILES[name]}",
        **WORDNET_INFO,
    }


def wordnet_plants(source: Any = None) -> DataBundle:
    """Botany: a plant's (fungus's, genus's...) name -> its WordNet gloss, over every synset of the
    lexicographer file ``noun.plant`` (8,030 synsets, 17.7k names; genera and families included).
    Latin binomials and genus names are queries too (``Morus rubra`` -> "North American mulberry
    having dark purple edible fruit")."""
    return term_definition_bundle(
        _wordnet_concepts("wordnet-plants"), name="wordnet-plants", test_queries=1000, test_corpus=4000,
        train_pairs=4000, info=_wordnet_info("wordnet-plants", "every synset of noun.plant"),
    )


def wordnet_animals(source: Any = None) -> DataBundle:
    """Zoology: an animal's (breed's, genus's...) name -> its WordNet gloss, over every synset of
    the lexicographer file ``noun.animal`` (7,509 synsets, 14.3k names; genera and families
    included)."""
    return term_definition_bundle(
        _wordnet_concepts("wordnet-animals"), name="wordnet-animals", test_queries=1000, test_corpus=4000,
        train_pairs=4000, info=_wordnet_info("wordnet-animals", "every synset of noun.animal"),
    )


def wordnet_general(source: Any = None) -> DataBundle:
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
