"""rlstructures.agents: the Agent API, agent replay, the VecEnv protocol, a gymnasium adapter."""

import importlib.metadata

from rlstructures.agents._agent import Agent as Agent
from rlstructures.agents._env import EnvIds as EnvIds
from rlstructures.agents._env import StepResult as StepResult
from rlstructures.agents._env import VecEnv as VecEnv

__version__ = importlib.metadata.version("rlstructures-agents")

__all__ = [
    "Agent",
    "VecEnv",
    "EnvIds",
    "StepResult",
    "__version__",
]
