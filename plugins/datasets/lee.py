"""``lee-sts``: document-pair similarity from the Lee corpus shipped in gensim's test data."""

from __future__ import annotations

import random
from typing import Any


from embedtune_core.errors import DataError
from embedtune_core.types import DataBundle
from embedtune_plugins.datasets.packaged import SEED, package_file

#: what `embedtune data list` shows for lee-sts
LEE_STS: dict[str, Any] = {
    "dataset_type": "sts",
    "description": "STS: Lee et al. (2005) news documents with human similarity scores, rescaled to 0-5 (split by document)",
    "size": "train 595 pairs; test 105 pairs",
    "licence": "LGPL-2.1 (as distributed with gensim)",
    "package": "gensim==4.4.0",
}


#: documents held out: their pairs are the test set
LEE_TEST_DOCUMENTS = 15


def lee_sts(source: Any = None) -> DataBundle:
    """Document-pair similarity from the Lee corpus as shipped in gensim's test data.

    ``lee.cor`` holds 50 news documents, ``similarities0-1.txt`` the mean human similarity of
    each of the 1,225 document pairs on a 0-1 scale (rescaled here to 0-5). Documents are split
    (seeded): pairs of two train documents train, pairs of two test documents test, pairs across
    the split are left out so no document is seen on both sides.
    """
    docs_path = package_file("gensim", "test/test_data/lee.cor", "gensim==4.4.0")
    sims_path = package_file("gensim", "test/test_data/similarities0-1.txt", "gensim==4.4.0")
    documents = [line.strip() for line in docs_path.read_text(encoding="latin-1").splitlines() if line.strip()]
    matrix = []
    for number, line in enumerate(sims_path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                matrix.append([float(v) for v in line.split()])
            except ValueError:
                raise DataError("non-numeric similarity", file=sims_path, line=number) from None
    n = len(documents)
    if len(matrix) != n or any(len(row) != n for row in matrix):
        raise DataError(f"expected a {n}x{n} similarity matrix", file=sims_path)
    order = list(range(n))
    random.Random(SEED).shuffle(order)
    test_docs = set(order[:LEE_TEST_DOCUMENTS])
    columns = {side: {"sentence1": [], "sentence2": [], "score": []} for side in ("train", "test")}
    for i in range(n):
        for j in range(i + 1, n):
            if (i in test_docs) != (j in test_docs):
                continue
            side = columns["test" if i in test_docs else "train"]
            side["sentence1"].append(documents[i])
            side["sentence2"].append(documents[j])
            side["score"].append(round(matrix[i][j] * 5.0, 6))
    import datasets

    return DataBundle(
        dataset_type="sts",
        train=datasets.Dataset.from_dict(columns["train"]),
        eval=datasets.Dataset.from_dict(columns["test"]),
        source="builtin:lee-sts",
        info={
            "name": "lee-sts",
            "description": LEE_STS["description"],
            "source": "gensim 4.4.0: gensim/test/test_data/lee.cor and similarities0-1.txt",
            "builder": "embedtune_plugins.datasets.lee.lee_sts",
            "split": f"by document ({n - LEE_TEST_DOCUMENTS}/{LEE_TEST_DOCUMENTS}, seeded); cross pairs left out",
            "licence": "LGPL-2.1 (as distributed with gensim)",
            "citation": (
                "Lee MD, Pincombe B, Welsh M. An empirical evaluation of models of text document "
                "similarity. Proceedings of the 27th Annual Conference of the Cognitive Science Society (2005)."
            ),
        },
    )
