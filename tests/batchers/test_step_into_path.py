"""The batchers' step_into fast path gives the same Trajectories as the generic step() path.

A GymVecEnv in auto-reset mode has ``step_into``: the collector then writes observations
straight into its buffer. ``StepOnly`` hides it, so the same envs go through ``step()``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from rlstructures.agents import Agent, EnvIds, GymVecEnv, StepResult
from rlstructures.batchers import Batcher, LocalBatcher
from rlstructures.dicttensor import DictTensor, TemporalDictTensor, Trajectories
from tests.batchers.conftest import BATCHERS, OTHERS, REFERENCE, BatcherKind

pytestmark = pytest.mark.timeout(120)

SEEDS = [0, 100]  # 2 workers
N_ENVS = 3  # per worker


# ---------------------------------------------------------------------- envs
def make_plain(seed: int, n_envs: int = N_ENVS) -> GymVecEnv:
    """CartPole-v1 in auto-reset mode: the batchers take the step_into path."""
    return GymVecEnv("CartPole-v1", n_envs, seed, auto_reset=True)


class StepOnly:
    """A GymVecEnv behind the plain VecEnv protocol: no ``step_into`` (nor ``auto_reset``)."""

    def __init__(self, env: GymVecEnv) -> None:
        self._env = env

    @property
    def n_envs(self) -> int:
        return self._env.n_envs

    @property
    def observation_space(self) -> gym.Space[Any]:
        return self._env.observation_space

    @property
    def action_space(self) -> gym.Space[Any]:
        return self._env.action_space

    def reset(self, env_info: DictTensor | None = None) -> tuple[DictTensor, EnvIds]:
        return self._env.reset(env_info)

    def step(self, action: DictTensor) -> StepResult:
        return self._env.step(action)

    def close(self) -> None:
        self._env.close()


class AutoResetStepOnly(StepOnly):
    """Says it is in auto-reset mode, but has no ``step_into``: still the step() path."""

    @property
    def auto_reset(self) -> bool:
        return True


class Spy(StepOnly):
    """Delegates everything, ``step_into`` included, and records which step method ran."""

    def __init__(self, env: GymVecEnv, calls: list[str]) -> None:
        super().__init__(env)
        self.calls = calls

    @property
    def auto_reset(self) -> bool:
        return self._env.auto_reset

    def step(self, action: DictTensor) -> StepResult:
        self.calls.append("step")
        return super().step(action)

    def step_into(
        self, action: DictTensor, out: dict[str, Any], final: dict[str, Any]
    ) -> EnvIds:
        self.calls.append("step_into")
        return self._env.step_into(action, out, final)


def make_step_only(seed: int, n_envs: int = N_ENVS) -> StepOnly:
    return StepOnly(make_plain(seed, n_envs))


def make_auto_reset_step_only(seed: int, n_envs: int = N_ENVS) -> StepOnly:
    return AutoResetStepOnly(make_plain(seed, n_envs))


def make_spy(seed: int, calls: list[str], auto_reset: bool = True) -> Spy:
    return Spy(GymVecEnv("CartPole-v1", N_ENVS, seed, auto_reset=auto_reset), calls)


# ---------------------------------------------------------------------- agents
class LeanAgent(Agent):
    """Deterministic: pushes the cart the way the pole leans, offset by agent_info "bias".

    Pushing toward the lean is wrong half of the time, so episodes end every ~10-40 steps.
    """

    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        frame = observation["frame"]
        bias = agent_info["bias"] if "bias" in agent_info else np.zeros(len(frame), np.float32)
        score = (frame[:, 2] + bias).astype(np.float32)
        action = (score < 0).astype(np.int64)
        return DictTensor({"action": action, "score": score}), state


class CoinAgent(Agent):
    """Stochastic: uniform actions from a generator seeded by ``seed()``."""

    def __init__(self) -> None:
        self.rng = np.random.default_rng()

    def seed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        n = len(observation)
        action = self.rng.integers(0, 2, n)
        return DictTensor({"action": action, "u": self.rng.random(n, np.float32)}), state


class CounterAgent(Agent):
    """Stateful: counts the steps of the current episode (reset on ``initial_state``)."""

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
        count = state["count"]
        action = ((count // 3) % 2).astype(np.int64)
        return DictTensor({"action": action, "count": count.copy()}), DictTensor(
            {"count": count + 1}
        )


class PrevFrameAgent(Agent):
    """Stateful: its state is the previous frame (frame differencing, a classic).

    Acts on the change of the pole angle since the previous step; stores the previous angle
    it used. The observation may be a view of the batcher's buffer, valid during the call
    only (``Agent.__call__``), so the state is a copy: keeping the array itself gives other
    actions on the step_into path when n_timesteps is 1, where the next slice overwrites it.
    """

    def initial_state(self, agent_info: DictTensor, batch_size: int) -> DictTensor:
        return DictTensor({"prev": np.zeros((batch_size, 4), np.float32)})

    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        n = len(observation)
        state = self.reset_where_initial(state, self.initial_state(agent_info, n), observation)
        frame, prev = observation["frame"], state["prev"]
        action = (frame[:, 2] > prev[:, 2]).astype(np.int64)
        out = DictTensor({"action": action, "prev_angle": prev[:, 2].copy()})
        return out, DictTensor({"prev": frame.copy()})


class PrevFrameViewAgent(PrevFrameAgent):
    """Like PrevFrameAgent, but its state is the observation array itself, not a copy.

    The state a batcher carries across slices must keep its values even when it is a view
    of the buffer that the next slice overwrites (n_timesteps=1 is where it shows).
    """

    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        out, _ = super().__call__(state, observation, agent_info, history)
        return out, DictTensor({"prev": observation["frame"]})


class HistoryAgent(Agent):
    """Needs the history: acts on the mean pole angle over the slice so far."""

    def require_history(self) -> bool:
        return True

    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        assert history is not None
        n = len(observation)
        past = history["observation/frame"]  # [n, t, 4]
        total = past[:, :, 2].sum(1) + observation["frame"][:, 2]
        mean = (total / (past.shape[1] + 1)).astype(np.float32)
        action = (mean > 0).astype(np.int64)
        t = np.full(n, past.shape[1], np.int64)
        initial = history["observation/initial_state"].sum(1).astype(np.int64)
        return DictTensor({"action": action, "mean": mean, "t": t, "starts": initial}), state


class EverythingAgent(Agent):
    """Stateful, stochastic (seeded) and with history: one agent for the process runs."""

    def __init__(self) -> None:
        self.rng = np.random.default_rng()

    def seed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def require_history(self) -> bool:
        return True

    def initial_state(self, agent_info: DictTensor, batch_size: int) -> DictTensor:
        return DictTensor({"count": np.zeros(batch_size, np.int64)}, batch_shape=(batch_size,))

    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        assert history is not None
        n = len(observation)
        state = self.reset_where_initial(state, self.initial_state(agent_info, n), observation)
        noise = self.rng.random(n, np.float32)
        past = history["observation/frame"][:, :, 2].sum(1).astype(np.float32)
        lean = observation["frame"][:, 2] + past + 0.05 * (noise - 0.5)
        action = np.where(state["count"] % 4 == 0, self.rng.integers(0, 2, n), lean > 0)
        out = {"action": action.astype(np.int64), "noise": noise, "past": past}
        return DictTensor(out), DictTensor({"count": state["count"] + 1})


def gru_agent() -> Agent:
    """The recurrent torch agent of the other tests (torch actions and state)."""
    pytest.importorskip("torch")
    from tests.batchers.gru_agent import GRUAgent

    return GRUAgent()


# ---------------------------------------------------------------------- helpers
def collect(
    cls: Callable[..., Batcher],
    make_agent: Callable[[], Agent],
    make_env: Callable[[int], Any],
    n_timesteps: int,
    n_slices: int = 3,
    agent_info: DictTensor | None = None,
    **kw: Any,
) -> list[Trajectories]:
    """``n_slices`` consecutive execute()/get() after one reset(); every env always runs."""
    example = None if agent_info is None else agent_info[:1]
    with cls(
        make_agent, make_env, n_timesteps=n_timesteps, seeds=SEEDS, agent_info=example, **kw
    ) as b:
        b.reset(agent_info=agent_info)
        out = []
        for s in range(n_slices):
            # new agent_info rows from the second slice on: the fast path reads them too
            rows = None if agent_info is None or s == 0 else agent_info[::-1].clone()
            b.execute(rows)
            tr, n_running = b.get()
            assert n_running == b.n_envs
            np.testing.assert_array_equal(tr.lengths, n_timesteps)
            out.append(tr)
    return out


def assert_same_runs(a: list[Trajectories], b: list[Trajectories]) -> None:
    """Trajectories.equal slice by slice; on a difference, name the first key that differs."""
    assert len(a) == len(b)
    for s, (x, y) in enumerate(zip(a, b, strict=True)):
        if x.equal(y):
            continue
        for part in ("info", "trajectories"):
            dx, dy = getattr(x, part), getattr(y, part)
            assert list(dx.keys()) == list(dy.keys()), (s, part)
            for k in dx.keys():
                if not np.array_equal(dx[k], dy[k]):
                    where = np.argwhere(dx[k] != dy[k])[:3].tolist()
                    raise AssertionError(f"slice {s}: {part}[{k!r}] differs at {where}")
        raise AssertionError(f"slice {s}: not equal (batch shape, dtype or lengths)")


def check_layout(slices: list[Trajectories]) -> int:
    """The layout law over consecutive slices; returns how many episodes ended.

    ``_observation/*`` at t equals ``observation/*`` at t + 1 (the next slice's step 0 for
    the last step) unless ``_observation/done`` at t, where ``observation/initial_state``
    at t + 1 is True instead (and only there).
    """
    endings = 0
    steps = [tr.trajectories for tr in slices]
    keys = [k[len("observation/") :] for k in steps[0].keys() if k.startswith("observation/")]
    for s, cur in enumerate(steps):
        done = cur["_observation/done"]  # [n, T]
        assert not cur["_observation/initial_state"].any()  # a final observation never is
        following = {}
        for k in keys:
            obs = cur[f"observation/{k}"]
            if s + 1 < len(steps):
                following[k] = np.concatenate([obs[:, 1:], steps[s + 1][f"observation/{k}"][:, :1]],
                                              axis=1)
            else:
                following[k] = obs[:, 1:]
        t_max = following[keys[0]].shape[1]  # T, or T - 1 for the last slice
        cont = ~done[:, :t_max]
        np.testing.assert_array_equal(following["initial_state"], done[:, :t_max])
        for k in keys:
            nxt = cur[f"_observation/{k}"][:, :t_max]
            np.testing.assert_array_equal(nxt[cont], following[k][cont], err_msg=k)
        endings += int(done.sum())
    return endings


# ---------------------------------------------------------------------- the two paths
AGENTS: dict[str, tuple[Callable[[], Agent], dict[str, Any]]] = {
    "deterministic": (LeanAgent, {}),
    "stochastic": (CoinAgent, {"agent_seeds": [7, 8]}),
    "stateful": (CounterAgent, {"store_agent_state": True}),
    "prev-frame": (PrevFrameAgent, {"store_agent_state": True}),
    "prev-frame-view": (PrevFrameViewAgent, {}),
    "history": (HistoryAgent, {}),
    "everything": (EverythingAgent, {"store_agent_state": True, "agent_seeds": [3, 4]}),
}

CASES = [(name, t) for name in AGENTS for t in (1, 7, 50)]


@pytest.mark.parametrize(("agent", "n_timesteps"), CASES)
@pytest.mark.parametrize("hidden", [make_step_only, make_auto_reset_step_only])
def test_step_into_path_equals_step_path(
    agent: str, n_timesteps: int, hidden: Callable[[int], StepOnly]
) -> None:
    make_agent, kw = AGENTS[agent]
    fast = collect(LocalBatcher, make_agent, make_plain, n_timesteps, **kw)
    slow = collect(LocalBatcher, make_agent, hidden, n_timesteps, **kw)
    assert_same_runs(fast, slow)
    if n_timesteps == 50:
        assert check_layout(fast) > 0  # episodes ended within the slices


@pytest.mark.parametrize("n_timesteps", [1, 7])
def test_agent_info_rows_reach_both_paths(n_timesteps: int) -> None:
    bias = DictTensor({"bias": np.linspace(-0.05, 0.05, 6, dtype=np.float32)})
    fast = collect(LocalBatcher, LeanAgent, make_plain, n_timesteps, agent_info=bias)
    slow = collect(LocalBatcher, LeanAgent, make_step_only, n_timesteps, agent_info=bias)
    assert_same_runs(fast, slow)
    np.testing.assert_array_equal(fast[0].info["agent_info/bias"], bias["bias"])
    np.testing.assert_array_equal(fast[1].info["agent_info/bias"], bias["bias"][::-1])


def test_torch_agent_same_on_both_paths() -> None:
    fast = collect(LocalBatcher, gru_agent, make_plain, 7, store_agent_state=True)
    slow = collect(LocalBatcher, gru_agent, make_step_only, 7, store_agent_state=True)
    assert_same_runs(fast, slow)


@pytest.mark.parametrize("auto_reset", [True, False])
def test_the_path_taken(auto_reset: bool) -> None:
    """step_into at every step in auto-reset mode, step() in episode mode."""
    calls: list[str] = []
    make_env = functools.partial(make_spy, calls=calls, auto_reset=auto_reset)
    with LocalBatcher(LeanAgent, make_env, n_timesteps=5, seeds=SEEDS) as b:
        b.reset()
        b.execute()
        b.get()
    if auto_reset:
        assert calls == ["step_into"] * 5 * len(SEEDS)
    else:
        assert set(calls) == {"step"}


# ---------------------------------------------------------------------- processes
# agent_seeds: a seeded agent per worker, as REFERENCE's
@pytest.mark.parametrize("cls", [k for k in OTHERS if k.agent_per_worker])
@pytest.mark.parametrize("n_timesteps", [1, 7])
def test_equals_the_reference_on_the_fast_path(cls: BatcherKind, n_timesteps: int) -> None:
    kw: dict[str, Any] = {"store_agent_state": True, "agent_seeds": [3, 4]}
    local = collect(REFERENCE, EverythingAgent, make_plain, n_timesteps, n_slices=4, **kw)
    other = collect(cls, EverythingAgent, make_plain, n_timesteps, n_slices=4, **kw)
    assert_same_runs(local, other)
    check_layout(other)


@pytest.mark.parametrize("cls", BATCHERS)
def test_layout_law_on_the_fast_path(cls: BatcherKind) -> None:
    slices = collect(cls, CoinAgent, make_plain, 13, n_slices=3, agent_seeds=[1, 2])
    assert check_layout(slices) > 0
    # episodes restart inside slices (random actions end them every ~20 steps)
    assert any(tr.trajectories["observation/initial_state"][:, 1:].any() for tr in slices)
    for tr in slices:
        assert (tr.trajectories["_observation/reward"] == 1.0).all()  # 1 per transition
