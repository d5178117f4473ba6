"""Old gym API envs (reset returns obs, step returns 4 values), adapted without gym."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt
import pytest
from gymnasium.envs.classic_control.cartpole import CartPoleEnv
from gymnasium.wrappers import TimeLimit

from rlstructures.agents import GymVecEnv
from rlstructures.agents.errors import EnvError, EnvInfoError, UnsupportedSpaceError
from rlstructures.dicttensor import DictTensor


class OldSpaces:
    """Stand-ins for ``gym.spaces`` classes: the adapter only reads names and attributes."""

    class Box:
        def __init__(self, low: Any, high: Any, shape: tuple[int, ...], dtype: Any) -> None:
            self.low, self.high, self.shape, self.dtype = low, high, shape, np.dtype(dtype)

    class Discrete:
        def __init__(self, n: int) -> None:
            self.n = n

    class MultiDiscrete:
        def __init__(self, nvec: list[int]) -> None:
            self.nvec = np.asarray(nvec)

    class MultiBinary:
        def __init__(self, n: int) -> None:
            self.n = n

    class Dict:
        def __init__(self, spaces: dict[str, Any]) -> None:
            self.spaces = spaces

    class Tuple:
        def __init__(self, spaces: tuple[Any, ...]) -> None:
            self.spaces = spaces

    class Graph:
        pass


class OldCartPole:
    """CartPole with the gym 0.21 API: ``seed()``, ``reset() -> obs``, 4-value ``step``,
    ``info["TimeLimit.truncated"]`` at the time limit."""

    def __init__(self, max_steps: int = 500) -> None:
        self.inner: Any = CartPoleEnv()  # an unwrapped gymnasium CartPole does the physics
        high = np.array([4.8, np.inf, 0.42, np.inf], np.float32)  # CartPole's bounds
        self.observation_space = OldSpaces.Box(-high, high, (4,), np.float32)
        self.action_space = OldSpaces.Discrete(2)
        self.max_steps = max_steps
        self.next_seed: int | None = None
        self.t = 0
        self.closed = False

    def seed(self, seed: int) -> list[int]:
        self.next_seed = seed
        return [seed]

    def reset(self) -> Any:
        obs, _ = self.inner.reset(seed=self.next_seed)
        self.next_seed = None
        self.t = 0
        return obs

    def step(self, action: Any) -> tuple[Any, float, bool, dict[str, Any]]:
        obs, reward, terminated, _, _ = self.inner.step(int(action))
        self.t += 1
        info: dict[str, Any] = {}
        if self.t >= self.max_steps and not terminated:
            info["TimeLimit.truncated"] = True
        return obs, float(reward), bool(terminated) or self.t >= self.max_steps, info

    def close(self) -> None:
        self.closed = True


def collect(env: GymVecEnv, actions: npt.NDArray[np.int64]) -> list[DictTensor]:
    out = [env.reset()[0]]
    for a in actions:
        (nxt, _), (cont, _) = env.step(DictTensor({"action": a}))
        out += [nxt, cont]
    return out


@pytest.mark.parametrize("max_steps", [500, 7])
def test_old_api_env_equals_the_gymnasium_env(max_steps: int) -> None:
    actions = np.random.default_rng(0).integers(0, 2, (60, 3))
    with GymVecEnv(lambda: OldCartPole(max_steps), 3, seed=11, auto_reset=True) as old:
        assert isinstance(old.observation_space, gym.spaces.Box)
        assert old.action_space == gym.spaces.Discrete(2)
        got = collect(old, actions)
        envs = old.envs
    assert all(e.env.closed for e in envs)
    make_new = lambda: TimeLimit(CartPoleEnv(), max_steps)  # noqa: E731
    with GymVecEnv(make_new, 3, seed=11, auto_reset=True) as new:
        expected = collect(new, actions)
    assert all(a.equal(b) for a, b in zip(got, expected, strict=True))
    truncated = np.stack([o["truncated"] for o in got])
    terminated = np.stack([o["terminated"] for o in got])
    assert truncated.any() == (max_steps == 7)
    assert terminated.any() or max_steps == 7


def test_reset_with_a_seed_argument_and_new_api_duck_typed_envs() -> None:
    class SeedInReset(OldCartPole):  # gym 0.22-0.25: reset(seed=...) -> obs
        def reset(self, seed: int | None = None) -> Any:
            self.next_seed = seed
            return super().reset()

    class DuckNewApi(OldCartPole):  # the new API without subclassing gymnasium.Env
        def reset(self, *, seed: int | None = None,
                  options: dict[str, Any] | None = None) -> Any:
            self.next_seed = seed
            return super().reset(), {"options": options}

        def step(self, action: Any) -> Any:
            obs, reward, done, info = super().step(action)
            return obs, reward, done, False, info

    actions = np.ones((20, 2), np.int64)
    with GymVecEnv(OldCartPole, 2, seed=4) as ref:
        expected = collect(ref, actions[:5])
    for cls in (SeedInReset, DuckNewApi):
        with GymVecEnv(cls, 2, seed=4) as env:
            assert all(a.equal(b) for a, b in zip(collect(env, actions[:5]), expected,
                                                   strict=True))


def test_old_api_errors() -> None:
    class NoSeed(OldCartPole):
        seed = None  # type: ignore[assignment] # no seed method at all

    with GymVecEnv(NoSeed, 1, seed=0) as env, pytest.raises(EnvError, match="cannot seed"):
        env.reset()
    with GymVecEnv(OldCartPole, 2, seed=0) as env, pytest.raises(
            EnvInfoError, match=r"reset\(\) takes neither `options` \(gymnasium\) nor `env_info`"):
        env.reset(DictTensor({"task": np.array([1, 2])}))

    class ThreeValues(OldCartPole):
        def step(self, action: Any) -> Any:
            return super().step(action)[:3]

    with GymVecEnv(ThreeValues, 1, seed=0) as env:
        env.reset()
        with pytest.raises(EnvError, match=r"returned tuple \(3\); expected \(obs, reward, "
                                           r"done, info\)"):
            env.step(DictTensor({"action": np.zeros(1, np.int64)}))


def test_old_spaces_are_converted() -> None:
    class AllSpaces(OldCartPole):
        def __init__(self) -> None:
            super().__init__()
            self.observation_space = OldSpaces.Dict({  # type: ignore[assignment]
                "m": OldSpaces.MultiDiscrete([2, 3]),
                "b": OldSpaces.MultiBinary(4),
                "t": OldSpaces.Tuple((OldSpaces.Discrete(5),
                                      OldSpaces.Box(0.0, 1.0, (2,), np.float64))),
            })

    with GymVecEnv(AllSpaces, 1, seed=0) as env:
        space = env.observation_space
    assert space == gym.spaces.Dict({
        "m": gym.spaces.MultiDiscrete([2, 3]),
        "b": gym.spaces.MultiBinary(4),
        "t": gym.spaces.Tuple((gym.spaces.Discrete(5),
                               gym.spaces.Box(0.0, 1.0, (2,), np.float64))),
    })

    class Unknown(OldCartPole):
        def __init__(self) -> None:
            super().__init__()
            self.action_space = OldSpaces.Graph()  # type: ignore[assignment]

    with pytest.raises(UnsupportedSpaceError, match="converts old gym Box, Discrete"):
        GymVecEnv(Unknown, 1, seed=0)


class V02Env(gym.Env):  # the old API on purpose
    """An RLStructures 0.2 tutorial env: a gymnasium.Env written to the old API, seeded by
    ``seed()``, ``reset(env_info)`` receiving a dict of Python values, 4-tuple steps."""

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Dict({
            "x": gym.spaces.Box(-np.inf, np.inf, (), np.float64),
            "task": gym.spaces.Box(0, 10, (), np.int64),
        })
        self.action_space = gym.spaces.Discrete(2)
        self.infos: list[Any] = []

    def seed(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)

    def reset(self, env_info: Any = None) -> Any:  # type: ignore[override]  # old API
        self.infos.append(env_info)
        self.x = float(self.rng.uniform(-1, 1))
        self.task = env_info["task"] if env_info else 0
        return {"x": self.x, "task": self.task}

    def step(self, action: Any) -> Any:  # old API
        self.x += 0.3 if action == 1 else -0.3
        return {"x": self.x, "task": self.task}, self.x, abs(self.x) > 1, {}


def test_a_v02_env_gets_env_info_as_reset_env_info() -> None:
    with GymVecEnv(V02Env, 2, seed=80) as env:
        obs, _ = env.reset(DictTensor({"task": np.array([3, 4])}))
        assert obs["task"].tolist() == [3, 4]
        infos = [e.env.infos for e in env.envs]
        assert infos == [[{"task": 3}], [{"task": 4}]]
        assert type(infos[0][0]["task"]) is int  # Python values, as 0.2 passed them
        (last, _), _ = env.step(DictTensor({"action": np.ones(2, np.int64)}))
        np.testing.assert_allclose(last["x"], obs["x"] + 0.3)
    with GymVecEnv(V02Env, 2, seed=80) as again:  # seeded by seed(80 + k)
        np.testing.assert_array_equal(again.reset()[0]["x"], obs["x"])


def test_an_env_without_observation_space_says_what_to_add() -> None:
    class NoSpace(gym.Env):
        def __init__(self) -> None:
            self.action_space = gym.spaces.Discrete(2)

    with pytest.raises(EnvError, match=r"env 0 \(NoSpace\) has no observation_space\. "
                                       r"GymVecEnv reads .* set observation_space in the "
                                       r"env's __init__, e.g. `self.observation_space = "):
        GymVecEnv(NoSpace, 2, seed=0)

    class Bare:  # not a gymnasium.Env either
        def reset(self) -> Any:
            return 0

        def step(self, action: Any) -> Any:
            return 0, 0.0, False, {}

    with pytest.raises(EnvError, match=r"has no observation_space and no action_space\. .*"
                                       r"Discrete\(2\)"):
        GymVecEnv(Bare, 1, seed=0)
