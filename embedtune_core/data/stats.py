"""Statistics of a data set: counts, text lengths in model tokens, duplicates, leakage, size.

Only a model's tokenizer is loaded (``tokenizers`` when the model folder has ``tokenizer.json``,
else ``transformers.AutoTokenizer``); no model weights, no torch.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from embedtune_core.data.loading import check_leakage, column_values
from embedtune_core.data.shapes import LABEL_NAMES, negative_columns
from embedtune_core.text import text_key
from embedtune_core.errors import EmbedtuneError
from embedtune_core.types import MINIMUM_SIZES, DataBundle, IRData



class TokenCounter:
    """Counts tokens (special tokens included, no truncation) with a model's tokenizer."""

    def __init__(self, count: Callable[[list[str]], list[int]], max_seq_length: int | None, name: str) -> None:
        self.count = count
        self.max_seq_length = max_seq_length
        self.name = name


def _transformer_folder(folder: Path) -> tuple[Path, int | None]:
    """The folder holding the tokenizer of a sentence-transformers model, and its max length."""
    sub = ""
    modules = folder / "modules.json"
    if modules.is_file():
        try:
            entries = json.loads(modules.read_text(encoding="utf-8"))
            sub = next((m.get("path", "") for m in entries if "Transformer" in str(m.get("type", ""))), "")
        except (ValueError, AttributeError):
            sub = ""
    module_dir = folder / sub if sub else folder
    max_len = None
    for candidate in (module_dir / "sentence_bert_config.json", folder / "sentence_bert_config.json"):
        if candidate.is_file():
            try:
                max_len = json.loads(candidate.read_text(encoding="utf-8")).get("max_seq_length")
            except ValueError:
                max_len = None
            break
    if max_len is None and (module_dir / "tokenizer_config.json").is_file():
        try:
            value = json.loads((module_dir / "tokenizer_config.json").read_text(encoding="utf-8")).get("model_max_length")
        except ValueError:
            value = None
        if isinstance(value, int) and 0 < value < 1_000_000:
            max_len = value
    return module_dir, max_len


def load_token_counter(model: str) -> TokenCounter:
    """A token counter for ``model`` (a folder, the bundled MiniLM's names, or a hub id)."""
    from embedtune_core.embedding.models import resolve_model

    resolved = resolve_model(model)
    if os.path.isdir(resolved):
        folder, max_len = _transformer_folder(Path(resolved))
        tokenizer_file = folder / "tokenizer.json"
        if tokenizer_file.is_file():
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(tokenizer_file))
            tokenizer.no_truncation()
            tokenizer.no_padding()

            def count(texts: list[str]) -> list[int]:
                return [len(e.ids) for e in tokenizer.encode_batch(list(texts))]

            return TokenCounter(count, max_len, model)
        source = str(folder)
    else:
        if model.startswith((".", "/", "~")):
            raise EmbedtuneError(f"model folder '{model}' does not exist", key="--model")
        source, max_len = resolved, None
    try:
        from transformers import AutoTokenizer

        auto = AutoTokenizer.from_pretrained(source)
    except Exception as exc:  # offline, unknown name, damaged folder
        raise EmbedtuneError(
            f"could not load the tokenizer of '{model}': {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
            key="--model",
            hint="give a local model folder, or the bundled default 'sentence-transformers/all-MiniLM-L6-v2'",
        ) from None

    def count_auto(texts: list[str]) -> list[int]:
        return [len(ids) for ids in auto(list(texts), truncation=False)["input_ids"]]

    return TokenCounter(count_auto, max_len or getattr(auto, "model_max_length", None), model)


#: texts tokenised per call when counting tokens (memory stays O(chunk), not O(texts))
TOKEN_CHUNK = 8192


