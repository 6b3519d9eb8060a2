"""What components exchange: plain data objects, and a ``typing.Protocol`` per component kind
(what a factory returns). No heavy imports here."""

from __future__ import annotations

from typing import Any, Iterable, Protocol, runtime_checkable

import attrs

#: The six dataset types and the columns (in order) their training datasets carry.
DATASET_TYPES: dict[str, tuple[str, ...]] = {
    "pairs": ("anchor", "positive"),
    "triplets": ("anchor", "positive", "negative"),
    "sts": ("sentence1", "sentence2", "score"),
    "nli": ("premise", "hypothesis", "label"),
    "ir": ("query", "positive"),  # training pairs derived from queries + qrels
    "hard-negatives": ("anchor", "positive"),  # followed by negative_1 ... negative_n
}

#: The guide's minimum number of training examples per type, below which results are unreliable.
MINIMUM_SIZES: dict[str, int] = {
    "pairs": 1000,
    "triplets": 1000,
    "sts": 1000,
    "nli": 1000,
    "ir": 500,
    "hard-negatives": 500,
}

NLI_LABELS = {"entailment": 0, "neutral": 1, "contradiction": 2}


@attrs.define
class IRData:
    """An IR collection: corpus and queries by id, and graded relevance judgements.

    ``qrels[query_id][doc_id] = grade`` (grade > 0 is relevant; 0 is judged non-relevant).
    """

    corpus: dict[str, str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]

    def __len__(self) -> int:
        return len(self.queries)

    def relevant(self, query_id: str) -> dict[str, int]:
        return {d: g for d, g in self.qrels.get(query_id, {}).items() if g > 0}


@attrs.define
class DataBundle:
    """What a dataset reader returns.

    ``train`` is a ``datasets.Dataset`` with the type's columns, or an :class:`IRData` for type
    ``ir``. ``eval`` is the held-out part when the source has one (same form). ``corpus`` is an
    optional list of candidate texts for negative mining. ``info`` holds a description, licence
    and citation for bundled sets.
    """

    dataset_type: str
    train: Any = None
    eval: Any = None
    corpus: list[str] | None = None
    source: str | None = None
    info: dict[str, Any] = attrs.field(factory=dict)


@attrs.define
class MiningRequest:
    """Input to a negative miner.

    ``dataset``: a ``datasets.Dataset`` whose first two columns are (anchor, positive), or an NLI
    dataset (premise, hypothesis, label) for the contradiction miner. ``corpus``: candidate texts
    (None: the dataset's own positives). ``encoder``: a callable ``texts -> np.ndarray`` of
    L2-normalised embeddings, for dense miners (None when no model is loaded). ``categories``: an
    optional category per corpus text, for miners that use one. ``output``: "hard-negatives"
    (anchor, positive, negative_1..n) or "triplets" (one row per negative). ``device``: where
    top-k searches run (None: a GPU when there is one).
    """

    dataset: Any
    dataset_type: str
    num_negatives: int = 1
    corpus: list[str] | None = None
    encoder: Any = None
    categories: list[str] | None = None
    output: str = "hard-negatives"
    seed: int = 42
    device: str | None = None
    columns: dict[str, list] = attrs.field(factory=dict)


@attrs.define
class MiningStats:
    """What a miner saw, dropped and wrote. The fields are what the core reads (the terminal
    table, the report, the warning about fill-ins); ``extra`` holds whatever else a miner wants
    to show (shown as is)."""

    queries: int = 0
    candidates_seen: int = 0
    dropped_false_negatives: int = 0
    negatives_written: int = 0
    queries_short: int = 0  # queries that got fewer negatives than asked
    mean_score_gap: float | None = None  # mean (positive score - negative score)
    negatives_filled: int = 0  # negatives that are random fill-ins, not mined
    rows_in: int | None = None  # training rows given to the miner
    rows_out: int | None = None  # training rows it wrote
    extra: dict[str, Any] = attrs.field(factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.define
class MiningResult:
    dataset: Any
    stats: MiningStats


# -- the component kinds ----------------------------------------------------------------------
@runtime_checkable
class DatasetReader(Protocol):
    """A dataset reader factory: called with the source (a path, hub name, or None for a bundled
    set) and a dict of options, it returns the validated data."""

    def __call__(self, source: str | None, options: dict[str, Any]) -> DataBundle: ...


@runtime_checkable
class NegativeMiner(Protocol):
    """What a miner factory returns: ``mine`` adds negatives to the request's rows."""

    def mine(self, request: MiningRequest) -> MiningResult: ...


@runtime_checkable
class Loss(Protocol):
    """What a loss factory returns: a ``torch.nn.Module`` with sentence-transformers' loss call
    signature (one tokenised batch per text column; the ``score``/``label`` column or None)."""

    def __call__(self, sentence_features: Iterable[dict[str, Any]], labels: Any) -> Any: ...


@runtime_checkable
class Metric(Protocol):
    """What a metric factory returns: one value per query of a
    :class:`~embedtune_core.ranking.ranked.RankedRun` at cut-off ``k`` (the core takes the mean)."""

    def compute(self, ranked: Any, k: int) -> Any: ...


@runtime_checkable
class PipelineStep(Protocol):
    """What a step factory returns: ``run(context)`` does the step's work on the
    ``embedtune_core.pipeline.steps.StepContext``. Optional: ``check(plan)`` refuses settings
    in preflight (raise an ``EmbedtuneError``), ``setup(context)`` prepares what needs the loaded
    models before the run folder exists."""

    def run(self, context: Any) -> None: ...


@runtime_checkable
class Callback(Protocol):
    """What a callback factory returns: a ``transformers.TrainerCallback`` (these are a few of its
    event methods; it has them all)."""

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any: ...

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any: ...

    def on_log(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any: ...


@attrs.define
class ExportRequest:
    """What an exporter gets: the loaded sentence-transformers ``model`` (float32, on the CPU, in
    eval mode) and its name or folder ``model_name``; the empty ``folder`` to write the exported
    model into; ``calibration_texts`` (training texts, for calibrated quantization); and
    ``onnx()``, which returns a folder holding the model exported to ONNX in float32
    (``model.onnx`` and ``tokenizer.json``), made once per export run and shared."""

    model: Any
    model_name: str
    folder: Any
    calibration_texts: list[str] = attrs.field(factory=list)
    onnx: Any = None


@runtime_checkable
class Exporter(Protocol):
    """What an exporter factory returns: ``export`` writes a deployable model into
    ``request.folder``, in the format the exporter declared (``onnx``: ``model.onnx`` and
    ``tokenizer.json``; ``sentence-transformers``: a model folder)."""

    def export(self, request: ExportRequest) -> None: ...

