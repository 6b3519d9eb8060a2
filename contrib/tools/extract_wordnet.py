"""Extract a slice of WordNet 3.0 into a data file: a domain pack's (legal, finance) or one of
embedtune's bundled sets (plants, animals, general).

Reads the WordNet database files of Debian's ``wordnet-base`` package (``apt-get install
wordnet-base``; files under ``/usr/share/wordnet``) and writes one JSON line per synset of the
slice, with its hypernyms and their hypernyms (by synset id, for finding sibling and cousin
terms):

    {"id": "13417410-n", "pos": "n", "terms": ["bond", "bond certificate"], "definition": "...",
     "examples": ["..."], "hypernyms": ["..."], "grand_hypernyms": ["..."], "antonyms": [],
     "domain": "possession"}

plus ``WORDNET_LICENSE.txt`` beside it (WordNet's licence asks that its notice travel with every
copy). The output is sorted by synset id, so a rerun gives the same bytes.

- ``--pack legal`` -> ``embedtune_legal/data/wordnet_law.jsonl``: every synset whose topic domain
  is law or one of law's sub-domains (civil law, case law, legislation, ...).
- ``--pack finance`` -> ``embedtune_finance/data/wordnet_finance.jsonl``: every synset whose topic
  domain is finance, economics, banking, accounting, commerce, business, tax, the stock market or
  investing (or a sub-domain of one of these), plus every noun of WordNet's ``noun.possession``
  file (money, securities, debts, payments, taxes, ...).
- ``--set plants`` -> ``plugins/data/wordnet_plants.jsonl``: every synset of the lexicographer
  file ``noun.plant`` (botany: plants, fungi, their genera and families); ``domain`` "plant".
- ``--set animals`` -> ``plugins/data/wordnet_animals.jsonl``: every synset of ``noun.animal``
  (zoology: animals, breeds, their genera and families); ``domain`` "animal".
- ``--set general`` -> ``plugins/data/wordnet_general.jsonl``: a fixed sample of 5,000 synsets of
  everyday English, drawn from every part of speech and lexicographer file except
  ``noun.plant`` and ``noun.animal`` (the domain sets): only synsets that are a sense-tagged
  (SemCor-counted) sense of at least one of their words, i.e. senses that occur in running text;
  the sample is the 5,000 with the smallest SHA-1 of their synset id. ``domain`` is the
  lexicographer file's name (``noun.artifact``, ``verb.motion``, ``adj.all``, ...).

    python contrib/tools/extract_wordnet.py --set legal|finance|plants|animals|general [--wordnet-dir /usr/share/wordnet] [--out DIR]

(``--pack legal|finance`` is the same as ``--set``.)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Domain:
    """One slice of WordNet."""

    #: topic-domain synsets (offset, pos) -> label; sub-domains (hyponyms of these that are
    #: themselves topic domains) are added automatically.
    roots: dict[tuple[str, str], str]
    #: whole lexicographer files (by number) to include as well -> label
    lexnames: dict[str, str]
    output_name: str
    #: where the file goes by default: a pack's data folder ("pack") or the built-ins' ("bundled")
    target: str = "pack"
    #: a general sample instead of a domain: this many sense-tagged synsets of every
    #: lexicographer file except ``exclude_lexnames``, chosen by the SHA-1 of their id
    sample: int | None = None
    exclude_lexnames: frozenset = frozenset()


DOMAINS = {
    "legal": Domain(
        roots={("08441203", "n"): "law", ("00611143", "n"): "law"},
        lexnames={},
        output_name="wordnet_law.jsonl",
    ),
    "finance": Domain(
        roots={
            ("06150633", "n"): "finance",
            ("06149484", "n"): "economics",
            ("01100658", "n"): "banking",
            ("01100273", "n"): "banking",
            ("05662532", "n"): "accounting",
            ("00618734", "n"): "accounting",
            ("01090446", "n"): "commerce",
            ("01094725", "n"): "business",
            ("08061042", "n"): "business",
            ("07966927", "n"): "business",
            ("13308999", "n"): "tax",
            ("04323026", "n"): "stock market",
            ("01099436", "n"): "investing",
        },
        lexnames={"21": "possession"},  # noun.possession: money, securities, debts, ...
        output_name="wordnet_finance.jsonl",
    ),
    "plants": Domain(roots={}, lexnames={"20": "plant"}, output_name="wordnet_plants.jsonl", target="bundled"),
    "animals": Domain(roots={}, lexnames={"05": "animal"}, output_name="wordnet_animals.jsonl", target="bundled"),
    "general": Domain(
        roots={},
        lexnames={},
        output_name="wordnet_general.jsonl",
        target="bundled",
        sample=5000,
        exclude_lexnames=frozenset({"05", "20"}),  # noun.animal, noun.plant: the domain sets
    ),
}

#: WordNet's lexicographer files by number (lexnames(5WN))
LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
    "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location "
    "noun.motive noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process "
    "noun.quantity noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change "
    "verb.cognition verb.communication verb.competition verb.consumption verb.contact verb.creation "
    "verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative verb.weather adj.ppl"
).split()

POS_FILES = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}

LICENSE = """WordNet Release 3.0

