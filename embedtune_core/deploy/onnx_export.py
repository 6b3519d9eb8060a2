"""A sentence-transformers model as an ONNX graph, and its weights as int8.

:func:`export_onnx` traces the whole model (the transformer, pooling, dense and normalisation
modules) with ``torch.onnx.export``, so the graph takes ``input_ids`` and ``attention_mask`` and
returns ``sentence_embedding`` exactly as ``model.encode`` computes it. The attention is traced in
its plain ("eager") form, which onnxruntime's transformer optimizer recognises and fuses into its
own attention, layer-norm and GELU operators; the fused graph is kept only when it gives the same
embeddings as the plain one. The tokenizer is written beside it as ``tokenizer.json`` with the
model's truncation and padding set, so ``tokenizers`` alone reproduces the model's inputs. When
the fused graph is kept, the traced one stays beside it as ``model.plain.onnx``: int8 weights run
faster in it (see :func:`quantize_weights`).

sentence-transformers' own ONNX export goes through optimum, whose current release needs
transformers < 4.58; this project runs transformers 5.x, hence ``torch.onnx.export`` here.

:func:`quantize_weights` stores the weights of the matrix products as int8 with onnxruntime's
dynamic quantization: one scale per output channel and the word-embedding table left in float,
the choices measured to keep the quality; by default in the traced graph, weights only (the
products of two activations, inside the attention, stay in float), which encoded MiniLM 15-20%
faster than the fused graph with int8 attention at the same quality (see docs/deployment.md).
"""

from __future__ import annotations

import contextlib
import shutil
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from embedtune_core.embedding.exported import ONNX_MODEL, TOKENIZER
from embedtune_core.errors import EmbedtuneError

OPSET = 17
#: the largest difference from the plain graph's embeddings a fused graph may show
FUSION_TOLERANCE = 1e-4
#: the operators whose weights int8 quantization stores as int8 by default
INT8_OPERATORS = ("MatMul", "Attention")
#: the traced graph, kept beside a fused ``model.onnx``
PLAIN_ONNX = "model.plain.onnx"
#: texts the fused graph is checked on (and the export traced with) when none are given
PROBE_TEXTS = ("a short text", "a somewhat longer text to check the exported graph against the plain one, "
                                "with more words than the first")


class _Graph:
    """The model as one ``torch.nn.Module`` taking token ids and mask (built lazily: torch)."""

    @staticmethod
    def build(model: Any) -> Any:
        import torch

        class Graph(torch.nn.Module):
            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, input_ids: Any, attention_mask: Any) -> Any:
                return self.inner({"input_ids": input_ids, "attention_mask": attention_mask})["sentence_embedding"]

        return Graph(model).eval()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No warnings, prints or log lines below errors from the exporter and onnxruntime's tools."""
    import logging

    level = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(None):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(level)


@contextlib.contextmanager
def _eager_attention(model: Any) -> Iterator[None]:
    """The transformer's attention in its plain form while exporting (the form onnxruntime
    fuses), then as it was."""
    inner = getattr(model[0], "auto_model", None) if len(model) else None
    config = getattr(inner, "config", None)
    before = getattr(config, "_attn_implementation", None)
    if inner is None or before in (None, "eager"):
        yield
        return
    setter = getattr(inner, "set_attn_implementation", None)
    try:
        setter("eager") if setter else setattr(config, "_attn_implementation", "eager")
    except Exception:  # a model without the eager form: export it as it is
        yield
        return
    try:
        yield
    finally:
        setter(before) if setter else setattr(config, "_attn_implementation", before)


def tokenizer_file(model: Any, path: Path) -> dict[str, Any]:
    """Write the model's tokenizer to ``path`` with its truncation (the model's
    ``max_seq_length``) and padding set; return what the variant spec records about the
    inputs (``max_seq_length``, ``lowercase``, ``prompt``)."""
    from tokenizers import Tokenizer

    hf_tokenizer = getattr(model, "tokenizer", None)
    backend = getattr(hf_tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise EmbedtuneError("the model's tokenizer is not a fast (Rust) tokenizer, so it has no tokenizer.json to "
                             "ship with the ONNX graph", key="model.name",
                             hint="export a model with a fast tokenizer (tokenizer.json in its folder)")
    tokenizer = Tokenizer.from_str(backend.to_str())
    length = int(model.max_seq_length or hf_tokenizer.model_max_length)
    tokenizer.enable_truncation(max_length=length)
    pad_id = hf_tokenizer.pad_token_id if hf_tokenizer.pad_token_id is not None else 0
    tokenizer.enable_padding(pad_id=pad_id, pad_token=hf_tokenizer.pad_token or "[PAD]")
    tokenizer.save(str(path))
    from embedtune_core.embedding.encode import _default_prompt

    return {"max_seq_length": length, "lowercase": bool(getattr(model[0], "do_lower_case", False)),
            "prompt": _default_prompt(model) or None}


def _trace(model: Any, path: Path, opset: int) -> None:
    import torch

    features = model.tokenizer(list(PROBE_TEXTS), padding=True, truncation=True, return_tensors="pt")
    graph = _Graph.build(model)
    with _quiet(), _eager_attention(model), torch.inference_mode():
        torch.onnx.export(graph, (features["input_ids"], features["attention_mask"]), str(path),
                          input_names=["input_ids", "attention_mask"], output_names=["sentence_embedding"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "sequence"},
                                        "attention_mask": {0: "batch", 1: "sequence"},
                                        "sentence_embedding": {0: "batch"}},
                          opset_version=opset, dynamo=False)


