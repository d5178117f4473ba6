"""Small deterministic VecEnv and Agent, with fault injection, for testing batcher code.

Neither needs gymnasium nor torch, so they start fast in worker processes. Every knob is a
constructor argument, so ``functools.partial(CountingEnv, n_envs=4, fail_at_step=3)`` is a
picklable ``make_env``.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from rlstructures.agents import Agent, EnvIds, StepResult
from rlstructures.dicttensor import DictTensor, TemporalDictTensor

__all__ = ["CountingAgent", "CountingEnv", "InjectedFault"]


class InjectedFault(Exception):
    """Raised on purpose by CountingEnv / CountingAgent when told to fail."""


class CountingEnv:
    """``n_envs`` counters: env k of seed s starts at ``s + k`` and adds the action each step.

    Env k's episode lasts ``episode_length`` steps, or ``3 + (seed + k) % 5`` when None, and
    then terminates. Observation keys: ``frame`` ``[n, 1]`` float32 (the counter), ``reward``
    float32, ``terminated``, ``truncated``, ``done``, ``initial_state`` (bool) and
    ``last_action`` int64; ``env_info`` key ``offset`` (float32) is added to the start value.

    Args:
        seed: the VecEnv seed.
        n_envs: how many counters.
        auto_reset: restart ended episodes at once (else they stop until ``reset``).
        episode_length: fixed episode length, or None for the seed-dependent one.
        fail_at_step: raise InjectedFault at that step (counted over the env's life).
        kill_at_step: SIGKILL the process at that step (only in a worker process).
        sleep: seconds to sleep per step (to test asynchrony).
        fail_seed: apply fail_at_step / kill_at_step only when ``seed == fail_seed``.
    """

    def __init__(
        self,
        seed: int,
        n_envs: int = 4,
        *,
        auto_reset: bool = False,
        episode_length: int | None = None,
        fail_at_step: int | None = None,
        kill_at_step: int | None = None,
        sleep: float = 0.0,
        fail_seed: int | None = None,
    ) -> None:
        self.seed = seed
        self._n = n_envs
        self.auto_reset = auto_reset
        armed = fail_seed is None or fail_seed == seed
        self.fail_at_step = fail_at_step if armed else None
        self.kill_at_step = kill_at_step if armed else None
        self.sleep = sleep
        k = np.arange(n_envs)
        self.lengths = (
            np.full(n_envs, episode_length) if episode_length else 3 + (seed + k) % 5
        ).astype(np.int64)
        self.value = np.zeros(n_envs, np.float32)
        self.t = np.zeros(n_envs, np.int64)
        self.offset = np.zeros(n_envs, np.float32)
        self.running = np.zeros(n_envs, bool)
        self.steps = 0

    @property
    def n_envs(self) -> int:
        """How many counters."""
        return self._n

    @property
    def observation_space(self) -> Any:
        """Not a gymnasium space: a description."""
        return {"frame": ((1,), "float32")}

    @property
    def action_space(self) -> Any:
        """Not a gymnasium space: a description."""
        return {"action": ((), "int64")}

    def _obs(
        self,
        ids: EnvIds,
        reward: npt.NDArray[Any],
        term: npt.NDArray[np.bool_],
        initial: npt.NDArray[np.bool_],
        action: npt.NDArray[Any],
    ) -> DictTensor:
        n = len(ids)
        return DictTensor(
            {
                "frame": self.value[ids, None].copy(),
                "reward": reward.astype(np.float32),
                "terminated": term,
                "truncated": np.zeros(n, bool),
                "done": term.copy(),
                "initial_state": initial,
                "last_action": action.astype(np.int64),
            },
            batch_shape=(n,),
        )

    def _start(self, ids: EnvIds) -> None:
        self.value[ids] = self.seed + ids + self.offset[ids]
        self.t[ids] = 0
        self.running[ids] = True

    def reset(self, env_info: DictTensor | None = None) -> tuple[DictTensor, EnvIds]:
        """Start every counter."""
        ids = np.arange(self._n, dtype=np.int64)
        if env_info is not None and "offset" in env_info:
            self.offset[:] = env_info["offset"]
        self._start(ids)
        zeros = np.zeros(self._n, bool)
        return self._obs(ids, np.zeros(self._n), zeros, ~zeros, np.zeros(self._n, np.int64)), ids

    def step(self, action: DictTensor) -> StepResult:
        """Add the actions to the running counters."""
        self.steps += 1
        if self.sleep:
            time.sleep(self.sleep)
        if self.fail_at_step is not None and self.steps >= self.fail_at_step:
            raise InjectedFault(f"CountingEnv(seed={self.seed}) fails at step {self.steps}")
        if self.kill_at_step is not None and self.steps >= self.kill_at_step:
            os.kill(os.getpid(), signal.SIGKILL)
        ids = np.flatnonzero(self.running).astype(np.int64)
        act = np.asarray(action["action"], dtype=np.int64)
        if act.shape != (len(ids),):
            raise ValueError(f"action has shape {act.shape}, expected ({len(ids)},)")
        self.value[ids] += act
        self.t[ids] += 1
        term = self.t[ids] >= self.lengths[ids]
        reward = act.astype(np.float32)
        next_obs = self._obs(ids, reward, term, np.zeros(len(ids), bool), act)
        ended = ids[term]
        if self.auto_reset:
            self._start(ended)
            cont = ids
            n = len(ids)
            initial = term.copy()
            cont_obs = self._obs(
                ids, np.where(term, 0, reward), np.zeros(n, bool), initial, np.where(term, 0, act)
            )
        else:
            self.running[ended] = False
            cont = ids[~term]
            cont_obs = next_obs[~term]
        return (next_obs, ids), (cont_obs, cont)

    def close(self) -> None:
        """Nothing to release."""


class CountingAgent(Agent):
    """Deterministic (or seeded-random) agent with a step counter as its state.

    Action: ``(counter + frame) % 2`` (or a random bit when ``stochastic``), plus
    ``weight``: the value last received by ``update({"w": ...})``. State: ``count``, the
    steps since the episode began (reset where ``initial_state``).

    Args:
        stochastic: draw the action from the agent's generator (seeded by ``seed``).
        fail_at_call: raise InjectedFault at that call.
        bad_output: return a wrong output from ``bad_at_call`` on: "no_action",
            "batch", "dtype", "shape" or "not_dicttensor".
        bad_at_call: the call at which bad_output starts (0 = the probe step).
    """

    def __init__(
        self,
        *,
        stochastic: bool = False,
        fail_at_call: int | None = None,
        bad_output: str | None = None,
        bad_at_call: int = 2,
    ) -> None:
        self.stochastic = stochastic
        self.fail_at_call = fail_at_call
        self.bad_output = bad_output
        self.bad_at_call = bad_at_call
        self.calls = 0
        self.w = np.float32(0.0)
        self.rng = np.random.default_rng(0)

    def seed(self, seed: int) -> None:
        """Seed the generator used when stochastic."""
        self.rng = np.random.default_rng(seed)

    def update(self, state_dict: Mapping[str, Any]) -> None:
        """Take ``w`` (a scalar array or tensor)."""
        self.w = np.float32(float(state_dict["w"].reshape(-1)[0]))  # numpy or any torch dtype

    def initial_state(self, agent_info: DictTensor, batch_size: int) -> DictTensor:
        """A zero counter per env."""
        return DictTensor({"count": np.zeros(batch_size, np.int64)}, batch_shape=(batch_size,))

    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        """One step."""
        self.calls += 1
        if self.fail_at_call is not None and self.calls >= self.fail_at_call:
            raise InjectedFault(f"CountingAgent fails at call {self.calls}")
        n = len(observation)
        count = np.where(observation["initial_state"], 0, state["count"]) + 1
        if self.stochastic:
            act = self.rng.integers(0, 2, size=n).astype(np.int64)
        else:
            act = (count + observation["frame"][:, 0].astype(np.int64)) % 2
        scale = agent_info["scale"] if "scale" in agent_info else np.ones(n, np.float32)
        action = {"action": act, "weight": np.full(n, self.w, np.float32), "scaled": scale * act}
        if self.bad_output and self.calls > self.bad_at_call:
            if self.bad_output == "no_action":
                del action["action"]
            elif self.bad_output == "batch":
                action = {k: v[:-1] for k, v in action.items()}
                n -= 1
            elif self.bad_output == "dtype":
                action["weight"] = action["weight"].astype(np.float64)
            elif self.bad_output == "shape":
                action["weight"] = np.zeros((n, 2), np.float32)
            elif self.bad_output == "not_dicttensor":
                return action, state  # type: ignore[return-value]  # wrong on purpose
        new_state = DictTensor({"count": count}, batch_shape=(len(count),))
        return DictTensor(action, batch_shape=(n,)), new_state