This software and database is being provided to you, the LICENSEE, by Princeton University
under the following license. By obtaining, using and/or copying this software and database,
you agree that you have read, understood, and will comply with these terms and conditions.:

Permission to use, copy, modify and distribute this software and database and its
documentation for any purpose and without fee or royalty is hereby granted, provided that you
agree to comply with the following copyright notice and statements, including the disclaimer,
and that the same appear on ALL copies of the software, database and documentation, including
modifications that you make for internal use or for distribution.

WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved.

THIS SOFTWARE AND DATABASE IS PROVIDED "AS IS" AND PRINCETON UNIVERSITY MAKES NO
REPRESENTATIONS OR WARRANTIES, EXPRESS OR IMPLIED. BY WAY OF EXAMPLE, BUT NOT LIMITATION,
PRINCETON UNIVERSITY MAKES NO REPRESENTATIONS OR WARRANTIES OF MERCHANTABILITY OR FITNESS FOR
ANY PARTICULAR PURPOSE OR THAT THE USE OF THE LICENSED SOFTWARE, DATABASE OR DOCUMENTATION
WILL NOT INFRINGE ANY THIRD PARTY PATENTS, COPYRIGHTS, TRADEMARKS OR OTHER RIGHTS.

The name of Princeton University or Princeton may not be used in advertising or publicity
pertaining to distribution of the software and/or database. Title to copyright in this
software, database and any associated documentation shall at all times remain with Princeton
University and LICENSEE agrees to preserve same.

This file accompanies an extract of the WordNet 3.0 database (Debian package wordnet-base):
only the synsets of one topic domain, with their definitions, examples, hypernym links and
antonyms, in JSON lines.
"""

#: the last paragraph of the notice beside the bundled sets' extracts
BUNDLED_NOTE = """This file accompanies extracts of the WordNet 3.0 database (Debian package wordnet-base),
in JSON lines with each synset's words, definition, examples, hypernym links and antonyms:
wordnet_plants.jsonl (every synset of the lexicographer file noun.plant), wordnet_animals.jsonl
(every synset of noun.animal) and wordnet_general.jsonl (a fixed sample of sense-tagged synsets
from every other lexicographer file). Made by contrib/tools/extract_wordnet.py in the embedtune
repository.
"""


def license_text(domain: Domain) -> str:
    """The WordNet notice, with a last paragraph saying what the extract beside it holds."""
    if domain.target != "bundled":
        return LICENSE
    return LICENSE.split("This file accompanies", 1)[0] + BUNDLED_NOTE


def _pos(ss_type: str) -> str:
    return "a" if ss_type == "s" else ss_type


def _term(word: str) -> str:
    return re.sub(r"\([a-z]+\)$", "", word).replace("_", " ")


def read_synsets(wordnet_dir: Path) -> dict[tuple[str, str], dict]:
    """Every synset of the four data files: words, pointers, lexicographer file and gloss."""
    synsets = {}
    for pos, name in POS_FILES.items():
        path = wordnet_dir / f"data.{name}"
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("  "):  # licence header
                    continue
                head, _, gloss = line.rstrip("\n").partition(" | ")
                fields = head.split()
                offset, lexfile, ss_type = fields[0], fields[1], fields[2]
                count = int(fields[3], 16)
                words = [fields[4 + 2 * i] for i in range(count)]
                i = 4 + 2 * count
                pointer_count = int(fields[i])
                i += 1
                pointers = []
                for _ in range(pointer_count):
                    symbol, target, target_pos, source_target = fields[i : i + 4]
                    pointers.append((symbol, target, _pos(target_pos), source_target))
                    i += 4
                synsets[(offset, _pos(ss_type))] = {
                    "words": words,
                    "pointers": pointers,
                    "lexfile": lexfile,
                    "gloss": gloss.strip(),
                }
    return synsets


def split_gloss(gloss: str) -> tuple[str, list[str]]:
    """``'definition; "example one"; "example two"'`` -> (definition, examples)."""
    examples = [e.strip() for e in re.findall(r'"([^"]+)"', gloss) if e.strip()]
    definition = gloss.split('"', 1)[0].strip().rstrip(";").strip()
    return definition, examples


def tagged_synsets(wordnet_dir: Path) -> set[tuple[str, str]]:
    """Synsets that are a sense-tagged sense of at least one of their words: in each ``index.POS``
    line the synsets are ordered by tag count, and the first ``tagsense_cnt`` of them were seen
    in the sense-tagged corpora (SemCor)."""
    tagged = set()
    for pos, name in POS_FILES.items():
        with open(wordnet_dir / f"index.{name}", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("  "):  # licence header
                    continue
                fields = line.split()
                synset_count, pointer_count = int(fields[2]), int(fields[3])
                i = 4 + pointer_count
                tag_count = int(fields[i + 1])
                for offset in fields[i + 2 : i + 2 + synset_count][:tag_count]:
                    tagged.add((offset, pos))
    return tagged


def sample_members(synsets: dict, domain: Domain, tagged: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Synset key -> lexicographer file name, for a general sample: the ``domain.sample``
    sense-tagged synsets outside ``domain.exclude_lexnames`` with the smallest SHA-1 of their
    id (``"00001740-n"``)."""
    candidates = [
        key for key in tagged if key in synsets and synsets[key]["lexfile"] not in domain.exclude_lexnames
    ]
    candidates.sort(key=lambda key: (hashlib.sha1(f"{key[0]}-{key[1]}".encode()).hexdigest(), key))
    return {key: LEXNAMES[int(synsets[key]["lexfile"])] for key in candidates[: domain.sample]}


