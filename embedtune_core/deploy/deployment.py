"""One export run: every exporter's model, every variant measured, the recommended one chosen.

:func:`export_deployment` is what ``embedtune export`` and the pipeline's export step call. It
writes into a folder::

    OUT/deployment.json                   the table below, as JSON
    OUT/<backend>-<weights>-<D>d-float32/ each exporter's model at full size (D: its dimension)
    OUT/<backend>-<weights>-<d>d-<embedding>/   every other variant: the same files (hard links
                                          where the file system allows) and its own
                                          embedtune_variant.json

and returns ``{"reference", "recommended", "headline_metric", "min_retention", ..., "variants":
[{"name", "exporter", "backend", "weights", "dims", "embedding", <each metric>, "retention",
"texts_per_second", "speedup", "model_mb", "bytes_per_vector", "path"}]}``.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable, Sequence

import attrs

from embedtune_core.embedding.exported import VARIANT_FILE, VariantSpec
from embedtune_core.embedding.quantized import EMBEDDINGS, RESCORE_CANDIDATES, bytes_per_vector
from embedtune_core.embedding.search import APPROXIMATE_FROM
from embedtune_core.errors import ComponentError, ConfigError

DEPLOYMENT_FILE = "deployment.json"
#: at most this many training texts calibrate the exporters (half anchors, half positives)
CALIBRATION_TEXTS = 2000
#: the share of the reference's headline metric a variant must keep to be recommended
MIN_RETENTION = 0.99
#: files that hold a model's weights (counted in its size)
WEIGHT_SUFFIXES = (".onnx", ".data", ".safetensors", ".bin")
#: the folder the models are exported to ONNX once, shared by the ONNX exporters, then removed
SHARED_ONNX = ".onnx-export"
_VARIANT_NAME = re.compile(r"[A-Za-z0-9_.]+(-[A-Za-z0-9_.]+)+-[0-9]+d-(" + "|".join(EMBEDDINGS) + ")")


@attrs.frozen
class ExportSettings:
    """How an export run measures: ``dims`` (Matryoshka dims besides the full size),
    ``embeddings`` (stored precisions), ``threads`` of every encoding, ``batch_size`` of the
    encodings measured for quality, ``speed_texts`` held-out texts timed in ``speed_rounds``
    interleaved rounds in batches of ``speed_batch_size``,
    ``rescore_candidates`` re-scored per query for int8 and binary, ``min_retention`` to be
    recommended."""

    dims: tuple[int, ...] = ()
    embeddings: tuple[str, ...] = EMBEDDINGS
    threads: int = 1
    batch_size: int = 128
    speed_batch_size: int = 32
    speed_texts: int = 1000
    speed_rounds: int = 3
    rescore_candidates: int = RESCORE_CANDIDATES
    min_retention: float = MIN_RETENTION
    all_queries: bool = False
    approximate_from: int | None = APPROXIMATE_FROM


def variant_name(backend: str, weights: str, dims: int, embedding: str) -> str:
    return f"{backend}-{weights}-{dims}d-{embedding}"


def model_megabytes(folder: Path) -> float:
    """Megabytes (10^6 bytes) of the weight files under ``folder``."""
    total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))
    return round(total / 1e6, 2)


def link_tree(source: Path, target: Path) -> None:
    """``target`` with the files of ``source`` (hard links where possible, else copies), but
    for its variant file."""
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if path.is_dir():
            (target / relative).mkdir(parents=True, exist_ok=True)
            continue
        if relative.as_posix() == VARIANT_FILE:
            continue
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, target / relative)
        except OSError:
            shutil.copy2(path, target / relative)


def write_spec(folder: Path, spec: VariantSpec) -> None:
    from embedtune_core import io as eio

    eio.write_json(folder / VARIANT_FILE, spec.to_json())


# -- choosing ---------------------------------------------------------------------------------
def recommend(variants: Sequence[dict[str, Any]], min_retention: float = MIN_RETENTION) -> str | None:
    """The name of the variant to deploy: among those keeping at least ``min_retention`` of the
    reference's headline metric, the smallest stored vector, then the fastest encoding, then the
    smallest model (then the name, so the choice is stable). None when none keeps enough."""
    kept = [v for v in variants if v.get("retention") is not None and v["retention"] >= min_retention]
    if not kept:
        return None
    best = min(kept, key=lambda v: (v["bytes_per_vector"], -v["texts_per_second"], v["model_mb"], v["name"]))
    return best["name"]


def calibration_texts(data: Any, limit: int = CALIBRATION_TEXTS) -> list[str]:
    """Up to ``limit`` training texts (anchors and positives) of prepared data, which exporters
    that calibrate (static quantization) read; none without training rows."""
    rows = getattr(data, "train", None)
    texts: list[str] = []
    for column in ("anchor", "positive"):
        if rows is not None and column in rows.column_names:
            texts += [str(t) for t in rows[column][:limit // 2]]
    return texts


def remove_variants(folder: str | Path) -> list[str]:
    """Remove from ``folder`` what an export run writes there (variant folders, named
    ``<backend>-<weights>-<d>d-<embedding>``, the shared ONNX export and ``deployment.json``),
    so a run continued after an interruption exports afresh; the names removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for path in sorted(folder.iterdir()):
        if path.is_dir() and not path.is_symlink() and (_VARIANT_NAME.fullmatch(path.name) or path.name == SHARED_ONNX):
            shutil.rmtree(path)
            removed.append(path.name)
    if (folder / DEPLOYMENT_FILE).is_file():
        (folder / DEPLOYMENT_FILE).unlink()
        removed.append(DEPLOYMENT_FILE)
    return removed


