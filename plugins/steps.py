"""Built-in pipeline steps: mine, evaluate-before, train and evaluate-after.

Each is a component registered through ``register_pipeline_steps`` like a pack's step, and
declares what it needs, provides and uses; the core plans, checks and runs them from those
declarations. The default pipeline is these four, in this order (``steps = []``).

=================  ==========================================================================
step               what it does
=================  ==========================================================================
mine               adds hard negatives to the training rows with ``mining.miner`` (left out while
                   it is unset); the evaluation before training reuses the embeddings it computes
evaluate-before    evaluates the baseline (``evaluation.baseline``, else the model before
                   training) on the held-out data and the retention set
train              trains with the loss, callbacks and ``training`` settings and saves the model
evaluate-after     evaluates the model as the run leaves it; after training with
                   ``training.interpolate = "auto"`` it chooses the interpolation
=================  ==========================================================================
"""

from __future__ import annotations

import time
from typing import Any

from embedtune_core import hookimpl
from embedtune_core.errors import ConfigError, EmbedtuneError
from embedtune_core.pipeline.record import headline_metric
from embedtune_core.pipeline.steps import BASELINE_EVALUATION, EVALUATION, MINED_ROWS, TRAINED_MODEL

#: above this share of random fill-ins among the negatives written, a run says so
FILLED_WARNING = 0.2


# -- mine ---------------------------------------------------------------------------------------
def filled_warning(stats: dict) -> str | None:
    """A line for the terminal and the report when more than a fifth of the negatives are random
    fill-ins (easy negatives), with what to change."""
    filled = stats.get("negatives_filled") or 0
    written = stats.get("negatives_written") or 0
    if not written or filled / written <= FILLED_WARNING:
        return None
    dropped = stats.get("dropped_false_negatives") or 0
    why = ("the guards dropped the rest as likely false negatives" if dropped
           else "the search found too few candidates")
    return (f"{filled:,} of {written:,} negatives ({filled / written:.0%}) are random fill-ins, not hard negatives: "
            f"{why}; raise mining.options.max_depth, lower relative_margin (e.g. 0.02), "
            "or give a larger corpus (mining.corpus)")


class Mine:
    """Add hard negatives to the training rows (reused from an interrupted run with --resume)."""

    def run(self, context: Any) -> None:
        from embedtune_core import io as eio
        from embedtune_core.distributed import is_main_process
        from embedtune_core.pipeline.rundir import MINED_FILE

        config, run = context.config, context.plan
        mined_path = run.output.mined or (context.run_dir / MINED_FILE if context.run_dir else None)
        mining = context.saved("mining", _mining_stats) if context.resume else None
        if mining is not None and mined_path is not None and mined_path.exists():
            context.progress("reusing mined negatives from the interrupted run")
            context.training_rows = _read_mined(mined_path, config)
        else:
            context.progress(f"mining hard negatives with '{config.mining.miner}'")
            result = _mine(context)
            context.training_rows, mining = result.dataset, result.stats.as_dict()
            if mined_path is not None and is_main_process():
                eio.write_jsonl(mined_path, eio.dataset_rows(context.training_rows))
            context.state["mining"] = mining
            context.save_state()
        context.training_type = config.mining.output
        warning = filled_warning(mining)
        if warning:
            mining["warning"] = warning
            context.note(warning)
        context.results.mining = mining


def _mining_stats(saved: Any) -> dict:
    """Mining statistics kept in state.json, checked (ValueError: damaged)."""
    counts = ("queries", "candidates_seen", "dropped_false_negatives", "negatives_written", "queries_short",
              "negatives_filled")
    if not isinstance(saved, dict):
        raise ValueError("mining statistics are a table")
    wrong = [k for k in counts if not isinstance(saved.get(k, 0), int) or isinstance(saved.get(k), bool)]
    if wrong:
        raise ValueError(f"'{wrong[0]}' is not a count")
    return dict(saved)


