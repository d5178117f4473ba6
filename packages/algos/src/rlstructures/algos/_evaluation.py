"""Deterministic evaluation by a second batcher in episode mode, beside training.

The evaluator owns a `MultiProcessBatcher` of ``n_episodes`` envs (one episode each) whose
agents act deterministically. ``submit(step, weights)`` starts an evaluation of those
weights and returns at once; ``poll()`` (non-blocking, called by the training loop between
updates) moves it along and returns the result when every episode has ended. The learner
never waits for it, except in ``wait()`` (at the end of training).

Evaluation episodes start from fresh resets: env k of the evaluator is seeded
``seed + k`` at its first reset, and later evaluations continue each env's random
generator, so successive evaluations see new initial states, the same for every run with
the same seed.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from rlstructures.agents import Agent
from rlstructures.algos._envs import make_vec_env
from rlstructures.batchers import MultiProcessBatcher

__all__ = ["EvalResult", "Evaluator"]

#: Steps per ``execute()`` of the evaluator when the env has no time limit.
CHUNK: Final = 1000


@dataclass(frozen=True, slots=True)
class EvalResult:
    """One evaluation.

    Attributes:
        step: global env steps of training when the evaluated weights were published.
        mean_return: mean of ``returns``.
        returns: the return of each episode.
        lengths: the length of each episode.
        seconds: when the result arrived, in seconds since training started.
    """

    step: int
    mean_return: float
    returns: tuple[float, ...]
    lengths: tuple[int, ...]
    seconds: float


class Evaluator:
    """Asynchronous deterministic evaluation of published weights (see the module doc).

    Args:
        make_agent: picklable callable returning the deterministic acting agent.
        env_id: the gymnasium id.
        n_episodes: episodes per evaluation (one env each).
        seed: env k is seeded ``seed + k``.
        max_episode_steps: the env's time limit (the steps per collection), or None.
        start: the clock of ``EvalResult.seconds`` (a ``time.perf_counter()`` value).
        start_method: multiprocessing start method of the batcher.
    """

    def __init__(
        self,
        make_agent: Callable[[], Agent],
        env_id: str,
        *,
        n_episodes: int,
        seed: int,
        max_episode_steps: int | None,
        start: float,
        start_method: str = "spawn",
    ) -> None:
        self._start = start
        self._n = n_episodes
        chunk = min(max_episode_steps or CHUNK, CHUNK)
        make_env = functools.partial(
            make_vec_env, env_id=env_id, n_envs=n_episodes, auto_reset=False
        )
        self._batcher = MultiProcessBatcher(
            make_agent, make_env, n_timesteps=chunk, seeds=[seed], start_method=start_method
        )
        self._running_step: int | None = None  # the step being evaluated
        self._pending: tuple[int, dict[str, Any]] | None = None
        self._returns = np.zeros(n_episodes)
        self._lengths = np.zeros(n_episodes, np.int64)

    @property
    def busy(self) -> bool:
        """Whether an evaluation is running or waiting to start."""
        return self._running_step is not None or self._pending is not None

    def submit(self, step: int, weights: Mapping[str, Any]) -> None:
        """Evaluate ``weights`` (published at global step ``step``) as soon as possible.

        If an evaluation is running, these weights wait for it (a copy is kept) and replace
        any weights already waiting: the newest are evaluated, the learner never blocks.
        """
        copied = {k: np.array(v, copy=True) for k, v in weights.items()}
        if self._running_step is None:
            self._begin(step, copied)
        else:
            self._pending = (step, copied)

    def poll(self) -> EvalResult | None:
        """Advance the running evaluation without blocking; its result once complete."""
        return self._advance(blocking=False)

    def wait(self) -> list[EvalResult]:
        """Block until the running and waiting evaluations are done; their results."""
        results = []
        while self.busy:
            result = self._advance(blocking=True)
            if result is not None:
                results.append(result)
        return results

    def close(self) -> None:
        """Stop the evaluator's worker. Idempotent."""
        self._batcher.close()

    # ------------------------------------------------------------------ internals
    def _begin(self, step: int, weights: dict[str, Any]) -> None:
        self._batcher.update(weights)
        self._batcher.reset()
        self._batcher.execute()
        self._running_step = step
        self._returns[:] = 0.0
        self._lengths[:] = 0

    def _advance(self, blocking: bool) -> EvalResult | None:
        if self._running_step is None:
            if self._pending is None:
                return None
            self._begin(*self._pending)
            self._pending = None
        step = self._running_step
        if step is None:  # pragma: no cover - _begin sets it
            return None
        trajectories, n_running = self._batcher.get(blocking=blocking)
        if trajectories is None:
            return None
        steps = trajectories.trajectories
        lengths: npt.NDArray[np.int64] = np.asarray(steps.lengths)
        reward = np.asarray(steps["_observation/reward"], np.float64) * steps.mask()
        self._returns += reward.sum(axis=1)
        self._lengths += lengths
        if n_running > 0:
            self._batcher.execute()
            return None
        self._running_step = None
        returns = tuple(float(r) for r in self._returns)
        result = EvalResult(
            step=step,
            mean_return=math.fsum(returns) / len(returns),
            returns=returns,
            lengths=tuple(int(x) for x in self._lengths),
            seconds=time.perf_counter() - self._start,
        )
        if self._pending is not None:
            self._begin(*self._pending)
            self._pending = None
        return result
