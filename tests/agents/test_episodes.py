"""EpisodeTracker: against a naive loop, across batches, in both modes of a real VecEnv."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rlstructures.agents import EpisodeTracker, EpisodeTrackerError, GymVecEnv
from rlstructures.dicttensor import DictTensor, TemporalDictTensor, Trajectories
from tests.agents.helpers import ConstantAgent, rollout

Episode = tuple[float, int, int, bool]  # return, length, env, terminated


class NaiveTracker:
    """The definition, one step at a time: the reference EpisodeTracker is checked against."""

    def __init__(self) -> None:
        self.running: dict[int, tuple[float, int]] = {}  # env -> (return, length)

    def update(self, steps: TemporalDictTensor) -> list[Episode]:
        ended = []
        for b in range(len(steps)):
            for t in range(int(steps.lengths[b])):
                if steps["observation/initial_state"][b, t]:
                    self.running[b] = (0.0, 0)
                if b in self.running:
                    ret, length = self.running[b]
                    self.running[b] = (ret + float(steps["_observation/reward"][b, t]), length + 1)
                if steps["_observation/done"][b, t] and b in self.running:
                    ret, length = self.running.pop(b)
                    ended.append((ret, length, b, bool(steps["_observation/terminated"][b, t])))
        return ended


def as_list(ended: DictTensor) -> list[Episode]:
    assert ended.backend == "numpy"
    assert {k: str(s.dtype) for k, s in ended.specs().items()} == {
        "return": "float64", "length": "int64", "env": "int64", "terminated": "bool",
    }
    return [
        (float(r), int(n), int(e), bool(d))
        for r, n, e, d in zip(ended["return"], ended["length"], ended["env"],
                              ended["terminated"], strict=True)
    ]


@st.composite
def batches(draw: st.DrawFn) -> list[TemporalDictTensor]:
    """Successive batches of one batcher: same B, any T, random flags and lengths."""
    b = draw(st.integers(1, 4))
    out = []
    for _ in range(draw(st.integers(1, 4))):
        t = draw(st.integers(0, 6))
        flags = st.lists(st.booleans(), min_size=b * t, max_size=b * t)
        rewards = st.lists(st.floats(-10, 10, width=32), min_size=b * t, max_size=b * t)
        lengths = draw(st.lists(st.integers(0, t), min_size=b, max_size=b))
        out.append(TemporalDictTensor({
            "observation/initial_state": np.array(draw(flags), bool).reshape(b, t),
            "_observation/reward": np.array(draw(rewards), np.float32).reshape(b, t),
            "_observation/done": np.array(draw(flags), bool).reshape(b, t),
            "_observation/terminated": np.array(draw(flags), bool).reshape(b, t),
        }, np.array(lengths, np.int64)))
    return out


@given(batches())
def test_matches_a_naive_loop(steps: list[TemporalDictTensor]) -> None:
    tracker, naive = EpisodeTracker(), NaiveTracker()
    for batch in steps:
        # exactly: returns are float64 sums in step order, as the loop adds them
        assert as_list(tracker.update(batch)) == naive.update(batch)


def make_batch(initial: list[list[int]], done: list[list[int]], reward: float = 1.0,
               lengths: list[int] | None = None) -> Trajectories:
    init, end = np.array(initial, bool), np.array(done, bool)
    steps = TemporalDictTensor({
        "observation/initial_state": init,
        "_observation/reward": np.full(init.shape, reward, np.float32),
        "_observation/done": end,
        "_observation/terminated": end,
    }, None if lengths is None else np.array(lengths))
    return Trajectories(DictTensor({}, batch_shape=(len(init),)), steps)


def test_an_episode_spanning_several_batches() -> None:
    tracker = EpisodeTracker()
    assert len(tracker.update(make_batch([[1, 0]], [[0, 0]]))) == 0
    assert len(tracker.update(make_batch([[0, 0]], [[0, 0]], reward=2.0))) == 0
    ended = tracker.update(make_batch([[0, 1, 0]], [[1, 0, 0]], reward=0.5))
    assert as_list(ended) == [(2 * 1.0 + 2 * 2.0 + 0.5, 5, 0, True)]
    ended = tracker.update(make_batch([[0]], [[1]]))  # the episode started in the last batch
    assert as_list(ended) == [(0.5 + 0.5 + 1.0, 3, 0, True)]


def test_episodes_ending_in_the_middle_of_a_slice() -> None:
    tracker = EpisodeTracker()
    ended = tracker.update(make_batch(
        [[1, 0, 1, 1, 0, 0], [1, 0, 0, 0, 1, 0]],
        [[0, 1, 1, 0, 0, 0], [0, 0, 0, 1, 0, 1]],
    ))
    assert as_list(ended) == [(2.0, 2, 0, True), (1.0, 1, 0, True), (4.0, 4, 1, True),
                              (2.0, 2, 1, True)]
    assert repr(tracker) == "EpisodeTracker(running_episodes=1)"


def test_episodes_whose_start_was_not_seen_are_not_reported() -> None:
    tracker = EpisodeTracker()  # created after collection began: no initial_state first
    ended = tracker.update(make_batch([[0, 0, 1, 0]], [[0, 1, 0, 1]]))
    assert as_list(ended) == [(2.0, 2, 0, True)]
    # a reset in the middle of an episode (a new initial_state before done) drops it
    tracker.update(make_batch([[1, 0]], [[0, 0]]))
    ended = tracker.update(make_batch([[0, 1, 0]], [[0, 0, 1]]))
    assert as_list(ended) == [(2.0, 2, 0, True)]
    # an end without a start after it was already counted: not an episode
    assert len(tracker.update(make_batch([[0, 0]], [[1, 1]]))) == 0


def test_padding_steps_are_ignored() -> None:
    tracker = EpisodeTracker()
    ended = tracker.update(make_batch([[1, 0, 1], [1, 0, 0]], [[0, 1, 1], [1, 1, 1]],
                                      lengths=[2, 0]))
    assert as_list(ended) == [(2.0, 2, 0, True)]


def test_errors() -> None:
    tracker = EpisodeTracker()
    with pytest.raises(EpisodeTrackerError, match=r"\['_observation/done'.* are missing"):
        tracker.update(TemporalDictTensor({
            "observation/initial_state": np.zeros((1, 2), bool),
            "_observation/reward": np.zeros((1, 2), np.float32),
        }))
    with pytest.raises(EpisodeTrackerError, match=r"takes the Trajectories .* got dict"):
        tracker.update({})  # type: ignore[arg-type]  # the point of the test
    tracker.update(make_batch([[1]], [[0]]))
    with pytest.raises(EpisodeTrackerError, match="got 2 sequences after batches of 1"):
        tracker.update(make_batch([[1], [1]], [[0], [0]]))
    tracker.reset()
    assert len(tracker.update(make_batch([[1], [1]], [[1], [1]]))) == 2


def test_torch_trajectories() -> None:
    pytest.importorskip("torch")
    batch = make_batch([[1, 0]], [[0, 1]]).torch()
    assert batch.trajectories.backend == "torch"
    ended = EpisodeTracker().update(batch)
    assert as_list(ended) == [(2.0, 2, 0, True)]  # a numpy DictTensor


# ---------------------------------------------------------------------- real envs
def gym_lengths(seed: int, n_envs: int, n_steps: int, action: int) -> list[list[int]]:
    """The episode lengths of each env, stepped by hand (gymnasium, CartPole)."""
    out = []
    for k in range(n_envs):
        env = gym.make("CartPole-v1")
        env.reset(seed=seed + k)
        lengths, t = [], 0
        for _ in range(n_steps):
            _, _, term, trunc, _ = env.step(action)
            t += 1
            if term or trunc:
                lengths.append(t)
                t = 0
                env.reset()
        out.append(lengths)
    return out


def slices(trajectories: Trajectories, size: int) -> list[Trajectories]:
    """Successive batches of ``size`` steps, as a batcher with n_timesteps=size returns."""
    t_max = trajectories.trajectories.max_length
    return [
        Trajectories(trajectories.info, trajectories.trajectories.temporal_slice(s, s + size))
        for s in range(0, t_max, size)
    ]


@pytest.mark.parametrize("auto_reset", [True, False])
def test_real_env_episodes_across_batches(auto_reset: bool) -> None:
    n_envs, n_steps = 3, 40
    with GymVecEnv("CartPole-v1", n_envs, seed=7, auto_reset=auto_reset) as env:
        trajectories = rollout(env, ConstantAgent(1), n_steps)
    tracker = EpisodeTracker()
    found: list[list[int]] = [[] for _ in range(n_envs)]
    for batch in slices(trajectories, 3):  # episodes of about 10 steps: several batches
        ended = tracker.update(batch)
        np.testing.assert_array_equal(ended["return"], ended["length"])  # reward 1 a step
        for length, k in zip(ended["length"].tolist(), ended["env"].tolist(), strict=True):
            found[k].append(length)
    expected = gym_lengths(7, n_envs, n_steps, action=1)
    if not auto_reset:
        expected = [lengths[:1] for lengths in expected]  # episode mode: one episode each
    assert found == expected
    assert all(len(lengths) >= 1 for lengths in found)


def test_first_step_not_initial_state() -> None:
    """A tracker started on the second batch: each env's first episode is not reported."""
    with GymVecEnv("CartPole-v1", 2, seed=3, auto_reset=True) as env:
        trajectories = rollout(env, ConstantAgent(0), 30)
    batches = slices(trajectories, 4)
    first: Any = trajectories.trajectories["_observation/done"][:, :4]
    assert not first.any()  # CartPole cannot fall in 4 steps
    tracker = EpisodeTracker()
    reported = [tracker.update(b) for b in batches[1:]]
    lengths: list[npt.NDArray[np.int64]] = [r["length"] for r in reported]
    expected = gym_lengths(3, 2, 30, action=0)
    per_env = [[int(n) for r in reported for n, k in zip(r["length"], r["env"], strict=True)
                if k == e] for e in range(2)]
    assert per_env == [lengths_e[1:] for lengths_e in expected]
    assert sum(len(x) for x in lengths) == sum(len(x) - 1 for x in expected)