def _run(path: Path, tokenizer: Path, texts: Sequence[str]) -> np.ndarray:
    """The graph's embeddings of ``texts`` (one thread)."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    encodings = Tokenizer.from_file(str(tokenizer)).encode_batch([t.strip() for t in texts])
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    return session.run(None, {"input_ids": ids, "attention_mask": mask})[0]


def _shape(model: Any) -> tuple[int, int]:
    """The transformer's attention heads and hidden size (0, 0 where its config does not say)."""
    config = getattr(getattr(model[0], "auto_model", None), "config", None)
    heads, hidden = getattr(config, "num_attention_heads", 0), getattr(config, "hidden_size", 0)
    return (heads, hidden) if isinstance(heads, int) and isinstance(hidden, int) else (0, 0)


def _fuse(path: Path, tokenizer: Path, texts: Sequence[str], shape: tuple[int, int]) -> bool:
    """Replace the graph at ``path`` by onnxruntime's fused transformer graph when the fusion
    applies and gives the same embeddings on ``texts``; whether it did."""
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        with _quiet():
            fused = optimize_model(str(path), model_type="bert", num_heads=shape[0], hidden_size=shape[1],
                                   opt_level=0)
        if not any(fused.get_fused_operator_statistics().values()):
            return False
        candidate = path.with_name("fused.onnx")
        fused.save_model_to_file(str(candidate))
        difference = np.abs(_run(candidate, tokenizer, texts) - _run(path, tokenizer, texts)).max()
    except Exception:  # the optimizer does not know this architecture: keep the plain graph
        return False
    if not difference <= FUSION_TOLERANCE:
        candidate.unlink()
        return False
    path.replace(path.with_name(PLAIN_ONNX))
    candidate.replace(path)
    return True


def export_onnx(model: Any, folder: str | Path, *, opset: int = OPSET, fuse: bool = True,
                probe_texts: Sequence[str] = ()) -> dict[str, Any]:
    """Write ``model.onnx`` and ``tokenizer.json`` for the sentence-transformers ``model`` into
    ``folder``. Returns what the variant spec records (``max_seq_length``, ``lowercase``,
    ``prompt``, ``fused``: whether the fused graph was kept)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path, tokenizer = folder / ONNX_MODEL, folder / TOKENIZER
    inputs = tokenizer_file(model, tokenizer)
    try:
        _trace(model, path, opset)
    except Exception as exc:  # the tracer's errors have many types
        raise EmbedtuneError(f"the model could not be exported to ONNX: {str(exc).splitlines()[0][:300]}",
                             key="model.name", hint="the exporter traces sentence-transformers models of "
                                                    "Transformer, Pooling, Dense and Normalize modules") from None
    texts = list(probe_texts)[:32] or list(PROBE_TEXTS)
    inputs["fused"] = fuse and _fuse(path, tokenizer, texts, _shape(model))
    return inputs


def activation_products(path: str | Path) -> list[str]:
    """The names of the graph's ``MatMul`` nodes that multiply two activations (no input is a
    stored weight): the attention's query-key and weight-value products."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    weights = {tensor.name for tensor in graph.initializer}
    weights |= {node.output[0] for node in graph.node if node.op_type == "Constant"}
    return [node.name for node in graph.node if node.op_type == "MatMul" and not any(i in weights for i in node.input)]


def quantize_weights(source: str | Path, target: str | Path, *, per_channel: bool = True,
                     operators: Sequence[str] = INT8_OPERATORS, exclude: Sequence[str] = (),
                     weights_only: bool = False) -> None:
    """Write the graph ``source`` with int8 weights to ``target`` (onnxruntime's dynamic
    quantization: weights stored as int8, activations quantized per batch as they come).
    ``per_channel``: one scale per output channel rather than per matrix; ``operators``: the
    operator types quantized (the word embeddings, a Gather, stay float unless listed);
    ``exclude``: node names left in float; ``weights_only``: products of two activations
    (:func:`activation_products`) stay in float too."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if weights_only:
        exclude = [*exclude, *activation_products(source)]
    with _quiet():
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=per_channel,
                         op_types_to_quantize=list(operators), nodes_to_exclude=list(exclude),
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})


def copy_onnx(source: str | Path, target: str | Path) -> None:
    """Copy an exported ONNX folder's files (the graph and the tokenizer)."""
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    for name in (ONNX_MODEL, TOKENIZER):
        shutil.copyfile(Path(source) / name, target / name)
