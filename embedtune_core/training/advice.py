"""Hyperparameter advice from the domain fine-tuning guide, applied to a data set.

The guide: 1 epoch for small sets; batch as large as memory allows, since with in-batch-negative
losses every other example of the batch is a negative (batch - 1 of them), and never below 16
(15 negatives); a set too small for that and 30 optimizer steps gets more epochs; warmup 10% of the
steps (15-20% if the loss oscillates early); MNRL for anything with positives, CoSENT for scored
pairs; enough data for the type; no duplicates; no leakage; texts that fit the model.
"""

from __future__ import annotations

import math
from typing import Any

SMALL_DATA = 10_000  # examples; below this one epoch is enough
MIN_STEPS = 30  # fewer optimizer steps than this barely move the model, whatever the batch
#: the smallest batch suggested for in-batch-negative losses: 15 negatives per example. Below
#: that the contrast is too weak to teach the domain, however many steps are taken.
MIN_IN_BATCH = 16
MAX_EPOCHS = 10  # more epochs than this only memorise a tiny set
#: texts encoded per training example, by the type the loss trains on
TEXTS_PER_EXAMPLE = {"pairs": 2, "ir": 2, "triplets": 3, "nli": 3, "sts": 2, "hard-negatives": 3}


def model_shape(model_folder: str) -> dict[str, Any]:
    """hidden size, layers, heads and parameter count read from a model folder's config.json
    (no weights loaded); empty when unknown."""
    import json
    from pathlib import Path

    folder = Path(model_folder)
    candidates = [folder / "config.json"] + sorted(folder.glob("*/config.json"))
    for path in candidates:
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(config, dict) or not _size(config.get("hidden_size")):
            continue  # no usable hidden size here (null, text, a list...): the shape is unknown
        hidden = config["hidden_size"]
        sizes = {key: config.get(key) if _size(config.get(key)) else fallback for key, fallback in (
            ("num_hidden_layers", 12), ("vocab_size", 30522), ("intermediate_size", 4 * hidden),
            ("num_attention_heads", 12))}
        layers, vocab, intermediate = sizes["num_hidden_layers"], sizes["vocab_size"], sizes["intermediate_size"]
        params = vocab * hidden + layers * (4 * hidden * hidden + 2 * hidden * intermediate)
        return {"hidden": hidden, "layers": layers, "heads": sizes["num_attention_heads"], "parameters": params}
    return {}


def _size(value: Any) -> bool:
    """A positive integer (JSON's true and 3.0 are not)."""
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


#: optimizer steps up to which a run counts as short for ``learning_rate = "auto"``
SHORT_RUN_STEPS = 1000
#: hidden size from which a model counts as base-size (BERT-base and up)
BASE_SIZE_HIDDEN = 768


def auto_learning_rate(hidden: int | None, steps: int | None) -> float:
    """``learning_rate = "auto"``: 2e-5 for a base-size model (or one whose size is unknown);
    for a small one (MiniLM and the like, hidden size under 768) 5e-5, and 2e-4 on a short run
    (up to :data:`SHORT_RUN_STEPS` optimizer steps), where a few hundred steps at 2e-5 barely
    move the weights: measured in ``benchmarks/domain_bench.py`` (benchmarks/RESULTS.md)."""
    if hidden is None or hidden >= BASE_SIZE_HIDDEN:
        return 2e-5
    return 2e-4 if steps is not None and steps <= SHORT_RUN_STEPS else 5e-5


def planned_steps(rows: int, batch_size: int, *, epochs: float, max_steps: int | None = None,
                  accumulation: int = 1, processes: int = 1) -> int:
    """Optimizer steps a run of ``rows`` training rows takes (``max_steps`` when set)."""
    if max_steps:
        return int(max_steps)
    per_step = max(1, batch_size * accumulation * processes)
    return max(1, math.ceil(math.ceil(rows / per_step) * epochs))


