"""Extract WordNet 3.0's finance, economics, banking and accounting domains into embedtune-finance's data file.

Reads the WordNet database files of Debian's ``wordnet-base`` package (``apt-get install
wordnet-base``; files under ``/usr/share/wordnet``) and writes one JSON line per synset whose
topic domain is finance, economics, banking, accounting, commerce, business, tax, the stock market
or investing (or a sub-domain of one of these), plus every noun of WordNet's ``noun.possession``
file (money, securities, debts, payments, taxes, ...), with its hypernyms and their hypernyms (by
synset id, for finding sibling and cousin terms):

    {"id": "13417410-n", "pos": "n", "terms": ["bond", "bond certificate"], "definition": "...",
     "examples": ["..."], "hypernyms": ["..."], "grand_hypernyms": ["..."], "antonyms": [],
     "domain": "possession"}

plus ``WORDNET_LICENSE.txt`` beside it (WordNet's licence asks that its notice travel with every
copy). The output is sorted by synset id, so a rerun gives the same bytes.

    python scripts/extract_wordnet.py [--wordnet-dir /usr/share/wordnet] [--out embedtune_finance/data]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

#: topic-domain synsets (offset, pos) that define this pack's domain; sub-domains (hyponyms of
#: these that are themselves topic domains) are added automatically.
DOMAIN_ROOTS = {
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
}
#: whole lexicographer files to include as well: noun.possession (money, securities, debts, ...)
LEXNAMES: dict[str, str] = {"21": "possession"}
OUTPUT_NAME = "wordnet_finance.jsonl"

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


def domain_members(synsets: dict) -> dict[tuple[str, str], str]:
    """Synset key -> domain label, for the roots, their sub-domains and every member."""
    roots = dict(DOMAIN_ROOTS)
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
        if key[1] == "n" and synset["lexfile"] in LEXNAMES:
            members.setdefault(key, LEXNAMES[synset["lexfile"]])
    return members


def extract(wordnet_dir: Path) -> list[dict]:
    synsets = read_synsets(wordnet_dir)
    members = domain_members(synsets)
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


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent.parent
    default_out = here / here.name.replace("embedtune-", "embedtune_") / "data"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wordnet-dir", type=Path, default=Path("/usr/share/wordnet"))
    parser.add_argument("--out", type=Path, default=default_out, help="folder for the data file")
    args = parser.parse_args(argv)
    if not (args.wordnet_dir / "data.noun").exists():
        print(f"error: no WordNet database in {args.wordnet_dir}; apt-get install wordnet-base", file=sys.stderr)
        return 2
    rows = extract(args.wordnet_dir)
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / OUTPUT_NAME
    with open(target, "w", encoding="utf-8", newline="\n") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    (args.out / "WORDNET_LICENSE.txt").write_text(LICENSE, encoding="utf-8")
    print(f"wrote {len(rows)} synsets to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
