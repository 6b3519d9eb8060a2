"""Built-in model exporters, and the ``export`` pipeline step that runs them.

The exporters are the deployable forms the step writes and measures:

- ``pytorch-fp32``: the sentence-transformers model as it is (safetensors), the reference;
- ``onnx-fp32``: the model as one ONNX graph (pooling and normalisation inside) for onnxruntime;
- ``onnx-int8``: that graph with int8 weights (onnxruntime's dynamic quantization, one scale per
  output channel, the word embeddings left in float: measured to keep >= 99% of NDCG@10 where
  the defaults keep 96%).

The ``export`` step (``embedtune export``, or ``"export"`` in a run's ``steps``) exports the model
as the run leaves it with each exporter into the run folder, measures every variant on the
held-out data and records the deployment table in ``deployment.json`` and
``metrics.json["deployment"]``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from embedtune_core import hookimpl
from embedtune_core.deploy.deployment import MIN_RETENTION
from embedtune_core.embedding.quantized import RESCORE_CANDIDATES
from embedtune_core.errors import ConfigError, DataError, EmbedtuneError
from embedtune_core.plugins.options import Range
from embedtune_core.pipeline.steps import DEPLOYMENT, TRAINED_MODEL
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
    """The ONNX graph with int8 weights (onnxruntime dynamic quantization). By default the
    traced graph's weight matrices become int8 and the attention's products of two activations
    stay in float: measured on MiniLM, 15-20% faster than the fused graph with onnxruntime's int8
    attention, at the same NDCG@10 (docs/deployment.md)."""

    def __init__(self, per_channel: Annotated[bool, "one scale per output channel rather than per matrix"] = True,
                 graph: Annotated[Literal["plain", "fused"], "the graph quantized: the traced one (weights only) or "
                                                            "onnxruntime's fused transformer graph (its attention "
                                                            "quantized too)"] = "plain",
                 operators: Annotated[list[Operator] | None, "operator types whose weights become int8 (Gather / "
                                                      "EmbedLayerNormalization: the word embeddings; default: "
                                                      "MatMul, and Attention in the fused graph)"] = None,
                 exclude: Annotated[list[str] | None, "node names left in float"] = None) -> None:
        from embedtune_core.deploy.onnx_export import INT8_OPERATORS

        self.per_channel = per_channel
        self.graph = graph
        self.operators = list(operators) if operators else list(INT8_OPERATORS if graph == "fused" else ("MatMul",))
        self.exclude = list(exclude or [])

    def export(self, request: ExportRequest) -> None:
        from embedtune_core.deploy.onnx_export import ONNX_MODEL, PLAIN_ONNX, TOKENIZER, quantize_weights
        import shutil

        source = request.onnx()
        graph = source / PLAIN_ONNX if self.graph == "plain" and (source / PLAIN_ONNX).is_file() else source / ONNX_MODEL
        request.folder.mkdir(parents=True, exist_ok=True)
        quantize_weights(graph, request.folder / ONNX_MODEL, per_channel=self.per_channel, operators=self.operators,
                         exclude=self.exclude, weights_only=self.graph == "plain")
        shutil.copyfile(source / TOKENIZER, request.folder / TOKENIZER)


Precision = Literal["float32", "int8", "binary"]
Positive = Range(ge=1)


class Export:
    """Export the model as the run leaves it with each exporter and measure every variant."""

    def __init__(self, registry: Any,
                 exporters: Annotated[list[str] | None, "exporters to run (default: every exporter declared "
                                                        "default; `embedtune components exporter` lists them)"] = None,
                 exporter_options: Annotated[dict | None, "options per exporter, e.g. {onnx-int8 = {per_channel = "
                                                          "false}}"] = None,
                 dims: Annotated[list[int] | None, "Matryoshka dims besides the full size (default: "
                                                   "evaluation.dims)"] = None,
                 embeddings: Annotated[list[Precision] | None, "stored embedding precisions (default: float32, int8 "
                                                               "and binary; int8 and binary re-scored by the float "
                                                               "query)"] = None,
                 threads: Annotated[int, Positive, "threads of every encoding (speed is compared at the same "
                                                   "threads)"] = 1,
                 batch_size: Annotated[int, Positive, "batch size of the encodings the metrics are measured on (the "
                                                      "evaluation's: with int8 weights an embedding depends slightly "
                                                      "on its batch)"] = 128,
                 speed_batch_size: Annotated[int, Positive, "batch size of the speed measurement "
                                                            "(sentence-transformers' encode default)"] = 32,
                 speed_texts: Annotated[int, Positive, "held-out texts each model encodes for the speed "
                                                       "measurement"] = 1000,
                 speed_rounds: Annotated[int, Positive, "interleaved timing rounds; each model keeps its best"] = 3,
                 rescore_candidates: Annotated[int, Positive, "candidates per query re-scored by the float query "
                                                              "(int8 and binary embeddings)"] = RESCORE_CANDIDATES,
                 min_retention: Annotated[float, Range(ge=0, le=1), "share of the reference's headline metric a "
                                                                    "variant must keep to be recommended"] = MIN_RETENTION,
                 ) -> None:
        self.registry = registry
        self.exporters = list(exporters) if exporters else None
        self.exporter_options = dict(exporter_options or {})
        self.dims = dims
        self.embeddings = embeddings
        self.measure = {"threads": threads, "batch_size": batch_size, "speed_batch_size": speed_batch_size,
                        "speed_texts": speed_texts,
                        "speed_rounds": speed_rounds, "rescore_candidates": rescore_candidates,
                        "min_retention": min_retention}

    def check(self, plan: Any, name: str) -> None:
        """The run needs a folder to write into, ranked held-out data and exporters that exist."""
        from embedtune_core.deploy.deployment import exporters_to_run
        from embedtune_core.embedding.exported import is_variant

        if plan.output.run_dir is None:
            raise ConfigError(f"step '{name}' writes the exported models into the run folder, and this run has none",
                              key="steps", hint="give the run an output folder (--output)")
        if plan.data.eval_kind != "ir":
            raise DataError(f"step '{name}' measures retrieval: the held-out data must be IR or rows with positives, "
                            f"not {plan.data.dataset_type}", key="data.source",
                            hint="give the data the model was tuned on, e.g. builtin:hpo-lay")
        with _options_named(name):
            exporters_to_run(self.registry, self.exporters, self.exporter_options)
        before = plan.planned[:plan.steps.index(name)]
        if not any(TRAINED_MODEL in step.info.provides for step in before) and is_variant(plan.config.model.name):
            raise ConfigError(f"'{plan.config.model.name}' is already an exported variant", key="model.name",
                              hint="export the sentence-transformers model it came from")

    def run(self, context: Any) -> None:
        from embedtune_core.distributed import barrier, broadcast, is_main_process

        deployment = None
        if is_main_process():
            with _options_named(context.name):
                deployment = self._export(context)
        barrier()
        context.results.deployment = broadcast(deployment)
        recommended = (context.results.deployment or {}).get("recommended")
        context.report("recommended", recommended)

    def _export(self, context: Any) -> dict:
        from embedtune_core.deploy.deployment import ExportSettings, calibration_texts, export_deployment, \
            remove_variants

        config, data = context.config, context.data
        settings = ExportSettings(dims=tuple(config.evaluation.dims if self.dims is None else self.dims),
                                  embeddings=tuple(self.embeddings or ExportSettings().embeddings),
                                  all_queries=config.evaluation.all_queries,
                                  approximate_from=config.evaluation.approximate_from, **self.measure)
        remove_variants(context.run_dir)  # what an interrupted attempt left
        texts = calibration_texts(data)  # the training rows, when the run trains
        return export_deployment(str(context.model_path), data.evaluation, registry=self.registry,
                                 metrics=list(config.evaluation.metrics), out_dir=context.run_dir,
                                 exporters=self.exporters, exporter_options=self.exporter_options,
                                 settings=settings, calibration_texts=texts, progress=context.progress)


class _options_named:
    """Errors about an export setting name the step's option (``step_options.export.dims``)."""

    KEYS = ("exporters", "exporter_options", "dims", "embeddings")

    def __init__(self, step: str) -> None:
        self.step = step

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
        if isinstance(exc, EmbedtuneError) and exc.key and exc.key.split(".")[0] in self.KEYS:
            exc.key = f"step_options.{self.step}.{exc.key}"
        return False


@hookimpl
def register_pipeline_steps(register):
    register("export", Export, needs=("data",), provides=(DEPLOYMENT,), uses=("held-out",))


@hookimpl
def register_exporters(register):
    register("pytorch-fp32", PyTorchExporter, format="sentence-transformers", backend="pytorch", weights="fp32",
             reference=True)
    register("onnx-fp32", OnnxExporter, format="onnx", backend="onnx", weights="fp32")
    register("onnx-int8", OnnxInt8Exporter, format="onnx", backend="onnx", weights="int8")
