"""Exported variants: a folder ``embedtune export`` wrote, read back as a model.

A variant folder holds a model in one of two formats and ``embedtune_variant.json`` saying how
it is served: at how many dimensions (the first ``dims`` of each embedding, renormalised) and
at which embedding precision the vectors are stored (float32, int8 or binary; see
:mod:`embedtune_core.embedding.quantized`).

- format ``onnx``: ``model.onnx`` (tokens in, the sentence embedding out: pooling and
  normalisation are inside the graph) and ``tokenizer.json`` with its truncation and padding
  set; it runs with onnxruntime and ``tokenizers`` alone (docs/deployment.md shows how).
- format ``sentence-transformers``: a sentence-transformers model folder.

:func:`load_variant` returns a model the rest of embedtune uses like a ``SentenceTransformer``:
:func:`~embedtune_core.embedding.encode.encode` encodes with it, the evaluation searches with the
variant's own ``vector_search`` (its stored precision, candidates re-scored by the float query).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import attrs
import numpy as np

from embedtune_core.embedding.search import APPROXIMATE_FROM
from embedtune_core.errors import EmbedtuneError

VARIANT_FILE = "embedtune_variant.json"
FORMATS = ("onnx", "sentence-transformers")
ONNX_MODEL = "model.onnx"
TOKENIZER = "tokenizer.json"
#: the graph inputs an exported model may take (each batch supplies those the graph lists)
GRAPH_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _positive(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ValueError(f"'{attribute.name}' must be a positive integer, got {value!r}")


def _choice(*choices: str) -> Any:
    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if value not in choices:
            raise ValueError(f"'{attribute.name}' must be one of {', '.join(choices)}, got {value!r}")
    return check


def _ranges(value: Any) -> Any:
    return None if value is None else np.asarray(value, dtype=np.float32)


@attrs.frozen
class VariantSpec:
    """What ``embedtune_variant.json`` says about a variant folder."""

    format: str = attrs.field(validator=_choice(*FORMATS))
    dims: int = attrs.field(validator=_positive)
    full_dim: int = attrs.field(validator=_positive)
    embedding: str = attrs.field(default="float32", validator=_choice("float32", "int8", "binary"))
    backend: str = "onnx"
    weights: str = "fp32"
    exporter: str | None = None
    max_seq_length: int | None = attrs.field(default=None, validator=_positive)
    max_position_embeddings: int | None = attrs.field(default=None, validator=_positive)
    lowercase: bool = False
    prompt: str | None = None
    rescore_candidates: int = attrs.field(default=100, validator=_positive)
    int8_ranges: Any = attrs.field(default=None, converter=_ranges, eq=False)
    model_file: str = ONNX_MODEL

    def to_json(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["int8_ranges"] = None if self.int8_ranges is None else self.int8_ranges.tolist()
        return data


def is_variant(name: str | os.PathLike) -> bool:
    """Whether ``name`` is a folder holding an exported variant."""
    return os.path.isfile(os.path.join(os.path.expanduser(str(name)), VARIANT_FILE))


def _bad(folder: Path, problem: str) -> EmbedtuneError:
    return EmbedtuneError(f"exported model '{folder}': {problem}", file=folder / VARIANT_FILE, key="model.name",
                          hint="give a variant folder `embedtune export` wrote (OUT/<variant>, see OUT/deployment.json), "
                               "or export the model again")


def read_variant(folder: str | os.PathLike) -> VariantSpec:
    """The spec of the variant in ``folder``, checked with the files it names (nothing loaded)."""
    folder = Path(os.path.expanduser(str(folder)))
    try:
        data = json.loads((folder / VARIANT_FILE).read_text(encoding="utf-8"))
    except OSError as exc:
        raise _bad(folder, f"{VARIANT_FILE} cannot be read ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise _bad(folder, f"{VARIANT_FILE} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise _bad(folder, f"{VARIANT_FILE} must hold a JSON object")
    known = {a.name for a in attrs.fields(VariantSpec)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise _bad(folder, f"{VARIANT_FILE} has unknown key(s) {', '.join(unknown)}")
    try:
        spec = VariantSpec(**data)
    except (TypeError, ValueError) as exc:
        raise _bad(folder, f"{VARIANT_FILE}: {exc}") from None
    if spec.dims > spec.full_dim:
        raise _bad(folder, f"dims {spec.dims} is more than the model's {spec.full_dim}")
    _check_files(folder, spec)
    return spec


def _check_files(folder: Path, spec: VariantSpec) -> None:
    if spec.format == "onnx":
        for name in (spec.model_file, TOKENIZER):
            path = folder / name
            if not path.is_file() or path.stat().st_size == 0:
                raise _bad(folder, f"'{name}' is missing or empty")
    elif not (folder / "modules.json").is_file():
        raise _bad(folder, "the sentence-transformers model's modules.json is missing")
    if spec.embedding == "int8" and spec.int8_ranges is not None and spec.int8_ranges.shape != (2, spec.dims):
        raise _bad(folder, f"int8_ranges must be 2 x {spec.dims} numbers")


def default_threads() -> int:
    """Threads an onnxruntime session uses: ``OMP_NUM_THREADS`` when set, else onnxruntime's
    choice (0)."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() else 0


