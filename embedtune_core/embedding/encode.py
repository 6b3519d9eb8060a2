"""Encoding texts to embeddings, shared by evaluation and negative mining.

:func:`encode` gives the embeddings ``model.encode`` gives (same length-sorted batches, same
tokenisation, prompt and truncation settings), faster:

- texts are sorted by length once, longest first, so each batch pads little;
- tokenisation runs ahead of the model in background threads (the fast tokenizers and torch both
  release the GIL), so the model never waits for the next batch;
- on a GPU the forward pass runs in half precision (autocast, fp16; bf16 on request), batches
  are copied from pinned memory without blocking, and embeddings are moved to the host a group of
  batches at a time (at most ``GPU_FLUSH_BYTES`` wait on the GPU).

Memory: the embeddings are written, batch by batch, into one array allocated once (float32, or
float16 when asked), which is a memory-mapped temporary file once it would exceed
``memmap_bytes``; nothing else grows with the number of texts but the texts themselves and their
order.
"""

from __future__ import annotations

import contextlib
import tempfile
from typing import Any, Callable, Sequence

import numpy as np

from embedtune_core.embedding.batches import batches_ahead as _batches_ahead

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
DTYPES = ("float32", "float16")
#: embeddings larger than this are written to a memory-mapped temporary file by default
MEMMAP_BYTES = 1 << 31
#: at most this many bytes of embeddings wait on the GPU before they are copied to the host
GPU_FLUSH_BYTES = 1 << 28


def output_array(rows: int, dim: int, dtype: str = "float32", memmap_bytes: int | None = MEMMAP_BYTES,
                 folder: str | None = None) -> np.ndarray:
    """An uninitialised ``rows x dim`` array for embeddings: in memory, or a memory-mapped
    temporary file (in ``folder``, removed when the array is released) when it would take more
    than ``memmap_bytes`` (None: never)."""
    size = rows * dim * np.dtype(dtype).itemsize
    if memmap_bytes is None or size <= memmap_bytes or size == 0:
        return np.empty((rows, dim), dtype=dtype)
    with tempfile.NamedTemporaryFile(prefix="embedtune-embeddings-", suffix=".npy", dir=folder) as handle:
        # The mapping keeps the data reachable after the name is removed on leaving the block.
        return np.memmap(handle, dtype=dtype, mode="w+", shape=(rows, dim))


def _default_prompt(model: Any) -> str | None:
    """The prompt ``model.encode`` prepends when none is given (the default prompt, if any)."""
    name = getattr(model, "default_prompt_name", None)
    prompts = getattr(model, "prompts", None) or {}
    return prompts.get(name) if name is not None else None


def _tokenizer_call(model: Any, prompt: str | None):
    """A function ``texts -> features`` tokenising as ``model.encode`` does."""
    preprocess = getattr(model, "preprocess", None)
    if preprocess is not None:
        return lambda batch: preprocess(batch, prompt=prompt)
    # Older sentence-transformers: tokenize(), prompt prepended to the text.
    if prompt:
        return lambda batch: model.tokenize([prompt + t for t in batch])
    return model.tokenize


def encode(
    model: Any,
    texts: Sequence[str],
    *,
    batch_size: int = 128,
    normalize: bool = True,
    show_progress: bool = False,
    precision: str = "auto",
    device: str | None = None,
    workers: int | None = None,
    dtype: str = "float32",
    memmap_bytes: int | None = MEMMAP_BYTES,
    memmap_folder: str | None = None,
) -> np.ndarray:
    """Embeddings of ``texts`` as a float32 array (rows L2-normalised when ``normalize``).

    ``precision``: "auto" (fp16 on CUDA, fp32 elsewhere), "fp32", "fp16" or "bf16" (the last two
    only change anything on a GPU). ``device``: where to run (the model's device when None).
    ``workers``: tokenising threads (1 on CPU, 2 on a GPU when None). ``dtype``: "float32" or
    "float16" for the returned array. Past ``memmap_bytes`` (None: never) the array is a
    ``numpy.memmap`` over a temporary file in ``memmap_folder`` (the system's temporary folder
    when None), removed when the array is released.

    Under several processes, inside :func:`embedtune_core.distributed.sharing`, each process
    encodes its shard of ``texts`` and every process gets all the embeddings.
    """
    from embedtune_core.distributed import split_rows

    def compute(todo: list[str], normalized: bool) -> np.ndarray:
        return split_rows(len(todo), lambda start, stop: _encode_here(
            model, todo[start:stop], batch_size=batch_size, normalize=normalized, show_progress=show_progress,
            precision=precision, device=device, workers=workers, dtype=dtype, memmap_bytes=memmap_bytes,
            memmap_folder=memmap_folder))

    texts = [t if isinstance(t, str) else str(t) for t in texts]
    memo = _memo if _memo is not None and _memo.model is model and dtype == "float32" else None
    if memo is not None:
        return memo.encode(texts, normalize, lambda todo: compute(todo, False))
    return compute(texts, normalize)


