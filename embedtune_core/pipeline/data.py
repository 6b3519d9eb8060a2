"""The data a run works on, read once: the training rows, the evaluation set and the mining
corpus, with the split and limits applied."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import attrs

from embedtune_core.config.schema import RunConfig
from embedtune_core.errors import EmbedtuneError
from embedtune_core.types import DataBundle, IRData

#: the fraction of anchors held out when the run trains and evaluates, the data has no eval split and
#: ``data.eval_fraction`` is unset
DEFAULT_EVAL_FRACTION = 0.1
#: values of ``evaluation.retention`` that turn it off
RETENTION_OFF = frozenset({"none", "off", "false"})


@attrs.frozen
class PreparedData:
    """What the steps of a run read.

    ``train`` holds the training rows (in the columns of ``train_type``, then the reader's extra
    columns, named in ``train_columns``), ``evaluation`` what the evaluate steps rank (an
    :class:`IRData`) or correlate (STS rows), ``eval_part`` where the evaluation data came from,
    ``eval_fraction`` the fraction held out (the reader's or the run's; None: the source's own
    split), ``corpus``/``categories`` the miners' candidate texts (None: the data's own
    positives), ``reader_options`` the reader's options as resolved (``data.options``),
    ``validation`` the part of the training rows held out to score the model on while it trains
    (``training.validation_fraction``; ``validation_rows`` the same rows in the training columns)."""

    bundle: DataBundle
    dataset_type: str
    train: Any = None
    train_type: str | None = None
    evaluation: Any = None
    eval_kind: str | None = None
    eval_part: str | None = None
    corpus: list[str] | None = None
    categories: list[Any] | None = None
    retention: IRData | None = None
    train_columns: tuple[str, ...] = ()
    eval_fraction: float | None = None
    reader_options: dict = attrs.field(factory=dict)
    validation: IRData | None = None
    validation_rows: Any = None

    def describe_evaluation(self) -> dict[str, Any]:
        """The size of the evaluation set, as metrics.json and the report show it."""
        if self.evaluation is None:
            return {}
        info: dict[str, Any] = {"type": self.eval_kind, "part": self.eval_part}
        if isinstance(self.evaluation, IRData):
            info.update(queries=sum(1 for q in self.evaluation.queries if q in self.evaluation.qrels),
                        corpus=len(self.evaluation.corpus))
        else:
            info["examples"] = len(self.evaluation)
        return info


def _limit(dataset: Any, limit: int | None) -> Any:
    if limit is None or dataset is None:
        return dataset
    if isinstance(dataset, IRData):
        keep = list(dataset.queries)[:limit]
        return IRData(corpus=dataset.corpus, queries={q: dataset.queries[q] for q in keep},
                      qrels={q: dataset.qrels[q] for q in keep if q in dataset.qrels})
    return dataset.select(range(min(limit, len(dataset))))


def _read(config: RunConfig, registry: Any, source: str) -> tuple[DataBundle, Any, dict]:
    """``(bundle, reader component, resolved reader options)`` of ``source``: ``data.options``,
    with ``columns`` from ``data.columns`` and, for a reader that makes its own split (it declares
    ``eval_fraction``), ``eval_fraction`` from ``data.eval_fraction`` when set."""
    from embedtune_core.data.loading import read_with, reader_for

    data = config.data
    options = dict(data.options)
    try:
        name, _ = reader_for(registry, source, data.type, data.reader)
        splits = "eval_fraction" in registry.get("dataset_reader", name).declaration.specs
        given = {"columns": dict(data.columns), "eval_fraction": data.eval_fraction if splits else None}
        for option, value in given.items():
            if value not in (None, {}):
                if option in options:
                    raise EmbedtuneError(f"{option} is set twice: as data.{option} and data.options.{option}",
                                         key=f"data.options.{option}", hint=f"set data.{option} only")
                options[option] = value
        return read_with(registry, source, dataset_type=data.type, reader=data.reader, options=options)
    except EmbedtuneError as exc:
        if exc.file is None and exc.key is None:  # e.g. an unknown bundled set: the source is at fault
            exc.key = "data.source" if source == data.source else "data.eval_source"
        raise


def _evaluation(bundle: DataBundle, part: str) -> tuple[Any, str]:
    """What the evaluate steps get: the eval split (or all data) as IR, or as STS rows."""
    from embedtune_core.data.loading import eval_ir, to_ir

    if bundle.dataset_type == "sts":
        return (bundle.eval if bundle.eval is not None else bundle.train), "sts"
    if bundle.eval is not None:
        return eval_ir(bundle), "ir"
    return to_ir(bundle.train, bundle.dataset_type), "ir"


def prepare_data(config: RunConfig, registry: Any, used: frozenset[str]) -> PreparedData:
    """Read the data once for a run whose steps ``used`` what they declared (``training-rows``,
    ``held-out``, ``retention``, ``mining``, ``training``).

    The held-out part is the source's own eval split, ``data.eval_source``, or, when the run
    trains and evaluates, ``data.eval_fraction`` (default 0.1) of the anchors split off (no anchor
    on both sides); a run that does not train evaluates every record. Training rows are the
    type's columns (NLI as triplets, IR as pairs) with ``data.limit`` applied;
    ``data.eval_limit`` cuts the evaluation queries."""
    from embedtune_core.data.loading import read_corpus_file, split_train_eval, to_training_dataset
    from embedtune_core.data.shapes import extra_columns

    bundle, reader, options = _read(config, registry, config.data.source)
    fraction = options.get("eval_fraction") if "eval_fraction" in reader.declaration.specs else None
    part = "eval split"
    if config.data.eval_source:
        eval_bundle = _read(config, registry, config.data.eval_source)[0]
        bundle.eval = eval_bundle.eval if eval_bundle.eval is not None else eval_bundle.train
        part = "eval source"
    training = "training" in used
    evaluating = "held-out" in used
    if bundle.eval is None and training and (evaluating or config.training.eval_steps):
        fraction = DEFAULT_EVAL_FRACTION if config.data.eval_fraction is None else config.data.eval_fraction
        bundle.train, bundle.eval = split_train_eval(bundle, fraction, config.training.seed)
        part = f"{fraction:g} of the anchors held out"
    elif bundle.eval is None:
        part = "all data"
    elif config.data.eval_fraction is not None and "eval_fraction" not in reader.declaration.specs:
        raise EmbedtuneError(f"data.eval_fraction does not apply: the data has its own held-out part ({part})",
                             key="data.eval_fraction", hint="leave it unset to use that split, or give the data "
                             "without one")
    train, train_type = (None, None)
    validation, validation_rows, held_texts = None, None, set()
    if training or "training-rows" in used:
        train, train_type = to_training_dataset(bundle)
        train = _limit(train, config.data.limit)
    if training and config.training.validation_fraction:
        train, validation, held_texts, validation_rows = _validation(config, train, train_type)
    evaluation, kind = (None, None)
    if evaluating:
        evaluation, kind = _evaluation(bundle, part)
        evaluation = _limit(evaluation, config.data.eval_limit)
    corpus, categories = (list(bundle.corpus) if bundle.corpus else None), None
    if corpus and held_texts:  # the validation documents stay unseen, as the test part's are
        corpus = [text for text in corpus if text not in held_texts]
    if config.mining.corpus and "mining" in used:
        corpus, categories = read_corpus_file(config.mining.corpus)
    retention = _retention(config, registry) if "retention" in used else None
    return PreparedData(bundle=bundle, dataset_type=bundle.dataset_type, train=train, train_type=train_type,
                        evaluation=evaluation, eval_kind=kind, eval_part=part if evaluating else None,
                        corpus=corpus, categories=categories, retention=retention,
                        train_columns=tuple(extra_columns(train.column_names)) if train is not None else (),
                        eval_fraction=fraction, reader_options=_recorded(options), validation=validation,
                        validation_rows=validation_rows)


def _validation(config: RunConfig, train: Any, train_type: str) -> tuple[Any, IRData, set[str], Any]:
    """``training.validation_fraction`` of the training rows held out (see
    :func:`embedtune_core.data.loading.split_validation`): the rows left, the validation part as
    IR (its queries ranked against its own and every training text), the texts only it holds, and
    its rows."""
    from embedtune_core.data.loading import row_texts, split_validation, to_ir
    from embedtune_core.errors import ConfigError

    if train_type == "sts":
        raise ConfigError("a validation part is ranked, and STS pairs have scores, not positives",
                          key="training.validation_fraction", hint="set it to 0 for STS data")
    kept, held = split_validation(train, config.training.validation_fraction, config.training.seed)
    held_texts = set(row_texts(held, train_type)) - set(row_texts(kept, train_type))
    return kept, to_ir(held, train_type, distractors=kept), held_texts, held


def _recorded(options: dict) -> dict:
    """The reader options the run records under data.options (those with a key of their own and
    unset ones left out)."""
    from embedtune_core.data.loading import OWN_KEYS

    return {k: v for k, v in options.items() if k not in OWN_KEYS and v not in (None, {}, [])}


def _retention(config: RunConfig, registry: Any) -> IRData | None:
    """The general-domain IR set of ``evaluation.retention`` (its eval split when it has one)."""
    from embedtune_core.data.loading import eval_ir, load_data, to_ir
    from embedtune_core.errors import DataError

    from embedtune_core.data.loading import BUILTIN_PREFIX, detect_type
    from embedtune_core.data.sources import looks_like_path

    source = config.evaluation.retention
    if not source or source.strip().lower() in RETENTION_OFF:
        return None
    dataset_type = None
    if not source.startswith(BUILTIN_PREFIX):
        path = Path(os.path.expanduser(source))
        if not path.exists() and looks_like_path(source):
            raise DataError(f"the retention set's file or folder '{source}' is not found",
                            key="evaluation.retention", hint='check the path, or use builtin:wordnet-general; "none" '
                                                             "turns the retention check off")
        dataset_type = detect_type(source) or ("pairs" if path.is_file() else None)
    try:
        bundle = load_data(registry, source, dataset_type=dataset_type)
    except EmbedtuneError as exc:
        if exc.key is None:
            exc.key = "evaluation.retention"
        raise
    if bundle.dataset_type == "sts":
        raise DataError("the retention set must be ranked (IR or rows with positives), not STS pairs",
                        key="evaluation.retention", hint="name an IR set, e.g. builtin:wordnet-general")
    held = eval_ir(bundle) if bundle.eval is not None else to_ir(bundle.train, bundle.dataset_type)
    return held


def eval_training_rows(data: PreparedData, limit: int | None) -> Any:
    """The held-out split in the training columns, for the eval loss during training: the
    validation rows when the run holds some out, else the data's eval split."""
    from embedtune_core.data.loading import to_training_dataset

    if data.validation_rows is not None:
        return _limit(data.validation_rows, limit)
    bundle = data.bundle
    if bundle.eval is None:
        return None
    rows, _ = to_training_dataset(DataBundle(dataset_type=bundle.dataset_type, train=bundle.eval))
    return _limit(rows, limit)
