"""ReplayBuffer: ring storage, uniform sampling, n-step targets equal the returns math."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rlstructures.algos._replay_buffer import ReplayBuffer
from rlstructures.algos._returns import nstep_returns
from rlstructures.dicttensor import TemporalDictTensor


def _batch(
    n_envs: int, t: int, start: int, rng: np.random.Generator, p_done: float = 0.3
) -> TemporalDictTensor:
    """Steps whose frame is (env, global step), so a sampled row tells where it came from."""
    step = np.arange(start, start + t)[None, :].repeat(n_envs, 0)
    env = np.arange(n_envs)[:, None].repeat(t, 1)
    frame = np.stack([env, step], -1).astype(np.float32)
    terminated = rng.random((n_envs, t)) < p_done / 2
    done = terminated | (rng.random((n_envs, t)) < p_done / 2)
    return TemporalDictTensor(
        {
            "observation/frame": frame,
            "action/action": step.astype(np.int64),
            "_observation/frame": frame + np.array([0, 0.5], np.float32),
            "_observation/reward": rng.uniform(-1, 1, (n_envs, t)).astype(np.float32),
            "_observation/terminated": terminated,
            "_observation/done": done,
        }
    )


def test_one_step_rows_are_stored_transitions() -> None:
    rng = np.random.default_rng(0)
    steps = _batch(3, 5, 0, rng)
    buffer = ReplayBuffer(100, seed=1)
    buffer.add(steps)
    assert len(buffer) == 15
    assert buffer.n_envs == 3
    sample = buffer.sample(64)
    env = sample["observation/frame"][:, 0].astype(int)
    t = sample["observation/frame"][:, 1].astype(int)
    for key in steps.keys():
        np.testing.assert_array_equal(sample[key], steps[key][env, t])
    np.testing.assert_allclose(sample["discount"], 0.99)
    assert sample["_observation/terminated"].dtype == bool


def test_the_ring_keeps_the_newest_transitions() -> None:
    rng = np.random.default_rng(0)
    buffer = ReplayBuffer(8, seed=0)  # 4 rows of 2 envs
    for start in range(0, 12, 3):
        buffer.add(_batch(2, 3, start, rng))
    assert len(buffer) == 8
    kept = set(buffer.sample(500)["observation/frame"][:, 1].astype(int).tolist())
    assert kept == {8, 9, 10, 11}


@given(
    st.integers(1, 4),
    st.integers(1, 9),
    st.integers(1, 5),
    st.integers(0, 10_000),
    st.sampled_from([0.5, 0.9, 1.0]),
    st.integers(4, 40),
)
def test_nstep_rows_equal_nstep_returns(
    n_envs: int, t: int, n: int, seed: int, gamma: float, capacity: int
) -> None:
    rng = np.random.default_rng(seed)
    batches = [_batch(n_envs, t, k * t, rng) for k in range(3)]
    buffer = ReplayBuffer(capacity, seed=seed)
    for b in batches:
        buffer.add(b)
    rows = buffer._rows  # what the ring holds: the newest rows, in time order
    full = {k: np.concatenate([b[k] for b in batches], axis=1) for k in batches[0].keys()}
    keep = slice(max(0, 3 * t - rows), 3 * t)
    value = full["_observation/frame"][..., 1] * 0.1  # V(s') of each next observation
    want = nstep_returns(
        full["_observation/reward"][:, keep].astype(np.float64),
        value[:, keep],
        full["_observation/terminated"][:, keep],
        full["_observation/done"][:, keep],
        gamma=gamma,
        n=n,
    )
    sample = buffer.sample(200, n_step=n, gamma=gamma)
    env = sample["observation/frame"][:, 0].astype(int)
    t0 = sample["observation/frame"][:, 1].astype(int) - keep.start
    v = sample["_observation/frame"][:, 1] * 0.1
    got = (
        sample["_observation/reward"] + sample["discount"] * ~sample["_observation/terminated"] * v
    )
    np.testing.assert_allclose(got, want[env, t0], rtol=1e-5, atol=1e-5)


def test_errors() -> None:
    buffer = ReplayBuffer(10)
    with pytest.raises(ValueError, match="empty"):
        buffer.sample(1)
    uneven = TemporalDictTensor(
        _batch(2, 3, 0, np.random.default_rng(0)).dict_tensor, lengths=np.array([3, 2])
    )
    with pytest.raises(ValueError, match="auto-reset"):
        buffer.add(uneven)
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(0)