def decide_learning_rate(config: Any, *, hidden: int | None, rows: int | None) -> Any:
    """``config`` (a TrainingConfig) with ``learning_rate = "auto"`` decided for a model of
    ``hidden`` size trained on ``rows`` rows (see :func:`auto_learning_rate`); unchanged when
    the rate is a number."""
    import attrs

    from embedtune_core.distributed import world_size

    if config.learning_rate != "auto":
        return config
    steps = None if rows is None else planned_steps(
        rows, config.batch_size, epochs=config.epochs, max_steps=config.max_steps,
        accumulation=config.gradient_accumulation_steps, processes=world_size())
    return attrs.evolve(config, learning_rate=auto_learning_rate(hidden, steps))


#: above this many times the compute of one epoch over the pairs alone, a run says why and how to shorten it
SLOW_FACTOR = 2.0
#: characters per token, roughly, for English text in a WordPiece vocabulary (texts longer than
#: ``max_seq_length`` tokens are cut, so they cost no more than that)
CHARS_PER_TOKEN = 4


def _mean_length(texts: Any, cap: int) -> float:
    lengths = [min(len(t), cap) for t in texts if isinstance(t, str)]
    return sum(lengths) / len(lengths) if lengths else 0.0


def training_cost(rows: Any, *, epochs: float, negatives: int = 0, max_seq_length: int = 256) -> float:
    """About how many times the compute of one epoch over the (anchor, positive) pairs alone a
    training of ``epochs`` takes when each row also encodes ``negatives`` mined negatives (each
    as long as a positive, on average). A Transformer's time grows about linearly with the tokens
    of these short texts, so the estimate is the characters encoded per row (each text cut at
    ``max_seq_length`` tokens) relative to the pair's. The plain sentence-transformers script
    (one epoch of MNRL on the pairs) is 1.0."""
    cap = max_seq_length * CHARS_PER_TOKEN
    anchor = _mean_length(rows["anchor"], cap)
    positive = _mean_length(rows["positive"], cap)
    if anchor + positive <= 0:
        return float(epochs)
    return float(epochs) * (anchor + positive * (1 + negatives)) / (anchor + positive)


def slow_training_note(rows: Any, *, epochs: float, negatives: int, max_seq_length: int,
                       validation: bool = False) -> str | None:
    """A line saying why a training takes more than :data:`SLOW_FACTOR` times one plain epoch over
    the pairs, and how to make it shorter (None when it does not)."""
    factor = training_cost(rows, epochs=epochs, negatives=negatives, max_seq_length=max_seq_length)
    if factor <= SLOW_FACTOR:
        return None
    why = [f"{epochs:g} epochs" + (" (the best one kept on the validation part)" if validation else "")] if epochs > 1 else []
    if negatives:
        why.append(f"{negatives} mined hard negative{'s' if negatives > 1 else ''} encoded with every pair")
    shorter = [f"-s training.epochs=1 (about {training_cost(rows, epochs=1, negatives=negatives, max_seq_length=max_seq_length):.1f}x)"] if epochs > 1 else []
    if negatives:
        shorter.append(f"-s mining.miner=null (about {training_cost(rows, epochs=epochs, max_seq_length=max_seq_length):.1f}x)")
    return (f"training will take about {factor:.1f}x the time of one epoch over the pairs alone (what a plain "
            f"sentence-transformers script trains): {' and '.join(why)}; to make it shorter: {', or '.join(shorter)}")


def hidden_size_of(model_name: str) -> int | None:
    """The hidden size a local, bundled or cached model's config.json gives (None: unknown)."""
    from embedtune_core.embedding.models import resolve_model

    return model_shape(resolve_model(model_name)).get("hidden")


