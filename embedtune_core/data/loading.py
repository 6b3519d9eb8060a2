"""Reading data through the registry: the one place that turns a source into a DataBundle."""

from __future__ import annotations

from typing import Any, Mapping

from embedtune_core.data.shapes import extra_columns, group_premises, negative_columns
from embedtune_core.errors import DataError
from embedtune_core.text import text_key
from embedtune_core.types import DATASET_TYPES, DataBundle, IRData

BUILTIN_PREFIX = "builtin:"


def reader_for(registry: Any, source: str | None, dataset_type: str | None, reader: str | None) -> tuple[str, str | None]:
    """The reader name to use and the source to hand it.

    ``builtin:NAME`` names a bundled set (a reader registered with ``bundled=True``); otherwise an
    explicit ``reader`` wins, else the reader named after ``dataset_type``, else the type the
    source's layout shows (:func:`detect_type`: a BEIR or TREC IR folder).
    """
    if source and source.startswith(BUILTIN_PREFIX):
        name = source[len(BUILTIN_PREFIX):]
        component = registry.get("dataset_reader", name)
        if not component.info.bundled:
            raise DataError(f"'{name}' is a reader, not a bundled data set", hint="see `embedtune data list`")
        return name, None
    if reader:
        return reader, source
    if not dataset_type:
        dataset_type = detect_type(source)
    if not dataset_type:
        raise DataError(
            f"cannot tell the type of '{source}'",
            hint="give the dataset type (--type / data.type): " + ", ".join(DATASET_TYPES),
        )
    return dataset_type, source


def detect_type(source: str | None) -> str | None:
    """The dataset type a source shows by its layout alone, or None: ``ir`` for a folder with
    ``corpus.jsonl``, ``queries.jsonl`` and qrels (BEIR's ``qrels/SPLIT.tsv`` or a TREC
    ``qrels.txt``). Files of rows say nothing reliable about their type."""
    import os
    from pathlib import Path

    from embedtune_core.data.beir import qrels_files

    if not source:
        return None
    folder = Path(os.path.expanduser(source))
    if not folder.is_dir():
        return None
    if (folder / "corpus.jsonl").is_file() and (folder / "queries.jsonl").is_file() and qrels_files(folder):
        return "ir"
    return None