class LengthHistogram:
    """Running summary of text lengths: a histogram of token counts (one int64 per distinct
    length up to the longest), from which the summary's median and p95 are exact."""

    def __init__(self) -> None:
        import numpy as np

        self.counts = np.zeros(0, dtype=np.int64)

    def add(self, lengths: Any) -> None:
        import numpy as np

        lengths = np.asarray(lengths, dtype=np.int64)
        if not len(lengths):
            return
        found = np.bincount(lengths)
        if len(found) > len(self.counts):
            found[: len(self.counts)] += self.counts
            self.counts = found
        else:
            self.counts[: len(found)] += found

    def percentile(self, q: float) -> float:
        """``numpy.percentile(lengths, q)`` (linear interpolation) from the histogram."""
        import numpy as np

        total = int(self.counts.sum())
        position = (q / 100.0) * (total - 1)
        low, frac = int(np.floor(position)), position - np.floor(position)
        ends = np.cumsum(self.counts)
        value_at = lambda rank: int(np.searchsorted(ends, rank, side="right"))  # noqa: E731
        lower = float(value_at(low))
        upper = float(value_at(min(low + 1, total - 1)))
        # numpy's interpolation, so the values equal numpy.percentile's to the bit
        return upper - (upper - lower) * (1 - frac) if frac >= 0.5 else lower + (upper - lower) * frac

    def summary(self, max_seq_length: int | None) -> dict[str, Any]:
        import numpy as np

        total = int(self.counts.sum())
        if not total:
            return {"count": 0}
        present = np.flatnonzero(self.counts)
        mean = float((self.counts * np.arange(len(self.counts))).sum() / total)
        summary = {
            "count": total,
            "min": int(present[0]),
            "mean": round(mean, 2),
            "median": self.percentile(50),
            "p95": self.percentile(95),
            "max": int(present[-1]),
        }
        if max_seq_length:
            summary["over_max_seq_length"] = int(self.counts[max_seq_length + 1 :].sum())
        return summary


def token_summary(counter: TokenCounter, texts: list[str], chunk: int = TOKEN_CHUNK) -> dict[str, Any]:
    """:func:`length_summary` of the texts' token counts, tokenising ``chunk`` texts at a time."""
    histogram = LengthHistogram()
    for start in range(0, len(texts), chunk):
        histogram.add(counter.count(texts[start : start + chunk]))
    return histogram.summary(counter.max_seq_length)


def length_summary(lengths: list[int], max_seq_length: int | None) -> dict[str, Any]:
    """Count, min, mean, median, p95, max (and how many exceed ``max_seq_length``) of lengths."""
    histogram = LengthHistogram()
    histogram.add(lengths)
    return histogram.summary(max_seq_length)


def _duplicates(keys: list[str]) -> int:
    """How many items repeat an earlier one."""
    return len(keys) - len(set(keys))


def split_stats(data: Any, dataset_type: str, counter: TokenCounter | None) -> dict[str, Any]:
    """Counts, text lengths and duplicates of one split (a ``datasets.Dataset`` or IRData)."""
    out: dict[str, Any] = {}
    texts: dict[str, list[str]] = {}
    if isinstance(data, IRData):
        judgements = sum(len(v) for v in data.qrels.values())
        relevant = [len(data.relevant(q)) for q in data.queries]
        grades = Counter(g for v in data.qrels.values() for g in v.values())
        judged_docs = {d for v in data.qrels.values() for d in v}
        out.update(
            queries=len(data.queries),
            documents=len(data.corpus),
            judgements=judgements,
            relevant_per_query={"mean": round(sum(relevant) / max(1, len(relevant)), 3), "max": max(relevant, default=0)},
            grades={str(k): v for k, v in sorted(grades.items())},
            unjudged_documents=len(set(data.corpus) - judged_docs),
            duplicate_queries=_duplicates([text_key(t) for t in data.queries.values()]),
            duplicate_documents=_duplicates([text_key(t) for t in data.corpus.values()]),
        )
        texts = {"query": list(data.queries.values()), "document": list(data.corpus.values())}
    else:
        columns = list(data.column_names)
        rows = len(data)
        out["records"] = rows
        text_columns = [c for c in columns if c not in ("score", "label")]
        values = {c: column_values(data, c) for c in text_columns}
        first = values[text_columns[0]]
        out["distinct_" + text_columns[0] + "s"] = len({text_key(t) for t in first})
        extra = [str(v) for v in column_values(data, "score" if "score" in columns else "label")] if ("score" in columns or "label" in columns) else [""] * rows
        out["duplicate_records"] = _duplicates(
            ["\x1f".join([text_key(values[c][i]) for c in text_columns] + [extra[i]]) for i in range(rows)]
        )
        if "positive" in values:
            out["anchor_equals_positive"] = sum(text_key(a) == text_key(p) for a, p in zip(values["anchor"], values["positive"]))
        if dataset_type == "sts":
            scores = [float(s) for s in column_values(data, "score")]
            out["score"] = {"min": min(scores), "mean": round(sum(scores) / len(scores), 3), "max": max(scores)}
        if dataset_type == "nli" and "label" in columns:
            labels = Counter(int(v) for v in column_values(data, "label"))
            out["labels"] = {LABEL_NAMES[k]: labels.get(k, 0) for k in sorted(LABEL_NAMES)}
        negatives = negative_columns(text_columns)
        texts = {c: values[c] for c in text_columns if c not in negatives}
        if negatives:
            texts["negatives"] = [t for c in negatives for t in values[c]]
    if counter is not None:
        out["tokens"] = {name: token_summary(counter, items) for name, items in texts.items()}
    return out


