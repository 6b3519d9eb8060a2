"""embedtune-medical: HPO and ICD-10 data sets and an ontology-aware negative miner for embedtune.

Installed, it registers through the ``embedtune`` entry point ``medical``; its components are
named ``medical:NAME`` (or just ``NAME`` while no other plugin uses the name).
"""

from embedtune_core import hookimpl

__version__ = "0.1.0"


@hookimpl
def register_dataset_readers(register):
    from embedtune_medical import readers

    register("hpo-synonyms", readers.hpo_synonyms, dataset_type="ir", bundled=True,
             description="medical IR: HPO exact and layperson synonym -> term name and definition (split by term)")
    register("icd10", readers.icd10, dataset_type="ir", bundled=True,
             description="medical IR: ICD-10 subcategory description -> its category (split by category)")


@hookimpl
def register_negative_miners(register):
    from embedtune_medical.miners import OntologySiblingsMiner

    register(
        "ontology-siblings",
        OntologySiblingsMiner,
        description="negatives naming sibling terms in the HPO (or ICD-10) and other expansions of an abbreviation",
    )