def load_data(
    registry: Any,
    source: str | None,
    *,
    dataset_type: str | None = None,
    reader: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> DataBundle:
    """Read ``source`` with the matching reader and return its :class:`DataBundle`."""
    return read_with(registry, source, dataset_type=dataset_type, reader=reader, options=options)[0]


#: reader options that have a config key of their own (not data.options.NAME)
OWN_KEYS = {"columns": "data.columns", "eval_fraction": "data.eval_fraction"}


def read_with(registry: Any, source: str | None, *, dataset_type: str | None = None, reader: str | None = None,
              options: Mapping[str, Any] | None = None, key: str = "data.options") -> tuple[DataBundle, Any, dict]:
    """Read ``source`` with the matching reader: ``(bundle, the reader component, the reader's
    options resolved)``. The options are checked against the reader's declaration first (a
    misspelt one gets the closest name, under ``key``), then the reader runs, contained."""
    from embedtune_core.errors import ComponentError

    name, reader_source = reader_for(registry, source, dataset_type, reader)
    component = registry.get("dataset_reader", name)
    try:
        values = registry.resolve_options("dataset_reader", name, dict(options or {}), key=key)
    except ComponentError as exc:
        for option, own in OWN_KEYS.items():
            if exc.key == f"{key}.{option}":
                exc.key = own
        raise
    where = f"reading {source}" if source else "building its data"
    bundle = registry.build(component, reader_source, options=values, doing=where)
    check_bundle(bundle, component)
    if dataset_type and source and source.startswith(BUILTIN_PREFIX) and bundle.dataset_type != dataset_type:
        raise DataError(
            f"bundled set '{source}' is of type '{bundle.dataset_type}', not '{dataset_type}'",
            hint=f"drop the type or use --type {bundle.dataset_type}",
        )
    return bundle, component, values


def check_bundle(bundle: DataBundle, component: Any) -> None:
    """Hold a reader's bundle to the rules a data file is held to (see
    :mod:`embedtune_core.data.contract`); one error naming the reader and its plugin otherwise."""
    from embedtune_core.data.contract import bundle_problem
    from embedtune_core.errors import ComponentError

    problem = bundle_problem(bundle)
    if problem:
        raise ComponentError(f"{component.label} from plugin '{component.plugin}' gave {problem}",
                             hint=f"a reader must give valid rows (the rules of `embedtune data validate`); this is a "
                                  f"bug in plugin '{component.plugin}'")


# -- conversions ----------------------------------------------------------------------------------

def _text_id(prefix: str, text: str) -> str:
    import hashlib

    return prefix + hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def _dataset(columns: dict[str, list]) -> Any:
    from embedtune_core.data.columns import dataset_from_columns

    return dataset_from_columns(columns)


def column_values(dataset: Any, name: str) -> list:
    """One column of a ``datasets.Dataset`` as a Python list (fast: no per-row access)."""
    values = dataset[name]
    return values if isinstance(values, list) else values[:]


def _columns_of(dataset: Any) -> list[str]:
    return list(dataset.column_names)


def conventional_columns(dataset: Any, dataset_type: str) -> list[str]:
    """The type's columns, in order, that ``dataset`` must have (a clear error when it lacks one)."""
    if dataset_type not in DATASET_TYPES or dataset_type == "ir":
        raise DataError(f"'{dataset_type}' is not a row dataset type", hint="types: pairs, triplets, sts, nli, hard-negatives")
    names = _columns_of(dataset)
    wanted = list(DATASET_TYPES[dataset_type])
    if dataset_type == "hard-negatives":
        wanted += [c for c in negative_columns(names) if c != "negative"]
        if len(wanted) == 2:
            raise DataError("hard-negatives data has no negative_1 ... negative_N columns", hint=f"columns: {', '.join(names)}")
    missing = [c for c in wanted if c not in names]
    if missing:
        raise DataError(
            f"{dataset_type} data lacks column(s) {', '.join(missing)}",
            hint=f"columns found: {', '.join(names)}; expected {', '.join(wanted)}",
        )
    return wanted


def nli_to_triplets(dataset: Any) -> tuple[Any, str]:
    """NLI records -> (anchor=premise, positive=entailment, negative=contradiction) triplets.

    Each entailment hypothesis of a premise is paired with one of the same premise's
    contradiction hypotheses (cycling through them), so every entailment is used once. Premises
    without a contradiction are dropped; when no premise has one, the result is (premise,
    entailment) pairs and the training type is ``pairs``.
    """
    groups = group_premises(column_values(dataset, "premise"), column_values(dataset, "hypothesis"),
                            column_values(dataset, "label"))
    entail, contra, first_text = groups.entailments, groups.contradictions, groups.premises
    anchors, positives, negatives = [], [], []
    for key, hypotheses in entail.items():
        wrong = contra.get(key)
        if not wrong:
            continue
        for i, hypothesis in enumerate(hypotheses):
            anchors.append(first_text[key])
            positives.append(hypothesis)
            negatives.append(wrong[i % len(wrong)])
    if anchors:
        return _dataset({"anchor": anchors, "positive": positives, "negative": negatives}), "triplets"
    pairs = [(first_text[k], h) for k, hs in entail.items() for h in hs]
    if not pairs:
        raise DataError(
            "the NLI data has no entailment records",
            hint="training uses (premise, entailment, contradiction) triplets: label 0 = entailment, 2 = contradiction",
        )
    return _dataset({"anchor": [p for p, _ in pairs], "positive": [h for _, h in pairs]}), "pairs"


def ir_to_pairs(ir: IRData) -> Any:
    """(anchor=query, positive=document) for every judgement with grade > 0, in query order."""
    anchors, positives = [], []
    for query_id, text in ir.queries.items():
        for doc_id, grade in ir.qrels.get(query_id, {}).items():
            if grade > 0 and doc_id in ir.corpus:
                anchors.append(text)
                positives.append(ir.corpus[doc_id])
    if not anchors:
        raise DataError("the IR data has no relevant (query, document) judgement to train on")
    return _dataset({"anchor": anchors, "positive": positives})


def to_training_dataset(bundle: DataBundle) -> tuple[Any, str]:
    """The bundle's training data as ``(datasets.Dataset, training_type)``.

    NLI becomes (anchor, positive, negative) triplets (training type ``triplets``); IR becomes
    (anchor, positive) pairs from judgements with grade > 0 (training type ``pairs``); the other
    types keep their type: the conventional columns in their order, then the reader's extra
    columns (a group id...), which reach a miner and are dropped before training.
    """
    data, dataset_type = bundle.train, bundle.dataset_type
    if data is None:
        raise DataError("the data set has no training split", hint="give a source with training data")
    if dataset_type == "ir":
        if not isinstance(data, IRData):
            raise DataError(f"IR training data must be an IRData, got {type(data).__name__}")
        return ir_to_pairs(data), "pairs"
    if dataset_type == "nli":
        conventional_columns(data, "nli")
        return nli_to_triplets(data)
    columns = conventional_columns(data, dataset_type)
    columns += [c for c in extra_columns(_columns_of(data)) if c not in columns]
    if _columns_of(data) != columns:
        data = data.select_columns(columns)
    return data, dataset_type


def to_ir(dataset: Any, dataset_type: str, distractors: Any = None) -> IRData:
    """An IR evaluation set from row data: queries = unique anchors, corpus = every positive and
    negative (deduplicated by text), qrels = each anchor -> its positives with grade 1.

    ``distractors`` (rows of the same type, e.g. the training split) add every positive and
    negative text of theirs to the corpus: they are not relevant to these queries, so the queries
    are ranked against the whole file rather than a handful of held-out texts. Ids are derived
    from the text (``q`` / ``d`` + 12 hex digits of its SHA-1), so the same text gets the same id
    in every split and run. NLI data is first turned into triplets. An :class:`IRData` is
    returned unchanged.
    """
    if isinstance(dataset, IRData):
        return dataset
    if dataset_type == "ir":
        raise DataError(f"IR data must be an IRData, got {type(dataset).__name__}")
    if dataset_type == "sts":
        raise DataError("STS pairs have scores, not relevant documents: they cannot become an IR set", hint="evaluate STS data by score correlation")
    names = _columns_of(dataset)
    if dataset_type == "nli" and "premise" in names:
        dataset, _ = nli_to_triplets(dataset)
        names = _columns_of(dataset)
    for column in ("anchor", "positive"):
        if column not in names:
            raise DataError(f"cannot build an IR set: no '{column}' column", hint=f"columns: {', '.join(names)}")
    negatives_in = negative_columns(names)
    corpus: dict[str, str] = {}
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    anchors = column_values(dataset, "anchor")
    positives = column_values(dataset, "positive")
    negatives = [column_values(dataset, c) for c in negatives_in]
    for row, (anchor, positive) in enumerate(zip(anchors, positives)):
        query_id = _text_id("q", anchor)
        queries.setdefault(query_id, anchor)
        doc_id = _text_id("d", positive)
        corpus.setdefault(doc_id, positive)
        qrels.setdefault(query_id, {})[doc_id] = 1
        for column in negatives:
            negative = column[row]
            corpus.setdefault(_text_id("d", negative), negative)
    if distractors is not None and len(distractors):
        for text in row_texts(distractors, dataset_type):
            corpus.setdefault(_text_id("d", text), text)
    return IRData(corpus=corpus, queries=queries, qrels=qrels)


def row_texts(dataset: Any, dataset_type: str) -> list[str]:
    """Every positive and negative text of row data (NLI: every hypothesis), each once."""
    names = _columns_of(dataset)
    if dataset_type == "nli" and "hypothesis" in names:
        return list(dict.fromkeys(t for t in column_values(dataset, "hypothesis") if isinstance(t, str) and t))
    columns = [c for c in ("positive",) if c in names] + negative_columns(names)
    return list(dict.fromkeys(t for c in columns for t in column_values(dataset, c) if isinstance(t, str) and t))


def _anchor_keys(data: Any) -> list[str]:
    if isinstance(data, IRData):
        return [text_key(t) for t in data.queries.values()]
    first = _columns_of(data)[0]
    return [text_key(t) for t in column_values(data, first)]


def split_train_eval(data: Any, fraction: float, seed: int = 42) -> tuple[Any, Any]:
    """Split by anchor (first column) or query, so no anchor lands on both sides.

    ``data`` is a :class:`DataBundle` (its ``train`` is split), a ``datasets.Dataset`` or an
    :class:`IRData` (split by query text; the corpus is kept whole on both sides). ``fraction`` of
    the distinct anchors (at least one, and at least one left for training) go to the eval side,
    chosen by a shuffle seeded with ``seed``. Returns ``(train, eval)`` of the input's form;
    ``eval`` is None when ``fraction`` is 0.
    """
    import random

    if isinstance(data, DataBundle):
        data = data.train
    if data is None:
        raise DataError("nothing to split: the data set has no training split")
    if not 0.0 <= float(fraction) < 1.0:
        raise DataError(f"eval fraction must be in [0, 1), got {fraction}", key="data.eval_fraction")
    if fraction == 0:
        return data, None
    keys = _anchor_keys(data)
    distinct = list(dict.fromkeys(keys))
    if len(distinct) < 2:
        raise DataError(
            f"cannot split {len(distinct)} distinct anchor(s) into train and eval",
            hint="give more data or a separate eval source (data.eval_source)",
        )
    order = sorted(distinct)
    random.Random(seed).shuffle(order)
    n_eval = min(max(1, round(len(order) * float(fraction))), len(order) - 1)
    held_out = set(order[:n_eval])
    if isinstance(data, IRData):
        ids = list(data.queries)
        eval_ids = [q for q, k in zip(ids, keys) if k in held_out]
        train_ids = [q for q, k in zip(ids, keys) if k not in held_out]

        def part(selected: list[str]) -> IRData:
            return IRData(
                corpus=data.corpus,
                queries={q: data.queries[q] for q in selected},
                qrels={q: dict(data.qrels.get(q, {})) for q in selected},
            )

        return part(train_ids), part(eval_ids)
    eval_rows = [i for i, k in enumerate(keys) if k in held_out]
    train_rows = [i for i, k in enumerate(keys) if k not in held_out]
    return data.select(train_rows), data.select(eval_rows)


def split_validation(rows: Any, fraction: float, seed: int = 42) -> tuple[Any, Any]:
    """``(training rows, validation rows)``: ``fraction`` of the training rows held out to
    validate on while training.

    ``rows`` are training rows (anchor, positive, and any negatives; what
    :func:`to_training_dataset` gives). Whole connected groups are held out: an anchor with every
    positive it is paired with and every other anchor of those positives (compared up to case and
    spacing), so no validation text is trained on, as the bundled sets split their test part. The
    groups held out are fixed by ``seed`` (:func:`embedtune_core.data.splits.eval_groups`)."""
    from embedtune_core.data.splits import ConnectedGroups, eval_groups

    anchors, positives = column_values(rows, "anchor"), column_values(rows, "positive")
    components = ConnectedGroups()
    for anchor, positive in zip(anchors, positives):
        components.union("a:" + text_key(anchor), "p:" + text_key(positive))
    group_key: dict[str, str] = {}
    for anchor in anchors:  # a group is named by its smallest anchor: the same on every machine
        key = text_key(anchor)
        root = components.find("a:" + key)
        group_key[root] = min(group_key.get(root, key), key)
    if len(set(group_key.values())) < 2:
        raise DataError("cannot hold out a validation part: the training rows form a single group of connected "
                        "anchors and positives", key="training.validation_fraction",
                        hint="set training.validation_fraction = 0 or give more data")
    held = eval_groups(group_key.values(), fraction, seed)
    in_validation = [group_key[components.find("a:" + text_key(a))] in held for a in anchors]
    return (rows.select([i for i, v in enumerate(in_validation) if not v]),
            rows.select([i for i, v in enumerate(in_validation) if v]))


def check_leakage(train: Any, evaluation: Any, dataset_type: str | None = None) -> list[str]:
    """Anchors (or IR query texts) of ``evaluation`` that also occur in ``train``, compared up to
    case and spacing, in ``evaluation``'s order, each once. ``dataset_type`` is accepted for
    symmetry with the other helpers; the anchor is the first column of every row type."""
    if train is None or evaluation is None:
        return []
    if isinstance(train, DataBundle):
        train = train.train
    if isinstance(evaluation, DataBundle):
        evaluation = evaluation.train
    seen = set(_anchor_keys(train))
    texts = list(evaluation.queries.values()) if isinstance(evaluation, IRData) else column_values(evaluation, _columns_of(evaluation)[0])
    leaked: dict[str, str] = {}
    for text in texts:
        key = text_key(text)
        if key in seen and key not in leaked:
            leaked[key] = text
    return list(leaked.values())


def eval_ir(bundle: DataBundle) -> IRData | None:
    """The bundle's IR evaluation set: its eval split as is (IR), or converted with :func:`to_ir`
    with the training split's texts as distractors; None when the bundle has no eval split or its
    type cannot be ranked (STS)."""
    if bundle.eval is None:
        return None
    if isinstance(bundle.eval, IRData):
        return bundle.eval
    if bundle.dataset_type == "sts":
        return None
    return to_ir(bundle.eval, bundle.dataset_type, distractors=bundle.train)


def read_corpus_file(path: str) -> tuple[list[str], list[Any] | None]:
    """Candidate texts (and categories) from ``path``: ``.txt`` (one text a line) or a table
    (``.jsonl``, ``.json``, ``.csv``, ``.tsv``, ``.parquet``) with a ``text`` field, an optional
    ``title`` (prefixed, as in BEIR corpora) and an optional ``category``."""
    from pathlib import Path

    from embedtune_core.data.formats import read_table, read_text

    file = Path(path)
    if file.suffix.lower() == ".txt":
        texts = [line.strip() for line in read_text(file).splitlines() if line.strip()]
        return texts, None
    table = read_table(file)
    texts, categories = [], []
    has_category = "category" in table.columns
    for index, row in enumerate(table.rows):
        body = row.get("text")
        if not isinstance(body, str) or not body.strip():
            raise DataError("corpus record needs a non-empty 'text' field", **table.where(index), key="text")
        title = row.get("title") or ""
        texts.append(f"{title.strip()} {body.strip()}".strip() if isinstance(title, str) else body.strip())
        if has_category:
            value = row.get("category")
            categories.append(None if value in (None, "") else str(value))
    return texts, (categories if has_category else None)
