"""Built-in model exporters: the deployable forms ``embedtune export`` writes and measures.

- ``pytorch-fp32``: the sentence-transformers model as it is (safetensors), the reference;
- ``onnx-fp32``: the model as one ONNX graph (pooling and normalisation inside) for onnxruntime;
- ``onnx-int8``: that graph with int8 weights (onnxruntime's dynamic quantization, one scale per
  output channel, the word embeddings left in float: measured to keep >= 99% of NDCG@10 where
  the defaults keep 96%).
"""

from __future__ import annotations

from typing import Annotated, Literal

from embedtune_core import hookimpl
from embedtune_core.types import ExportRequest


class PyTorchExporter:
    """The sentence-transformers model as it is, saved with safetensors weights."""

    def export(self, request: ExportRequest) -> None:
        request.model.save(str(request.folder), safe_serialization=True)


class OnnxExporter:
    """The model exported to ONNX with torch.onnx.export, float32 weights."""

    def export(self, request: ExportRequest) -> None:
        from embedtune_core.deploy.onnx_export import copy_onnx

        copy_onnx(request.onnx(), request.folder)


Operator = Literal["MatMul", "Attention", "Gather", "EmbedLayerNormalization", "Gemm", "Conv"]


class OnnxInt8Exporter:
    """The ONNX graph with int8 weights (onnxruntime dynamic quantization)."""

    def __init__(self, per_channel: Annotated[bool, "one scale per output channel rather than per matrix"] = True,
                 operators: Annotated[list[Operator] | None, "operator types whose weights become int8 (Gather / "
                                                      "EmbedLayerNormalization: the word embeddings)"] = None,
                 exclude: Annotated[list[str] | None, "node names left in float"] = None) -> None:
        from embedtune_core.deploy.onnx_export import INT8_OPERATORS

        self.per_channel = per_channel
        self.operators = list(operators) if operators else list(INT8_OPERATORS)
        self.exclude = list(exclude or [])

    def export(self, request: ExportRequest) -> None:
        from embedtune_core.deploy.onnx_export import ONNX_MODEL, TOKENIZER, quantize_weights
        import shutil

        source = request.onnx()
        request.folder.mkdir(parents=True, exist_ok=True)
        quantize_weights(source / ONNX_MODEL, request.folder / ONNX_MODEL, per_channel=self.per_channel,
                         operators=self.operators, exclude=self.exclude)
        shutil.copyfile(source / TOKENIZER, request.folder / TOKENIZER)


@hookimpl
def register_exporters(register):
    register("pytorch-fp32", PyTorchExporter, format="sentence-transformers", backend="pytorch", weights="fp32",
             reference=True)
    register("onnx-fp32", OnnxExporter, format="onnx", backend="onnx", weights="fp32")
    register("onnx-int8", OnnxInt8Exporter, format="onnx", backend="onnx", weights="int8")
