"""Token-length summaries of `embedtune data stats`: a running histogram equal to numpy's figures."""

import numpy as np
import pytest

from embedtune_core.data.stats import TokenCounter, length_summary, token_summary


@pytest.mark.parametrize("n", [1, 2, 3, 10, 101, 999])
def test_histogram_summary_equals_numpy(n):
    values = np.random.default_rng(n).integers(0, 300, n)
    summary = length_summary(values.tolist(), 128)
    assert summary == {
        "count": n,
        "min": int(values.min()),
        "mean": round(float(values.mean()), 2),
        "median": float(np.median(values)),
        "p95": float(np.percentile(values, 95)),
        "max": int(values.max()),
        "over_max_seq_length": int((values > 128).sum()),
    }
    assert length_summary([], 128) == {"count": 0}


def test_token_summary_counts_a_chunk_at_a_time():
    texts = [" ".join(["w"] * (i % 37)) for i in range(1000)]
    calls = []

    def count(batch):
        calls.append(len(batch))
        return [len(t.split()) + 2 for t in batch]

    counter = TokenCounter(count, 16, "words")
    assert token_summary(counter, texts, chunk=64) == length_summary(count(texts), 16)
    assert max(calls[:-1]) == 64 and sum(calls[:-1]) == len(texts)
