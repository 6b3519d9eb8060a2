"""Searching embeddings stored at a lower precision: int8 (one byte a dimension) or binary (one
bit), with the candidates they find re-scored by the float query.

The stored (document) vectors are quantized with sentence-transformers' ``quantize_embeddings``:
int8 per dimension between ranges calibrated on the stored vectors (kept, so queries and later
documents use the same ones), binary as the sign of each component. A search first ranks every
document by the quantized query against the quantized documents (for binary: how many signs
agree, the Hamming similarity), keeps the best ``candidates``, and re-scores those with the float
query against the stored vectors (binary: the unpacked bits as -1/+1; int8: the values the codes
stand for), as sentence-transformers' documentation describes for rescoring. What a serving
system stores is the quantized vectors; the float query costs nothing to keep.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: embedding precisions a variant can store
EMBEDDINGS = ("float32", "int8", "binary")
#: documents re-scored with the float query per query (at least the ranked depth)
RESCORE_CANDIDATES = 100


def bytes_per_vector(dims: int, embedding: str) -> int:
    """Bytes one stored vector of ``dims`` dimensions takes at ``embedding`` precision."""
    if embedding == "float32":
        return 4 * dims
    if embedding == "int8":
        return dims
    if embedding == "binary":
        return (dims + 7) // 8
    raise ValueError(f"embedding precision must be one of {', '.join(EMBEDDINGS)}, got {embedding!r}")


def int8_ranges(vectors: np.ndarray) -> np.ndarray:
    """The per-dimension ``[min, max]`` (shape ``2 x dims``) int8 quantization calibrates on."""
    vectors = np.asarray(vectors, dtype=np.float32)
    return np.stack([vectors.min(axis=0), vectors.max(axis=0)]).astype(np.float32)


def quantize(vectors: np.ndarray, embedding: str, ranges: np.ndarray | None = None) -> np.ndarray:
    """``vectors`` as stored at ``embedding`` precision (int8 codes, or bits packed eight to a
    byte), through sentence-transformers' ``quantize_embeddings``."""
    from sentence_transformers.util import quantize_embeddings

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if embedding == "float32":
        return vectors
    if embedding == "int8":
        return quantize_embeddings(vectors, precision="int8", ranges=ranges)
    if embedding == "binary":
        return quantize_embeddings(vectors, precision="ubinary")
    raise ValueError(f"embedding precision must be one of {', '.join(EMBEDDINGS)}, got {embedding!r}")


def dequantize(codes: np.ndarray, embedding: str, dims: int, ranges: np.ndarray | None = None) -> np.ndarray:
    """The float vectors stored codes stand for: int8 codes mapped back into their ranges (the
    middle of each step), bits as -1/+1."""
    if embedding == "float32":
        return np.asarray(codes, dtype=np.float32)
    if embedding == "binary":
        bits = np.unpackbits(np.asarray(codes, dtype=np.uint8), axis=-1)[..., :dims]
        return bits.astype(np.float32) * 2.0 - 1.0
    starts = ranges[0].astype(np.float32)
    steps = (ranges[1] - ranges[0]).astype(np.float32) / 255
    steps = np.where(steps == 0, 1, steps)
    return starts + (codes.astype(np.float32) + 128.5) * steps


def candidates_by_code(queries: np.ndarray, corpus: np.ndarray, depth: int, *, query_block: int = 256,
                       corpus_block: int = 65536) -> np.ndarray:
    """Indices (``nq x depth``) of the documents with the highest inner products of the codes
    (integers: sign agreements, or int8 products), best first, equal products by lower index.
    Products are exact in float64, and ``index / (n + 1)`` taken off each breaks the many ties
    of binary codes the same way every time."""
    n = len(corpus)
    out = np.empty((len(queries), depth), dtype=np.int64)
    tie = np.arange(n, dtype=np.float64) / (n + 1)
    for qs in range(0, len(queries), query_block):
        block = np.asarray(queries[qs : qs + query_block], dtype=np.float64)
        best_scores = np.empty((len(block), 0))
        best_index = np.empty((len(block), 0), dtype=np.int64)
        for cs in range(0, n, corpus_block):
            chunk = np.asarray(corpus[cs : cs + corpus_block], dtype=np.float64)
            scores = np.concatenate([best_scores, block @ chunk.T - tie[cs : cs + len(chunk)]], axis=1)
            index = np.concatenate([best_index, np.broadcast_to(np.arange(cs, cs + len(chunk)), (len(block), len(chunk)))],
                                   axis=1)
            keep = min(depth, scores.shape[1])
            part = np.argpartition(-scores, keep - 1, axis=1)[:, :keep]
            best_scores, best_index = np.take_along_axis(scores, part, 1), np.take_along_axis(index, part, 1)
        order = np.argsort(-best_scores, axis=1)
        out[qs : qs + len(block)] = np.take_along_axis(best_index, order, 1)
    return out


class QuantizedSearch:
    """Top-k search over documents stored at ``embedding`` precision, candidates re-scored with
    the float query (see the module's docstring). ``corpus``: the float document vectors
    (normalised); ``ranges``: int8 ranges (None: calibrated on ``corpus``). Same results shape
    and order as :class:`~embedtune_core.embedding.search.VectorSearch`; the search is exact over
    the quantized vectors."""

    approximate = False

    def __init__(self, corpus: Any, embedding: str, *, ranges: np.ndarray | None = None,
                 candidates: int = RESCORE_CANDIDATES, device: str | None = None) -> None:
        corpus = np.asarray(corpus, dtype=np.float32)
        self.embedding, self.dims, self.device = embedding, corpus.shape[1], device
        self.candidates = int(candidates)
        self.ranges = None
        if embedding == "int8":
            self.ranges = int8_ranges(corpus) if ranges is None else np.asarray(ranges, dtype=np.float32)
        self.codes = quantize(corpus, embedding, self.ranges)
        #: what the documents' codes stand for, as floats: the vectors candidates are re-scored with
        self.stored = dequantize(self.codes, embedding, self.dims, self.ranges)

    def _candidate_space(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Queries and documents in the space the candidates are ranked in."""
        if self.embedding == "float32":
            return queries, self.stored
        codes = quantize(queries, self.embedding, self.ranges)
        if self.embedding == "binary":
            return dequantize(codes, "binary", self.dims), self.stored
        return codes.astype(np.float32), self.codes.astype(np.float32)

    def search(self, queries: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(scores[nq, k], indices[nq, k])``: the best ``k`` of the candidates by the float
        query's inner product with the stored vectors, ties by lower index; -inf / -1 pad."""
        from embedtune_core.embedding.duplicates import ordered
        from embedtune_core.embedding.search import gather_scores

        queries = np.asarray(queries, dtype=np.float32)
        k = int(k)
        if len(queries) == 0 or len(self.stored) == 0:
            return ordered(np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64), k)
        space_queries, space_corpus = self._candidate_space(queries)
        depth = min(max(self.candidates, k), len(self.stored))
        candidates = candidates_by_code(space_queries, space_corpus, depth)
        scores = gather_scores(queries, self.stored, candidates)
        scores, indices = ordered(scores, candidates, depth)
        return ordered(scores[:, :k], indices[:, :k], k)

    def recall(self, queries: Any, k: int) -> None:
        return None
