"""Training faults: a NaN or infinite loss, out of memory, and a non-memory error."""

import math

import pytest
import torch

from embedtune_core.config.schema import TrainingConfig
from embedtune_core.errors import TrainingError
from embedtune_core.training.checkpoints import checkpoints, newest_checkpoint
from embedtune_core.training.losses import build_loss
from embedtune_core.training.trainer import train
from training_samples import dataset, setup


@pytest.fixture
def model(tiny_model):
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    return SentenceTransformer(tiny_model, device="cpu")


class Faulty(torch.nn.Module):
    """Wraps a loss; on the ``at``-th training forward it returns ``value`` times the loss, or raises ``error``."""

    def __init__(self, base, at, value=None, error=None):
        super().__init__()
        self.base = base
        self.model = base.model
        self.at = at
        self.value = value
        self.error = error
        self.calls = 0

    def forward(self, features, labels):
        loss = self.base(features, labels)
        if torch.is_grad_enabled():
            self.calls += 1
            if self.calls == self.at:
                if self.error is not None:
                    raise self.error
                return loss * self.value
        return loss


def large_batch(registry, training):
    """The setup the pipeline gives MNRL: a constant-memory loss to suggest when memory runs out."""
    import attrs

    return attrs.evolve(setup(registry, training), large_batch_loss="cached-mnrl")


def config(**overrides):
    values = dict(max_steps=10, batch_size=4, learning_rate=1e-3, warmup_ratio=0.0, logging_steps=1, save_steps=2,
                  save_total_limit=5)
    values.update(overrides)
    return TrainingConfig(**values)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(registry, model, tmp_path, bad):
    from sentence_transformers import SentenceTransformer

    loss = Faulty(build_loss(registry, "mnrl", model, {}), at=5, value=bad)
    with pytest.raises(TrainingError) as info:
        train(model, dataset("pairs"), loss, setup(registry, config()), tmp_path / "run", quiet=True)
    message = info.value.format()
    assert f"became {bad}" in message and "step 5" in message and "checkpoint-4" in message
    assert "learning_rate" in message and "--resume" in message
    assert [p.name for p in checkpoints(tmp_path / "run")] == ["checkpoint-2", "checkpoint-4"]
    assert not (tmp_path / "run" / "checkpoints" / "checkpoint-5").exists()
    # the bad step changed nothing: the weights in memory are those of the last good checkpoint
    saved = SentenceTransformer(str(newest_checkpoint(tmp_path / "run")), device="cpu").state_dict()
    for key, value in model.state_dict().items():
        assert torch.isfinite(value).all(), key
        assert torch.equal(value, saved[key]), key


def test_nan_on_a_checkpoint_step_writes_no_checkpoint(registry, model, tmp_path):
    loss = Faulty(build_loss(registry, "mnrl", model, {}), at=4, value=math.nan)
    with pytest.raises(TrainingError, match="step 4"):
        train(model, dataset("pairs"), loss, setup(registry, config()), tmp_path / "run", quiet=True)
    assert [p.name for p in checkpoints(tmp_path / "run")] == ["checkpoint-2"]


def test_nan_with_gradient_accumulation(registry, model, tmp_path):
    loss = Faulty(build_loss(registry, "mnrl", model, {}), at=3, value=math.nan)
    with pytest.raises(TrainingError, match="step 2"):  # the 3rd forward belongs to the 2nd step
        train(model, dataset("pairs", repeat=2), loss, setup(registry, config(gradient_accumulation_steps=2, batch_size=2)),
              tmp_path / "run", quiet=True)
    assert checkpoints(tmp_path / "run") == []


def test_nan_guard_registered_by_name_is_the_one_used(registry, model, tmp_path):
    loss = Faulty(build_loss(registry, "mnrl", model, {}), at=3, value=math.nan)
    guard = registry.create("callback", "nan-guard")
    log = registry.create("callback", "metrics-log", context={"run_dir": tmp_path / "run"})
    with pytest.raises(TrainingError, match="step 3"):
        train(model, dataset("pairs"), loss, setup(registry, config(), callbacks=[guard, log]), tmp_path / "run",
              quiet=True)
    assert guard.bad_step == 3


@pytest.mark.parametrize(
    "error,where",
    [
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), "GPU memory"),
        (RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB"), "GPU memory"),
        (RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory"), "CPU memory"),
        (MemoryError(), "CPU memory"),
    ],
)
def test_out_of_memory_suggests_a_smaller_batch_or_cached_mnrl(registry, model, tmp_path, error, where):
    loss = Faulty(build_loss(registry, "mnrl", model, {}), at=3, error=error)
    with pytest.raises(TrainingError) as info:
        train(model, dataset("pairs"), loss, large_batch(registry, config(batch_size=4)), tmp_path / "run", quiet=True)
    message = info.value.format()
    assert f"out of {where} at step 3" in message
    assert "step 3" in message and "batch size 4" in message
    assert "training.batch_size=2" in message and "cached-mnrl" in message
    assert info.value.__cause__ is None and info.value.exit_code == 2


def test_out_of_memory_with_cached_mnrl_suggests_a_smaller_mini_batch(registry, model, tmp_path):
    base = build_loss(registry, "cached-mnrl", model, {"mini_batch_size": 2})
    loss = Faulty(base, at=2, error=torch.OutOfMemoryError("CUDA out of memory"))
    loss.loss = base  # looks like a wrapper around cached-mnrl
    with pytest.raises(TrainingError) as info:
        train(model, dataset("pairs"), loss, setup(registry, config(), "cached-mnrl"), tmp_path / "run", quiet=True)
    assert "mini_batch_size" in info.value.format()


def test_other_errors_are_not_disguised(registry, model, tmp_path):
    loss = Faulty(build_loss(registry, "mnrl", model, {}), at=2, error=RuntimeError("shape mismatch"))
    with pytest.raises(RuntimeError, match="shape mismatch"):
        train(model, dataset("pairs"), loss, setup(registry, config()), tmp_path / "run", quiet=True)
