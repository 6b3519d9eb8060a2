"""Built-in dataset readers: one per dataset type, and the bundled real data sets.

Every type reader takes a source (a JSONL/JSON/CSV/TSV/Parquet file, a folder written by
``datasets.save_to_disk``, a folder of split files such as ``train.jsonl``/``test.jsonl``, or a
hub name) and options (``columns``, ``split``, ``eval_split``, ``score_range``, ``subset``,
``revision``), validates every record and returns an ``embedtune_core.types.DataBundle``. The
``ir`` reader takes a BEIR-style folder. Bundled sets are documented in ``docs/data.md``.
"""

from __future__ import annotations

from typing import Any, Callable

from embedtune_core import hookimpl

TYPE_DESCRIPTIONS = {
    "pairs": "(anchor, positive) pairs from JSONL, CSV/TSV, Parquet, a saved dataset or the hub",
    "triplets": "(anchor, positive, negative) triplets from JSONL, CSV/TSV, Parquet, a saved dataset or the hub",
    "sts": "(sentence1, sentence2, score 0-5) pairs from JSONL, CSV/TSV, Parquet, a saved dataset or the hub",
    "nli": "(premise, hypothesis, label) records, labels 0-2 or entailment/neutral/contradiction",
    "ir": "a BEIR-style folder: corpus.jsonl, queries.jsonl and graded qrels (qrels/SPLIT.tsv or qrels.txt)",
    "hard-negatives": "(anchor, positive, negative_1 ... negative_N) or a 'negatives' list per record",
}


def read_rows(source: Any, options: dict, dataset_type: str) -> Any:
    """Read and validate a row-type source (every type but ``ir``)."""
    from embedtune_core.data.files import check_options, load_tables, records_to_columns, to_dataset
    from embedtune_core.errors import DataError
    from embedtune_core.types import DataBundle

    if not source:
        raise DataError(f"no source given for the {dataset_type} reader", hint="give a file, folder or hub name")
    options = check_options(options or {})
    train_table, eval_table, described = load_tables(str(source), options)
    columns, notes = records_to_columns(train_table, dataset_type, options)
    train = to_dataset(columns)
    evaluation = None
    if eval_table is not None:
        eval_columns, eval_notes = records_to_columns(eval_table, dataset_type, options)
        if dataset_type == "hard-negatives" and len(eval_columns) != len(columns):
            raise DataError(
                f"the eval split has {len(eval_columns) - 2} negatives per record, the train split {len(columns) - 2}",
                file=eval_table.file,
                hint="give both splits the same number of negatives",
            )
        evaluation = to_dataset(eval_columns)
        notes["eval"] = eval_notes
    info = {"description": f"{dataset_type} data from {described}", "reader_notes": notes}
    return DataBundle(dataset_type=dataset_type, train=train, eval=evaluation, source=str(source), info=info)


def read_ir(source: Any, options: dict) -> Any:
    """Read and validate a BEIR-style IR folder."""
    from embedtune_core.data.files import check_options, read_ir_folder
    from embedtune_core.errors import DataError
    from embedtune_core.types import DataBundle

    if not source:
        raise DataError("no source given for the ir reader", hint="give a folder with corpus.jsonl, queries.jsonl and qrels")
    options = check_options(options or {}, ("columns", "split", "eval_split"))
    if options.get("columns"):
        raise DataError("the ir reader has fixed fields (_id, title, text); 'columns' does not apply", key="data.columns")
    train, evaluation, notes = read_ir_folder(source, options)
    info = {"description": f"IR data from folder {source}", "reader_notes": notes}
    return DataBundle(
        dataset_type="ir", train=train, eval=evaluation, corpus=list(train.corpus.values()), source=str(source), info=info
    )


def _type_reader(dataset_type: str) -> Callable[[Any, dict], Any]:
    def factory(source: Any, options: dict) -> Any:
        return read_rows(source, options, dataset_type)

    factory.__name__ = f"read_{dataset_type.replace('-', '_')}"
    factory.__doc__ = TYPE_DESCRIPTIONS[dataset_type]
    return factory


def _bundled_reader(name: str) -> Callable[[Any, dict], Any]:
    def factory(source: Any, options: dict) -> Any:
        from embedtune_plugins.bundled import load_bundled

        return load_bundled(name, options)

    factory.__name__ = f"bundled_{name.replace('-', '_')}"
    return factory


@hookimpl
def register_dataset_readers(register):
    for dataset_type, description in TYPE_DESCRIPTIONS.items():
        if dataset_type == "ir":
            register("ir", read_ir, description=description, dataset_type="ir")
        else:
            register(dataset_type, _type_reader(dataset_type), description=description, dataset_type=dataset_type)
    from embedtune_plugins.bundled import BUNDLED

    for name, spec in BUNDLED.items():
        register(
            name,
            _bundled_reader(name),
            description=spec["description"],
            dataset_type=spec["dataset_type"],
            bundled=True,
            size=spec["size"],
            licence=spec["licence"],
            package=spec["package"],
        )
