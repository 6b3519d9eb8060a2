"""Exact top-k retrieval by inner product, in chunks so memory stays O(chunk x corpus)."""

from __future__ import annotations

import numpy as np


def top_k(
    queries: np.ndarray,
    corpus: np.ndarray,
    k: int,
    *,
    query_chunk: int = 1024,
    corpus_chunk: int = 65536,
    device: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Scores and indices of the ``k`` highest inner products for each query row.

    Inputs are float arrays (normalise them first for cosine). Runs on torch (GPU when
    ``device`` is a CUDA device or, when None, when one is available). Ties keep the lower
    corpus index first. Returns ``(scores[nq, k], indices[nq, k])`` with ``k`` capped at the
    corpus size.
    """
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    nq, nd = len(queries), len(corpus)
    k = min(k, nd)
    out_scores = np.empty((nq, k), dtype=np.float32)
    out_idx = np.empty((nq, k), dtype=np.int64)
    if nq == 0 or k == 0:
        return out_scores, out_idx
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    corpus_t = [
        torch.as_tensor(corpus[s : s + corpus_chunk], device=device).to(dtype)
        for s in range(0, nd, corpus_chunk)
    ]
    for qs in range(0, nq, query_chunk):
        q = torch.as_tensor(queries[qs : qs + query_chunk], device=device).to(dtype)
        best_s, best_i = None, None
        offset = 0
        for chunk in corpus_t:
            scores = (q @ chunk.T).float()
            kk = min(k, chunk.shape[0])
            s, i = torch.topk(scores, kk, dim=1, sorted=True)
            i = i + offset
            offset += chunk.shape[0]
            if best_s is None:
                best_s, best_i = s, i
            else:
                cat_s = torch.cat([best_s, s], dim=1)
                cat_i = torch.cat([best_i, i], dim=1)
                s2, pos = torch.topk(cat_s, min(k, cat_s.shape[1]), dim=1, sorted=True)
                best_s, best_i = s2, torch.gather(cat_i, 1, pos)
        out_scores[qs : qs + len(q)] = best_s.cpu().numpy()
        out_idx[qs : qs + len(q)] = best_i.cpu().numpy()
    return out_scores, out_idx
