"""Picklable parts for the batcher tests: envs and agents, some misbehaving on purpose."""

from __future__ import annotations

import os

import numpy as np
import numpy.typing as npt

from rlstructures.agents import Agent, GymVecEnv, StepResult, VecEnv
from rlstructures.batchers.testing import CountingEnv
from rlstructures.dicttensor import DictTensor, TemporalDictTensor


class UnprintableError(Exception):
    """An exception whose ``str()`` raises."""

    def __str__(self) -> str:
        raise RuntimeError("__str__ is broken too")


class UnprintableEnv(CountingEnv):
    """Raises UnprintableError at its second step."""

    def step(self, action: DictTensor) -> StepResult:
        if self.steps >= 1:
            raise UnprintableError()
        return super().step(action)


class ExitingEnv(CountingEnv):
    """Ends its process with exit code 1 at its first step (in a worker: once ready)."""

    def step(self, action: DictTensor) -> StepResult:
        os._exit(1)


def exit_one_env(seed: int) -> VecEnv:
    """An ExitingEnv of 2 envs."""
    return ExitingEnv(seed, n_envs=2)


def not_an_agent() -> object:
    """A make_agent that returns something else than an Agent."""
    return {"policy": "oops"}


# ---------------------------------------------------------------------- the three env modes
def episode_env(seed: int) -> VecEnv:
    """CartPole in episode mode: the step() path, envs drop out as their episode ends."""
    return GymVecEnv("CartPole-v1", 3, seed, auto_reset=False)


def auto_reset_step_env(seed: int) -> VecEnv:
    """Counters in auto-reset mode without step_into: the step() path, every env runs."""
    return CountingEnv(seed, 3, auto_reset=True)


def step_into_env(seed: int) -> VecEnv:
    """CartPole in auto-reset mode: the step_into path."""
    return GymVecEnv("CartPole-v1", 3, seed, auto_reset=True)


ENV_MODES = {
    "episode": episode_env,
    "auto_reset_step": auto_reset_step_env,
    "step_into": step_into_env,
}


def frame_action(observation: DictTensor) -> npt.NDArray[np.int64]:
    """A deterministic action from the frame: 0 or 1."""
    frame = np.asarray(observation["frame"], np.float64).reshape(len(observation), -1)
    return (frame.sum(1) > frame.mean()).astype(np.int64) if frame.size else np.zeros(0, np.int64)


class StateBreakingAgent(Agent):
    """A recurrent-looking agent (state ``h`` float32 [2]) that breaks ``new_state`` at call
    ``at_call`` (the probe is call 1): ``how`` is "batch" (one row too many), "key" (``g``
    instead of ``h``), "shape" ([3] rows), "dtype" (float64) or "type" (a dict)."""

    def __init__(self, how: str, at_call: int = 4) -> None:
        self.how, self.at_call, self.calls = how, at_call, 0

    def initial_state(self, agent_info: DictTensor, batch_size: int) -> DictTensor:
        return DictTensor({"h": np.zeros((batch_size, 2), np.float32)})

    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        self.calls += 1
        n = len(observation)
        action = DictTensor({"action": frame_action(observation)}, batch_shape=(n,))
        h = state["h"] + 1
        if self.calls < self.at_call:
            return action, DictTensor({"h": h}, batch_shape=(n,))
        if self.how == "batch":
            return action, DictTensor({"h": np.zeros((n + 1, 2), np.float32)})
        if self.how == "key":
            return action, DictTensor({"g": h}, batch_shape=(n,))
        if self.how == "shape":
            return action, DictTensor({"h": np.zeros((n, 3), np.float32)}, batch_shape=(n,))
        if self.how == "dtype":
            return action, DictTensor({"h": h.astype(np.float64)}, batch_shape=(n,))
        return action, {"h": h}  # type: ignore[return-value]  # wrong on purpose


class KeylessAgent(Agent):
    """Stateless, and says so with ``DictTensor({})`` (batch (0,)) everywhere."""

    def initial_state(self, agent_info: DictTensor, batch_size: int) -> DictTensor:
        return DictTensor({})

    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        assert not state.keys()
        return DictTensor({"action": frame_action(observation)}), DictTensor({})


class ContiguityAgent(Agent):
    """Reads the frame as torch ``.view(-1)`` (needs C-contiguous rows) and records whether
    every observation leaf is C-contiguous."""

    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        flat = observation.torch()["frame"].view(-1)  # a RuntimeError if not contiguous
        n = len(observation)
        contiguous = all(v.flags.c_contiguous for v in observation.values())
        return (
            DictTensor(
                {
                    "action": frame_action(observation),
                    "row_sum": flat.reshape(n, -1).sum(1).numpy(),
                    "contiguous": np.full(n, contiguous, np.bool_),
                }
            ),
            state,
        )


class PastActionsAgent(Agent):
    """Attends over its own earlier outputs: acts on the last action and the mean frame.

    Records what it saw in ``history`` so tests can compare it with ``Agent.history_at``.
    """

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
        frame = np.asarray(observation["frame"], np.float32).reshape(n, -1)
        if history.max_length and "action/action" in history:
            past_actions = history["action/action"]  # [n, t]
            past_frames = history["observation/frame"].reshape(n, history.max_length, -1)
            weights = np.exp(-np.arange(history.max_length)[::-1] / 4.0)
            score = (past_actions * weights).sum(1) + past_frames.mean((1, 2))
            last = past_actions[:, -1]
            seen = history["action/score"].sum(1)
        else:
            score = np.zeros(n)
            last = np.zeros(n, np.int64)
            seen = np.zeros(n, np.float32)
        action = ((score + frame.sum(1)) > 0.5).astype(np.int64) ^ (last & 1)
        return (
            DictTensor(
                {
                    "action": action,
                    "score": score.astype(np.float32),
                    "seen": seen.astype(np.float32),
                    "t": np.full(n, history.max_length, np.int64),
                }
            ),
            state,
        )
