"""The several-process helpers as values: which rows each process takes, the order rows are
gathered in, what is broadcast and averaged. torch.distributed is replaced by a stand-in that
plays the other processes, so each test asserts what one process computes and receives (the
two-process runs in ``test_distributed.py`` check that the real collectives agree)."""

import types

import numpy as np
import pytest
import torch

from embedtune_core import distributed


@pytest.fixture
def processes(monkeypatch):
    """``set(world, rank)`` makes this process ``rank`` of ``world``; the returned stand-in
    answers the collectives with what ``others[r]`` (rank r's value) would send."""
    state = types.SimpleNamespace(others={}, calls=[])

    def set_world(world, rank):
        monkeypatch.setenv("WORLD_SIZE", str(world))
        monkeypatch.setenv("RANK", str(rank))
        state.world, state.rank = world, rank
        return state

    # gloo collects on the CPU whatever device accelerate would pick (a GPU here: never used)
    monkeypatch.setattr(distributed, "process_group",
                        lambda: types.SimpleNamespace(backend="gloo", device=torch.device("cuda")))

    def all_gather(outputs, tensor):
        state.calls.append(("all_gather", tensor.clone()))
        sizes_call = len([c for c in state.calls if c[0] == "all_gather"]) % 2 == 1
        for r, out in enumerate(outputs):
            if r == state.rank:
                out.copy_(tensor)
            elif sizes_call:
                out.copy_(torch.tensor([len(state.others[r])]))
            else:
                out.fill_(-7)  # padding the receiver must cut off
                part = torch.as_tensor(state.others[r])
                out[: len(part)] = part

    def all_reduce(tensor):
        state.calls.append(("all_reduce", tensor.clone()))
        for r in range(state.world):
            if r != state.rank:
                value = state.others[r]
                tensor += torch.tensor([0.0 if value is None else value, 0.0 if value is None else 1.0],
                                       dtype=tensor.dtype)

    def broadcast_object_list(box, src, device=None):
        state.calls.append(("broadcast", src))
        if state.rank != src:
            box[0] = state.others[src]

    monkeypatch.setattr(torch.distributed, "all_gather", all_gather)
    monkeypatch.setattr(torch.distributed, "all_reduce", all_reduce)
    monkeypatch.setattr(torch.distributed, "broadcast_object_list", broadcast_object_list)
    monkeypatch.setattr(torch.distributed, "barrier", lambda: state.calls.append(("barrier",)))
    return set_world


@pytest.mark.parametrize("world, n, expected", [
    (1, 7, [(0, 7)]),
    (3, 10, [(0, 4), (4, 7), (7, 10)]),  # the first n % world processes take one more
    (4, 10, [(0, 3), (3, 6), (6, 8), (8, 10)]),
    (4, 2, [(0, 1), (1, 2), (2, 2), (2, 2)]),  # more processes than rows: the last ones take none
    (2, 0, [(0, 0), (0, 0)]),
])
def test_shard_is_contiguous_in_rank_order(monkeypatch, world, n, expected):
    monkeypatch.setenv("WORLD_SIZE", str(world))
    got = []
    for rank in range(world):
        monkeypatch.setenv("RANK", str(rank))
        got.append(distributed.shard(n))
    assert got == expected


def test_rank_and_world_size_default_to_one_process(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert (distributed.rank(), distributed.world_size(), distributed.is_main_process()) == (0, 1, True)
    monkeypatch.setenv("RANK", "")
    monkeypatch.setenv("WORLD_SIZE", "")
    assert (distributed.rank(), distributed.world_size()) == (0, 1)
    monkeypatch.setenv("RANK", "2")
    assert not distributed.is_main_process()
    assert distributed.process_group() is None


@pytest.mark.parametrize("world", [2, 3])
def test_a_world_of_several_shares_accelerates_process_state(monkeypatch, world):
    """From two processes on, the group is accelerate's ``PartialState`` (the Trainer's)."""
    import accelerate

    class State:
        pass

    monkeypatch.setattr(accelerate, "PartialState", State)
    monkeypatch.setenv("WORLD_SIZE", str(world))
    assert isinstance(distributed.process_group(), State)


def test_gather_rows_concatenates_every_process_in_rank_order_without_padding(processes):
    state = processes(3, 1)
    state.others = {0: np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), 2: np.array([[9.0, 9.5]])}
    mine = np.array([[7.0, 8.0]], dtype=np.float64)
    out = distributed.gather_rows(mine)
    assert out.tolist() == [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0], [9.0, 9.5]]
    assert out.dtype == np.float64
    sizes, padded = state.calls[0][1], state.calls[1][1]
    assert sizes.tolist() == [1] and padded.shape == (3, 2)  # padded to the largest part
    assert padded[:1].tolist() == [[7.0, 8.0]] and padded[1:].tolist() == [[0.0, 0.0]] * 2


