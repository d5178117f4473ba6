"""GymVectorVecEnv through the batchers: the same trajectories as GymVecEnv, every mode.

The reference is GymVecEnv over the same per-env gymnasium envs, seeded alike (env k with
seed + k, as SyncVectorEnv seeds its sub-env k). A NEXT_STEP vector env without partial
resets spends a step on each reset: the batchers drop that row, so its sequences are the
reference's, arriving a little later; they are compared on what both collected.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlstructures.agents import Agent, GymVectorVecEnv
from rlstructures.batchers import Batcher, LocalBatcher, MultiProcessBatcher
from rlstructures.dicttensor import DictTensor, TemporalDictTensor, Trajectories
from tests.agents.vector_helpers import (
    ACTION_KINDS,
    RESTARTS,
    ActionKind,
    WalkAgent,
    per_env_walk,
    sequences,
    vector_walk,
)
from tests.batchers.conftest import OTHERS, REFERENCE, BatcherKind

pytestmark = pytest.mark.timeout(300)


def collect(batcher: Batcher, slices: int) -> list[Trajectories]:
    batcher.reset()
    out = []
    for _ in range(slices):
        if not batcher.n_running:
            break
        batcher.execute()
        trajectories, _ = batcher.get()
        out.append(trajectories)
    return out


def assert_same_sequences(
    ours: list[Trajectories], reference: list[Trajectories], *, shorter: bool
) -> int:
    """Every env's concatenated steps agree on their common prefix; returns its total size."""
    compared = 0
    for mine, ref in zip(sequences(ours), sequences(reference), strict=True):
        assert mine.keys() == ref.keys()
        n_mine, n_ref = len(mine["observation/reward"]), len(ref["observation/reward"])
        assert n_mine <= n_ref if shorter else n_mine == n_ref
        for key in ref:
            np.testing.assert_array_equal(mine[key], ref[key][:n_mine], err_msg=key)
        compared += n_mine
    return compared


@settings(max_examples=30)
@given(
    restart=st.sampled_from(sorted(RESTARTS)),
    auto_reset=st.booleans(),
    action_kind=st.sampled_from(ACTION_KINDS),
    dict_obs=st.booleans(),
    info=st.booleans(),
    n_envs=st.integers(1, 4),
    n_timesteps=st.integers(1, 9),
    seed=st.integers(0, 10_000),
)
def test_local_batcher_matches_gym_vec_env(
    restart: str,
    auto_reset: bool,
    action_kind: ActionKind,
    dict_obs: bool,
    info: bool,
    n_envs: int,
    n_timesteps: int,
    seed: int,
) -> None:
    kinds: dict[str, Any] = {"n_envs": n_envs, "auto_reset": auto_reset, "dict_obs": dict_obs}
    kinds["action_kind"] = action_kind
    kinds["info_keys"] = ("t",) if info else ()
    agent = functools.partial(WalkAgent, action_kind)
    mine = functools.partial(vector_walk, restart=restart, **kinds)
    ref = functools.partial(per_env_walk, **kinds)
    seeds = [seed, seed + 100]
    slices = 24 // n_timesteps + 2  # past several episode ends (walks last <= 7 steps)
    with LocalBatcher(agent, mine, n_timesteps=n_timesteps, seeds=seeds) as batcher:
        ours = collect(batcher, slices)
    with LocalBatcher(agent, ref, n_timesteps=n_timesteps, seeds=seeds) as batcher:
        reference = collect(batcher, slices)
    if not auto_reset:  # episode mode: one episode per env, then every env stops
        assert len(ours) == len(reference)
    reset_steps = auto_reset and restart == "next_step+reset_steps"
    compared = assert_same_sequences(ours, reference, shorter=reset_steps)
    assert compared >= 2 * n_envs
    if auto_reset:
        ends = sum(int(s.trajectories["_observation/done"].sum()) for s in ours)
        assert ends >= 1  # the comparison went across episode ends
        for s in ours:  # no reset step stored: a fresh start follows every end
            steps = s.trajectories
            first = steps["observation/initial_state"]
            mask = steps.mask()
            assert not (first & ~mask).any()
            prev_done = steps["_observation/done"][:, :-1] & mask[:, 1:]
            assert (first[:, 1:][prev_done]).all()


def test_reset_steps_are_dropped_and_not_counted() -> None:
    """NEXT_STEP without partial resets: lengths fall short of T by the reset steps."""
    env = functools.partial(vector_walk, n_envs=3, restart="next_step+reset_steps", auto_reset=True)
    with LocalBatcher(WalkAgent, env, n_timesteps=20, seeds=[3]) as batcher:
        (slice_,) = collect(batcher, 1)
    steps = slice_.trajectories
    ends_before_last = steps["_observation/done"] & (np.arange(20) < steps.lengths[:, None] - 1)
    assert (steps.lengths < 20).all()
    # each end, except one on the slice's last valid step, costs one reset step
    assert (20 - steps.lengths >= ends_before_last.sum(1)).all()
    assert (steps.lengths.sum() + (steps.lengths < 20).sum()) <= 60 + 3
    for key in steps.keys():  # the rows past a length are zeros
        assert not steps[key][~steps.mask()].any(), key


def cartpole(seed: int, n_envs: int) -> GymVectorVecEnv:
    return GymVectorVecEnv.from_id("CartPole-v1", n_envs, seed, auto_reset=True)


class PoleAgent(Agent):
    """Actions from the digits of the frame: deterministic, and the pole falls often."""

    def initial_state(self, agent_info: DictTensor, batch_size: int) -> DictTensor:
        return DictTensor({}, batch_shape=(batch_size,))

    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        frame = observation["frame"]
        action = (np.floor(np.abs(frame[:, 1]) * 1e4) % 2).astype(np.int64)
        return DictTensor({"action": action}, batch_shape=(len(frame),)), state


@pytest.mark.parametrize("cls", OTHERS)
def test_cartpole_vector_entry_point_same_as_the_reference(cls: BatcherKind) -> None:
    """gymnasium's vectorized CartPole (NEXT_STEP, no partial resets) in two workers."""
    env = functools.partial(cartpole, n_envs=8)
    results = []
    for kind in (REFERENCE, cls):
        with kind(PoleAgent, env, n_timesteps=30, seeds=[0, 1]) as batcher:
            results.append(collect(batcher, 3))
    for local, proc in zip(*results, strict=True):
        assert local.equal(proc)
    steps = [s.trajectories for s in results[0]]
    assert sum(int(s["_observation/done"].sum()) for s in steps) > 0
    assert any((s.lengths < 30).any() for s in steps)  # reset steps dropped
    assert all(s.lengths.min() >= 30 - 30 // 8 for s in steps)


@pytest.mark.filterwarnings("ignore:.*precision lowered:UserWarning")
def test_envpool_through_multiprocess_batcher() -> None:
    """EnvPool's gymnasium API pool: a NEXT_STEP vector env with reset(env_id=...)."""
    pytest.importorskip("envpool")
    from tests.agents.vector_helpers import envpool_cartpole

    env = functools.partial(envpool_cartpole, n_envs=8)
    results = []
    for cls in (LocalBatcher, MultiProcessBatcher):
        with cls(PoleAgent, env, n_timesteps=40, seeds=[0, 1]) as batcher:
            results.append(collect(batcher, 2))
    for local, proc in zip(*results, strict=True):
        assert local.equal(proc)
        assert (local.trajectories.lengths == 40).all()  # partial resets: no reset step
    ends = sum(int(s.trajectories["_observation/done"].sum()) for s in results[0])
    assert ends > 0