class OnnxModel:
    """An exported ONNX model behind the interface embedtune uses a ``SentenceTransformer`` by:
    ``encode_texts`` (what :func:`~embedtune_core.embedding.encode.encode` calls),
    ``get_sentence_embedding_dimension``, ``max_seq_length``, ``device``, ``vector_search``."""

    device = "cpu"
    training = False

    def __init__(self, folder: str | os.PathLike, spec: VariantSpec, *, threads: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.folder, self.spec = Path(folder), spec
        options = ort.SessionOptions()
        options.intra_op_num_threads = default_threads() if threads is None else int(threads)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(self.folder / spec.model_file), options,
                                                providers=["CPUExecutionProvider"])
            self.tokenizer = Tokenizer.from_file(str(self.folder / TOKENIZER))
        except Exception as exc:  # onnxruntime and tokenizers raise their own types for a damaged file
            raise _bad(self.folder, f"it does not load ({str(exc).splitlines()[0][:300]})") from None
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.output = self.session.get_outputs()[0].name
        self.max_seq_length = spec.max_seq_length
        self.truncate_dim = spec.dims

    def get_sentence_embedding_dimension(self) -> int:
        return self.spec.dims

    def eval(self) -> "OnnxModel":
        return self

    def _features(self, texts: list[str]) -> dict[str, np.ndarray]:
        texts = [t.strip() for t in texts]  # as sentence-transformers' Transformer module does
        if self.spec.lowercase:
            texts = [t.lower() for t in texts]
        if self.spec.prompt:
            texts = [self.spec.prompt + t for t in texts]
        encodings = self.tokenizer.encode_batch(texts)
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), width), dtype=np.int64)
        mask = np.zeros((len(texts), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = encoding.attention_mask
        given = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        return {name: given[name] for name in self.inputs}

    def encode_texts(self, texts: Sequence[str], *, batch_size: int = 128, normalize: bool = True,
                     dtype: str = "float32") -> np.ndarray:
        """Embeddings of ``texts`` (the first ``dims`` components; rows L2-normalised when
        ``normalize``), batches of similar length, longest first, tokenised a batch ahead in a
        thread, as ``encode`` makes them."""
        from embedtune_core.embedding.batches import batches_ahead

        texts = [t if isinstance(t, str) else str(t) for t in texts]
        out = np.zeros((len(texts), self.spec.dims), dtype=dtype)
        order = np.argsort(-np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)), kind="stable")
        starts = range(0, len(texts), batch_size)
        # tokenised a batch ahead in a thread, as encode() does for a PyTorch model
        batches = batches_ahead(self._features, [[texts[i] for i in order[s : s + batch_size]] for s in starts],
                                 workers=1, ahead=4, pin=False)
        for start, features in zip(starts, batches):
            rows = order[start : start + batch_size]
            vectors = self.session.run([self.output], features)[0]
            vectors = vectors[:, : self.spec.dims].astype(np.float32)
            if normalize:
                vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            out[rows] = vectors
        return out

    def vector_search(self, corpus: Any, *, device: str | None = None, approximate_from: int | None = APPROXIMATE_FROM) -> Any:
        return variant_search(self.spec, corpus, device=device, approximate_from=approximate_from)


def variant_search(spec: VariantSpec, corpus: Any, *, device: str | None = None, approximate_from: int | None = APPROXIMATE_FROM) -> Any:
    """The search a variant's stored vectors get: exact float search, or the quantized search
    with the ranges recorded at export (calibrated on ``corpus`` where they do not fit it)."""
    from embedtune_core.embedding.quantized import QuantizedSearch
    from embedtune_core.embedding.search import VectorSearch

    if spec.embedding == "float32":
        return VectorSearch(corpus, device=device, approximate_from=approximate_from)
    ranges = spec.int8_ranges
    if ranges is not None and ranges.shape[1] != np.shape(corpus)[1]:
        ranges = None
    return QuantizedSearch(corpus, spec.embedding, ranges=ranges, candidates=spec.rescore_candidates, device=device)


def load_variant(folder: str | os.PathLike, *, device: str | None = None, threads: int | None = None,
                 max_seq_length: int | None = None) -> Any:
    """The model in the variant folder ``folder`` (see the module's docstring)."""
    folder = Path(os.path.expanduser(str(folder))).resolve()
    spec = read_variant(folder)
    if spec.format == "onnx":
        if device not in (None, "cpu"):
            raise EmbedtuneError(f"exported ONNX model '{folder}' runs on the CPU here, not on '{device}'",
                                 key="model.device", hint="leave the device unset or use cpu")
        model = OnnxModel(folder, spec, threads=threads)
        if max_seq_length:
            model.tokenizer.enable_truncation(int(max_seq_length))
            model.max_seq_length = int(max_seq_length)
        return model
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device=device, truncate_dim=spec.dims if spec.dims < spec.full_dim else None)
    if max_seq_length:
        model.max_seq_length = int(max_seq_length)
    model.embedtune_variant = spec
    if spec.embedding != "float32":
        model.vector_search = lambda corpus, device=None, approximate_from=APPROXIMATE_FROM: variant_search(
            spec, corpus, device=device, approximate_from=approximate_from)
    return model
