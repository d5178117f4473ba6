"""GymVecEnv on bad input: each a clear error naming what was expected and what came."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from rlstructures.agents import GymVecEnv
from rlstructures.agents.errors import (
    ActionError,
    AgentsError,
    EnvError,
    EnvInfoError,
    EnvStateError,
    ObservationError,
    UnsupportedSpaceError,
)
from rlstructures.dicttensor import DictTensor
from tests.agents.helpers import ShapeShiftEnv


def cartpole() -> Any:
    return gym.make("CartPole-v1")


@pytest.fixture
def env() -> Any:
    vec = GymVecEnv(cartpole, 3, seed=0)
    vec.reset()
    yield vec
    vec.close()


def test_action_without_the_action_key(env: GymVecEnv) -> None:
    with pytest.raises(ActionError, match=r"keys \['act'\] but no 'action' key"):
        env.step(DictTensor({"act": np.zeros(3, np.int64)}))


def test_action_of_the_wrong_batch_size(env: GymVecEnv) -> None:
    with pytest.raises(ActionError, match=r"batch_shape \(2,\), expected \(3,\)"):
        env.step(DictTensor({"action": np.zeros(2, np.int64)}))


def test_action_that_is_not_a_dict_tensor(env: GymVecEnv) -> None:
    with pytest.raises(ActionError, match="takes a DictTensor holding the key 'action', got "
                                          "ndarray"):
        env.step(np.zeros(3, np.int64))  # type: ignore[arg-type] # the point of the test


@pytest.mark.parametrize(("bad", "message"), [
    (np.array([0, 2, 1]), r"action\['action'\]\[1\] = 2 is outside the discrete action "
                          r"space: expected 0 <= action <= 1"),
    (np.array([0, -1, 1]), r"\[1\] = -1 is outside"),
    (np.array([0.0, 1.0, 1.0]), r"dtype float64, but a discrete action space needs integer"),
    (np.zeros((3, 1), np.int64), r"shape \(3, 1\), expected \(3,\)"),
])
def test_discrete_action_outside_the_space(env: GymVecEnv, bad: Any, message: str) -> None:
    with pytest.raises(ActionError, match=message):
        env.step(DictTensor({"action": bad}))
    assert isinstance(ActionError("x"), ValueError)


@pytest.mark.parametrize(("bad", "message"), [
    (np.array([[0.5], [2.5]], np.float32), r"\[1\] = \[2.5\] is outside the box action space"),
    (np.array([[np.nan], [0.0]], np.float32), r"\[0\] = \[nan\] is outside"),
    (np.zeros((2,), np.float32), r"shape \(2,\), expected \(2, 1\)"),
    (np.zeros((2, 1), np.bool_), r"dtype bool, but a box action space needs numeric"),
])
def test_box_action_outside_the_space(bad: Any, message: str) -> None:
    with GymVecEnv(lambda: gym.make("Pendulum-v1"), 2, seed=0) as env:
        env.reset()
        with pytest.raises(ActionError, match=message) as info:
            env.step(DictTensor({"action": bad}))
        if "outside" in message:
            assert "ClipAction" in str(info.value)  # says how to fix it


def test_make_env_that_does_not_return_an_env() -> None:
    with pytest.raises(EnvError, match=r"returned 42 \(int\) for env 0, which is not an "
                                       r"environment: it lacks \['reset', 'step', "):
        GymVecEnv(lambda: 42, 2, seed=0)


def test_make_env_errors() -> None:
    with pytest.raises(EnvError, match="must be a callable returning a new env"):
        GymVecEnv(cartpole(), 2, seed=0)  # an env, not a factory
    def needs_a_seed(seed: int) -> Any:
        return cartpole()

    with pytest.raises(EnvError, match="callable with no arguments"):
        GymVecEnv(needs_a_seed, 2, seed=0)  # type: ignore[arg-type] # wrong on purpose
    shared = cartpole()
    with pytest.raises(EnvError, match="same env object for env 1"):
        GymVecEnv(lambda: shared, 2, seed=0)
    with pytest.raises(EnvError, match="vector env"):
        GymVecEnv(lambda: gym.make_vec("CartPole-v1", num_envs=2), 2, seed=0)
    sizes = iter([3, 4])
    with pytest.raises(EnvError, match=r"env 1 has observation_space Box.*\(4,\).*env 0 has"):
        GymVecEnv(lambda: ShapeShiftEnv() if next(sizes) == 3 else gym.make("CartPole-v1"),
                  2, seed=0)
    with pytest.raises(ValueError, match="n_envs must be an int >= 1, got 0"):
        GymVecEnv(cartpole, 0, seed=0)
    with pytest.raises(TypeError, match="seed must be an int"):
        GymVecEnv(cartpole, 1, seed=1.5)  # type: ignore[arg-type] # wrong on purpose


def test_observation_whose_shape_changes() -> None:
    with GymVecEnv(ShapeShiftEnv, 2, seed=0) as env:
        env.reset()
        env.step(DictTensor({"action": np.zeros(2, np.int64)}))
        with pytest.raises(ObservationError, match=r"env 0 returned an observation from step\(\) "
                                                   r"whose 'frame' has shape \(4,\), but its "
                                                   r"observation space declares \(3,\)"):
            env.step(DictTensor({"action": np.zeros(2, np.int64)}))


def test_unsupported_spaces() -> None:
    class TextEnv(gym.Env[str, np.int64]):
        observation_space = gym.spaces.Text(5)
        action_space = gym.spaces.Discrete(2)

    class ClashEnv(gym.Env[dict[str, Any], np.int64]):
        observation_space = gym.spaces.Dict({"reward": gym.spaces.Discrete(2)})
        action_space = gym.spaces.Discrete(2)

    class TupleActionEnv(gym.Env[np.int64, tuple[Any, ...]]):
        observation_space = gym.spaces.Discrete(2)
        action_space = gym.spaces.Tuple((gym.spaces.Discrete(2),))

    with pytest.raises(UnsupportedSpaceError, match="is a Text; the gymnasium adapters handle Box"):
        GymVecEnv(TextEnv, 1, seed=0)
    with pytest.raises(UnsupportedSpaceError, match=r"entries \['reward'\], which clash"):
        GymVecEnv(ClashEnv, 1, seed=0)
    with pytest.raises(UnsupportedSpaceError, match=r"action space .* is a Tuple"):
        GymVecEnv(TupleActionEnv, 1, seed=0)


def test_env_info_errors(env: GymVecEnv) -> None:
    with pytest.raises(EnvInfoError, match=r"batch_shape \(2,\), expected \(3,\)"):
        env.reset(DictTensor({"task": np.zeros(2)}))
    with pytest.raises(EnvInfoError, match="must be a DictTensor"):
        env.reset({"task": np.zeros(3)})  # type: ignore[arg-type] # wrong on purpose
    # no keys: nothing to pass, whatever the batch shape (0.2 code passes DictTensor({}))
    obs, ids = env.reset(DictTensor({}))
    assert len(obs) == 3
    np.testing.assert_array_equal(ids, [0, 1, 2])


def test_state_errors() -> None:
    env = GymVecEnv(cartpole, 2, seed=0)
    with pytest.raises(EnvStateError, match=r"step\(\) was called before reset\(\)"):
        env.step(DictTensor({"action": np.zeros(2, np.int64)}))
    env.close()
    env.close()  # idempotent
    with pytest.raises(EnvStateError, match="closed"):
        env.reset()
    assert issubclass(EnvStateError, RuntimeError)


def test_env_exception_names_the_env() -> None:
    class Exploding(gym.Env[np.int64, np.int64]):
        observation_space = gym.spaces.Discrete(3)
        action_space = gym.spaces.Discrete(2)

        def reset(self, *, seed: int | None = None,
                  options: dict[str, Any] | None = None) -> tuple[np.int64, dict[str, Any]]:
            super().reset(seed=seed)
            return np.int64(0), {}

        def step(self, action: np.int64) -> tuple[np.int64, float, bool, bool, dict[str, Any]]:
            if action == 1:
                raise ZeroDivisionError("boom")
            return np.int64(1), 0.0, False, False, {}

    with GymVecEnv(Exploding, 3, seed=0) as env:
        obs, _ = env.reset()
        assert obs["frame"].dtype == np.int64
        with pytest.raises(ZeroDivisionError, match="boom") as info:
            env.step(DictTensor({"action": np.array([0, 0, 1])}))
        assert "raised by env 2 of GymVecEnv during step()" in info.value.__notes__


def test_step_with_the_wrong_number_of_values() -> None:
    class FourValues(gym.Env[np.int64, np.int64]):
        observation_space = gym.spaces.Discrete(3)
        action_space = gym.spaces.Discrete(2)

        def reset(self, *, seed: int | None = None,
                  options: dict[str, Any] | None = None) -> tuple[np.int64, dict[str, Any]]:
            return np.int64(0), {}

        def step(self, action: np.int64) -> Any:
            return np.int64(1), 0.0, False, {}

    with GymVecEnv(FourValues, 2, seed=0) as env:
        env.reset()
        with pytest.raises(EnvError, match=r"env 0 \(FourValues\).step\(\) returned tuple "
                                           r"\(4\); a gymnasium env returns \(observation, "):
            env.step(DictTensor({"action": np.zeros(2, np.int64)}))


def test_every_error_is_an_agents_error() -> None:
    for cls in (ActionError, EnvError, EnvInfoError, EnvStateError, ObservationError,
                UnsupportedSpaceError):
        assert issubclass(cls, AgentsError)