def _read_mined(path: Any, config: Any) -> Any:
    """The mined rows an interrupted run wrote, read back as a hard-negatives or triplets file:
    checked like any file of that type (a damaged file is one error naming its line)."""
    from embedtune_core.data.formats import read_table
    from embedtune_core.data.records import records_to_columns, to_dataset

    columns, _ = records_to_columns(read_table(path), config.mining.output)
    return to_dataset(columns)


def _mine(context: Any) -> Any:
    from embedtune_core.embedding.encode import Encoder
    from embedtune_core.mining.miner import run_miner

    config, data = context.config, context.data
    components = context.plan.components
    miner, options = components.miner, components.miner_options
    encoder = None
    if miner.info.model == "required" or (miner.info.model == "guards" and options.get("guard_scores", "auto") != "retrieval"):
        encoder = Encoder(context.load_model(config.mining.model or config.model.name),
                          batch_size=config.evaluation.batch_size, show_progress=not context.quiet)
    records = miner.info.input == "nli" and data.dataset_type == "nli"  # the NLI records, labels included
    result = run_miner(context.registry, config.mining.miner, data.bundle.train if records else context.training_rows,
                       "nli" if records else data.train_type, num_negatives=config.mining.num_negatives,
                       options=options, encoder=encoder, corpus=data.corpus, categories=data.categories,
                       output=config.mining.output, seed=config.training.seed, device=config.model.device)
    if len(result.dataset) == 0:
        stats = result.stats
        raise EmbedtuneError(
            f"mining with '{config.mining.miner}' kept no training rows: every candidate was dropped "
            f"as a likely false negative ({stats.dropped_false_negatives} dropped, {stats.candidates_seen} seen)",
            key="mining.options",
            hint="loosen the guards (e.g. -s mining.options.relative_margin=0.01), ask for fewer negatives, or keep "
                 "short anchors (-s mining.options.short=fill)",
        )
    return result


# -- evaluate -------------------------------------------------------------------------------------
def evaluate(context: Any, model: Any, name: str, *, retention: bool = False) -> Any:
    """``model`` on the held-out data (or, with ``retention``, on the retention set, at the full
    size only; None when there is none), as an :class:`Evaluation`."""
    from embedtune_core.embedding.models import embedding_dim
    from embedtune_core.pipeline.evaluation import evaluate_model
    from embedtune_core.pipeline.results import Evaluation

    config, data = context.config, context.data
    evaluation, kind, dims = data.evaluation, data.eval_kind, config.evaluation.dims or None
    if retention:
        if data.retention is None:
            return None
        evaluation, kind, dims = data.retention, "ir", None
    details: dict | None = {} if kind == "ir" and not retention else None
    results = evaluate_model(model, evaluation, kind, registry=context.registry,
                             metrics=list(config.evaluation.metrics), dims=dims,
                             batch_size=config.evaluation.batch_size, all_queries=config.evaluation.all_queries,
                             show_progress=not context.quiet, details=details,
                             approximate_from=config.evaluation.approximate_from)
    return Evaluation(model=name, results=results, full_dim=embedding_dim(model),
                      per_query=(details or {}).get("per_query"))


class EvaluateBefore:
    """Evaluate the baseline (``evaluation.baseline``, else the model before training)."""

    def run(self, context: Any) -> None:
        from embedtune_core.pipeline.results import restore_evaluation, saved_evaluation

        config, results = context.config, context.results
        name = config.evaluation.baseline or config.model.name
        before = context.saved("before", restore_evaluation) if context.resume else None
        if before is not None:
            results.before = before
            results.retention_before = context.saved("retention_before", restore_evaluation)
        else:
            context.progress(f"evaluating {'the baseline' if config.evaluation.baseline else 'the base model'} {name}")
            model = context.load_model(name) if config.evaluation.baseline else context.model()
            results.before = evaluate(context, model, name)
            results.retention_before = evaluate(context, model, name, retention=True)
            context.state["before"] = saved_evaluation(results.before)
            context.state["retention_before"] = saved_evaluation(results.retention_before)
            context.save_state()
        context.call_hook("evaluation_finished", stage="before", results=results.before.results, run_dir=context.run_dir)


