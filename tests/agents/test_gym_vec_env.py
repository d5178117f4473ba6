"""GymVecEnv against real gymnasium envs: keys, seeding, both modes, termination kinds."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt
import pytest

from rlstructures.agents import GymVecEnv, VecEnv
from rlstructures.dicttensor import DictTensor, Spec
from tests.agents.helpers import DictTupleEnv, TupleEnv

OBS_KEYS = ["reward", "terminated", "truncated", "done", "initial_state", "last_action"]


def cartpole(max_episode_steps: int | None = None) -> Any:
    return gym.make("CartPole-v1", max_episode_steps=max_episode_steps)


def pendulum(max_episode_steps: int | None = None) -> Any:
    return gym.make("Pendulum-v1", max_episode_steps=max_episode_steps)


def discrete(a: npt.ArrayLike) -> DictTensor:
    return DictTensor({"action": np.asarray(a, dtype=np.int64)})


def test_is_a_vec_env_and_reset_keys() -> None:
    with GymVecEnv(cartpole, 3, seed=0) as env:
        vec: VecEnv = env  # the protocol, statically
        obs, ids = vec.reset()
        assert env.n_envs == 3
        assert isinstance(env.observation_space, gym.spaces.Box)
        assert list(obs.keys()) == ["frame", *OBS_KEYS]
        assert ids.dtype == np.int64
        np.testing.assert_array_equal(ids, [0, 1, 2])
        specs = obs.specs()
        assert specs["frame"].shape == (4,)
        assert specs["frame"].dtype == np.float32
        assert specs["reward"].dtype == np.float32
        for key in ("terminated", "truncated", "done", "initial_state"):
            assert specs[key].dtype == np.bool_
        assert specs["last_action"].dtype == np.int64
        assert specs["last_action"].shape == ()
        assert obs["initial_state"].all()
        assert not obs["done"].any()
        np.testing.assert_array_equal(obs["reward"], 0)
        np.testing.assert_array_equal(obs["last_action"], 0)


def test_step_keys_and_values() -> None:
    with GymVecEnv(cartpole, 2, seed=0) as env:
        env.reset()
        (nxt, ids), (cont, cont_ids) = env.step(discrete([1, 0]))
        np.testing.assert_array_equal(ids, [0, 1])
        np.testing.assert_array_equal(nxt["reward"], [1.0, 1.0])
        np.testing.assert_array_equal(nxt["last_action"], [1, 0])
        assert not nxt["initial_state"].any()
        assert cont.equal(nxt)
        np.testing.assert_array_equal(cont_ids, ids)


@pytest.mark.parametrize("auto_reset", [False, True])
def test_env_k_equals_plain_gymnasium_env_seeded_seed_plus_k(auto_reset: bool) -> None:
    seed, n, steps = 7, 4, 60
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 2, (steps, n))
    plain = [cartpole() for _ in range(n)]
    expected = [plain[k].reset(seed=seed + k)[0] for k in range(n)]
    with GymVecEnv(cartpole, n, seed=seed, auto_reset=auto_reset) as env:
        obs, ids = env.reset()
        np.testing.assert_array_equal(obs["frame"], np.stack(expected))
        for t in range(steps):
            if not len(ids):
                break
            (nxt, nxt_ids), (obs, ids) = env.step(discrete(actions[t][ids]))
            for row, k in enumerate(nxt_ids):
                o, r, term, trunc, _ = plain[k].step(actions[t][k])
                np.testing.assert_array_equal(nxt["frame"][row], o)
                assert (nxt["reward"][row], nxt["terminated"][row], nxt["truncated"][row]) == (
                    r, term, trunc)
                if term or trunc:
                    if auto_reset:  # the fresh episode continues from the env's own generator
                        fresh, _ = plain[k].reset()
                        row_c = int(np.flatnonzero(ids == k)[0])
                        np.testing.assert_array_equal(obs["frame"][row_c], fresh)
                    else:
                        assert k not in ids


def test_same_seed_same_trajectories_other_seed_differs() -> None:
    def run(seed: int) -> list[DictTensor]:
        out = []
        with GymVecEnv(pendulum, 3, seed=seed) as env:
            obs, _ = env.reset()
            out.append(obs)
            for t in range(20):
                action = DictTensor({"action": np.full((3, 1), np.sin(t), np.float32)})
                (nxt, _), _ = env.step(action)
                out.append(nxt)
        return out

    a, b, c = run(3), run(3), run(4)
    assert all(x.equal(y) for x, y in zip(a, b, strict=True))
    assert not a[0].equal(c[0])


def test_episode_mode_drops_ended_envs() -> None:
    # Constant action 1: every pole falls (terminated) within a few dozen steps, at
    # different times because the starts differ.
    with GymVecEnv(cartpole, 5, seed=0) as env:
        obs, ids = env.reset()
        seen_drop = False
        for _ in range(200):
            n = len(ids)
            (nxt, nxt_ids), (obs, new_ids) = env.step(discrete(np.ones(n)))
            np.testing.assert_array_equal(nxt_ids, ids)
            done = nxt["done"]
            np.testing.assert_array_equal(new_ids, nxt_ids[~done])
            assert np.all(np.diff(new_ids) > 0)
            assert obs.equal(nxt[~done])
            np.testing.assert_array_equal(nxt["terminated"], done)  # a fall, no time limit
            assert not nxt["truncated"].any()
            seen_drop |= 0 < len(new_ids) < n
            ids = new_ids
            if not len(ids):
                break
        assert seen_drop
        assert not len(ids)
        with pytest.raises(RuntimeError, match="no env is running"):
            env.step(discrete([]))
        obs, ids = env.reset()  # a new episode for every env
        assert len(ids) == 5
        assert obs["initial_state"].all()


def test_auto_reset_mode_keeps_terminal_observation() -> None:
    with GymVecEnv(cartpole, 4, seed=1, auto_reset=True) as env:
        env.reset()
        endings = 0
        for _ in range(100):
            (nxt, nxt_ids), (cont, cont_ids) = env.step(discrete(np.ones(4)))
            np.testing.assert_array_equal(nxt_ids, [0, 1, 2, 3])
            np.testing.assert_array_equal(cont_ids, [0, 1, 2, 3])
            done = nxt["done"]
            np.testing.assert_array_equal(cont["initial_state"], done)
            assert not cont["done"].any()
            assert not cont["terminated"].any()
            np.testing.assert_array_equal(cont["reward"][done], 0)
            np.testing.assert_array_equal(cont["last_action"][done], 0)
            assert cont[~done].equal(nxt[~done])
            # the terminal observation is outside the pole's allowed angle: really terminal
            assert np.all(np.abs(nxt["frame"][done, 2]) > 0.2)
            assert np.all(np.abs(cont["frame"][done]) <= 0.05)  # a fresh CartPole start
            endings += int(done.sum())
        assert endings > 4


def test_truncation_is_truncated_and_a_fall_is_terminated() -> None:
    with GymVecEnv(lambda: pendulum(max_episode_steps=5), 2, seed=0) as env:
        env.reset()
        action = DictTensor({"action": np.zeros((2, 1), np.float32)})
        for _ in range(4):
            (nxt, _), _ = env.step(action)
            assert not nxt["done"].any()
        (nxt, _), (_, cont_ids) = env.step(action)
        np.testing.assert_array_equal(nxt["truncated"], True)
        np.testing.assert_array_equal(nxt["terminated"], False)
        np.testing.assert_array_equal(nxt["done"], True)
        assert not len(cont_ids)
    with GymVecEnv(lambda: cartpole(max_episode_steps=500), 1, seed=0) as env:
        env.reset()
        for _ in range(100):
            (nxt, _), (_, ids) = env.step(discrete([1]))
            if not len(ids):
                break
        assert bool(nxt["terminated"][0])
        assert not bool(nxt["truncated"][0])


def test_box_actions_pendulum() -> None:
    with GymVecEnv(pendulum, 2, seed=0) as env:
        obs, _ = env.reset()
        assert obs["last_action"].shape == (2, 1)
        assert obs["last_action"].dtype == np.float32
        a = np.array([[1.5], [-0.25]], np.float64)  # float64 is cast to the space's float32
        (nxt, _), _ = env.step(DictTensor({"action": a, "log_prob": np.zeros(2)}))
        assert nxt["last_action"].dtype == np.float32
        np.testing.assert_array_equal(nxt["last_action"], a.astype(np.float32))


def test_dict_and_tuple_observations() -> None:
    with GymVecEnv(DictTupleEnv, 3, seed=5) as env:
        obs, _ = env.reset()
        assert list(obs.keys()) == [  # the space's order: gymnasium sorts a dict's keys
            "inner/cell", "inner/flag", "pair/0", "pair/1", "pos", "task", *OBS_KEYS,
        ]
        specs = obs.specs()
        assert specs["pos"] == Spec((2,), np.float32)
        assert specs["inner/flag"] == Spec((3,), np.int8)
        assert specs["inner/cell"] == Spec((), np.int64)
        assert specs["pair/0"] == Spec((), np.int64)
        assert specs["pair/1"] == Spec((2, 2), np.uint8)
        assert specs["task"] == Spec((), np.int64)
        plain = DictTupleEnv()
        first, _ = plain.reset(seed=5 + 2)
        np.testing.assert_array_equal(obs["pos"][2], first["pos"])
        np.testing.assert_array_equal(obs["inner/flag"][2], first["inner"]["flag"])
        np.testing.assert_array_equal(obs["pair/1"][2], first["pair"][1])
        (nxt, _), _ = env.step(discrete([0, 1, 2]))
        second, reward, *_ = plain.step(np.int64(2))
        np.testing.assert_array_equal(nxt["pair/0"][2], second["pair"][0])
        assert nxt["reward"][2] == reward
    with GymVecEnv(TupleEnv, 2, seed=0) as env:
        obs, _ = env.reset()
        assert list(obs.keys())[:2] == ["frame/0", "frame/1"]
        assert obs["frame/0"].dtype == np.float64
        action = np.array([[1, 2], [0, 1]])
        (nxt, _), _ = env.step(DictTensor({"action": action}))
        np.testing.assert_array_equal(nxt["frame/1"], action)  # the env echoes its action
        np.testing.assert_array_equal(nxt["last_action"], action)


@pytest.mark.parametrize("auto_reset", [False, True])
def test_env_info_rows_are_reset_options(auto_reset: bool) -> None:
    with GymVecEnv(lambda: DictTupleEnv(length=2), 3, seed=0, auto_reset=auto_reset) as env:
        info = DictTensor({"task": np.array([10, 20, 30])})
        obs, _ = env.reset(info)
        np.testing.assert_array_equal(obs["task"], [10, 20, 30])
        env.step(discrete([0, 0, 0]))
        (nxt, _), (obs, _) = env.step(discrete([0, 0, 0]))  # episodes of length 2 end
        assert nxt["terminated"].all()
        if auto_reset:  # and restart with the same task
            assert obs["initial_state"].all()
            np.testing.assert_array_equal(obs["task"], [10, 20, 30])
            assert [len(e.unwrapped.options_seen) for e in env.envs] == [2, 2, 2]
        envs = env.envs
        assert [e.unwrapped.options_seen[0] for e in envs] == [
            {"task": 10}, {"task": 20}, {"task": 30}]
        env.reset()  # no env_info: no options
        assert envs[0].unwrapped.options_seen[-1] is None


def test_gymnasium_id_and_repr() -> None:
    with GymVecEnv("CartPole-v1", 2, seed=0, auto_reset=True) as env:
        assert env.auto_reset
        assert "CartPole" in repr(env)
        obs, _ = env.reset()
        assert obs["frame"].shape == (2, 4)


def test_returned_arrays_are_fresh() -> None:
    with GymVecEnv(cartpole, 3, seed=0, auto_reset=True) as env:
        obs0, _ = env.reset()
        kept = obs0.clone()
        (nxt, ids), (cont, cont_ids) = env.step(discrete([0, 1, 0]))
        for key in nxt.keys():
            assert not np.shares_memory(nxt[key], cont[key])
        ids[:] = 99  # the caller owns what it gets
        cont_ids[:] = 99
        (nxt2, ids2), _ = env.step(discrete([0, 1, 0]))
        np.testing.assert_array_equal(ids2, [0, 1, 2])
        assert obs0.equal(kept)
        assert not nxt2.equal(nxt)


def test_torch_actions_are_accepted() -> None:
    torch = pytest.importorskip("torch")
    with GymVecEnv(cartpole, 2, seed=0) as env:
        env.reset()
        action = DictTensor({"action": torch.tensor([1, 0]), "logits": torch.zeros(2, 2)})
        (nxt, _), _ = env.step(action)
        np.testing.assert_array_equal(nxt["last_action"], [1, 0])
        assert isinstance(nxt["last_action"], np.ndarray)
