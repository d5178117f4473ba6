"""rlstructures.agents: the Agent API, agent replay, the VecEnv protocol, a gymnasium adapter.

Public API:

* `Agent`: base class of a batched policy with an explicit state.
* `replay_agent`: re-run an agent over stored `Trajectories`, carrying its state.
* `EpisodeTracker`: returns and lengths of the episodes that end in successive batches.
* `VecEnv`, `EnvIds`, `StepResult`: the protocol of n_envs envs stepped as a batch;
  `StepIntoVecEnv`: its optional extension that writes observations into given arrays.
* `GymVecEnv`: a `VecEnv` over gymnasium (or old gym API) envs; needs the ``gym`` extra.
* `GymVectorVecEnv`: a `VecEnv` over any gymnasium ``VectorEnv`` (gymnasium's vectorized
  envs, EnvPool); needs the ``gym`` extra.
* errors: `AgentsError` and its subclasses (also in ``rlstructures.agents.errors``), and
  `MissingDependencyError` (the one of ``rlstructures.dicttensor``).

Importing this package imports neither torch nor gymnasium.
"""

import importlib.metadata
from typing import TYPE_CHECKING, Any

from rlstructures.agents import errors as errors
from rlstructures.agents._agent import Agent as Agent
from rlstructures.agents._env import EnvIds as EnvIds
from rlstructures.agents._env import StepIntoVecEnv as StepIntoVecEnv
from rlstructures.agents._env import StepResult as StepResult
from rlstructures.agents._env import VecEnv as VecEnv
from rlstructures.agents._episodes import EpisodeTracker as EpisodeTracker
from rlstructures.agents._gym import GymVecEnv as GymVecEnv
from rlstructures.agents._replay import replay_agent as replay_agent
from rlstructures.agents._vector import GymVectorVecEnv as GymVectorVecEnv
from rlstructures.agents.errors import ActionError as ActionError
from rlstructures.agents.errors import AgentsError as AgentsError
from rlstructures.agents.errors import EnvError as EnvError
from rlstructures.agents.errors import EnvInfoError as EnvInfoError
from rlstructures.agents.errors import EnvStateError as EnvStateError
from rlstructures.agents.errors import EpisodeTrackerError as EpisodeTrackerError
from rlstructures.agents.errors import MissingDependencyError as MissingDependencyError
from rlstructures.agents.errors import ObservationError as ObservationError
from rlstructures.agents.errors import ReplayError as ReplayError
from rlstructures.agents.errors import UnsupportedSpaceError as UnsupportedSpaceError

__version__ = importlib.metadata.version("rlstructures-agents")

__all__ = [
    "Agent",
    "replay_agent",
    "EpisodeTracker",
    "VecEnv",
    "EnvIds",
    "StepResult",
    "StepIntoVecEnv",
    "GymVecEnv",
    "GymVectorVecEnv",
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
    "errors",
    "__version__",
]

if not TYPE_CHECKING:  # for the type checker, a module __getattr__ would accept any name

    def __getattr__(name: str) -> Any:
        """RLStructures 0.2 names (``RL_Agent``, ``GymEnv``, ...) fail naming the replacement."""
        from rlstructures.agents._renamed import missing_module_name

        raise missing_module_name(__name__, name)
