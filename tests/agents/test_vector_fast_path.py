"""GymVectorVecEnv.step_into's fast path (one frame, NEXT_STEP reset steps) vs the general code.

Two adapters over identical seeded vector envs, one with the fast path switched off
(``_frame_fast``, private: what these tests are about), receive the same actions and write
into arrays pre-filled with the same noise: every array, every returned id and every
``reset_step_ids`` must be equal at every step, also when the action or the vector env's
results are unusual (the fast path hands those to the general code), and errors too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt
import pytest
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from hypothesis import given, settings
from hypothesis import strategies as st

from rlstructures.agents import GymVectorVecEnv
from rlstructures.agents.errors import ActionError, ObservationError
from rlstructures.dicttensor import DictTensor
from tests.agents.vector_helpers import sync_walk

#: How a wrapper changes what the vector env returns (the types users' envs return).
RESULTS = ("plain", "torch_obs", "list_obs", "float64", "int_flags", "float_flags", "generator",
           "generator_list_rewards")


class Unusual(gym.vector.VectorWrapper):
    """Returns the wrapped env's step results as other (valid) types."""

    def __init__(self, env: Any, how: str) -> None:
        super().__init__(env)
        self.how = how

    def step(self, actions: Any) -> Any:
        obs, rew, term, trunc, info = self.env.step(actions)
        if self.how == "torch_obs":
            obs = torch.from_numpy(obs.copy())
        elif self.how == "list_obs":
            obs = obs.tolist()
        elif self.how == "float64":
            obs, rew = obs.astype(np.float64), rew.astype(np.float64)
        elif self.how == "int_flags":
            term, trunc = term.astype(np.int8), trunc.astype(np.int64)
        elif self.how == "float_flags":
            term, trunc = term.astype(np.float32), trunc.astype(np.float64)
        elif self.how == "generator":  # an iterable read once, not a tuple
            return (x for x in (obs, rew, term, trunc, info))
        elif self.how == "generator_list_rewards":  # read once, then the general checks
            return (x for x in (obs, rew.tolist(), term, trunc, info))
        return obs, rew, term, trunc, info


def pair(seed: int, n_envs: int, how: str) -> tuple[GymVectorVecEnv, GymVectorVecEnv]:
    envs = []
    for fast in (True, False):
        venv = Unusual(sync_walk(n_envs, AutoresetMode.NEXT_STEP), how)
        env = GymVectorVecEnv(venv, seed, auto_reset=True, partial_reset="none")
        assert env._frame_fast  # the case under test
        env._frame_fast = fast
        envs.append(env)
    return envs[0], envs[1]


def both_paths(
    make_venv: Callable[[], Any],
) -> Iterator[tuple[GymVectorVecEnv, dict[str, npt.NDArray[Any]], dict[str, npt.NDArray[Any]]]]:
    """``(env, out, final)`` after a reset, with the fast path on, then off."""
    for fast in (True, False):
        with GymVectorVecEnv(make_venv(), 0, auto_reset=True, partial_reset="none") as env:
            assert env._frame_fast  # the case under test
            env._frame_fast = fast
            obs, _ = env.reset()
            yield env, obs.clone().to_dict(), obs.clone().to_dict()


def noise(obs: DictTensor, rng: np.random.Generator) -> dict[str, npt.NDArray[Any]]:
    """Arrays like ``obs``'s leaves, filled with random values (untouched rows must stay)."""
    out = {}
    for k, v in obs.items():
        raw = rng.integers(0, 256, v.nbytes, dtype=np.uint8)
        out[k] = raw.view(v.dtype).reshape(v.shape).copy()
        if v.dtype == np.bool_:
            out[k] = (raw & 1).astype(np.bool_).reshape(v.shape)
        elif v.dtype.kind == "f":
            out[k] = rng.normal(size=v.shape).astype(v.dtype)
    return out


def action_of(values: npt.NDArray[np.int64], kind: str) -> DictTensor:
    if kind == "torch":
        return DictTensor({"action": torch.from_numpy(values)})
    if kind == "int32":
        return DictTensor({"action": values.astype(np.int32)})
    if kind == "strided":  # every other element of a wider array
        wide = np.zeros(2 * len(values), np.int64)
        wide[::2] = values
        return DictTensor({"action": wide[::2]})
    if kind == "extra_key":
        return DictTensor({"action": values, "logits": np.zeros((len(values), 3), np.float32)})
    return DictTensor({"action": values})


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_envs=st.integers(1, 6),
    how=st.sampled_from(RESULTS),
    kinds=st.lists(
        st.sampled_from(("numpy", "torch", "int32", "strided", "extra_key")), min_size=30,
        max_size=30,
    ),
)
def test_fast_path_writes_what_the_general_code_writes(
    seed: int, n_envs: int, how: str, kinds: list[str]
) -> None:
    compare(seed, n_envs, how, kinds)


@pytest.mark.parametrize("how", RESULTS)
def test_each_kind_of_result_gives_the_same_writes(how: str) -> None:
    compare(3, 4, how, ["numpy", "torch", "int32", "strided", "extra_key"] * 6)