def training_size(bundle: DataBundle) -> tuple[int, str]:
    """The number the guide's minimum applies to: IR queries with a relevant document, records
    otherwise."""
    if isinstance(bundle.train, IRData):
        return sum(1 for q in bundle.train.queries if bundle.train.relevant(q)), "queries"
    return len(bundle.train), "records"


def bundle_stats(
    bundle: DataBundle,
    counter: TokenCounter | None = None,
    against: DataBundle | None = None,
    examples: int = 5,
) -> dict[str, Any]:
    """Everything ``embedtune data stats`` reports, as a JSON-ready dict."""
    stats: dict[str, Any] = {"source": bundle.source, "type": bundle.dataset_type}
    if counter is not None:
        stats["model"] = counter.name
        stats["max_seq_length"] = counter.max_seq_length
    stats["splits"] = {"train": split_stats(bundle.train, bundle.dataset_type, counter)}
    if bundle.eval is not None:
        stats["splits"]["eval"] = split_stats(bundle.eval, bundle.dataset_type, counter)
    leakage: dict[str, Any] = {}
    if bundle.eval is not None:
        leaked = check_leakage(bundle.train, bundle.eval, bundle.dataset_type)
        leakage["train_vs_eval"] = {"count": len(leaked), "examples": leaked[:examples]}
    if against is not None:
        leaked = check_leakage(against.train, bundle.train, bundle.dataset_type)
        if against.eval is not None:
            seen = set(leaked)
            leaked += [t for t in check_leakage(against.eval, bundle.train, bundle.dataset_type) if t not in seen]
        leakage["against"] = {"source": against.source, "count": len(leaked), "examples": leaked[:examples]}
    stats["leakage"] = leakage
    size, unit = training_size(bundle)
    required = MINIMUM_SIZES.get(bundle.dataset_type)
    stats["minimum"] = {"size": size, "unit": unit, "required": required, "meets": required is None or size >= required}
    return stats


def format_stats(stats: dict[str, Any]) -> str:
    """A readable multi-line rendering of :func:`bundle_stats`."""
    lines = [f"{stats.get('source')}: {stats['type']} data"]
    if stats.get("model"):
        lines.append(f"tokens counted with {stats['model']} (max_seq_length {stats.get('max_seq_length')})")
    for split, data in stats["splits"].items():
        lines.append(f"[{split}]")
        for key, value in data.items():
            if key == "tokens":
                continue
            if isinstance(value, dict):
                value = ", ".join(f"{k} {v}" for k, v in value.items())
            lines.append(f"  {key.replace('_', ' ')}: {value}")
        for field, summary in data.get("tokens", {}).items():
            if summary.get("count"):
                text = (
                    f"  tokens {field}: min {summary['min']}, median {summary['median']:g}, mean {summary['mean']:g}, "
                    f"p95 {summary['p95']:g}, max {summary['max']}"
                )
                if "over_max_seq_length" in summary:
                    text += f", {summary['over_max_seq_length']} over max_seq_length (truncated)"
                lines.append(text)
    for name, leak in stats["leakage"].items():
        label = "leakage train vs eval" if name == "train_vs_eval" else f"leakage against {leak['source']}"
        text = f"{label}: {leak['count']} shared anchor(s)"
        if leak["examples"]:
            text += " e.g. " + "; ".join(repr(t) for t in leak["examples"][:3])
        lines.append(text)
    minimum = stats["minimum"]
    if minimum["required"] is not None:
        verdict = "meets" if minimum["meets"] else "is below"
        lines.append(
            f"size: {minimum['size']:,} training {minimum['unit']} {verdict} the minimum of {minimum['required']:,} for {stats['type']}"
        )
    return "\n".join(lines)
