"""GymVecEnv.step_into: the same transitions as step(), written into the caller's arrays."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt
import pytest
from gymnasium import spaces
from hypothesis import given, settings
from hypothesis import strategies as st

from rlstructures.agents import GymVecEnv, StepIntoVecEnv
from rlstructures.agents.errors import ActionError, EnvStateError, ObservationError
from rlstructures.dicttensor import DictTensor
from tests.agents.helpers import DictTupleEnv, ShapeShiftEnv

Arrays = dict[str, npt.NDArray[Any]]


# ---------------------------------------------------------------------- envs
class CoinEnv(gym.Env[np.int64, np.int64]):
    """A Discrete(6) observation drawn from ``np_random``; Discrete(2) actions.

    An episode terminates when the action is 1 and the new observation is 0, and is
    truncated after ``length`` steps otherwise, so both kinds of ending happen often.
    """

    def __init__(self, length: int = 7) -> None:
        self.observation_space = spaces.Discrete(6)
        self.action_space = spaces.Discrete(2)
        self.length = length
        self.t = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.int64, dict[str, Any]]:
        super().reset(seed=seed)
        self.t = 0
        return np.int64(self.np_random.integers(6)), {}

    def step(self, action: np.int64) -> tuple[np.int64, float, bool, bool, dict[str, Any]]:
        self.t += 1
        obs = np.int64(self.np_random.integers(6))
        terminated = bool(action == 1 and obs == 0)
        truncated = self.t >= self.length and not terminated
        return obs, obs - 2.5, terminated, truncated, {}


def cartpole(max_episode_steps: int | None = None) -> Any:
    return gym.make("CartPole-v1", max_episode_steps=max_episode_steps)


def pendulum(max_episode_steps: int) -> Any:
    return gym.make("Pendulum-v1", max_episode_steps=max_episode_steps)


#: make_env arguments of GymVecEnv: a registered id, gymnasium factories and small test envs.
ENVS: dict[str, Callable[[], Any] | str] = {
    "cartpole-id": "CartPole-v1",  # terminated episodes only (random actions: ~20 steps)
    "cartpole-short": functools.partial(cartpole, 20),  # terminated and truncated
    "pendulum": functools.partial(pendulum, 9),  # Box actions, truncated episodes
    "dict": functools.partial(DictTupleEnv, length=3),  # Dict space, nested Dict and Tuple
    "discrete": CoinEnv,  # a Discrete observation space: a () int64 frame
}


def env_info_for(name: str, n: int) -> DictTensor | None:
    """reset() options: the Dict env echoes its task, also after every auto-reset."""
    if name == "dict":
        return DictTensor({"task": np.arange(n, dtype=np.int64) + 10})
    return None


def random_actions(env: GymVecEnv, rng: np.random.Generator) -> DictTensor:
    """One valid action per env, drawn from ``rng``."""
    n, space = env.n_envs, env.action_space
    if isinstance(space, spaces.Discrete):
        start = int(space.start)
        return DictTensor({"action": rng.integers(start, start + int(space.n), n)})
    assert isinstance(space, spaces.Box)
    value = rng.uniform(space.low, space.high, (n, *space.shape)).astype(space.dtype)
    return DictTensor({"action": value})


# ---------------------------------------------------------------------- helpers
def sentinel_fill(arrays: Mapping[str, npt.NDArray[Any]]) -> None:
    """Fill with values step_into never writes: 1e6 (floats), 99 (ints), True (bools)."""
    for v in arrays.values():
        v[...] = {"f": 1e6, "b": True}.get(v.dtype.kind, 99)


def assert_same(got: Mapping[str, Any], expected: Mapping[str, Any], what: str) -> None:
    """Same keys, dtypes, shapes and values (a fast exact comparison)."""
    assert list(got.keys()) == list(expected.keys()), what
    for k, v in expected.items():
        g = np.asarray(got[k])
        e = np.asarray(v)
        if g.dtype != e.dtype or g.shape != e.shape or not np.array_equal(g, e):
            raise AssertionError(f"{what}[{k!r}]: got {g!r}, expected {e!r}")


@contextlib.contextmanager
def twin_envs(
    make_env: Callable[[], Any] | str, n: int, seed: int, env_info: DictTensor | None = None
) -> Iterator[tuple[GymVecEnv, GymVecEnv, DictTensor]]:
    """Two GymVecEnv built with identical arguments, both reset (auto-reset mode)."""
    a = GymVecEnv(make_env, n, seed, auto_reset=True)
    b = GymVecEnv(make_env, n, seed, auto_reset=True)
    try:
        obs_a, _ = a.reset(env_info)
        obs_b, _ = b.reset(env_info)
        assert obs_a.equal(obs_b)
        yield a, b, obs_a
    finally:
        a.close()
        b.close()


def check_step(
    stepped: GymVecEnv,
    into: GymVecEnv,
    action: DictTensor,
    out: Arrays,
    final: Arrays,
) -> npt.NDArray[np.int64]:
    """One step of both envs; asserts every property of step_into against step()."""
    (nxt, nxt_ids), (cont, cont_ids) = stepped.step(action)
    sentinel_fill(final)
    out_arrays = dict(out)
    final_arrays = dict(final)
    ended = into.step_into(action, out, final)
    n = into.n_envs
    np.testing.assert_array_equal(nxt_ids, np.arange(n))
    np.testing.assert_array_equal(cont_ids, np.arange(n))
    # written in place: the caller's arrays, never replaced
    assert all(out[k] is v for k, v in out_arrays.items())
    assert all(final[k] is v for k, v in final_arrays.items())
    # the ended envs: sorted int64 ids, those whose next observation is done
    assert isinstance(ended, np.ndarray)
    assert ended.dtype == np.int64
    np.testing.assert_array_equal(ended, np.flatnonzero(nxt["done"]))
    # out is what every env continues from
    assert_same(out, cont.to_dict(), "out")
    # out with the ended rows taken from final is the next observation
    merged = {k: v.copy() for k, v in out.items()}
    for k in merged:
        merged[k][ended] = final[k][ended]
    assert_same(merged, nxt.to_dict(), "out | final[ended]")
    # the other rows of final are untouched
    kept = np.setdiff1d(np.arange(n), ended)
    for k, v in final.items():
        expected = {"f": 1e6, "b": True}.get(v.dtype.kind, 99)
        assert (v[kept] == expected).all(), f"final[{k!r}] written outside the ended rows"
    return ended


# ---------------------------------------------------------------------- (a) equivalence
@pytest.mark.parametrize("name", list(ENVS))
@settings(max_examples=4, deadline=None)
@given(
    n_envs=st.integers(3, 5),
    seed=st.integers(0, 2**20),
    action_seed=st.integers(0, 2**20),
)
def test_step_into_matches_step(name: str, n_envs: int, seed: int, action_seed: int) -> None:
    rng = np.random.default_rng(action_seed)
    endings = 0
    with twin_envs(ENVS[name], n_envs, seed, env_info_for(name, n_envs)) as (stepped, into, obs):
        out = obs.clone().to_dict()
        final = obs.clone().to_dict()
        for _ in range(200):
            ended = check_step(stepped, into, random_actions(into, rng), out, final)
            endings += len(ended)
            if name == "dict":  # env_info rows reach every auto-reset
                np.testing.assert_array_equal(out["task"], np.arange(n_envs) + 10)
    if name != "pendulum":
        assert endings > 0  # the property was exercised on ended episodes too
    else:
        assert endings == 200 // 9 * n_envs


@settings(max_examples=5, deadline=None)
@given(
    n_envs=st.integers(1, 4),
    actions=st.lists(st.integers(0, 1), min_size=1, max_size=60),
)
def test_step_into_matches_step_for_hypothesis_action_sequences(
    n_envs: int, actions: list[int]
) -> None:
    """Action sequences drawn by hypothesis (every env gets the sequence, shifted by k)."""
    with twin_envs(functools.partial(cartpole, 12), n_envs, 3) as (stepped, into, obs):
        out = obs.clone().to_dict()
        final = obs.clone().to_dict()
        for t in range(len(actions)):
            row = [actions[(t + k) % len(actions)] for k in range(n_envs)]
            action = DictTensor({"action": np.array(row, np.int64)})
            check_step(stepped, into, action, out, final)


@pytest.mark.parametrize("name", ["cartpole-short", "dict", "discrete"])
def test_step_into_views_of_a_time_buffer(name: str) -> None:
    """``out`` and ``final`` as strided columns of [n, T, ...] buffers, as the batchers do.

    Step t writes column t + 1 of the observation buffer and column t of the final one;
    the observations assembled that way equal the ones step() returns, and no other column
    is written.
    """
    n, steps = 4, 40
    rng = np.random.default_rng(0)
    env_info = env_info_for(name, n)
    with twin_envs(ENVS[name], n, 5, env_info) as (stepped, into, obs):
        specs = obs.specs()
        obs_buf = {k: np.zeros((n, steps + 1, *s.shape), s.dtype) for k, s in specs.items()}
        next_buf = {k: np.zeros((n, steps, *s.shape), s.dtype) for k, s in specs.items()}
        sentinel_fill(next_buf)
        for k, v in obs.items():
            obs_buf[k][:, 0] = v
        expected_next, expected_cont = [], []
        ended_at = []
        for t in range(steps):
            action = random_actions(into, rng)
            (nxt, _), (cont, _) = stepped.step(action)
            expected_next.append(nxt)
            expected_cont.append(cont)
            out = {k: v[:, t + 1] for k, v in obs_buf.items()}
            final = {k: v[:, t] for k, v in next_buf.items()}
            ended_at.append(into.step_into(action, out, final))
            for k in specs:  # the columns after t + 1 are still zeros, after t sentinels
                assert not obs_buf[k][:, t + 2 :].any()
                expected = {"f": 1e6, "b": True}.get(next_buf[k].dtype.kind, 99)
                assert (next_buf[k][:, t + 1 :] == expected).all()
        assert sum(len(e) for e in ended_at) > 0
        for t in range(steps):
            cont_t = {k: v[:, t + 1] for k, v in obs_buf.items()}
            assert_same(cont_t, expected_cont[t].to_dict(), f"out at {t}")
            merged = {k: v.copy() for k, v in cont_t.items()}
            for k in merged:
                merged[k][ended_at[t]] = next_buf[k][ended_at[t], t]
            assert_same(merged, expected_next[t].to_dict(), f"next observation at {t}")


def test_step_into_returns_empty_int64_ids_when_nothing_ends() -> None:
    with GymVecEnv(cartpole, 3, seed=0, auto_reset=True) as env:
        obs, _ = env.reset()
        out, final = obs.clone().to_dict(), obs.clone().to_dict()
        ended = env.step_into(DictTensor({"action": np.zeros(3, np.int64)}), out, final)
        assert ended.dtype == np.int64
        assert ended.shape == (0,)
        np.testing.assert_array_equal(out["reward"], 1.0)
        assert not out["initial_state"].any()


def test_gym_vec_env_is_a_step_into_vec_env() -> None:
    with GymVecEnv(cartpole, 2, seed=0, auto_reset=True) as env:
        vec: StepIntoVecEnv = env  # the protocol, statically
        assert vec.auto_reset is True


def test_step_into_after_step_continues_the_same_episodes() -> None:
    """step() and step_into() mixed on one env equal step() alone on its twin."""
    rng = np.random.default_rng(1)
    with twin_envs(functools.partial(cartpole, 15), 3, 9) as (stepped, mixed, obs):
        out, final = obs.clone().to_dict(), obs.clone().to_dict()
        for t in range(80):
            action = random_actions(mixed, rng)
            if t % 3:
                check_step(stepped, mixed, action, out, final)
            else:
                (nxt, _), (cont, _) = stepped.step(action)
                (nxt2, _), (cont2, _) = mixed.step(action)
                assert nxt.equal(nxt2)
                assert cont.equal(cont2)
                for k, v in cont2.items():
                    out[k][...] = v


# ---------------------------------------------------------------------- (b) errors
def test_step_into_in_episode_mode_is_an_env_state_error() -> None:
    with GymVecEnv(cartpole, 2, seed=0) as env:
        obs, _ = env.reset()
        out, final = obs.clone().to_dict(), obs.clone().to_dict()
        with pytest.raises(EnvStateError, match="needs auto-reset mode"):
            env.step_into(DictTensor({"action": np.zeros(2, np.int64)}), out, final)
        # nothing was stepped: step() still gives the first transition
        (nxt, _), _ = env.step(DictTensor({"action": np.zeros(2, np.int64)}))
        np.testing.assert_array_equal(nxt["reward"], 1.0)


@pytest.mark.parametrize("auto_reset", [True, False])
def test_step_into_before_reset_is_an_env_state_error(auto_reset: bool) -> None:
    with GymVecEnv(cartpole, 2, seed=0, auto_reset=auto_reset) as env:
        arrays = {"frame": np.zeros((2, 4), np.float32)}
        with pytest.raises(EnvStateError, match="before reset"):
            env.step_into(DictTensor({"action": np.zeros(2, np.int64)}), arrays, arrays)


@pytest.mark.parametrize("auto_reset", [True, False])
def test_step_into_after_close_is_an_env_state_error(auto_reset: bool) -> None:
    env = GymVecEnv(cartpole, 2, seed=0, auto_reset=auto_reset)
    obs, _ = env.reset()
    env.close()
    out, final = obs.clone().to_dict(), obs.clone().to_dict()
    with pytest.raises(EnvStateError, match="closed"):
        env.step_into(DictTensor({"action": np.zeros(2, np.int64)}), out, final)


OBS_KEYS = {
    "cartpole-id": ["frame", "reward", "terminated", "truncated", "done", "initial_state",
                    "last_action"],
    "dict": ["pos", "inner/flag", "inner/cell", "pair/0", "pair/1", "task", "reward", "done",
             "last_action"],
}


@pytest.mark.parametrize(
    ("name", "key"), [(name, key) for name, keys in OBS_KEYS.items() for key in keys]
)
def test_out_lacking_a_key_is_a_key_error_naming_it(name: str, key: str) -> None:
    with GymVecEnv(ENVS[name], 2, seed=0, auto_reset=True) as env:
        obs, _ = env.reset()
        assert key in obs
        out = obs.clone().exclude([key]).to_dict()
        final = obs.clone().to_dict()
        with pytest.raises(KeyError, match=f"`out` lacks the observation key '{key}'"):
            env.step_into(DictTensor({"action": np.zeros(2, np.int64)}), out, final)


@pytest.mark.parametrize(
    "key", ["frame", "reward", "terminated", "truncated", "done", "initial_state", "last_action"]
)
def test_final_lacking_a_key_is_a_key_error_naming_it(key: str) -> None:
    # every episode of CoinEnv(length=1) ends at its first step: final is written at once
    with GymVecEnv(functools.partial(CoinEnv, length=1), 3, seed=0, auto_reset=True) as env:
        obs, _ = env.reset()
        out = obs.clone().to_dict()
        final = obs.clone().exclude([key]).to_dict()
        with pytest.raises(KeyError, match=f"`final` lacks the observation key '{key}'"):
            env.step_into(DictTensor({"action": np.zeros(3, np.int64)}), out, final)


@pytest.mark.parametrize("which", ["out", "final"])
def test_a_missing_key_is_reported_before_any_env_steps(which: str) -> None:
    ok = DictTensor({"action": np.array([1, 0, 1])})
    with twin_envs(cartpole, 3, 4) as (stepped, into, obs):
        out, final = obs.clone().to_dict(), obs.clone().to_dict()
        lacking = {
            name: {k: v for k, v in arrays.items() if k != "done" or name != which}
            for name, arrays in (("out", out), ("final", final))
        }
        with pytest.raises(KeyError, match=f"`{which}` lacks the observation key 'done'"):
            # no episode ends at the first step of CartPole
            into.step_into(ok, lacking["out"], lacking["final"])
        for _ in range(30):  # the envs were not stepped: the same steps as the twin
            check_step(stepped, into, ok, out, final)


BAD_ACTIONS: dict[str, tuple[Any, str]] = {
    "above the space": (DictTensor({"action": np.array([0, 2, 1])}), "outside"),
    "negative": (DictTensor({"action": np.array([-1, 0, 1])}), "outside"),
    "float": (DictTensor({"action": np.array([0.0, 1.0, 1.0])}), "integer"),
    "too few rows": (DictTensor({"action": np.zeros(2, np.int64)}), r"\(2,\)"),
    "too many rows": (DictTensor({"action": np.zeros(4, np.int64)}), r"\(4,\)"),
    "a row shape": (DictTensor({"action": np.zeros((3, 1), np.int64)}), "shape"),
    "no action key": (DictTensor({"act": np.zeros(3, np.int64)}), "no 'action' key"),
    "not a DictTensor": (np.zeros(3, np.int64), "DictTensor"),
}


@pytest.mark.parametrize("bad", list(BAD_ACTIONS))
def test_bad_actions_are_action_errors_and_change_nothing(bad: str) -> None:
    action, message = BAD_ACTIONS[bad]
    ok = DictTensor({"action": np.array([1, 0, 1])})
    with twin_envs(cartpole, 3, 4) as (stepped, into, obs):
        out, final = obs.clone().to_dict(), obs.clone().to_dict()
        before = {k: v.copy() for k, v in out.items()}
        with pytest.raises(ActionError, match=message):
            into.step_into(action, out, final)
        assert_same(out, before, "out after an ActionError")
        # the envs were not stepped: the next steps equal those of the twin
        for _ in range(30):
            check_step(stepped, into, ok, out, final)


@settings(max_examples=10, deadline=None)
@given(
    n_envs=st.integers(1, 5),
    data=st.data(),
)
def test_out_of_range_discrete_actions_are_action_errors(n_envs: int, data: st.DataObject) -> None:
    with GymVecEnv(CoinEnv, n_envs, seed=0, auto_reset=True) as env:
        obs, _ = env.reset()
        out, final = obs.clone().to_dict(), obs.clone().to_dict()
        values = data.draw(st.lists(st.integers(0, 1), min_size=n_envs, max_size=n_envs))
        pos = data.draw(st.integers(0, n_envs - 1))
        values[pos] = data.draw(st.one_of(st.integers(-(2**40), -1), st.integers(2, 2**40)))
        with pytest.raises(ActionError, match=rf"\[{pos}\] = {values[pos]} is outside"):
            env.step_into(DictTensor({"action": np.array(values, np.int64)}), out, final)


@pytest.mark.parametrize(
    "value",
    [np.array([[0.0], [2.5]], np.float32), np.array([[-3.0], [0.0]], np.float32),
     np.array([0.0, 1.0], np.float32)],
)
def test_bad_box_actions_are_action_errors(value: npt.NDArray[np.float32]) -> None:
    with GymVecEnv(functools.partial(pendulum, 9), 2, seed=0, auto_reset=True) as env:
        obs, _ = env.reset()
        out, final = obs.clone().to_dict(), obs.clone().to_dict()
        with pytest.raises(ActionError):
            env.step_into(DictTensor({"action": value}), out, final)


def test_an_observation_of_the_wrong_shape_is_an_observation_error() -> None:
    with GymVecEnv(functools.partial(ShapeShiftEnv, 2), 2, seed=0, auto_reset=True) as env:
        obs, _ = env.reset()
        out, final = obs.clone().to_dict(), obs.clone().to_dict()
        action = DictTensor({"action": np.zeros(2, np.int64)})
        env.step_into(action, out, final)
        with pytest.raises(ObservationError, match=r"env 0 .*step_into\(\).*'frame' has shape"):
            env.step_into(action, out, final)


class RaiseOnOne(gym.Env[npt.NDArray[np.float32], np.int64]):
    """Raises in ``step`` when the action is 1 (to see which env a note names)."""

    observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = spaces.Discrete(2)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[npt.NDArray[np.float32], dict[str, Any]]:
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(
        self, action: np.int64
    ) -> tuple[npt.NDArray[np.float32], float, bool, bool, dict[str, Any]]:
        if action == 1:
            raise RuntimeError("this env refuses action 1")
        return np.zeros(2, np.float32), 0.0, False, False, {}


@pytest.mark.parametrize("wrapped", [False, True])
@pytest.mark.parametrize("bad_env", [0, 2, 3])
def test_an_env_exception_keeps_its_type_and_names_the_env(wrapped: bool, bad_env: int) -> None:
    make: Callable[[], Any] = (
        (lambda: gym.wrappers.TimeLimit(RaiseOnOne(), 50)) if wrapped else RaiseOnOne
    )
    with GymVecEnv(make, n_envs=4, seed=0, auto_reset=True) as env:
        obs, _ = env.reset()
        out, final = obs.clone().to_dict(), obs.clone().to_dict()
        action = np.zeros(4, np.int64)
        action[bad_env] = 1
        with pytest.raises(RuntimeError, match="refuses") as info:
            env.step_into(DictTensor({"action": action}), out, final)
        assert f"raised by env {bad_env} of GymVecEnv during step_into()" in getattr(
            info.value, "__notes__", []
        )


def test_torch_and_int32_actions_take_the_checked_path() -> None:
    torch = pytest.importorskip("torch")
    with twin_envs("CartPole-v1", 3, 0) as (a, b, obs):
        out, final = obs.clone().to_dict(), obs.clone().to_dict()
        for action in (torch.ones(3, dtype=torch.int64), np.ones(3, np.int32)):
            a.step_into(DictTensor({"action": action}), out, final)
            (_, _), (cont, _) = b.step(DictTensor({"action": np.ones(3, np.int64)}))
            assert_same(out, cont.to_dict(), "continuing observation")


class OutOfRange(gym.Env[Any, np.int64]):
    """Declares a uint8 observation but returns 300 after a step with action 1."""

    observation_space = spaces.Box(0, 255, (), np.uint8)
    action_space = spaces.Discrete(2)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        super().reset(seed=seed)
        return 0, {}

    def step(self, action: np.int64) -> tuple[int, float, bool, bool, dict[str, Any]]:
        return (300 if action == 1 else 7), 0.0, bool(action == 1), False, {}


class OutOfRangeAfterArrays(OutOfRange):
    """Like OutOfRange, but no episode ends and in-range values are uint8 arrays.

    So the value out of range reaches the vectorized frame write, not the row-by-row one
    of ended episodes.
    """

    def step(self, action: np.int64) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs: Any = 300 if action == 1 else np.array(7, np.uint8)
        return obs, 0.0, False, False, {}


@pytest.mark.parametrize("make", [OutOfRange, OutOfRangeAfterArrays])
@pytest.mark.parametrize("method", ["step", "step_into"])
def test_an_observation_outside_the_dtype_range_is_an_observation_error(
    method: str, make: Callable[[], gym.Env[Any, np.int64]]
) -> None:
    with GymVecEnv(make, n_envs=3, seed=0, auto_reset=True) as env:
        obs, _ = env.reset()
        action = DictTensor({"action": np.array([0, 1, 0])})
        run: Callable[[], object] = (
            (lambda: env.step(action))
            if method == "step"
            else (lambda: env.step_into(action, obs.clone().to_dict(), obs.clone().to_dict()))
        )
        with pytest.raises(ObservationError, match=r"env 1 .* holds 300, outside the range"):
            run()


class ArrayFlags(gym.Env[npt.NDArray[np.float32], np.int64]):
    """Returns ``what`` (reward, terminated or truncated) as a 1-element array."""

    observation_space = spaces.Box(-1, 1, (2,), np.float32)
    action_space = spaces.Discrete(2)

    def __init__(self, what: str, ends_at: int) -> None:
        self.what, self.ends_at, self.t = what, ends_at, 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[npt.NDArray[np.float32], dict[str, Any]]:
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(2, np.float32), {}

    def step(self, action: np.int64) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        self.t += 1
        values: dict[str, Any] = {"reward": 1.0, "terminated": self.t >= self.ends_at}
        values["truncated"] = False
        values[self.what] = np.array([values[self.what]])
        obs = np.zeros(2, np.float32)
        return obs, values["reward"], values["terminated"], values["truncated"], {}


@pytest.mark.parametrize("method", ["step", "step_into"])
@pytest.mark.parametrize("what", ["reward", "terminated", "truncated"])
@pytest.mark.parametrize("ends_at", [1, 5])
def test_a_non_scalar_reward_or_flag_is_an_observation_error(
    method: str, what: str, ends_at: int
) -> None:
    """The same error from both methods, whether or not an episode ends at the first step."""
    make = functools.partial(ArrayFlags, what, ends_at)
    with GymVecEnv(make, n_envs=2, seed=0, auto_reset=True) as env:
        obs, _ = env.reset()
        action = DictTensor({"action": np.zeros(2, np.int64)})
        run: Callable[[], object] = (
            (lambda: env.step(action))
            if method == "step"
            else (lambda: env.step_into(action, obs.clone().to_dict(), obs.clone().to_dict()))
        )
        with pytest.raises(ObservationError, match=rf"env 0 returned {what} array"):
            run()


def test_a_masked_array_action_acts_like_its_values_in_both_methods() -> None:
    """A numpy subclass is read as its plain values (the mask is not an action)."""
    action = DictTensor({"action": np.ma.masked_array(np.array([0, 1]), mask=[False, True])})
    with (
        GymVecEnv("CartPole-v1", n_envs=2, seed=0, auto_reset=True) as a,
        GymVecEnv("CartPole-v1", n_envs=2, seed=0, auto_reset=True) as b,
    ):
        obs, _ = a.reset()
        b.reset()
        out, final = obs.clone().to_dict(), obs.clone().to_dict()
        a.step_into(action, out, final)
        (_, _), (cont, _) = b.step(action)
        assert_same(out, cont.to_dict(), "continuing observation")
        assert out["last_action"].tolist() == [0, 1]