def domain_members(synsets: dict, domain: Domain) -> dict[tuple[str, str], str]:
    """Synset key -> domain label, for the roots, their sub-domains and every member."""
    roots = dict(domain.roots)
    stack = list(roots)
    while stack:  # sub-domains: hyponyms of a root
        key = stack.pop()
        for symbol, target, pos, _ in synsets[key]["pointers"]:
            child = (target, pos)
            if symbol in ("~", "~i") and child not in roots:
                roots[child] = roots[key]
                stack.append(child)
    members = {}
    for key, synset in synsets.items():
        for symbol, target, pos, _ in synset["pointers"]:
            if symbol == ";c" and (target, pos) in roots:
                members.setdefault(key, roots[(target, pos)])
        if key[1] == "n" and synset["lexfile"] in domain.lexnames:
            members.setdefault(key, domain.lexnames[synset["lexfile"]])
    return members


def extract(wordnet_dir: Path, domain: Domain) -> list[dict]:
    """The rows of ``domain``'s data file, sorted by synset id."""
    synsets = read_synsets(wordnet_dir)
    if domain.sample is not None:
        members = sample_members(synsets, domain, tagged_synsets(wordnet_dir))
    else:
        members = domain_members(synsets, domain)
    rows = []
    for key in sorted(members):
        synset = synsets[key]
        definition, examples = split_gloss(synset["gloss"])
        terms = list(dict.fromkeys(_term(w) for w in synset["words"]))
        parents = [(t, p) for s, t, p, _ in synset["pointers"] if s in ("@", "@i")]
        hypernyms = [f"{t}-{p}" for t, p in parents]
        grand = [f"{t}-{p}" for key2 in parents for s, t, p, _ in synsets[key2]["pointers"] if s in ("@", "@i")]
        antonyms = []
        for symbol, target, pos, source_target in synset["pointers"]:
            if symbol != "!":
                continue
            source, target_word = int(source_target[:2], 16), int(source_target[2:], 16)
            other = synsets[(target, pos)]["words"]
            if source and target_word:
                antonyms.append([_term(synset["words"][source - 1]), _term(other[target_word - 1])])
        rows.append({
            "id": f"{key[0]}-{key[1]}",
            "pos": key[1],
            "terms": terms,
            "definition": definition,
            "examples": examples,
            "hypernyms": hypernyms,
            "grand_hypernyms": list(dict.fromkeys(grand)),
            "antonyms": antonyms,
            "domain": members[key],
        })
    return rows


def default_folder(name: str) -> Path:
    """Where ``--set name`` writes without ``--out``: the pack's data folder, or ``plugins/data``."""
    contrib = Path(__file__).resolve().parent.parent
    if DOMAINS[name].target == "bundled":
        return contrib.parent / "plugins" / "data"
    return contrib / f"embedtune-{name}" / f"embedtune_{name}" / "data"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--set", dest="name", choices=sorted(DOMAINS), help="the slice whose data file to write")
    which.add_argument("--pack", dest="name", choices=sorted(DOMAINS), help="the same as --set")
    parser.add_argument("--wordnet-dir", type=Path, default=Path("/usr/share/wordnet"))
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the data file (default: the pack's embedtune_PACK/data in contrib/, "
                             "or plugins/data for the bundled sets)")
    args = parser.parse_args(argv)
    domain = DOMAINS[args.name]
    out = args.out or default_folder(args.name)
    if not (args.wordnet_dir / "data.noun").exists():
        print(f"error: no WordNet database in {args.wordnet_dir}; apt-get install wordnet-base", file=sys.stderr)
        return 2
    rows = extract(args.wordnet_dir, domain)
    out.mkdir(parents=True, exist_ok=True)
    target = out / domain.output_name
    with open(target, "w", encoding="utf-8", newline="\n") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    (out / "WORDNET_LICENSE.txt").write_text(license_text(domain), encoding="utf-8")
    print(f"wrote {len(rows)} synsets to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