class EvaluateAfter:
    """Evaluate the model as the run leaves it (trained, when a step before it trained it)."""

    def run(self, context: Any) -> None:
        results = context.results
        trained = context.has(TRAINED_MODEL)
        name = context.model_path if trained else context.config.model.name
        if trained and context.config.training.interpolate == "auto":
            _interpolate(context, name)
        else:
            context.progress("evaluating the tuned model" if trained else f"evaluating {name}")
            results.after = evaluate(context, context.model(), name)
            results.retention_after = evaluate(context, context.model(), name, retention=True)
        context.call_hook("evaluation_finished", stage="after", results=results.after.results, run_dir=context.run_dir)


def _base_state(context: Any) -> dict:
    from embedtune_core.embedding.models import load_model

    model = context.config.model
    return load_model(model.name, device=model.device, trust_remote_code=model.trust_remote_code).state_dict()


def _interpolate(context: Any, name: str) -> None:
    """``training.interpolate = "auto"``: evaluate ``(1 - a) base + a tuned`` for each ``a`` and
    keep the best within the retention tolerance; the run's saved model is that interpolation."""
    from embedtune_core.distributed import is_main_process
    from embedtune_core.pipeline.forgetting import interpolate
    from embedtune_core.training.checkpoints import save_model

    config, results = context.config, context.results
    alphas = sorted({0.0, 1.0, *config.training.interpolation_alphas})
    context.progress("evaluating the tuned model and its interpolations with the base model (a = "
                     + ", ".join(f"{a:g}" for a in alphas) + ")")
    model = context.model()

    def evaluate_alpha(alpha: float) -> tuple[Any, Any]:
        return evaluate(context, model, name), evaluate(context, model, name, retention=True)

    unchanged = results.before if config.evaluation.baseline is None else None
    record, found = interpolate(model, _base_state(context), evaluate_alpha, alphas=alphas,
                                tolerance=config.training.retention_tolerance,
                                metric=headline_metric(config, context.data.eval_kind),
                                retention_metric=next(iter(config.evaluation.metrics), None),
                                base_results=(unchanged, results.retention_before) if unchanged else None)
    results.interpolation = record
    results.after, results.retention_after = found[record["chosen"]]
    if context.run_dir is not None and is_main_process() and record["chosen"] != 1.0:
        save_model(model, context.run_dir / "model")


