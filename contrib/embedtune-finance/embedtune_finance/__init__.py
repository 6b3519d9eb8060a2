"""embedtune-finance: finance and economics terms from WordNet and a confusable-terms miner.

Installed, it registers through the ``embedtune`` entry point ``finance``; its components are
named ``finance:NAME`` (or just ``NAME`` while no other plugin uses the name).
"""

from embedtune_core import hookimpl

__version__ = "0.1.0"


@hookimpl
def register_dataset_readers(register):
    from embedtune_finance import readers

    register("wordnet-finance", readers.wordnet_finance, dataset_type="ir", bundled=True,
             description="finance IR: WordNet finance and economics, definition -> term "
             "(1,251 synsets, split by concept)")
    register("wordnet-finance-synonyms", readers.wordnet_finance_synonyms, dataset_type="pairs", bundled=True,
             description="pairs: finance terms WordNet lists as synonyms (split by connected terms)")


@hookimpl
def register_negative_miners(register):
    from embedtune_finance.miners import ConfusableTermsMiner

    register(
        "confusable-terms",
        ConfusableTermsMiner,
        description="negatives naming sibling or cousin terms of the positive in WordNet (bond vs stock)",
    )