class EmbeddingMemo:
    """Embeddings kept by text, so that a text is encoded once: the one embedding cache.

    Two uses: the pipeline opens one for the model being tuned (:meth:`open`) while its weights
    do not change, so the evaluation before training reuses what mining encoded (only texts in
    ``wanted``, the evaluation's, are kept); and :class:`CachedEncoder` wraps any encoder with one
    that keeps every text. ``hits`` counts texts served from it, ``encoded`` texts encoded."""

    def __init__(self, wanted: Any = None) -> None:
        self.model: Any = None
        self.wanted = None if wanted is None else set(wanted)
        self.vectors: dict[str, np.ndarray] = {}
        self.hits = 0
        self.encoded = 0

    def encode(self, texts: list[str], normalize: bool, compute: Any) -> np.ndarray:
        known = [t in self.vectors for t in texts]
        if not any(known):  # nothing to reuse: the encoding as it is (memory-mapped when large)
            todo = list(dict.fromkeys(texts)) if self.wanted is None else texts
            out = compute(todo)
            self.encoded += len(todo)
            self._keep(todo, out)
            if todo is not texts:
                out = self._assemble(texts, [False] * len(texts), todo, out)
            return _normalized(out) if normalize else out
        todo = list(dict.fromkeys(t for t, k in zip(texts, known) if not k))
        fresh = compute(todo) if todo else None
        self.encoded += len(todo)
        self.hits += sum(known)
        self._keep(todo, fresh)
        out = self._assemble(texts, known, todo, fresh)
        return _normalized(out) if normalize else out

    def _keep(self, texts: list[str], vectors: Any) -> None:
        for i, text in enumerate(texts):
            if (self.wanted is None or text in self.wanted) and text not in self.vectors:
                self.vectors[text] = np.array(vectors[i], dtype=np.float32)

    def _assemble(self, texts: list[str], known: list[bool], todo: list[str], fresh: Any) -> np.ndarray:
        row = {t: i for i, t in enumerate(todo)}
        dim = len(next(iter(self.vectors.values()))) if self.vectors else np.asarray(fresh).shape[1]
        out = np.empty((len(texts), dim), dtype=np.float32)
        for i, (text, k) in enumerate(zip(texts, known)):
            out[i] = self.vectors[text] if k else fresh[row[text]]
        return out

    def open(self, model: Any) -> "EmbeddingMemo":
        """Serve :func:`encode` with ``model`` from this memo until :meth:`close`."""
        global _memo
        self.model = model
        _memo = self
        return self

    def close(self) -> None:
        global _memo
        if _memo is self:
            _memo = None
        self.vectors.clear()


class CachedEncoder:
    """An encoder (``texts -> embeddings``) that encodes each distinct text once, through an
    :class:`EmbeddingMemo` keeping every text it saw."""

    def __init__(self, encoder: Callable[[Sequence[str]], Any]) -> None:
        self.encoder = encoder
        self.memo = EmbeddingMemo()

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return self.memo.encode(texts, False, lambda todo: np.asarray(self.encoder(todo), dtype=np.float32))


_memo: EmbeddingMemo | None = None


def _normalized(out: np.ndarray) -> np.ndarray:
    """``out`` with L2-normalised rows (in place)."""
    for start in range(0, len(out), 65536):
        block = out[start : start + 65536]
        block /= np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-12).astype(block.dtype)
    return out


