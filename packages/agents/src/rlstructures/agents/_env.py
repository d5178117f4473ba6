"""The `VecEnv` protocol: n_envs instances of one environment, stepped as a batch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypeAlias

import numpy as np
import numpy.typing as npt

from rlstructures.dicttensor import DictTensor

__all__ = ["EnvIds", "StepIntoVecEnv", "StepResult", "VecEnv"]

#: ``[n]`` int64 positions (0..n_envs-1) of the envs a DictTensor's rows belong to.
EnvIds: TypeAlias = npt.NDArray[np.int64]

#: ``((next_observation, ids), (continuing_observation, continuing_ids))``.
StepResult: TypeAlias = tuple[tuple[DictTensor, EnvIds], tuple[DictTensor, EnvIds]]


class VecEnv(Protocol):
    """``n_envs`` instances of one environment, stepped together.

    Observations are DictTensors with one row per env listed in the accompanying ids. Keys:
    ``"frame"`` (or one key per entry of a Dict space, nested keys joined with "/"),
    ``"reward"`` (float32, the reward of the transition that led to this observation),
    ``"terminated"``, ``"truncated"``, ``"done"`` (either), ``"initial_state"`` (True on the
    first observation of an episode) and ``"last_action"`` (the action that led here; zeros
    on a first observation).

    Two modes. Episode mode: an env whose episode ended stops; it is absent from the
    continuing ids until the next ``reset``. Auto-reset mode: an ended env continues at once
    from a fresh reset, whose observation (``initial_state`` True) is in the continuing
    observation, while the final observation of the ended episode is in the next
    observation. The terminal observation is never lost.
    """

    @property
    def n_envs(self) -> int:
        """How many env instances."""
        ...

    @property
    def observation_space(self) -> Any:
        """The (single-env) observation space."""
        ...

    @property
    def action_space(self) -> Any:
        """The (single-env) action space."""
        ...

    def reset(self, env_info: DictTensor | None = None) -> tuple[DictTensor, EnvIds]:
        """Start an episode in every env.

        Args:
            env_info: one row per env (batch ``(n_envs,)``) passed to each env's reset
                (e.g. a task id), or None.

        Returns:
            ``(observation, running_ids)``: ``[n_envs]`` rows and ``arange(n_envs)``.
        """
        ...

    def step(self, action: DictTensor) -> StepResult:
        """Apply one action per running env.

        Args:
            action: ``[n]`` rows, one per env that was running (in the order of the ids
                returned by the previous call); key ``"action"`` is what the envs receive.

        Returns:
            ``((next_observation, ids), (continuing_observation, continuing_ids))``: the
            observation at t+1 of every env that was running, and the observation from
            which the envs still running continue.
        """
        ...

    def close(self) -> None:
        """Close every env."""
        ...


class StepIntoVecEnv(VecEnv, Protocol):
    """A `VecEnv` that can also write its observations into arrays the caller owns.

    Optional: batchers call ``step_into`` instead of ``step`` when a VecEnv has it and is in
    auto-reset mode, which saves allocating and copying every observation leaf twice per
    step. `GymVecEnv` and `GymVectorVecEnv` implement it.

    A VecEnv whose envs sometimes spend a step on a reset (`GymVectorVecEnv` over a
    ``NEXT_STEP`` gymnasium vector env without partial resets) also has a ``reset_step_ids``
    attribute: after each ``step_into``, the sorted int64 ids of the envs whose row of that
    step was such a reset step (their action ignored, their ``out`` row the first
    observation of their next episode). That row is no transition; the batchers drop it.
    """

    @property
    def auto_reset(self) -> bool:
        """True in auto-reset mode (every env always runs), the mode ``step_into`` needs."""
        ...

    def step_into(
        self,
        action: DictTensor,
        out: Mapping[str, npt.NDArray[Any]],
        final: Mapping[str, npt.NDArray[Any]],
    ) -> EnvIds:
        """Step every env (auto-reset mode), writing observations into the caller's arrays.

        Args:
            action: ``[n_envs]`` rows, as for ``step``.
            out: one writable array ``[n_envs, *row]`` per observation key, of that key's
                dtype (views into a preallocated buffer, typically). Row k receives what
                env k continues from: its observation at t+1, or the first observation of
                a fresh episode (``initial_state`` True) when its episode ended.
            final: arrays like ``out``; row k receives the final observation of env k when
                its episode ended at this step. Its other rows are left untouched.

        Returns:
            The sorted ids of the envs whose episode ended at this step (int64, often
            empty). The observation at t+1 that ``step`` would return is ``out`` with
            those rows taken from ``final``.
        """
        ...
