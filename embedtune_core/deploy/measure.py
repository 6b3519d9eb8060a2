"""Measuring exported models: quality through the evaluation's own code, and encoding speed.

Quality: each exported model encodes every held-out text once; each variant (a Matryoshka dim
and an embedding precision) is then evaluated by :func:`~embedtune_core.pipeline.evaluation.evaluate_ir`
on a stand-in model that serves those embeddings and searches as the variant folder does
(:func:`~embedtune_core.embedding.exported.variant_search`), so a variant's recorded metrics are
what ``embedtune eval --model OUT/<variant>`` computes.

Speed: every model encodes the same sample of held-out texts with the same threads and batch
size, in interleaved rounds (model A, B, C, then A, B, C again...), and keeps its best round, so
a burst of load on the machine does not decide a comparison.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Iterator, Mapping, Sequence

import attrs
import numpy as np

from embedtune_core.embedding.exported import VariantSpec, variant_search


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """torch with ``threads`` intra-op threads in the block (onnxruntime sessions get theirs
    when they are created)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def held_out_texts(data: Any) -> tuple[list[str], list[str]]:
    """The texts the evaluation of ``data`` (an IRData) encodes, in its order: the corpus, and
    the judged queries."""
    return list(data.corpus.values()), [data.queries[q] for q in data.queries if q in data.qrels]


def speed_sample(texts: Sequence[str], size: int) -> list[str]:
    """``size`` texts spread evenly over ``texts`` (all of them when fewer)."""
    if size >= len(texts):
        return list(texts)
    picks = np.linspace(0, len(texts) - 1, size).round().astype(np.int64)
    return [texts[i] for i in picks]


def texts_per_second(models: Mapping[str, Any], texts: Sequence[str], *, batch_size: int, rounds: int,
                     threads: int) -> dict[str, float]:
    """Encoding speed of each model on ``texts``: the best of ``rounds`` interleaved rounds,
    after one warm-up batch each."""
    from embedtune_core.embedding.encode import encode

    best = {name: float("inf") for name in models}
    with torch_threads(threads):
        for model in models.values():
            encode(model, list(texts[:batch_size]), batch_size=batch_size, normalize=False)
        for _ in range(max(1, rounds)):
            for name, model in models.items():
                started = time.perf_counter()
                encode(model, list(texts), batch_size=batch_size, normalize=False)
                best[name] = min(best[name], time.perf_counter() - started)
    return {name: len(texts) / max(seconds, 1e-9) for name, seconds in best.items()}


@attrs.define
class Encoded:
    """One model's (unnormalised, full-size) embeddings of the held-out corpus and queries."""

    corpus_texts: list[str]
    query_texts: list[str]
    corpus: np.ndarray
    queries: np.ndarray


def encode_held_out(model: Any, data: Any, *, batch_size: int, threads: int) -> Encoded:
    """The model's embeddings of what the evaluation of ``data`` encodes, encoded as it does."""
    from embedtune_core.embedding.encode import encode

    corpus_texts, query_texts = held_out_texts(data)
    with torch_threads(threads):
        corpus = encode(model, corpus_texts, batch_size=batch_size, normalize=False)
        queries = encode(model, query_texts, batch_size=batch_size, normalize=False)
    return Encoded(corpus_texts, query_texts, corpus, queries)


class Precomputed:
    """A stand-in model for the evaluation: it serves the embeddings computed once for the
    corpus and for the queries (cut to the variant's dims), and searches as the variant does.

    They were computed as the evaluation computes them, the corpus in one call and the queries in
    another with the same batch size, so each text sat in the same batch: with int8 weights the
    activations are quantized per batch, and a text's embedding depends (slightly) on its batch."""

    def __init__(self, encoded: Encoded, spec: VariantSpec) -> None:
        self.encoded, self.spec = encoded, spec

    def get_sentence_embedding_dimension(self) -> int:
        return self.spec.dims

    def encode_texts(self, texts: Sequence[str], *, batch_size: int = 0, normalize: bool = True,
                     dtype: str = "float32") -> np.ndarray:
        encoded = self.encoded
        vectors = encoded.corpus if list(texts) == encoded.corpus_texts else encoded.queries
        if list(texts) not in (encoded.corpus_texts, encoded.query_texts):
            raise ValueError("the evaluation asked for texts that were not encoded")
        out = vectors[:, : self.spec.dims].astype(dtype)
        if normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def vector_search(self, corpus: Any, *, device: str | None = None, approximate_from: int | None = None) -> Any:
        return variant_search(self.spec, corpus, device=device, approximate_from=approximate_from)


def calibrated(spec: VariantSpec, encoded: Encoded) -> VariantSpec:
    """``spec`` with its int8 ranges calibrated on the corpus's vectors at its dims (the vectors
    an index of this corpus stores); other precisions as they are."""
    from embedtune_core.embedding.quantized import int8_ranges
    from embedtune_core.pipeline.evaluation import _truncate

    if spec.embedding != "int8":
        return spec
    stored = _truncate(encoded.corpus, spec.dims)
    return attrs.evolve(spec, int8_ranges=int8_ranges(stored))


def variant_metrics(encoded: Encoded, spec: VariantSpec, data: Any, *, registry: Any,
                    metrics: Sequence[str], all_queries: bool = False,
                    approximate_from: int | None = None) -> dict[str, float]:
    """The metrics of the variant ``spec`` on ``data`` (an IRData), from the embeddings
    ``encoded``, through the evaluation's code."""
    from embedtune_core.pipeline.evaluation import evaluate_ir

    results = evaluate_ir(Precomputed(encoded, spec), data, registry=registry, metrics=metrics,
                          all_queries=all_queries, approximate_from=approximate_from)
    return {k: v for k, v in results[None].items() if not k.startswith("search_recall")}