def max_batch_for_memory(shape: dict[str, Any], seq_len: int, texts_per_example: int, memory_gb: float) -> int | None:
    """Largest power-of-two batch whose training memory fits ``memory_gb``.

    Activations per text and layer follow Korthikanti et al. (2022): about 34*s*h + 5*a*s^2 bytes
    in 16-bit precision; weights, gradients and AdamW states take 16 bytes per parameter. Leaves
    30% headroom. None when the model's shape is unknown.
    """
    if not shape:
        return None
    s, h, a, layers = seq_len, shape["hidden"], shape["heads"], shape["layers"]
    per_text = layers * (34 * s * h + 5 * a * s * s)
    budget = memory_gb * (1024 ** 3) * 0.7 - 16 * shape["parameters"]
    if budget <= 0:
        return 0
    batch = int(budget // (per_text * texts_per_example))
    return 2 ** int(math.log2(batch)) if batch >= 1 else 0


def _loss_advice(registry: Any, dataset_type: str) -> tuple[str, bool, str | None]:
    """The default loss for the type, whether it uses in-batch negatives, and a loss that trains
    large batches in constant memory for this type (from what the losses declare)."""
    from embedtune_core.training.losses import loss_traits, recommend_loss

    loss = recommend_loss(registry, dataset_type)
    in_batch = loss_traits(registry, loss, registry.resolve_options("loss", loss, {})).in_batch_negatives
    constant = next((c.name for c in registry.components("loss") if c.info.constant_memory
                     and (c.info.accepts is None or dataset_type in c.info.accepts)), None)
    return loss, in_batch, constant


def plan_batches(size: int, batch: int, reason: str, *, in_batch_negatives: bool) -> dict[str, Any]:
    """Batch size and epochs for ``size`` examples, starting from the ``batch`` memory allows.

    The batch is capped so one epoch makes at least :data:`MIN_STEPS` optimizer steps. With an
    in-batch-negative loss it never drops below :data:`MIN_IN_BATCH` (or the whole data when
    smaller), since each example is contrasted with the other ``batch - 1``; when the data is too
    small for both that floor and :data:`MIN_STEPS` steps in one epoch, more epochs make up the
    steps (at most :data:`MAX_EPOCHS`) and a warning says so.
    """
    warnings: list[str] = []
    step_cap = 2 ** int(math.log2(max(2, size // MIN_STEPS)))
    if batch > step_cap:
        reason += f"; capped at {step_cap} so {size:,} examples still make at least {MIN_STEPS} optimizer steps"
        batch = step_cap
    batch = max(2, batch)
    epochs = 1
    if in_batch_negatives and batch < MIN_IN_BATCH:
        batch = max(2, min(MIN_IN_BATCH, size))
        per_epoch = math.ceil(size / batch)
        epochs = min(MAX_EPOCHS, math.ceil(MIN_STEPS / per_epoch))
        reason = f"the floor of {MIN_IN_BATCH - 1} in-batch negatives per example"
        if size < MIN_IN_BATCH:
            reason = f"all {size} examples: fewer than the floor of {MIN_IN_BATCH - 1} in-batch negatives"
        if epochs > 1 or size < MIN_IN_BATCH:
            warnings.append(
                f"{size:,} examples are too few for both {MIN_IN_BATCH - 1}+ in-batch negatives and {MIN_STEPS} optimizer "
                f"steps per epoch (batch {batch} gives {per_epoch}); train {epochs} epochs instead, or better, add data"
            )
    return {"batch_size": batch, "epochs": epochs, "reason": reason, "warnings": warnings}


def advise(stats: dict[str, Any], *, dataset_type: str, model_name: str, shape: dict[str, Any],
           memory_gb: float | None, device: str, registry: Any) -> dict[str, Any]:
    """Advice for one data set. ``stats`` is what ``embedtune_core.data.stats.bundle_stats`` gives;
    the losses come from ``registry`` (what each declares)."""
    size = stats["minimum"]["size"]
    required = stats["minimum"]["required"]
    train_split = stats["splits"]["train"]
    tokens = train_split.get("tokens", {})
    p95 = max((int(t.get("p95", 0)) for t in tokens.values() if t.get("count")), default=128)
    seq_len = max(16, min(int(stats.get("max_seq_length") or 512), int(2 ** math.ceil(math.log2(max(p95, 16))))))
    loss, in_batch, constant_memory_loss = _loss_advice(registry, dataset_type)
    texts = TEXTS_PER_EXAMPLE.get(dataset_type, 2)
    advice: dict[str, Any] = {"dataset_type": dataset_type, "examples": size, "model": model_name, "loss": loss}
    notes: list[str] = []
    if memory_gb is None:
        batch = 32 if device == "cpu" else 64
        reason = "on CPU, 32 keeps steps short" if device == "cpu" else "no memory size given (--memory-gb)"
    else:
        fit = max_batch_for_memory(shape, seq_len, texts, memory_gb)
        batch = min(fit or 64, 1024)
        reason = f"the largest power of two that fits {memory_gb:g} GB at {seq_len} tokens"
    plan = plan_batches(size, batch, reason, in_batch_negatives=in_batch)
    batch = advice["batch_size"] = plan["batch_size"]
    advice["epochs"] = plan["epochs"]
    if plan["epochs"] > 1:
        notes.append(f"epochs: {plan['epochs']} — {size:,} examples give too few optimizer steps in one epoch at batch {batch}")
    else:
        notes.append(
            f"epochs: 1 — {size:,} examples is a small set; more epochs overfit it" if size < SMALL_DATA
            else f"epochs: 1 — {size:,} examples; add a second epoch only if the eval metric still rises at the end"
        )
    if in_batch:
        notes.append(f"batch_size: {batch} ({plan['reason']}); each example then has {batch - 1} in-batch negatives — "
                     "as large as memory allows")
        if constant_memory_loss and constant_memory_loss != loss and memory_gb is not None \
                and (max_batch_for_memory(shape, seq_len, texts, memory_gb) or 0) < 256 and size >= 2048:
            notes.append(f"loss: {constant_memory_loss} reaches batches of 1,000+ in constant memory if the batch "
                         "above is small")
    else:
        notes.append(f"batch_size: {batch} ({plan['reason']})")
    steps = max(1, math.ceil(size / batch)) * advice["epochs"]
    advice["steps"] = steps
    advice["warmup_ratio"] = 0.1
    notes.append(f"warmup_ratio: 0.1 — {max(1, round(steps * 0.1))} of {steps} steps; use 0.15–0.2 if the loss oscillates early")
    hidden = shape.get("hidden")
    lr = advice["learning_rate"] = auto_learning_rate(hidden, steps)
    notes.append(f"learning_rate: {lr:g} — " + (
        "base-size model" if hidden is None or hidden >= BASE_SIZE_HIDDEN
        else f"small model (hidden size {hidden})" + (f", short run ({steps} steps)" if steps <= SHORT_RUN_STEPS else "")))
    notes.append(f"loss: {loss} — the default for {dataset_type} data"
                 + (" (in-batch negatives)" if in_batch else ""))
    # checks
    warnings: list[str] = list(plan["warnings"])
    if required and size < required:
        warnings.append(f"only {size:,} training {stats['minimum']['unit']}; the guide's minimum for {dataset_type} is {required:,}")
    for split, data in stats["splits"].items():
        for key in ("duplicate_records", "duplicate_queries", "duplicate_documents"):
            if data.get(key):
                warnings.append(f"{split}: {data[key]} {key.replace('_', ' ')} — remove them (duplicates in a batch become false negatives)")
        for field, summary in data.get("tokens", {}).items():
            over = summary.get("over_max_seq_length")
            if over:
                warnings.append(f"{split}: {over} {field} text(s) longer than max_seq_length {stats.get('max_seq_length')} are truncated")
    for name, leak in stats.get("leakage", {}).items():
        if leak.get("count"):
            warnings.append(f"leakage ({name.replace('_', ' ')}): {leak['count']} anchor(s) on both sides, e.g. {leak['examples'][:1]}")
    advice["max_seq_length"] = seq_len
    notes.append(f"max_seq_length: {seq_len} covers 95% of the texts (p95 {p95} tokens)")
    advice["notes"] = notes
    advice["warnings"] = warnings
    advice["config"] = {
        "training": {"epochs": advice["epochs"], "batch_size": batch, "warmup_ratio": 0.1, "learning_rate": lr},
        "loss": {"name": loss},
        "model": {"max_seq_length": seq_len},
    }
    return advice
