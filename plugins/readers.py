"""Built-in dataset readers: one per dataset type.

Every row-type reader takes a source (a JSONL/JSON/CSV/TSV/Parquet file, a folder written by
``datasets.save_to_disk``, a folder of split files such as ``train.jsonl``/``test.jsonl``, or a
hub name), validates every record and returns an ``embedtune_core.types.DataBundle``. Their
options (:class:`RowOptions`; STS adds ``score_range``) are declared like every component's; the
``ir`` reader takes a BEIR-style folder. The bundled sets are in
:mod:`embedtune_plugins.datasets`.
"""

from __future__ import annotations

from typing import Annotated, Any

import attrs

from embedtune_core import hookimpl
from embedtune_core.plugins.options import OptionError

TYPE_DESCRIPTIONS = {
    "pairs": "(anchor, positive) pairs from JSONL, CSV/TSV, Parquet, a saved dataset or the hub",
    "triplets": "(anchor, positive, negative) triplets from JSONL, CSV/TSV, Parquet, a saved dataset or the hub",
    "sts": "(sentence1, sentence2, score 0-5) pairs from JSONL, CSV/TSV, Parquet, a saved dataset or the hub",
    "nli": "(premise, hypothesis, label) records, labels 0-2 or entailment/neutral/contradiction",
    "ir": "a BEIR-style folder: corpus.jsonl, queries.jsonl and graded qrels (qrels/SPLIT.tsv or qrels.txt)",
    "hard-negatives": "(anchor, positive, negative_1 ... negative_N) or a 'negatives' list per record",
}
Split = Annotated[str | None, "the split to train on (split files, a saved dataset, hub data; default: train)"]
EvalSplit = Annotated[str | None, "the held-out split (default: validation, dev or test when there is one)"]


@attrs.frozen
class RowOptions:
    """The options of every row-type reader."""

    columns: Annotated[dict[str, str], "the type's field -> your column, e.g. {anchor = 'question'} (data.columns)"] = \
        attrs.field(factory=dict)
    split: Split = None
    eval_split: EvalSplit = None
    subset: Annotated[str | None, "a hub dataset's configuration"] = None
    revision: Annotated[str | None, "a hub dataset's revision"] = None
    keep: Annotated[list[str], "extra fields kept as columns of the training rows, e.g. a group id a miner reads "
                               "(never trained on)"] = attrs.field(factory=list)


@attrs.frozen
class STSOptions(RowOptions):
    """The STS reader's options: the row options and the scores' scale."""

    score_range: Annotated[list[float], "the scores' scale [MIN, MAX], rescaled to 0-5"] = attrs.field(
        factory=lambda: [0.0, 5.0])

    def __attrs_post_init__(self) -> None:
        if len(self.score_range) != 2 or not self.score_range[0] < self.score_range[1]:
            raise OptionError(f"score_range must be [MIN, MAX] with MIN < MAX, got {self.score_range}",
                              option="score_range")


def read_rows(source: Any, options: RowOptions, dataset_type: str) -> Any:
    """Read and validate a row-type source (every type but ``ir``)."""
    from embedtune_core.data.records import records_to_columns, to_dataset
    from embedtune_core.data.sources import load_tables
    from embedtune_core.errors import DataError
    from embedtune_core.types import DataBundle

    if not source:
        raise DataError(f"no source given for the {dataset_type} reader", hint="give a file, folder or hub name")
    train_table, eval_table, described = load_tables(str(source), split=options.split, eval_split=options.eval_split,
                                                     subset=options.subset, revision=options.revision)
    shape = {"columns": options.columns, "keep": options.keep,
             "score_range": tuple(getattr(options, "score_range", (0.0, 5.0)))}
    columns, notes = records_to_columns(train_table, dataset_type, **shape)
    train = to_dataset(columns)
    evaluation = None
    if eval_table is not None:
        eval_columns, eval_notes = records_to_columns(eval_table, dataset_type, **shape)
        if dataset_type == "hard-negatives" and len(eval_columns) != len(columns):
            raise DataError(
                f"the eval split has {len(eval_columns) - 2 - len(options.keep)} negatives per record, the train "
                f"split {len(columns) - 2 - len(options.keep)}", file=eval_table.file,
                hint="give both splits the same number of negatives",
            )
        evaluation = to_dataset(eval_columns)
        notes["eval"] = eval_notes
    info = {"description": f"{dataset_type} data from {described}", "reader_notes": notes}
    return DataBundle(dataset_type=dataset_type, train=train, eval=evaluation, source=str(source), info=info)


def read_pairs(source: Any, options: RowOptions) -> Any:
    """(anchor, positive) pairs from JSONL, CSV/TSV, Parquet, a saved dataset or the hub."""
    return read_rows(source, options, "pairs")


def read_triplets(source: Any, options: RowOptions) -> Any:
    """(anchor, positive, negative) triplets from JSONL, CSV/TSV, Parquet, a saved dataset or the hub."""
    return read_rows(source, options, "triplets")


def read_sts(source: Any, options: STSOptions) -> Any:
    """(sentence1, sentence2, score) pairs; scores rescaled from score_range to 0-5."""
    return read_rows(source, options, "sts")


def read_nli(source: Any, options: RowOptions) -> Any:
    """(premise, hypothesis, label) records, labels 0-2 or entailment/neutral/contradiction."""
    return read_rows(source, options, "nli")


def read_hard_negatives(source: Any, options: RowOptions) -> Any:
    """(anchor, positive, negative_1 ... negative_N) or a 'negatives' list per record."""
    return read_rows(source, options, "hard-negatives")


def read_ir(source: Any, split: Split = None, eval_split: EvalSplit = None) -> Any:
    """A BEIR-style IR folder: corpus.jsonl, queries.jsonl and graded qrels."""
    from embedtune_core.data.beir import read_ir_folder
    from embedtune_core.errors import DataError
    from embedtune_core.types import DataBundle

    if not source:
        raise DataError("no source given for the ir reader", hint="give a folder with corpus.jsonl, queries.jsonl and qrels")
    train, evaluation, notes = read_ir_folder(source, split=split, eval_split=eval_split)
    info = {"description": f"IR data from folder {source}", "reader_notes": notes}
    return DataBundle(
        dataset_type="ir", train=train, eval=evaluation, corpus=list(train.corpus.values()), source=str(source), info=info
    )


READERS = {"pairs": read_pairs, "triplets": read_triplets, "sts": read_sts, "nli": read_nli, "ir": read_ir,
           "hard-negatives": read_hard_negatives}


@hookimpl
def register_dataset_readers(register):
    for dataset_type, factory in READERS.items():
        register(dataset_type, factory, description=TYPE_DESCRIPTIONS[dataset_type], dataset_type=dataset_type)
