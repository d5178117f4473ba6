"""GymVecEnv(info_keys=...): chosen gymnasium info fields kept as observation keys."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from rlstructures.agents import GymVecEnv, ObservationError, UnsupportedSpaceError
from rlstructures.dicttensor import DictTensor, Spec
from tests.agents.test_step_into import check_step


class GoalEnv(gym.Env[np.int64, np.int64]):
    """Counts steps; episodes of ``length`` steps. Info: ``is_success`` (only at the last
    step), ``t`` (every step), ``nested/pos`` (every step, shape (2,)); reset info: ``t``."""

    observation_space = spaces.Discrete(100)
    action_space = spaces.Discrete(2)

    def __init__(self, length: int = 3) -> None:
        self.length = length
        self.t = 0
        self.episodes = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.int64, dict[str, Any]]:
        super().reset(seed=seed)
        self.t = 0
        self.episodes += 1
        return np.int64(0), {"t": -self.episodes}

    def step(self, action: np.int64) -> tuple[np.int64, float, bool, bool, dict[str, Any]]:
        self.t += 1
        end = self.t >= self.length
        info: dict[str, Any] = {"t": self.t, "nested": {"pos": [self.t, 2 * self.t]}}
        if end:
            info["is_success"] = bool(action == 1)
        return np.int64(self.t), 1.0, end, False, info


KEYS: dict[str, Spec | str] = {
    "is_success": "bool", "t": Spec((), np.int64), "nested/pos": Spec((2,), np.float32),
}


def ones(n: int) -> DictTensor:
    return DictTensor({"action": np.ones(n, np.int64)})


def test_info_fields_are_observation_keys_with_their_dtypes() -> None:
    with GymVecEnv(GoalEnv, 2, seed=0, info_keys=KEYS) as env:
        obs, _ = env.reset()
        assert list(obs.keys())[-3:] == ["info/is_success", "info/t", "info/nested/pos"]
        specs = obs.specs()
        assert specs["info/is_success"] == Spec((), np.bool_)
        assert specs["info/t"] == Spec((), np.int64)
        assert specs["info/nested/pos"] == Spec((2,), np.float32)
        # the reset's info: t present, the others missing (zeros)
        np.testing.assert_array_equal(obs["info/t"], [-1, -1])
        np.testing.assert_array_equal(obs["info/is_success"], [False, False])
        np.testing.assert_array_equal(obs["info/nested/pos"], np.zeros((2, 2)))
        (nxt, _), _ = env.step(ones(2))
        np.testing.assert_array_equal(nxt["info/t"], [1, 1])
        np.testing.assert_array_equal(nxt["info/nested/pos"], [[1, 2], [1, 2]])
        assert not nxt["info/is_success"].any()  # missing from this step's info


def test_names_alone_are_float32() -> None:
    with GymVecEnv(GoalEnv, 1, seed=0, info_keys=["t"]) as env:
        obs, _ = env.reset()
        assert obs.specs()["info/t"] == Spec((), np.float32)


@pytest.mark.parametrize("auto_reset", [False, True])
def test_the_final_step_keeps_its_info(auto_reset: bool) -> None:
    with GymVecEnv(GoalEnv, 2, seed=0, auto_reset=auto_reset, info_keys=KEYS) as env:
        env.reset()
        env.step(ones(2))
        env.step(ones(2))
        (nxt, _), (cont, _) = env.step(DictTensor({"action": np.array([1, 0])}))
        np.testing.assert_array_equal(nxt["done"], [True, True])
        np.testing.assert_array_equal(nxt["info/is_success"], [True, False])
        np.testing.assert_array_equal(nxt["info/t"], [3, 3])
        if auto_reset:  # what the envs continue from: the info of their second reset
            np.testing.assert_array_equal(cont["info/t"], [-2, -2])
            assert not cont["info/is_success"].any()
            np.testing.assert_array_equal(cont["info/nested/pos"], np.zeros((2, 2)))
        else:
            assert len(cont) == 0


def test_step_into_writes_the_info_fields_like_step() -> None:
    a = GymVecEnv(GoalEnv, 3, seed=0, auto_reset=True, info_keys=KEYS)
    b = GymVecEnv(GoalEnv, 3, seed=0, auto_reset=True, info_keys=KEYS)
    with a, b:
        obs, _ = a.reset()
        b.reset()
        out, final = obs.clone().to_dict(), obs.clone().to_dict()
        rng = np.random.default_rng(0)
        endings = 0
        for _ in range(12):
            action = DictTensor({"action": rng.integers(0, 2, 3)})
            endings += len(check_step(a, b, action, out, final))
        assert endings == 12  # every env ended 4 times
        assert final["info/is_success"].dtype == np.bool_


def test_bad_info_values_are_observation_errors() -> None:
    with GymVecEnv(GoalEnv, 2, seed=0, info_keys={"nested/pos": Spec((3,), np.float32)}) as env:
        env.reset()
        with pytest.raises(ObservationError, match=r"env 0 returned info\['nested/pos'\] = "
                                                   r"\[1, 2\] from step\(\), which is not a "
                                                   r"float32\[3\] value"):
            env.step(ones(2))


@pytest.mark.parametrize(
    ("info_keys", "error", "match"),
    [
        ("is_success", TypeError, "info_keys must be a sequence"),
        (["a", ""], TypeError, "each must be the name of an info field"),
        (["a/"], TypeError, "each must be the name of an info field"),
        ([1], TypeError, "each must be the name"),
        ({"a": "U3"}, TypeError, "must be bool, integer or float"),
        ({"a": object()}, TypeError, "give a dtype"),
        (["a", "a"], ValueError, "names a field twice"),
    ],
)
def test_bad_info_keys(info_keys: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        GymVecEnv(GoalEnv, 1, seed=0, info_keys=info_keys)


def test_an_info_key_equal_to_an_observation_key() -> None:
    class InfoObs(GoalEnv):
        observation_space = spaces.Dict(  # type: ignore[assignment]  # another space type
            {"info": spaces.Dict({"t": spaces.Discrete(3)})}
        )

    with pytest.raises(UnsupportedSpaceError, match=r"keys \['info/t'\], which the obs"):
        GymVecEnv(InfoObs, 1, seed=0, info_keys=["t"])
