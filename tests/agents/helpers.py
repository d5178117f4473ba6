"""Envs, agents and a small rollout loop shared by the agents tests."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt
from gymnasium import spaces

from rlstructures.agents import Agent, VecEnv
from rlstructures.dicttensor import DictTensor, TemporalDictTensor, Trajectories


# ---------------------------------------------------------------------- envs
class DictTupleEnv(gym.Env[dict[str, Any], np.int64]):
    """A Dict observation with nested Dict and Tuple entries; Discrete(3) actions.

    Episodes last ``length`` steps (terminated). Values are drawn from ``np_random`` so that
    seeding shows; ``reset(options={"task": k})`` stores k in the observation.
    """

    def __init__(self, length: int = 4) -> None:
        self.observation_space = spaces.Dict({
            "pos": spaces.Box(-1.0, 1.0, (2,), np.float32),
            "inner": spaces.Dict({
                "flag": spaces.MultiBinary(3),
                "cell": spaces.Discrete(5),
            }),
            "pair": spaces.Tuple((spaces.Discrete(4), spaces.Box(0, 255, (2, 2), np.uint8))),
            "task": spaces.Box(0, 100, (), np.int64),
        })
        self.action_space = spaces.Discrete(3)
        self.length = length
        self.t = 0
        self.task = 0
        self.options_seen: list[dict[str, Any] | None] = []

    def _obs(self) -> dict[str, Any]:
        rng = self.np_random
        return {
            "pos": rng.uniform(-1, 1, 2).astype(np.float32),
            "inner": {"flag": rng.integers(0, 2, 3).astype(np.int8),
                      "cell": np.int64(rng.integers(5))},
            "pair": (np.int64(rng.integers(4)), rng.integers(0, 256, (2, 2)).astype(np.uint8)),
            "task": np.array(self.task, np.int64),
        }

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        self.options_seen.append(options)
        self.task = int(options["task"]) if options else 0
        self.t = 0
        return self._obs(), {}

    def step(self, action: np.int64) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        self.t += 1
        return self._obs(), float(action), self.t >= self.length, False, {}


class TupleEnv(gym.Env[tuple[Any, ...], npt.NDArray[np.int64]]):
    """A top-level Tuple observation; MultiDiscrete([2, 3]) actions echoed in the obs."""

    def __init__(self) -> None:
        self.observation_space = spaces.Tuple((
            spaces.Box(-1.0, 1.0, (3,), np.float64), spaces.MultiDiscrete([2, 3]),
        ))
        self.action_space = spaces.MultiDiscrete([2, 3])

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        super().reset(seed=seed)
        return (self.np_random.uniform(-1, 1, 3), np.zeros(2, np.int64)), {}

    def step(
        self, action: npt.NDArray[np.int64]
    ) -> tuple[tuple[Any, ...], float, bool, bool, dict[str, Any]]:
        assert self.action_space.contains(action)
        return (self.np_random.uniform(-1, 1, 3), np.array(action)), 0.0, False, False, {}


class ShapeShiftEnv(gym.Env[npt.NDArray[np.float32], np.int64]):
    """Declares Box((3,)) but returns a (4,) observation from step ``bad_step`` on."""

    def __init__(self, bad_step: int = 2) -> None:
        self.observation_space = spaces.Box(-1.0, 1.0, (3,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.bad_step = bad_step
        self.t = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[npt.NDArray[np.float32], dict[str, Any]]:
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(3, np.float32), {}

    def step(
        self, action: np.int64
    ) -> tuple[npt.NDArray[np.float32], float, bool, bool, dict[str, Any]]:
        self.t += 1
        size = 4 if self.t >= self.bad_step else 3
        return np.zeros(size, np.float32), 0.0, False, False, {}


# ---------------------------------------------------------------------- agents
class ConstantAgent(Agent):
    """Always the same Discrete action; stateless, numpy only."""

    def __init__(self, action: int = 1) -> None:
        self.action = action

    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        b = len(observation)
        return DictTensor({"action": np.full(b, self.action, np.int64)}), state


class RandomAgent(Agent):
    """Uniform Discrete(n) actions from its own seeded generator, numpy only."""

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n = n
        self.rng = np.random.default_rng(seed)

    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        b = len(observation)
        return DictTensor({"action": self.rng.integers(0, self.n, b)}), state


class AttentionAgent(Agent):
    """Dot-product attention over its history: the slice's earlier frames and its own
    earlier outputs (``action/action``, ``action/score``); deterministic (argmax), numpy.

    Its outputs depend on every history key, so a history that differs in any way (missing
    actions, another window, other rows) gives other outputs.
    """

    def __init__(self, obs_dim: int = 4, n_actions: int = 2, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.n_actions = n_actions
        self.w_query = rng.normal(size=(obs_dim, 8))
        self.w_key = rng.normal(size=(obs_dim + n_actions + 1, 8))
        self.w_out = rng.normal(size=(2 * obs_dim, n_actions))
        self.calls: list[int] = []  # the history length T of every call

    def require_history(self) -> bool:
        return True

    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        if history is None:
            raise TypeError("AttentionAgent requires its history")
        frame = observation["frame"].astype(np.float64)  # [B, d]
        t = history.max_length
        self.calls.append(t)
        context = np.zeros_like(frame)
        if t:
            past = history["observation/frame"].astype(np.float64)  # [B, t, d]
            actions = np.eye(self.n_actions)[history["action/action"]]  # [B, t, n_actions]
            score = history["action/score"][..., None]  # [B, t, 1]
            keys = np.tanh(np.concatenate([past, actions, score], axis=-1) @ self.w_key)
            logits = np.einsum("bk,btk->bt", frame @ self.w_query, keys)
            weights = np.exp(logits - logits.max(axis=1, keepdims=True))
            weights /= weights.sum(axis=1, keepdims=True)
            context = np.einsum("bt,btd->bd", weights, past)
        out = np.concatenate([frame, context], axis=1) @ self.w_out  # [B, n_actions]
        action = out.argmax(axis=1).astype(np.int64)
        return DictTensor({"action": action, "score": out.max(axis=1)}), state


# ---------------------------------------------------------------------- rollout
def history_so_far(
    rows: list[tuple[npt.NDArray[np.int64], DictTensor]], ids: npt.NDArray[np.int64],
    first_observation: DictTensor,
) -> TemporalDictTensor:
    """The ``history`` of the documented contract at step ``len(rows)`` for envs ``ids``:
    the earlier steps of the slice, ``observation/*`` and ``action/*`` keys only."""
    if not rows:  # T = 0: the observation keys (what the batchers' probe step passes)
        specs = first_observation.prefix("observation/").specs()
        return TemporalDictTensor(DictTensor.zeros(specs, (len(ids), 0)))
    past = []
    for step_ids, step in rows:
        keys = [k for k in step.keys() if k.startswith(("observation/", "action/"))]
        past.append(step.select(keys)[np.searchsorted(step_ids, ids)])
    return TemporalDictTensor(DictTensor.stack(past, dim=1))


def rollout(
    env: VecEnv,
    agent: Agent,
    n_steps: int,
    agent_info: DictTensor | None = None,
) -> Trajectories:
    """Collect ``n_steps`` steps of every env, stored the way the batchers store them.

    Trajectory keys ``"observation/<k>"``, ``"action/<k>"`` and ``"_observation/<k>"``
    (numpy), info ``"agent_info/..."`` and ``"agent_state/..."`` (the state at step 0).
    An env that stops (episode mode) gives a shorter sequence. An agent that
    ``require_history()`` gets the history of the documented contract (one slice).
    """
    n = env.n_envs
    info = agent_info if agent_info is not None else DictTensor({}, batch_shape=(n,))
    obs, ids = env.reset()
    state = agent.initial_state(info, n)
    rows: list[tuple[npt.NDArray[np.int64], DictTensor]] = []
    for _ in range(n_steps):
        if agent.require_history():  # the slice's earlier steps, as the batchers pass them
            history = history_so_far(rows, ids, obs)
            action, new_state = agent(state, obs, info[ids], history)
        else:
            action, new_state = agent(state, obs, info[ids])
        (next_obs, next_ids), (cont_obs, cont_ids) = env.step(action)
        assert np.array_equal(next_ids, ids)
        step = obs.prefix("observation/") | action.numpy().prefix("action/")
        rows.append((ids, step | next_obs.prefix("_observation/")))
        state = new_state[np.searchsorted(ids, cont_ids)]
        obs, ids = cont_obs, cont_ids
        if not len(ids):
            break
    specs = rows[0][1].specs()
    steps = DictTensor.zeros(specs, (n, n_steps))
    lengths = np.zeros(n, np.int64)
    for t, (row_ids, step) in enumerate(rows):
        steps[row_ids, t] = step
        lengths[row_ids] += 1
    start_state = agent.initial_state(info, n).numpy()
    trajectories = TemporalDictTensor(steps, lengths)
    return Trajectories(info.prefix("agent_info/") | start_state.prefix("agent_state/"),
                        trajectories)
