"""rlstructures.agents: the Agent API, agent replay, the VecEnv protocol, a gymnasium adapter.

Public API:

* `Agent`: abstract base class of a batched policy with an explicit state.
* `replay_agent`: re-run an agent over stored `Trajectories`, carrying its state.
* `VecEnv`, `EnvIds`, `StepResult`: the protocol of n_envs envs stepped as a batch;
  `StepIntoVecEnv`: its optional extension that writes observations into given arrays.
* `GymVecEnv`: a `VecEnv` over gymnasium (or old gym API) envs; needs the ``gym`` extra.
* `GymVectorVecEnv`: a `VecEnv` over any gymnasium ``VectorEnv`` (gymnasium's vectorized
  envs, EnvPool); needs the ``gym`` extra.
* `rlstructures.agents.errors`: `AgentsError` and its subclasses.

Importing this package imports neither torch nor gymnasium.
"""

import importlib.metadata

from rlstructures.agents import errors as errors
from rlstructures.agents._agent import Agent as Agent
from rlstructures.agents._env import EnvIds as EnvIds
from rlstructures.agents._env import StepIntoVecEnv as StepIntoVecEnv
from rlstructures.agents._env import StepResult as StepResult
from rlstructures.agents._env import VecEnv as VecEnv
from rlstructures.agents._gym import GymVecEnv as GymVecEnv
from rlstructures.agents._replay import replay_agent as replay_agent
from rlstructures.agents._vector import GymVectorVecEnv as GymVectorVecEnv

__version__ = importlib.metadata.version("rlstructures-agents")

__all__ = [
    "Agent",
    "replay_agent",
    "VecEnv",
    "EnvIds",
    "StepResult",
    "StepIntoVecEnv",
    "GymVecEnv",
    "GymVectorVecEnv",
    "errors",
    "__version__",
]