def exporters_to_run(registry: Any, names: Sequence[str] | None,
                     options: dict[str, dict[str, Any]] | None = None) -> list[tuple[Any, dict[str, Any]]]:
    """``(component, checked options)`` of each exporter to run, the reference first: those
    named (each once), else every exporter declared ``default``. Exactly one must be the
    reference; options set for an exporter that does not run are an error."""
    options = dict(options or {})
    if names:
        chosen = list(dict.fromkeys(_exporter(registry, n, "exporters") for n in names))
    else:
        chosen = [c for c in registry.components("exporter") if c.info.default]
    references = [c for c in chosen if c.info.reference]
    if len(references) != 1:
        listed = ", ".join(c.qualified_name for c in references) or "none"
        raise ConfigError(f"an export run needs exactly one reference exporter (declared reference=True); it has "
                          f"{len(references)} ({listed})", key="exporters",
                          hint="name one reference exporter, e.g. the built-in PyTorch one, with the others")
    out = []
    for component in [references[0]] + [c for c in chosen if c is not references[0]]:
        given = options.pop(component.name, options.pop(component.qualified_name, {}))
        out.append((component, _exporter_options(registry, component, given)))
    if options:
        raise ConfigError(f"options are set for exporter '{next(iter(options))}', which does not run",
                          key="exporter_options", hint="name it among the exporters too")
    return out


def _exporter(registry: Any, name: str, key: str) -> Any:
    try:
        return registry.get("exporter", name)
    except ComponentError as exc:
        raise ConfigError(exc.message, key=key, hint=exc.hint) from None


def _exporter_options(registry: Any, component: Any, given: dict[str, Any]) -> dict[str, Any]:
    return registry.resolve_options("exporter", component.qualified_name, given,
                                    key=f"exporter_options.{component.name}")


def check_settings(settings: ExportSettings, full_dim: int | None) -> tuple[int, ...]:
    """The dims to export (the full size first), or an error naming the bad setting."""
    for embedding in settings.embeddings:
        if embedding not in EMBEDDINGS:
            raise ConfigError(f"unknown embedding precision '{embedding}'", key="embeddings",
                              hint=f"use {', '.join(EMBEDDINGS)}")
    if "float32" not in settings.embeddings:
        raise ConfigError("the embedding precisions must include float32 (the reference's)", key="embeddings")
    dims = [d for d in dict.fromkeys(int(d) for d in settings.dims) if d != full_dim]
    for dim in dims:
        if dim < 1 or (full_dim and dim > full_dim):
            raise ConfigError(f"dim {dim} is outside the model's embedding size 1..{full_dim}", key="dims",
                              hint="list Matryoshka dims up to the model's embedding size")
    return tuple(sorted(dims, reverse=True))


# -- the run --------------------------------------------------------------------------------
@attrs.define
class _Exported:
    """One exporter's model as written and loaded."""

    component: Any
    spec: VariantSpec
    folder: Path
    model: Any
    encoded: Any = None
    texts_per_second: float | None = None


class _SharedOnnx:
    """The model exported to ONNX once, for every exporter that asks (``request.onnx()``)."""

    def __init__(self, model: Any, folder: Path, probe_texts: Sequence[str]) -> None:
        self.model, self.folder, self.probe_texts = model, folder, list(probe_texts)
        self.inputs: dict[str, Any] | None = None

    def __call__(self) -> Path:
        from embedtune_core.deploy.onnx_export import export_onnx

        if self.inputs is None:
            self.inputs = export_onnx(self.model, self.folder, probe_texts=self.probe_texts)
        return self.folder


