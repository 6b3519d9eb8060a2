"""embedtune-legal: legal and regulatory data sets and a duty-aware negative miner for embedtune.

Installed, it registers through the ``embedtune`` entry point ``legal``; its components are named
``legal:NAME`` (or just ``NAME`` while no other plugin uses the name).
"""

from embedtune_core import hookimpl

__version__ = "0.1.0"

#: what `embedtune data list` shows for each bundled set (checked against the readers by the tests)
BUNDLED_SETS = {
    "regulatory-faq": {"size": "train 404 queries over 409 documents; test 93 queries over 503 documents",
                       "licence": "CC-BY-4.0"},
    "wordnet-law": {"size": "train 468 queries over 462 documents; test 139 queries over 599 documents",
                    "licence": "WordNet 3.0 licence"},
    "wordnet-law-synonyms": {"size": "train 374 pairs; test 55 pairs",
                             "licence": "WordNet 3.0 licence"},
}


@hookimpl
def register_dataset_readers(register):
    from embedtune_legal import readers

    register("regulatory-faq", readers.regulatory_faq, dataset_type="ir", bundled=True,
             description="regulatory IR: building-regulation FAQ, question -> answer (503 pairs, split by question)",
             **BUNDLED_SETS["regulatory-faq"])
    register("wordnet-law", readers.wordnet_law, dataset_type="ir", bundled=True,
             description="legal IR: WordNet law domain, definition -> term (609 synsets, split by concept)",
             **BUNDLED_SETS["wordnet-law"])
    register("wordnet-law-synonyms", readers.wordnet_law_synonyms, dataset_type="pairs", bundled=True,
             description="pairs: legal terms WordNet lists as synonyms (split by connected terms)",
             **BUNDLED_SETS["wordnet-law-synonyms"])


@hookimpl
def register_negative_miners(register):
    from embedtune_legal.miners import DutyContrastMiner

    register(
        "duty-contrast",
        DutyContrastMiner,
        description="negatives sharing the positive's boilerplate but not its duty (modal, obligation, negation)",
    )
