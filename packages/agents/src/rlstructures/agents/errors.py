"""Exceptions raised by rlstructures.agents.

Every leaf class also subclasses the builtin exception it refines, so ``except ValueError``
(or ``TypeError``, ``ImportError``, ``RuntimeError``) keeps working for code that does not
know this package; ``except AgentsError`` catches all of them but ``MissingDependencyError``
(a missing extra, e.g. ``gym``), which is ``rlstructures.dicttensor.MissingDependencyError``,
the one class every rlstructures package raises for a missing extra (an ``ImportError``).
"""

from __future__ import annotations

from rlstructures.dicttensor import MissingDependencyError as MissingDependencyError

__all__ = [
    "AgentsError",
    "ActionError",
    "ObservationError",
    "EnvInfoError",
    "EnvError",
    "UnsupportedSpaceError",
    "EnvStateError",
    "ReplayError",
    "EpisodeTrackerError",
    "MissingDependencyError",
]


class AgentsError(Exception):
    """Base class of every error raised by rlstructures.agents."""


class ActionError(AgentsError, ValueError):
    """An action given to ``VecEnv.step`` is unusable.

    No ``"action"`` key, a wrong batch size, shape or dtype, or values outside the action space.
    """


class ObservationError(AgentsError, ValueError):
    """An env returned an observation (or a reward) that does not fit its observation space.

    For example an observation whose shape changed from one step to the next.
    """


class EnvInfoError(AgentsError, ValueError):
    """``env_info`` given to ``VecEnv.reset`` is unusable.

    Not a DictTensor, a wrong batch size, or an env whose reset takes no options.
    """


class EnvError(AgentsError, TypeError):
    """``make_env`` is unusable, or what it returned is not an environment.

    Also raised when an env does not follow the gymnasium (or old gym) API.
    """


class UnsupportedSpaceError(AgentsError, TypeError):
    """A space that GymVecEnv does not handle.

    A space type it does not know, or a Dict space whose keys clash with the reserved
    observation keys.
    """


class EnvStateError(AgentsError, RuntimeError):
    """A call made in the wrong state.

    ``step`` before ``reset``, ``step`` when no env is running any more, any call after
    ``close``.
    """


class ReplayError(AgentsError, ValueError):
    """``replay_agent`` got unusable trajectories or an agent output that does not fit.

    A wrong batch size, or keys or row specs that change from one step to the next.
    """


class EpisodeTrackerError(AgentsError, ValueError):
    """``EpisodeTracker.update`` got trajectories it cannot read.

    Not trajectories, keys it needs are missing, or a batch size that differs from the
    earlier batches (a tracker follows the envs of one batcher).
    """