def _base_spec(model: Any, model_name: str, full_dim: int) -> dict[str, Any]:
    """What every variant spec of ``model`` records about its inputs."""
    from embedtune_core.embedding.encode import _default_prompt
    from embedtune_core.embedding.info import model_info

    transformer = model[0] if len(model) else None
    return {"full_dim": full_dim, "max_seq_length": int(model.max_seq_length) if model.max_seq_length else None,
            "max_position_embeddings": model_info(model_name).max_positions,
            "lowercase": bool(getattr(transformer, "do_lower_case", False)), "prompt": _default_prompt(model) or None}


def _short_name(registry: Any, component: Any) -> str:
    """The component's name, qualified only where another plugin registered the same one."""
    return component.name if registry.has("exporter", component.name) else component.qualified_name


def _checked_output(component: Any, folder: Path) -> None:
    """The exporter wrote what it declared: an ONNX graph and tokenizer, or a model folder."""
    from embedtune_core.embedding.exported import ONNX_MODEL, TOKENIZER

    needed = (ONNX_MODEL, TOKENIZER) if component.info.format == "onnx" else ("modules.json",)
    missing = [name for name in needed if not (folder / name).is_file()]
    if missing:
        raise ComponentError(f"exporter '{component.qualified_name}' declared format {component.info.format} but "
                             f"wrote no {', '.join(missing)}", key="exporters",
                             hint=f"fix or uninstall the pack, or skip it with -p no:{component.plugin}")


def _run_exporter(registry: Any, component: Any, options: dict[str, Any], request: Any) -> None:
    """Build the exporter and let it write ``request.folder``; a pack's failure is one error
    naming it and its plugin."""
    from embedtune_core.plugins.calling import contained

    exporter = registry.build(component, options=options, doing="being built", step="export")
    with contained(component, "exporting", step="export"):
        exporter.export(request)
    _checked_output(component, request.folder)


def _export_all(registry: Any, model: Any, model_name: str, chosen: list, out_dir: Path, base: dict[str, Any],
                calibration_texts: Sequence[str], settings: ExportSettings, progress: Callable[[str], None]) -> list:
    """Each chosen exporter's model in ``out_dir/<backend>-<weights>-<full>d-float32``, with its
    variant file, loaded back."""
    from embedtune_core.embedding.exported import load_variant
    from embedtune_core.types import ExportRequest

    shared = _SharedOnnx(model, out_dir / SHARED_ONNX, calibration_texts)
    exported = []
    for component, options in chosen:
        info = component.info
        name = variant_name(info.backend, info.weights, base["full_dim"], "float32")
        folder = out_dir / name
        if folder.exists():
            raise ConfigError(f"two exporters write variant '{name}' (backend {info.backend}, weights {info.weights})",
                              key="exporters", hint="run one of them")
        progress(f"exporting with '{_short_name(registry, component)}' to {name}")
        folder.mkdir(parents=True)
        _run_exporter(registry, component, options,
                      ExportRequest(model=model, model_name=model_name, folder=folder,
                                    calibration_texts=list(calibration_texts), onnx=shared))
        spec = VariantSpec(format=info.format, dims=base["full_dim"], backend=info.backend, weights=info.weights,
                           exporter=_short_name(registry, component), rescore_candidates=settings.rescore_candidates,
                           **base)
        write_spec(folder, spec)
        exported.append(_Exported(component, spec, folder, load_variant(folder, threads=settings.threads)))
    shutil.rmtree(shared.folder, ignore_errors=True)
    return exported


def _measure_models(exported: list, data: Any, settings: ExportSettings, progress: Callable[[str], None]) -> int:
    """Encode the held-out texts with every model (kept for the metrics) and time them on a
    sample of those texts; returns the sample's size."""
    from embedtune_core.deploy.measure import encode_held_out, held_out_texts, speed_sample, texts_per_second

    corpus, queries = held_out_texts(data)
    for item in exported:
        progress(f"encoding {len(corpus):,} documents and {len(queries):,} queries with {item.folder.name}")
        item.encoded = encode_held_out(item.model, data, batch_size=settings.batch_size, threads=settings.threads)
    sample = speed_sample(list(dict.fromkeys(corpus + queries)), settings.speed_texts)
    progress(f"timing every model on the same {len(sample):,} texts ({settings.speed_rounds} rounds, "
             f"{settings.threads} thread{'s' if settings.threads != 1 else ''})")
    speeds = texts_per_second({item.folder.name: item.model for item in exported}, sample,
                              batch_size=settings.speed_batch_size, rounds=settings.speed_rounds,
                              threads=settings.threads)
    for item in exported:
        item.texts_per_second = round(speeds[item.folder.name], 2)
    return len(sample)