def compare(seed: int, n_envs: int, how: str, kinds: list[str]) -> None:
    """Step both adapters with the same actions; every write must be the same."""
    fast, general = pair(seed, n_envs, how)
    rng = np.random.default_rng(seed)
    with fast, general:
        obs, _ = fast.reset()
        obs_g, _ = general.reset()
        assert obs.equal(obs_g)
        arrays = [noise(obs, rng), noise(obs, rng)]
        fast_arrays = [{k: v.copy() for k, v in a.items()} for a in arrays]
        ends = reset_steps = 0
        for kind in kinds:
            values = rng.integers(0, 3, n_envs)
            ended = fast.step_into(action_of(values, kind), *fast_arrays)
            expected = general.step_into(action_of(values, kind), *arrays)
            assert ended.tolist() == expected.tolist()
            assert ended.dtype == expected.dtype == np.int64
            assert fast.reset_step_ids.tolist() == general.reset_step_ids.tolist()
            for mine, theirs in zip(fast_arrays, arrays, strict=True):
                for k in theirs:
                    assert mine[k].dtype == theirs[k].dtype
                    np.testing.assert_array_equal(mine[k], theirs[k], err_msg=k)
            ends += len(ended)
            reset_steps += len(fast.reset_step_ids)
    assert ends  # episodes ended within 30 steps (time limit 7)
    assert reset_steps


@pytest.mark.parametrize(
    ("action", "match"),
    [
        (np.array([0, 3, 1]), "is outside the discrete action space"),
        (np.array([0, -1, 1]), "is outside the discrete action space"),
        (np.array([0.0, 1.0, 2.0]), "dtype float64"),
        (np.zeros((3, 1), np.int64), r"shape \(3, 1\)"),
        (np.zeros(2, np.int64), r"batch_shape|shape"),
    ],
)
def test_fast_path_raises_what_the_general_code_raises(
    action: npt.NDArray[Any], match: str
) -> None:
    messages = []
    for env, out, final in both_paths(lambda: sync_walk(3, AutoresetMode.NEXT_STEP)):
        with pytest.raises(ActionError, match=match) as info:
            env.step_into(DictTensor({"action": action}), out, final)
        messages.append(str(info.value))
    assert messages[0] == messages[1]


def test_fast_path_refuses_wrong_results_like_the_general_code() -> None:
    """A result of the wrong shape reaches the general checks (not a numpy broadcast)."""

    class Short(gym.vector.VectorWrapper):
        def step(self, actions: Any) -> Any:
            obs, rew, term, trunc, info = self.env.step(actions)
            return obs, rew[:1], term, trunc, info

    for env, out, final in both_paths(lambda: Short(sync_walk(3, AutoresetMode.NEXT_STEP))):
        with pytest.raises(ObservationError, match=r"rewards of shape \(1,\), expected"):
            env.step_into(DictTensor({"action": np.zeros(3, np.int64)}), out, final)


def test_which_envs_take_the_fast_path() -> None:
    """Only one frame leaf, no info keys, NEXT_STEP reset steps, a Discrete action from 0."""
    cartpole = GymVectorVecEnv.from_id(
        "CartPole-v1", 4, 0, auto_reset=True, vectorization_mode="vector_entry_point"
    )
    with cartpole:
        assert cartpole._frame_fast
    partial = GymVectorVecEnv(sync_walk(2, AutoresetMode.NEXT_STEP), 0, auto_reset=True)
    same = GymVectorVecEnv(sync_walk(2, AutoresetMode.SAME_STEP), 0, auto_reset=True)
    boxed = GymVectorVecEnv(
        sync_walk(2, AutoresetMode.NEXT_STEP, "box"), 0, auto_reset=True, partial_reset="none"
    )
    with_info = GymVectorVecEnv(
        sync_walk(2, AutoresetMode.NEXT_STEP), 0, True, partial_reset="none", info_keys=("t",)
    )
    for env in (partial, same, boxed, with_info):
        with env:
            assert not env._frame_fast, env


def test_discrete_with_a_start_is_checked_by_the_general_code() -> None:
    class Shifted(gym.vector.VectorWrapper):
        def __init__(self, env: Any) -> None:
            super().__init__(env)
            self.single_action_space = spaces.Discrete(3, start=1)

        def step(self, actions: Any) -> Any:
            return self.env.step(np.asarray(actions) - 1)

    venv = Shifted(sync_walk(2, AutoresetMode.NEXT_STEP))
    with GymVectorVecEnv(venv, 0, auto_reset=True, partial_reset="none") as env:
        assert not env._frame_fast
        obs, _ = env.reset()
        out, final = obs.clone().to_dict(), obs.clone().to_dict()
        env.step_into(DictTensor({"action": np.array([1, 3])}), out, final)
        with pytest.raises(ActionError):
            env.step_into(DictTensor({"action": np.array([0, 1])}), out, final)


def test_integer_actions_are_checked_before_the_cast_to_the_space_dtype() -> None:
    """300 in an int8 Discrete(100) space is out of it, not 300 - 256 = 44 (both paths)."""

    class Int8Actions(gym.vector.VectorWrapper):
        def __init__(self, env: Any) -> None:
            super().__init__(env)
            self.single_action_space = spaces.Discrete(3, dtype=np.int8)

    for env, out, final in both_paths(lambda: Int8Actions(sync_walk(3, AutoresetMode.NEXT_STEP))):
        for wraps in (np.array([0, 257, 1]), np.array([0, -255, 1])):  # 1 in int8
            with pytest.raises(ActionError, match="outside the discrete action space"):
                env.step_into(DictTensor({"action": wraps}), out, final)
        env.step_into(DictTensor({"action": np.array([0, 2, 1])}), out, final)
        assert out["last_action"].tolist() == [0, 2, 1]
        assert out["last_action"].dtype == np.int8
