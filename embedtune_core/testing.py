"""Helpers for testing embedtune and packs: a tiny model built in code, throwaway plugins.

``build_tiny_model(folder)`` writes a small BERT (2 layers, hidden size 32) with a WordPiece
vocabulary built on the fly (the same on every machine), as a sentence-transformers model folder.
It trains in seconds on CPU and needs no download; the same arguments give the same weights.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any, Iterable, Iterator

TINY_CORPUS = [
    "the patient has a high fever and a cough",
    "elevated body temperature with coughing",
    "the tenant must hold the landlord harmless",
    "indemnification clause in the lease agreement",
    "the bond yield rose as interest rates increased",
    "stock prices fell after the earnings report",
    "a contract is a legally binding agreement",
    "abnormality of the heart rhythm",
    "irregular heartbeat and palpitations",
    "loss of hearing in one ear",
    "the company reported quarterly revenue growth",
    "a building permit is required for an extension",
    "small head circumference at birth",
    "short stature and delayed growth",
    "the liability of the seller is limited",
]


SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _vocabulary(texts: Iterable[str], vocab_size: int) -> Any:
    """A WordPiece tokenizer whose vocabulary is the same on every machine and in every process:
    the special tokens, every character of ``texts`` (alone and as a ``##`` continuation), then
    their most frequent words (ties in alphabetical order) up to ``vocab_size``. (The tokenizers
    library's WordPiece trainer breaks ties between equally frequent merges differently from one
    process to the next, so a model built with it differs from run to run.)"""
    from collections import Counter

    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words: Counter[str] = Counter()
    for text in texts:
        words.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    characters = sorted({c for word in words for c in word})
    tokens = SPECIAL_TOKENS + characters + ["##" + c for c in characters]
    known = set(tokens)
    for word, _ in sorted(words.items(), key=lambda item: (-item[1], item[0])):
        if len(tokens) >= vocab_size:
            break
        if word not in known:
            tokens.append(word)
            known.add(word)
    tokenizer = Tokenizer(models.WordPiece({token: i for i, token in enumerate(tokens)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.add_special_tokens(SPECIAL_TOKENS)
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )
    return tokenizer


def build_tiny_model(
    folder: str | Path,
    *,
    texts: Iterable[str] | None = None,
    hidden_size: int = 32,
    layers: int = 2,
    vocab_size: int = 2000,
    max_seq_length: int = 64,
    seed: int = 0,
    word_embedding_std: float | None = None,
    dropout: float = 0.1,
) -> Path:
    """Write a tiny BERT sentence-transformers model to ``folder`` and return the folder.

    With ``word_embedding_std`` (e.g. 0.5) the token embeddings are drawn that wide instead of
    BERT's 0.02: texts that share words then score clearly above texts that do not, as with a
    trained model, rather than every pair scoring about the same. ``dropout = 0`` makes training
    deterministic (the same steps give the same weights however the batch is split)."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    folder = Path(folder)
    hf_dir = folder / "_hf"
    hf_dir.mkdir(parents=True, exist_ok=True)
    corpus = list(texts) if texts is not None else []
    corpus += TINY_CORPUS
    tokenizer = _vocabulary(corpus, vocab_size)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=max_seq_length,
    )
    fast.save_pretrained(hf_dir)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(fast),
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=hidden_size * 2,
        max_position_embeddings=max_seq_length + 2,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    bert = BertModel(config)
    if word_embedding_std is not None:
        with torch.no_grad():
            bert.embeddings.word_embeddings.weight.normal_(0.0, word_embedding_std)
    bert.save_pretrained(hf_dir)
    transformer = models.Transformer(str(hf_dir), max_seq_length=max_seq_length)
    dim_getter = getattr(transformer, "get_embedding_dimension", None) or transformer.get_word_embedding_dimension
    pooling = models.Pooling(dim_getter(), pooling_mode="mean")
    model = SentenceTransformer(modules=[transformer, pooling], device="cpu")
    out = folder / "model"
    model.save(str(out))
    return out


@contextlib.contextmanager
def registered_plugin(plugin_set: Any, plugin: Any, name: str) -> Iterator[Any]:
    """Register ``plugin`` (a module, class or object with hookimpls) under ``name`` for the
    duration of the block, then unregister it."""
    from embedtune_core.plugins.manager import PluginRecord

    plugin_set.manager.register(plugin, name=name)
    plugin_set.records[name] = PluginRecord(name=name, module=repr(plugin))
    try:
        yield plugin
    finally:
        if plugin_set.manager.get_plugin(name) is not None:
            plugin_set.manager.unregister(name=name)
        plugin_set.records.pop(name, None)


class CliResult:
    def __init__(self, exit_code: int, stdout: str, stderr: str) -> None:
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __repr__(self) -> str:
        return f"CliResult(exit_code={self.exit_code}, stdout={self.stdout[-2000:]!r}, stderr={self.stderr[-2000:]!r})"


def invoke(args: Iterable[str], *, env: dict[str, str] | None = None, input: str | None = None) -> CliResult:
    """Run the ``embedtune`` CLI in-process the way the console script does (error handling
    included) and capture its exit code, stdout and stderr."""
    from click.testing import CliRunner

    from embedtune_core.cli.main import main

    runner = CliRunner()
    with runner.isolation(input=input, env=env) as streams:
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        sys.stdout.flush()
        sys.stderr.flush()
        stdout = streams[0].getvalue().decode("utf-8", "replace")
        stderr = streams[1].getvalue().decode("utf-8", "replace")
    return CliResult(code, stdout, stderr)


def pack_registry(plugin_name: str, module: str) -> Any:
    """A registry holding one pack only, loaded strictly through an entry point like the one its
    pyproject declares (``[project.entry-points.embedtune] plugin_name = "module"``), so a pack's
    tests work before the pack is installed too."""
    from importlib.metadata import EntryPoint

    from embedtune_core.plugins.registry import load_registry

    entry_point = EntryPoint(name=plugin_name, value=module, group="embedtune")
    _, registry = load_registry(entry_points=[entry_point], strict=True)
    return registry


def assert_bundled_sets_described(registry: Any) -> None:
    """Every dataset reader in ``registry`` is a bundled set whose registered ``size`` and
    ``licence`` (what `embedtune data list` shows) match what the reader really returns."""
    from embedtune_core.data.loading import load_data
    from embedtune_core.data.splits import describe_size

    for component in registry.components("dataset_reader"):
        assert component.info.bundled and component.info.licence, component.name
        bundle = load_data(registry, f"builtin:{component.name}")
        assert component.info.size == describe_size(bundle), component.name
