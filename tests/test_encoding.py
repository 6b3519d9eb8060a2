"""The shared encoder gives model.encode's embeddings."""

import numpy as np
import pytest

from embedtune_core.embedding.encode import Encoder, encode
from embedtune_core.testing import TINY_CORPUS


@pytest.fixture(scope="module")
def model(tiny_model):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(tiny_model, device="cpu")


def sample_texts(n=300, seed=0):
    rng = np.random.default_rng(seed)
    words = " ".join(TINY_CORPUS).split()
    texts = [" ".join(rng.choice(words, int(rng.integers(1, 60)))) for _ in range(n)]
    return texts + ["", "   padded   ", texts[0], "Ünïcödé wörds ✓"]


def reference(model, texts, normalize=True):
    return model.encode(texts, batch_size=32, normalize_embeddings=normalize, convert_to_numpy=True,
                        show_progress_bar=False)


@pytest.mark.parametrize("batch_size", [1, 7, 64, 1000])
@pytest.mark.parametrize("normalize", [True, False])
def test_same_embeddings_as_model_encode(model, batch_size, normalize):
    texts = sample_texts(120)
    ours = encode(model, texts, batch_size=batch_size, normalize=normalize)
    assert ours.dtype == np.float32 and ours.shape == (len(texts), 32)
    np.testing.assert_allclose(ours, reference(model, texts, normalize), atol=1e-5, rtol=0)
    if normalize:
        np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_default_prompt_and_truncate_dim_as_model_encode(model):
    texts = sample_texts(50, seed=1)
    saved = (dict(model.prompts), model.default_prompt_name, model.truncate_dim)
    try:
        model.prompts = {"query": "query: "}
        model.default_prompt_name = "query"
        model.truncate_dim = 16
        ours = encode(model, texts, batch_size=16)
        theirs = reference(model, texts)
        assert ours.shape == (len(texts), 16)
        np.testing.assert_allclose(ours, theirs, atol=1e-5, rtol=0)
        # the prompt changes the embeddings, so it was applied
        model.default_prompt_name = None
        assert np.abs(encode(model, texts, batch_size=16) - ours).max() > 1e-3
    finally:
        model.prompts, model.default_prompt_name, model.truncate_dim = saved


def test_empty_input_and_encoder(model):
    assert encode(model, []).shape == (0, 32)
    encoder = Encoder(model, batch_size=8)
    texts = sample_texts(20, seed=2)
    np.testing.assert_allclose(encoder(texts), reference(model, texts), atol=1e-5, rtol=0)


