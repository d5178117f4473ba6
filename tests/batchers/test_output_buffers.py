"""get() recycles its output buffers, but never under data the caller still holds."""

from __future__ import annotations

import functools
import gc
import importlib.util
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from rlstructures.agents import Agent, GymVecEnv
from rlstructures.batchers import Batcher, LocalBatcher
from rlstructures.batchers.testing import CountingAgent, CountingEnv
from rlstructures.dicttensor import DictTensor, TemporalDictTensor, Trajectories
from tests.batchers.conftest import BATCHERS, REFERENCE, BatcherKind

pytestmark = pytest.mark.timeout(120)

HAS_TORCH = importlib.util.find_spec("torch") is not None
SEEDS = [0, 100]
AGENT_SEEDS = [5, 6]
T = 12


def make_env(seed: int, n_envs: int = 3) -> GymVecEnv:
    return GymVecEnv("CartPole-v1", n_envs, seed, auto_reset=True)


class NoisyAgent(Agent):
    """Seeded random actions, a step counter state (stored) and a float output."""

    def __init__(self) -> None:
        self.rng = np.random.default_rng()

    def seed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def initial_state(self, agent_info: DictTensor, batch_size: int) -> DictTensor:
        return DictTensor({"count": np.zeros(batch_size, np.int64)}, batch_shape=(batch_size,))

    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        n = len(observation)
        state = self.reset_where_initial(state, self.initial_state(agent_info, n), observation)
        out = {"action": self.rng.integers(0, 2, n), "u": self.rng.random(n, np.float32)}
        return DictTensor(out), DictTensor({"count": state["count"] + 1})


def batcher(cls: BatcherKind) -> Batcher:
    b: Batcher = cls(
        NoisyAgent,
        make_env,
        n_timesteps=T,
        seeds=SEEDS,
        agent_seeds=AGENT_SEEDS,
        store_agent_state=True,
    )
    b.reset()
    return b


def collect(b: Batcher) -> Trajectories:
    """execute() then get() (auto-reset: every env always runs); nothing else keeps it."""
    b.execute()
    tr, n = b.get()
    assert n == b.n_envs
    return tr


REF_N = 12


@functools.cache
def reference(kind: BatcherKind) -> tuple[Trajectories, ...]:
    """The first REF_N results with the same seeds, each cloned at once: REFERENCE's for
    batchers with an agent copy per worker, else ``kind``'s own (one agent seeded once
    draws other random actions than one copy per worker)."""
    with batcher(REFERENCE if kind.agent_per_worker else kind) as b:
        return tuple(collect(b).clone() for _ in range(REF_N))


def owns_its_memory(copy: Trajectories, original: Trajectories) -> bool:
    pairs = [
        *((copy.info[k], original.info[k]) for k in original.info.keys()),
        *((copy.trajectories[k], original.trajectories[k]) for k in original.trajectories.keys()),
    ]
    return not any(np.shares_memory(a, b) for a, b in pairs)


def cycle(b: Batcher, n: int, first: int, kind: BatcherKind) -> None:
    """n more results (the first is result number ``first``), each checked then dropped."""
    for i in range(first, first + n):
        tr = collect(b)
        assert tr.equal(reference(kind)[i]), i
        del tr


# ---------------------------------------------------------------------- held data
@pytest.mark.parametrize("cls", BATCHERS)
def test_held_trajectories_torch_views_and_numpy_views_never_change(cls: BatcherKind) -> None:
    with batcher(cls) as b:
        t1 = collect(b)
        snapshot = t1.clone()
        assert owns_its_memory(snapshot, t1)
        leaf_view = t1.trajectories["observation/frame"][1:, ::2, 2]
        view_snapshot = leaf_view.copy()
        tensors: dict[str, Any] = {}
        if HAS_TORCH:
            t1_torch = t1.torch()
            tensors = {k: v.clone() for k, v in t1_torch.trajectories.items()}
        cycle(b, 5, first=1, kind=cls)
        assert t1.equal(snapshot)
        np.testing.assert_array_equal(leaf_view, view_snapshot)
        if HAS_TORCH:
            import torch

            for k, v in tensors.items():
                assert torch.equal(t1_torch.trajectories[k], v), k
        assert t1.equal(reference(cls)[0])


@pytest.mark.parametrize("cls", BATCHERS)
def test_a_numpy_view_alone_keeps_its_data(cls: BatcherKind) -> None:
    with batcher(cls) as b:
        t1 = collect(b)
        view = t1.trajectories["_observation/frame"][:, 3:7]
        expected = view.copy()
        del t1
        gc.collect()
        cycle(b, 5, first=1, kind=cls)
        np.testing.assert_array_equal(view, expected)