# -- train ----------------------------------------------------------------------------------------
class Train:
    """Train on the (mined) rows and save the model; a finished training is never repeated."""

    def check(self, plan: Any, name: str) -> None:
        """``interpolate = "auto"`` chooses in a later step that evaluates the trained model."""
        later = plan.after(name)
        if plan.config.training.interpolate == "auto" and not any(EVALUATION in s.info.provides for s in later):
            raise ConfigError("training.interpolate = \"auto\" chooses the interpolation in the step that evaluates "
                              "the trained model, which this run leaves out", key="training.interpolate",
                              hint="add evaluate-after after train, or give a fixed weight, e.g. interpolate = 0.75")

    def setup(self, context: Any) -> None:
        """Build the loss for the loaded model and compute it on a first batch shaped as training
        will shape it, before the run folder exists: a loss that cannot be built for this model
        (Matryoshka dims above its size) or whose forward does not give one finite number fails
        here, not after mining and evaluation."""
        from embedtune_core.training.losses import probe_loss

        components, registry, config = context.plan.components, context.registry, context.config
        component = registry.get("loss", components.loss)
        context.results.loss = registry.build(component, context.model(), options=components.loss_options)
        mined = "mining" in context.plan.uses
        probe_loss(context.results.loss, component, context.model(), context.training_rows,
                   shape=config.mining.output if mined else context.training_type,
                   negatives=config.mining.num_negatives if mined else None, input_shape=context.plan.traits.input)
        _say_when_slow(context, negatives=config.mining.num_negatives if mined else 0)

    def run(self, context: Any) -> None:
        from embedtune_core.distributed import is_main_process
        from embedtune_core.pipeline.data import eval_training_rows
        from embedtune_core.training.checkpoints import save_model
        from embedtune_core.training.trainer import train

        config, results = context.config, context.results
        context.progress(f"training with '{config.loss.name}' on {len(context.training_rows)} examples")
        eval_rows = eval_training_rows(context.data, config.data.eval_limit) if config.training.eval_steps else None
        started = time.perf_counter()
        result = train(context.model(), context.training_rows, results.loss, _train_setup(context), context.run_dir,
                       eval_dataset=eval_rows, resume=context.resume, quiet=context.quiet)
        seconds = time.perf_counter() - started
        if isinstance(config.training.interpolate, float):
            _interpolate_fixed(context)
        if is_main_process():
            save_model(context.model(), context.run_dir / "model")
        results.log_history = result.log_history
        saved = context.saved("training", _training_record) if context.resume else None
        finished_before = saved is not None and saved.get("steps") == result.global_step
        results.training = saved if finished_before else _training_summary(context, result, seconds, eval_rows)
        warning = learned_nothing(results.log_history, context.training_rows)
        if warning:
            results.training["warning"] = warning
            context.note(warning)
        context.state["training"] = results.training
        context.save_state()


def _say_when_slow(context: Any, *, negatives: int) -> None:
    """At the start: why the training takes more than twice one plain epoch, and how to shorten it."""
    from embedtune_core.training.advice import slow_training_note

    rows, config = context.training_rows, context.config
    if rows is None or "anchor" not in rows.column_names or "positive" not in rows.column_names or config.training.max_steps:
        return
    note = slow_training_note(rows, epochs=config.training.epochs, negatives=negatives,
                              max_seq_length=context.model().max_seq_length or 512,
                              validation=context.data.validation is not None)
    if note:
        context.note(note)


def learned_nothing(history: list, rows: Any) -> str | None:
    """A line when the training cannot have taught the model anything: every training row the
    same, or a loss of 0 at every logged step (no example was ever wrong: identical rows, or a
    margin that masks every negative)."""
    from embedtune_core.data.shapes import training_columns

    columns = [c for c in training_columns(rows.column_names) if c not in ("score", "label")] if rows is not None else []
    if columns and len(rows) > 1 and len(set(zip(*(rows[c] for c in columns)))) == 1:
        return f"all {len(rows):,} training rows are the same row: the model learned nothing from them"
    losses = [row["loss"] for row in history if isinstance(row.get("loss"), (int, float))]
    if losses and all(abs(loss) < 1e-12 for loss in losses):
        return ("the training loss was 0 at every logged step: no example was ever wrong, so the model learned "
                "nothing (identical rows? a loss margin or a guide that masks every negative?)")
    return None


def _training_record(saved: Any) -> dict:
    """A training summary kept in state.json, checked (ValueError: damaged)."""
    if not isinstance(saved, dict) or not isinstance(saved.get("steps"), int):
        raise ValueError("a training summary is a table with the number of steps")
    return saved


def _interpolate_fixed(context: Any) -> None:
    """``training.interpolate = a``: the trained model becomes ``(1 - a) base + a tuned``."""
    from embedtune_core.pipeline.forgetting import interpolated_state

    alpha = context.config.training.interpolate
    model = context.model()
    model.load_state_dict(interpolated_state(_base_state(context), model.state_dict(), alpha))
    context.results.interpolation = {"mode": "fixed", "chosen": alpha}


