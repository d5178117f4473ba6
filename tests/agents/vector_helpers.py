"""Small seeded envs, their vector envs in every autoreset mode, and a deterministic agent.

Shared by the GymVectorVecEnv tests of tests/agents and tests/batchers; module level so
that MultiProcessBatcher workers can unpickle them.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import numpy.typing as npt
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from rlstructures.agents import Agent, GymVecEnv, GymVectorVecEnv
from rlstructures.dicttensor import DictTensor, TemporalDictTensor, Trajectories

ActionKind = Literal["discrete", "box", "multidiscrete"]
ACTION_KINDS: tuple[ActionKind, ...] = ("discrete", "box", "multidiscrete")

#: The ways a vector env restarts ended envs: (autoreset mode, partial_reset).
RESTARTS: dict[str, tuple[AutoresetMode, Literal["auto", "none"]]] = {
    "next_step+reset_mask": (AutoresetMode.NEXT_STEP, "auto"),
    "next_step+reset_steps": (AutoresetMode.NEXT_STEP, "none"),
    "same_step": (AutoresetMode.SAME_STEP, "auto"),
    "disabled": (AutoresetMode.DISABLED, "auto"),
}


class WalkEnv(gym.Env[Any, Any]):
    """A noisy walk on a line: episodes end by falling off (terminated) or a time limit.

    The noise comes from ``np_random``, so seeding shows in every step. With
    ``dict_obs`` the observation is ``{"pos": [2] float32, "t": Discrete(64)}``, else a
    ``[2]`` float32 Box. Actions: Discrete(3), a Box(-1, 1, (2,)) or MultiDiscrete([3, 2]).
    ``reset(options={"shift": x})`` starts at x (row k of an array: ``options["shift"][k]``
    is not looked up; a scalar or a ``[n]`` array is summed, to show it arrived).
    """

    def __init__(
        self, action_kind: ActionKind = "discrete", dict_obs: bool = False, limit: int = 7
    ) -> None:
        box = spaces.Box(-10.0, 10.0, (2,), np.float32)
        self.observation_space: spaces.Space[Any] = (
            spaces.Dict({"pos": box, "t": spaces.Discrete(64)}) if dict_obs else box
        )
        self.action_space: spaces.Space[Any] = {
            "discrete": spaces.Discrete(3),
            "box": spaces.Box(-1.0, 1.0, (2,), np.float32),
            "multidiscrete": spaces.MultiDiscrete([3, 2]),
        }[action_kind]
        self.kind, self.dict_obs, self.limit = action_kind, dict_obs, limit
        self.pos = np.zeros(2, np.float32)
        self.t = 0
        self.options_seen: list[Any] = []

    def _obs(self) -> Any:
        pos = self.pos.copy()
        return {"pos": pos, "t": self.t} if self.dict_obs else pos

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        self.options_seen.append(options)
        shift = float(np.sum(options["shift"])) if options and "shift" in options else 0.0
        self.pos = (self.np_random.uniform(-1, 1, 2) + shift).astype(np.float32)
        self.t = 0
        return self._obs(), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        if self.kind == "discrete":
            move = np.array([int(action) - 1, 0.0])
        elif self.kind == "box":
            move = np.asarray(action, np.float64)
        else:
            move = np.array([int(action[0]) - 1, int(action[1])], np.float64)
        self.pos = (self.pos + move + self.np_random.normal(0, 0.5, 2)).astype(np.float32)
        self.t += 1
        terminated = bool(np.abs(self.pos[0]) > 2.5)
        truncated = not terminated and self.t >= self.limit
        return self._obs(), float(self.pos[0]), terminated, truncated, {"t": self.t}


def make_walk(action_kind: ActionKind = "discrete", dict_obs: bool = False) -> WalkEnv:
    return WalkEnv(action_kind, dict_obs)


def sync_walk(
    n_envs: int, mode: AutoresetMode, action_kind: ActionKind = "discrete", dict_obs: bool = False
) -> SyncVectorEnv:
    fns = [functools.partial(make_walk, action_kind, dict_obs)] * n_envs
    return SyncVectorEnv(fns, autoreset_mode=mode)


def vector_walk(
    seed: int,
    *,
    n_envs: int,
    restart: str,
    auto_reset: bool,
    action_kind: ActionKind = "discrete",
    dict_obs: bool = False,
    info_keys: tuple[str, ...] = (),
) -> GymVectorVecEnv:
    """``make_env(seed)`` for the batchers: a GymVectorVecEnv over a SyncVectorEnv of walks."""
    mode, partial = RESTARTS[restart]
    make = functools.partial(sync_walk, n_envs, mode, action_kind, dict_obs)
    return GymVectorVecEnv(make, seed, auto_reset, partial_reset=partial, info_keys=info_keys)


def per_env_walk(
    seed: int,
    *,
    n_envs: int,
    auto_reset: bool,
    action_kind: ActionKind = "discrete",
    dict_obs: bool = False,
    info_keys: tuple[str, ...] = (),
) -> GymVecEnv:
    """The same walks, stepped one by one by GymVecEnv: the reference."""
    make = functools.partial(make_walk, action_kind, dict_obs)
    return GymVecEnv(make, n_envs, seed, auto_reset, info_keys=info_keys)


def envpool_cartpole(seed: int, n_envs: int, auto_reset: bool = True) -> GymVectorVecEnv:
    """An EnvPool CartPole pool (gymnasium API; it seeds at construction) as a VecEnv."""
    import envpool

    pool = envpool.make("CartPole-v1", env_type="gymnasium", num_envs=n_envs, seed=seed)
    return GymVectorVecEnv(pool, seed, auto_reset)


def frame_of(observation: DictTensor) -> npt.NDArray[Any]:
    """The position ``[B, 2]`` of a walk observation (Box or Dict space)."""
    return np.asarray(observation["pos"] if "pos" in observation else observation["frame"])


def policy(frame: npt.NDArray[Any], kind: ActionKind) -> npt.NDArray[Any]:
    """A deterministic action per row of ``frame`` ``[B, 2]``, in the ``kind`` action space."""
    bucket = np.floor(np.abs(frame[:, 0]) * 7 + np.abs(frame[:, 1]) * 3).astype(np.int64)
    if kind == "discrete":
        return np.asarray(bucket % 3)
    if kind == "box":
        wave = np.stack([np.sin(frame[:, 0] * 5), np.cos(frame[:, 1] * 3)], 1)
        return np.asarray(np.clip(wave, -1, 1))
    return np.stack([bucket % 3, bucket % 2], 1)


class WalkAgent(Agent):
    """The deterministic ``policy``; also stores the frame it acted on."""

    def __init__(self, action_kind: ActionKind = "discrete") -> None:
        self.kind = action_kind

    def initial_state(self, agent_info: DictTensor, batch_size: int) -> DictTensor:
        return DictTensor({}, batch_shape=(batch_size,))

    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        frame = frame_of(observation)
        action = policy(frame, self.kind)
        if self.kind == "box":
            action = action.astype(np.float32)
        return DictTensor({"action": action}, batch_shape=(len(frame),)), state


def sequences(slices: list[Trajectories]) -> list[dict[str, npt.NDArray[Any]]]:
    """Per env (row), its valid steps of every slice, concatenated: ``{key: [L, ...]}``."""
    steps = [s.trajectories for s in slices]
    out = []
    for b in range(len(steps[0])):
        rows: dict[str, list[npt.NDArray[Any]]] = {}
        for tdt in steps:
            length = int(tdt.lengths[b])
            for key in tdt.keys():
                rows.setdefault(key, []).append(tdt[key][b, :length])
        out.append({k: np.concatenate(v) for k, v in rows.items()})
    return out