def _encode_here(
    model: Any,
    texts: Sequence[str],
    *,
    batch_size: int,
    normalize: bool,
    show_progress: bool,
    precision: str,
    device: str | None,
    workers: int | None,
    dtype: str,
    memmap_bytes: int | None,
    memmap_folder: str | None,
) -> np.ndarray:
    """The embeddings of ``texts`` computed in this process (see :func:`encode`). A model that
    encodes by itself (an exported ONNX variant: ``encode_texts``) is asked to."""
    from embedtune_core.embedding.models import embedding_dim

    texts = [t if isinstance(t, str) else str(t) for t in texts]
    own = getattr(model, "encode_texts", None)
    if own is not None:
        return own(texts, batch_size=batch_size, normalize=normalize, dtype=dtype)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if len(texts) == 0:
        return np.zeros((0, embedding_dim(model)), dtype=dtype)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    import torch

    target = torch.device(device) if device is not None else torch.device(model.device)
    if device is not None and torch.device(model.device) != target:
        model.to(target)
    on_gpu = target.type == "cuda"
    half = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
    if precision == "auto" and on_gpu:
        half = torch.float16
    autocast = torch.autocast("cuda", dtype=half) if on_gpu and half is not None else contextlib.nullcontext()

    # The order model.encode uses: longest text first.
    order = np.argsort(-np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)))
    batches = [[texts[i] for i in order[s : s + batch_size]] for s in range(0, len(texts), batch_size)]
    workers = workers or (2 if on_gpu else 1)
    features = _batches_ahead(_tokenizer_call(model, _default_prompt(model)), batches, workers=workers,
                              ahead=2 * workers + 2, pin=on_gpu)
    progress = None
    if show_progress:
        from tqdm.auto import tqdm

        progress = tqdm(total=len(texts), desc="Encoding", unit="text")
    sink = _Sink(order, lambda dim: output_array(len(texts), dim, dtype, memmap_bytes, memmap_folder), on_gpu)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), autocast:
            for batch in features:
                batch = {k: v.to(target, non_blocking=True) if isinstance(v, torch.Tensor) else v
                         for k, v in batch.items()}
                embeddings = _embeddings(model, batch, normalize)
                sink.add(embeddings)
                if progress is not None:
                    progress.update(len(embeddings))
            sink.flush()
    finally:
        if was_training:
            model.train()
        if progress is not None:
            progress.close()
    return sink.out


def _embeddings(model: Any, features: dict, normalize: bool) -> Any:
    """One batch's float32 sentence embeddings (cut to ``model.truncate_dim``, normalised)."""
    import torch

    embeddings = model(features)["sentence_embedding"]
    truncate_dim = getattr(model, "truncate_dim", None)
    if truncate_dim:
        embeddings = embeddings[:, :truncate_dim]
    embeddings = embeddings.float()
    if normalize:
        embeddings = torch.nn.functional.normalize(embeddings, p=2, dim=1)
    return embeddings


class _Sink:
    """Writes batches of embeddings (in length-sorted order) into their rows of one array,
    allocated at the first batch; on a GPU a few batches wait there and are copied together."""

    def __init__(self, order: np.ndarray, allocate: Any, on_gpu: bool) -> None:
        self.order, self.allocate, self.on_gpu = order, allocate, on_gpu
        self.out: Any = None
        self.done = 0
        self.waiting: list = []  # (first row in sorted order, GPU tensor)

    def add(self, embeddings: Any) -> None:
        if self.out is None:
            self.out = self.allocate(embeddings.shape[1])
        start, self.done = self.done, self.done + len(embeddings)
        if not self.on_gpu:
            self.out[self.order[start : self.done]] = embeddings.numpy()
            return
        self.waiting.append((start, embeddings))
        if sum(part.numel() for _, part in self.waiting) * 4 >= GPU_FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        for start, part in self.waiting:
            self.out[self.order[start : start + len(part)]] = part.cpu().numpy()
        self.waiting.clear()


class Encoder:
    """A callable ``texts -> embeddings`` bound to one model and its settings."""

    def __init__(
        self,
        model: Any,
        *,
        batch_size: int = 128,
        normalize: bool = True,
        show_progress: bool = False,
        precision: str = "auto",
        device: str | None = None,
    ):
        self.model = model
        self.batch_size = batch_size
        self.normalize = normalize
        self.show_progress = show_progress
        self.precision = precision
        self.device = device

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        return encode(
            self.model,
            texts,
            batch_size=self.batch_size,
            normalize=self.normalize,
            show_progress=self.show_progress,
            precision=self.precision,
            device=self.device,
        )