def test_gather_rows_of_an_empty_part_and_of_integers(processes):
    state = processes(2, 0)
    state.others = {1: np.array([[4, 5, 6]], dtype=np.int64)}
    out = distributed.gather_rows(np.zeros((0, 3), dtype=np.int64))
    assert out.tolist() == [[4, 5, 6]] and out.dtype == np.int64


def test_broadcast_mean_and_barrier(processes):
    state = processes(2, 1)
    state.others = {0: {"from": "main"}}
    assert distributed.broadcast({"from": "me"}) == {"from": "main"}
    assert ("broadcast", 0) in state.calls
    state.others = {0: 3.0}
    assert distributed.mean_across(1.0) == pytest.approx(2.0)
    state.others = {0: None}
    assert distributed.mean_across(5.0) == pytest.approx(5.0)  # a process without a value is not counted
    assert distributed.mean_across(None) is None
    distributed.barrier()
    assert state.calls[-1] == ("barrier",)
    main = processes(2, 0)
    main.others = {}
    assert distributed.broadcast("kept") == "kept"


def test_one_process_needs_no_collective(processes):
    state = processes(1, 0)
    part = np.arange(6).reshape(3, 2)
    assert distributed.gather_rows(part) is part
    assert distributed.broadcast("x") == "x" and distributed.mean_across(2.5) == 2.5
    distributed.barrier()
    assert state.calls == []
    with distributed.sharing():
        assert not distributed.is_sharing()
        assert distributed.split_rows(4, lambda a, b: np.arange(a, b)).tolist() == [0, 1, 2, 3]


def test_split_rows_gathers_each_array_of_a_tuple(processes):
    state = processes(2, 1)
    state.others = {0: np.array([[0], [1], [2]])}
    seen = []

    def compute(start, stop):
        seen.append((start, stop))
        return np.arange(start, stop)[:, None], np.arange(start, stop)[:, None] * 10

    with distributed.sharing():
        assert distributed.is_sharing()
        first, second = distributed.split_rows(5, compute)
        with distributed.sharing():  # nested blocks keep sharing, and the outer state comes back
            assert distributed.is_sharing()
        assert distributed.is_sharing()
    assert not distributed.is_sharing()
    assert seen == [(3, 5)]
    assert first[:, 0].tolist() == [0, 1, 2, 3, 4]
    # the stand-in sends rank 0's rows for both arrays: this process's own come last, times 10
    assert second[:, 0].tolist() == [0, 1, 2, 30, 40]


def test_collectives_use_the_gpu_under_nccl_and_the_cpu_under_gloo(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    meta = torch.device("meta")
    monkeypatch.setattr(distributed, "process_group", lambda: types.SimpleNamespace(backend="nccl", device=meta))
    assert distributed._device() == meta
    monkeypatch.setattr(distributed, "process_group", lambda: types.SimpleNamespace(backend="gloo", device=meta))
    assert distributed._device() == torch.device("cpu")
    monkeypatch.setattr(distributed, "process_group", lambda: types.SimpleNamespace(device=meta))
    monkeypatch.setattr(torch.distributed, "get_backend", lambda: "nccl")
    assert distributed._device() == meta  # the backend asked of torch when accelerate does not say


def test_a_process_without_a_value_adds_nothing_to_the_mean(processes):
    state = processes(2, 1)
    state.others = {0: 3.0}
    assert distributed.mean_across(None) == pytest.approx(3.0)