def test_tokenizer_error_reaches_the_caller(model, monkeypatch):
    calls = {"n": 0}
    original = model.preprocess

    def failing(batch, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("tokenizer broke")
        return original(batch, **kwargs)

    monkeypatch.setattr(model, "preprocess", failing)
    with pytest.raises(RuntimeError, match="tokenizer broke"):
        encode(model, sample_texts(100), batch_size=10)


def test_training_mode_is_restored(model):
    model.train()
    try:
        encode(model, ["a text"])
        assert model.training
    finally:
        model.eval()


def test_bad_arguments(model):
    with pytest.raises(ValueError, match="precision"):
        encode(model, ["x"], precision="fp8")
    with pytest.raises(ValueError, match="batch_size"):
        encode(model, ["x"], batch_size=0)


@pytest.mark.slow
def test_minilm_same_embeddings_as_model_encode():
    import re

    from embedtune_core.embedding.models import load_model

    model = load_model("sentence-transformers/all-MiniLM-L6-v2", device="cpu")
    texts = [re.sub(r"\s+", " ", t) for t in sample_texts(60, seed=3)]
    texts += ["Abnormality of the cardiovascular system", "Short stature and delayed bone age" * 12]
    ours = encode(model, texts, batch_size=16)
    assert ours.shape == (len(texts), 384)
    np.testing.assert_allclose(ours, reference(model, texts), atol=1e-5, rtol=0)


def test_float16_and_memory_mapped_outputs(model, tmp_path):
    texts = sample_texts(150)
    want = reference(model, texts)
    mapped = encode(model, texts, batch_size=16, memmap_bytes=1024, memmap_folder=str(tmp_path))
    assert isinstance(mapped, np.memmap) and mapped.dtype == np.float32
    np.testing.assert_allclose(mapped, want, atol=1e-5, rtol=0)
    assert list(tmp_path.iterdir()) == []  # the file has no name left; it goes with the array
    half = encode(model, texts, batch_size=16, dtype="float16")
    assert half.dtype == np.float16 and not isinstance(half, np.memmap)
    np.testing.assert_allclose(half.astype(np.float32), want, atol=2e-3, rtol=0)
    with pytest.raises(ValueError, match="dtype"):
        encode(model, ["x"], dtype="int8")


def test_a_cached_encoder_encodes_each_distinct_text_once():
    from embedtune_core.embedding.encode import CachedEncoder

    calls = []

    def encoder(texts):
        calls.append(list(texts))
        return np.array([[len(t), t.count("a")] for t in texts], dtype=np.float32)

    cached = CachedEncoder(encoder)
    first = cached(["aa", "b", "aa"])
    second = cached(["b", "ccc", "aa"])
    assert calls == [["aa", "b"], ["ccc"]]
    np.testing.assert_array_equal(first, [[2, 2], [1, 0], [2, 2]])
    np.testing.assert_array_equal(second, [[1, 0], [3, 0], [2, 2]])
    assert cached.memo.hits == 2


def test_a_memo_serves_texts_encoded_before_and_keeps_only_the_wanted(tiny_model):
    from embedtune_core.embedding.encode import EmbeddingMemo, encode
    from embedtune_core.embedding.models import load_model

    model = load_model(tiny_model, device="cpu")
    first, second = ["alpha beta", "gamma delta", "epsilon"], ["gamma delta", "zeta eta", "alpha beta"]
    plain = encode(model, second)
    memo = EmbeddingMemo(wanted={"alpha beta", "gamma delta", "zeta eta"}).open(model)
    try:
        encode(model, first, normalize=False)
        assert set(memo.vectors) == {"alpha beta", "gamma delta"} and memo.encoded == 3 and memo.hits == 0
        again = encode(model, second)
        assert memo.hits == 2 and memo.encoded == 4  # only "zeta eta" was encoded
        np.testing.assert_allclose(again, plain, atol=1e-5)
        other = load_model(tiny_model, device="cpu")  # another model (or changed weights) never uses it
        encode(other, second)
        assert memo.hits == 2
    finally:
        memo.close()
    encode(model, second)
    assert memo.hits == 2 and not memo.vectors


def test_the_evaluation_before_training_reuses_what_mining_encoded(tiny_model, tmp_path, registry):
    import json

    from embedtune_core.embedding.models import load_model
    from embedtune_core.pipeline.evaluation import evaluate_model
    from embedtune_core.pipeline.runner import run_pipeline
    from tests.test_pipeline import small_config

    config = small_config(tiny_model, tmp_path, steps=["mine", "evaluate-before"], mining={"miner": "dense"},
                          data={"limit": 60, "eval_limit": 20})
    run_pipeline(config, registry, quiet=True)
    saved = json.loads((tmp_path / "runs" / "p" / "metrics.json").read_text())
    assert saved["evaluation"]["embeddings_reused"] > 0
    # the same numbers as evaluating the base model from scratch
    from embedtune_core.pipeline.preflight import preflight

    plan = preflight(config, registry)
    fresh = evaluate_model(load_model(tiny_model, device="cpu", max_seq_length=32), plan.data.evaluation, "ir", registry=registry,
                           metrics=["ndcg@10", "recall@5"], batch_size=64)
    for metric, value in fresh[None].items():
        assert saved["before"][metric] == pytest.approx(value, abs=1e-6)