def _variants_of(item: _Exported, dims: tuple[int, ...], data: Any, out_dir: Path, *, registry: Any,
                 metrics: Sequence[str], settings: ExportSettings, path_root: str) -> list[dict[str, Any]]:
    """Every variant of one exported model: measured, and its folder written."""
    from embedtune_core.deploy.measure import calibrated, variant_metrics

    out = []
    for dim in (item.spec.dims, *dims):
        for embedding in settings.embeddings:
            spec = calibrated(attrs.evolve(item.spec, dims=dim, embedding=embedding), item.encoded)
            name = variant_name(spec.backend, spec.weights, dim, embedding)
            if name != item.folder.name:
                link_tree(item.folder, out_dir / name)
                write_spec(out_dir / name, spec)
            values = variant_metrics(item.encoded, spec, data, registry=registry, metrics=metrics,
                                     all_queries=settings.all_queries, approximate_from=settings.approximate_from)
            out.append({"name": name, "exporter": spec.exporter, "backend": spec.backend, "weights": spec.weights,
                        "dims": dim, "embedding": embedding, **values, "retention": None,
                        "texts_per_second": item.texts_per_second, "speedup": None,
                        "model_mb": model_megabytes(item.folder), "bytes_per_vector": bytes_per_vector(dim, embedding),
                        "path": os.path.join(path_root, name)})
    return out


def _relative(variants: list[dict[str, Any]], headline: str) -> None:
    """Each variant's retention and speed-up against the reference (the first)."""
    reference = variants[0]
    for variant in variants:
        base, value = reference.get(headline), variant.get(headline)
        variant["retention"] = round(value / base, 4) if base else None
        variant["speedup"] = round(variant["texts_per_second"] / reference["texts_per_second"], 2) \
            if reference["texts_per_second"] else None


def export_deployment(model: str, data: Any, *, registry: Any, metrics: Sequence[str], out_dir: str | Path,
                      exporters: Sequence[str] | None = None, exporter_options: dict[str, dict] | None = None,
                      settings: ExportSettings = ExportSettings(), calibration_texts: Sequence[str] = (),
                      path_root: str | None = None, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Export ``model`` (a model name or folder) with each exporter, measure every variant on
    ``data`` (an :class:`~embedtune_core.types.IRData`, the held-out part) with ``metrics`` (the
    first is the headline), write the variant folders and ``deployment.json`` into ``out_dir``
    (which should be empty) and return the deployment block. ``exporters``: names (default:
    every exporter declared ``default``), ``exporter_options``: ``{name: {option: value}}``;
    ``calibration_texts``: training texts for exporters that calibrate; ``path_root``: how the
    recorded paths start (default ``out_dir``)."""
    from embedtune_core import io as eio
    from embedtune_core.embedding.exported import is_variant
    from embedtune_core.embedding.models import embedding_dim, load_model

    progress = progress or (lambda message: None)
    if is_variant(model):
        raise ConfigError(f"'{model}' is already an exported variant", key="model.name",
                          hint="export the sentence-transformers model it came from")
    chosen = exporters_to_run(registry, exporters, exporter_options)
    progress(f"loading model {model}")
    loaded = load_model(str(model), device="cpu")
    full = embedding_dim(loaded)
    dims = check_settings(settings, full)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    texts = list(calibration_texts)
    exported = _export_all(registry, loaded, str(model), chosen, out_dir, _base_spec(loaded, str(model), full),
                           texts, settings, progress)
    timed = _measure_models(exported, data, settings, progress)
    variants = []
    for item in exported:
        progress(f"measuring the variants of {item.folder.name}")
        variants += _variants_of(item, dims, data, out_dir, registry=registry, metrics=metrics,
                                 settings=settings, path_root=str(path_root if path_root is not None else out_dir))
    headline = list(metrics)[0]
    _relative(variants, headline)
    deployment = {"model": str(model), "reference": variants[0]["name"],
                  "recommended": recommend(variants, settings.min_retention), "headline_metric": headline,
                  "min_retention": settings.min_retention, "threads": settings.threads,
                  "batch_size": settings.batch_size, "speed_batch_size": settings.speed_batch_size, "speed_texts": timed,
                  "rescore_candidates": settings.rescore_candidates, "variants": variants}
    eio.write_json(out_dir / DEPLOYMENT_FILE, deployment)
    return deployment