@pytest.mark.parametrize("cls", BATCHERS)
def test_a_torch_tensor_alone_keeps_its_data(cls: BatcherKind) -> None:
    torch = pytest.importorskip("torch")
    with batcher(cls) as b:
        t1 = collect(b)
        tensor = t1.torch().trajectories["action/u"]
        state = t1.torch().info["agent_state/count"][1:]
        expected, expected_state = tensor.clone(), state.clone()
        del t1
        gc.collect()
        cycle(b, 5, first=1, kind=cls)
        assert torch.equal(tensor, expected)
        assert torch.equal(state, expected_state)


@pytest.mark.parametrize("cls", BATCHERS)
def test_info_lengths_a_row_and_an_arrow_batch_alone_keep_their_data(cls: BatcherKind) -> None:
    with batcher(cls) as b:
        t1 = collect(b)
        info = t1.info
        lengths = t1.lengths
        row = t1[2]  # a Trajectories of one sequence: views
        expected_info, expected_row = info.clone(), row.clone()
        arrow = None
        if importlib.util.find_spec("pyarrow") is not None:
            arrow = t1.info.to_arrow()
            expected_arrow = arrow.to_pydict()
        del t1
        gc.collect()
        cycle(b, 5, first=1, kind=cls)
        assert info.equal(expected_info)
        np.testing.assert_array_equal(lengths, T)
        assert row.equal(expected_row)
        if arrow is not None:
            assert arrow.to_pydict() == expected_arrow


@pytest.mark.parametrize("cls", BATCHERS)
def test_many_held_results_all_stay_intact(cls: BatcherKind) -> None:
    """More held results than the pool keeps: none is ever reused."""
    with batcher(cls) as b:
        held = [collect(b) for _ in range(6)]
        for i, tr in enumerate(held):
            assert tr.equal(reference(cls)[i])
        for i in range(1, 6):
            for k in held[0].trajectories.keys():
                assert not np.shares_memory(held[0].trajectories[k], held[i].trajectories[k])


# ---------------------------------------------------------------------- recycling
@pytest.mark.parametrize("cls", BATCHERS)
def test_results_stay_correct_whatever_the_caller_holds_or_drops(cls: BatcherKind) -> None:
    """Results held for different spans and dropped in between, against the reference."""
    n = REF_N
    expected = reference(cls)
    held: dict[int, Any] = {}
    # index of a result -> the index of the result after which it is dropped (None: never)
    drop_after = {0: None, 1: 1, 2: 5, 3: 3, 4: 4, 5: 8, 6: 6, 7: 7, 8: 11, 9: 9, 10: 10}
    with batcher(cls) as b:
        for i in range(n):
            tr = collect(b)
            assert tr.equal(expected[i]), i
            if i == 4:  # a torch view or a numpy view instead of the Trajectories
                held[i] = tr.torch().trajectories["observation/frame"] if HAS_TORCH else (
                    tr.trajectories["observation/frame"]
                )
            else:
                held[i] = tr
            del tr
            for j, last in drop_after.items():
                if last == i:
                    del held[j]
            gc.collect()
            for j, value in held.items():
                if isinstance(value, Trajectories):
                    assert value.equal(expected[j]), (i, j)
                else:
                    np.testing.assert_array_equal(
                        np.asarray(value), expected[j].trajectories["observation/frame"]
                    )
    assert held[0].equal(expected[0])


@pytest.mark.parametrize("cls", BATCHERS)
def test_dropped_buffers_are_reused(cls: BatcherKind) -> None:
    """Once nothing refers to a result, a later get() writes into its memory again."""
    with batcher(cls) as b:
        first = collect(b)
        base = first.trajectories["observation/frame"].base
        assert isinstance(base, np.ndarray)
        memory = weakref.ref(base)
        del first, base
        gc.collect()
        seen = []
        for _ in range(3):
            tr = collect(b)
            seen.append(tr.trajectories["observation/frame"].base is memory())
            del tr
        assert memory() is not None  # still in the pool
        assert any(seen)


def counting_results(b: Batcher, n: int) -> list[Trajectories]:
    """Episode mode: reset whenever every env ended; each result cloned at once."""
    out: list[Trajectories] = []
    b.reset()
    while len(out) < n:
        if b.n_running == 0:
            b.reset()
        b.execute()
        tr, _ = b.get()
        out.append(tr.clone())
        del tr
    return out


@pytest.mark.parametrize("cls", BATCHERS)
def test_padding_is_zero_in_recycled_buffers(cls: BatcherKind) -> None:
    """Episode mode: steps past the lengths are zeros, also in a buffer that held data."""
    env: Callable[[int], Any] = functools.partial(CountingEnv, n_envs=3)
    with LocalBatcher(CountingAgent, env, n_timesteps=4, seeds=[0, 5]) as ref:
        expected = counting_results(ref, 8)
    with cls(CountingAgent, env, n_timesteps=4, seeds=[0, 5]) as b:
        got = counting_results(b, 8)
    assert any((tr.lengths < 4).any() for tr in got)
    for a, c in zip(got, expected, strict=True):
        assert a.equal(c)
        padding = ~a.trajectories.mask()
        for k in a.trajectories.keys():
            assert not a.trajectories[k][padding].any(), k