def _train_setup(context: Any) -> Any:
    from embedtune_core.training.trainer import TrainSetup

    from embedtune_core.plugins.calling import contain_methods

    plan, registry = context.plan, context.registry
    where = {"run_dir": context.run_dir, "quiet": context.quiet}
    callbacks = tuple(contain_methods(registry.build(component, options=options, context=where), component)
                      for _, component, options in plan.components.callbacks)
    data = context.data
    name = f"{context.config.data.source} ({data.dataset_type}, {len(context.training_rows)} training examples)"
    metric = headline_metric(context.config, "ir")
    return TrainSetup(config=context.config.training, traits=plan.traits, callbacks=callbacks,
                      large_batch_loss=_constant_memory_loss(context), dataset_name=name,
                      validation=_validation_score(context, metric), validation_metric=metric)


def _validation_score(context: Any, metric: str) -> Any:
    """A function giving a model's ``metric`` on the run's validation part (None: the run holds
    none out, ``training.validation_fraction = 0``)."""
    from embedtune_core.pipeline.evaluation import evaluate_ir

    validation, config = context.data.validation, context.config
    if validation is None:
        return None

    def score(model: Any) -> float:
        return evaluate_ir(model, validation, registry=context.registry, metrics=[metric],
                           batch_size=config.evaluation.batch_size, device=config.model.device)[None][metric]

    return score


def _constant_memory_loss(context: Any) -> str | None:
    """A loss declared with constant memory that trains on this data, to suggest on out-of-memory."""
    dataset_type = context.data.dataset_type
    for component in context.registry.components("loss"):
        accepts = component.info.accepts
        if component.info.constant_memory and (accepts is None or dataset_type in accepts):
            return component.name
    return None


def _training_summary(context: Any, result: Any, seconds: float, eval_rows: Any) -> dict:
    from embedtune_core.distributed import mean_across
    from embedtune_core.training.checkpoints import TRAINING_LOG

    history = result.log_history
    eval_losses = [row["eval_loss"] for row in history if "eval_loss" in row]
    summary = {
        "steps": result.global_step,
        "epochs": result.epochs,
        "loss": mean_across(result.training_loss),  # over the processes under DDP
        "final_logged_loss": next((row["loss"] for row in reversed(history) if "loss" in row), None),
        "eval_loss": eval_losses[-1] if eval_losses else None,
        "examples": len(context.training_rows),
        "eval_examples": len(eval_rows) if eval_rows is not None else None,
        "seconds": round(seconds, 2),
        "stopped_early": result.stopped_early,
        "reason": result.reason,
        "log": TRAINING_LOG,
    }
    validation = context.data.validation
    if validation is not None:
        metric = headline_metric(context.config, "ir")
        key = f"eval_validation_{metric}"
        scores = [{"step": row.get("step"), "epoch": row.get("epoch"), metric: row[key]} for row in history if key in row]
        best = max(scores, key=lambda row: row[metric], default=None)  # the checkpoint the Trainer kept
        summary["validation"] = {"metric": metric, "queries": len(validation.queries), "corpus": len(validation.corpus),
                                 "scores": scores, "best_step": best["step"] if best else None,
                                 "best": best[metric] if best else None}
    return summary


@hookimpl
def register_pipeline_steps(register):
    register("mine", Mine, needs=("data",), provides=(MINED_ROWS,), before=(TRAINED_MODEL,),
             uses=("training-rows", "mining"), encodes=True, skip_unless="mining.miner", default=10)
    register("evaluate-before", EvaluateBefore, needs=("data",), provides=(BASELINE_EVALUATION,),
             before=(TRAINED_MODEL,), uses=("held-out", "retention"), encodes=True, default=20)
    register("train", Train, needs=("data",), provides=(TRAINED_MODEL,), uses=("training-rows", "training"),
             shares_work=False, default=30)
    register("evaluate-after", EvaluateAfter, needs=("data",), provides=(EVALUATION,),
             uses=("held-out", "retention"), encodes=True, default=40)
