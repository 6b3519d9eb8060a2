"""Build the small example files in examples/data/ from the bundled sets (offline, deterministic).

    python examples/make_data.py

- faq-pairs.jsonl: (question, answer) pairs of the regulatory FAQ's training split
  (builtin:construction-faq, CC-BY-4.0).
- hpo-triplets.jsonl: (definition, name/synonym, opposite term) triplets of the HPO NLI set's
  training split (builtin:hpo-nli; Human Phenotype Ontology, attribution required).
- faq-hard-negatives.jsonl: faq-pairs with two BM25-mined hard negatives per question, written by
  `embedtune mine` itself.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent / "data"


def main() -> None:
    from embedtune_core import io as eio
    from embedtune_core.data.loading import load_data, to_training_dataset
    from embedtune_core.plugins.registry import load_registry

    _, registry = load_registry()
    faq = load_data(registry, "builtin:construction-faq")
    pairs, _ = to_training_dataset(faq)
    eio.write_jsonl(HERE / "faq-pairs.jsonl", pairs.to_list())
    nli = load_data(registry, "builtin:hpo-nli")
    triplets, _ = to_training_dataset(nli)
    eio.write_jsonl(HERE / "hpo-triplets.jsonl", triplets.to_list())
    out = HERE / "faq-hard-negatives.jsonl"
    out.unlink(missing_ok=True)
    subprocess.run(
        [sys.executable, "-m", "embedtune_core", "mine", "--data", str(HERE / "faq-pairs.jsonl"), "--type", "pairs",
         "--miner", "bm25", "-n", "2", "-O", "guard_scores=retrieval", "-o", str(out)],
        check=True,
    )


if __name__ == "__main__":
    main()
