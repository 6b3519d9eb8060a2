"""embedtune-finance: finance and economics terms from WordNet and a confusable-terms miner.

Installed, it registers through the ``embedtune`` entry point ``finance``; its components are
named ``finance:NAME`` (or just ``NAME`` while no other plugin uses the name).
"""

from embedtune_core import hookimpl

__version__ = "0.1.0"

#: what `embedtune data list` shows for each bundled set (checked against the readers by the tests)
BUNDLED_SETS = {
    "wordnet-finance": {"size": "train 966 queries over 927 documents; test 283 queries over 1,203 documents",
                        "licence": "WordNet 3.0 licence"},
    "wordnet-finance-synonyms": {"size": "train 995 pairs; test 199 pairs",
                                 "licence": "WordNet 3.0 licence"},
}


@hookimpl
def register_dataset_readers(register):
    from embedtune_finance import readers

    register("wordnet-finance", readers.wordnet_finance, dataset_type="ir", bundled=True,
             description="finance IR: WordNet finance and economics, definition -> term "
             "(1,251 synsets, split by concept)",
             **BUNDLED_SETS["wordnet-finance"])
    register("wordnet-finance-synonyms", readers.wordnet_finance_synonyms, dataset_type="pairs", bundled=True,
             description="pairs: finance terms WordNet lists as synonyms (split by connected terms)",
             **BUNDLED_SETS["wordnet-finance-synonyms"])


@hookimpl
def register_negative_miners(register):
    from embedtune_finance.miners import ConfusableTermsMiner

    register(
        "confusable-terms",
        ConfusableTermsMiner,
        description="negatives naming sibling or cousin terms of the positive in WordNet (bond vs stock)",
    )
