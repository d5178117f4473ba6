"""Names of RLStructures 0.2's batchers, each failing with an error that names ours.

0.2 had ``rlstructures.rl_batchers.RL_Batcher`` (also ``from rlstructures import
RL_Batcher``) and, from 0.1, ``rlstructures.batchers.EpisodeBatcher`` / ``Batcher``
(trajectories) and their multi-thread variants. ``RL_Batcher(n_timesteps, create_agent,
agent_args, create_env, env_args, n_processes, seeds, agent_info, env_info, ...)`` became
``MultiProcessBatcher(make_agent, make_env, n_timesteps=..., seeds=...)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from rlstructures.batchers.errors import RemovedImportError, RemovedNameError

__all__ = ["BATCHER_ATTRIBUTES", "MODULE_NAMES", "removed_attribute", "removed_module_name"]

_ARGS: Final = (
    "0.2's `create_agent` + `agent_args` is one picklable `make_agent` (e.g. "
    "`functools.partial(MyAgent, **agent_args)`), `create_env` + `env_args` one `make_env` "
    "called as `make_env(seed)` and returning a VecEnv (e.g. `functools.partial(GymVecEnv, "
    "'CartPole-v1', 16, auto_reset=True)`), `n_processes` is `len(seeds)` (one worker per "
    "seed), and `n_elems()` is the `n_envs` property."
)

#: Module-level names of 0.2 and 0.1, and what to use instead.
MODULE_NAMES: Final[Mapping[str, str]] = {
    "RL_Batcher": (
        "use `MultiProcessBatcher` (one worker process per seed, shared memory) or "
        "`LocalBatcher` (everything in this process, for debugging): "
        "`from rlstructures.batchers import MultiProcessBatcher; batcher = "
        "MultiProcessBatcher(make_agent, make_env, n_timesteps=T, seeds=[0, 1000])`. " + _ARGS
    ),
    "EpisodeBatcher": (
        "collect whole episodes with `MultiProcessBatcher` over envs in episode mode "
        "(`GymVecEnv(..., auto_reset=False)`): `get()` returns one row per env, and envs "
        "whose episode ended drop out until `reset()`. " + _ARGS
    ),
    "MultiThreadEpisodeBatcher": (
        "use `MultiProcessBatcher` over envs in episode mode (`GymVecEnv(..., "
        "auto_reset=False)`). " + _ARGS
    ),
    "MonoThreadEpisodeBatcher": (
        "use `LocalBatcher` (same arguments as MultiProcessBatcher, everything in this "
        "process). " + _ARGS
    ),
    "MultiThreadTrajectoryBatcher": (
        "use `MultiProcessBatcher` over envs in auto-reset mode (`GymVecEnv(..., "
        "auto_reset=True)`). " + _ARGS
    ),
}

#: 0.2 methods of ``RL_Batcher`` that our batchers do not have.
BATCHER_ATTRIBUTES: Final[Mapping[str, str]] = {
    "n_elems": "the number of envs is the property `batcher.n_envs` (all workers together).",
}


def removed_module_name(module: str, name: str) -> AttributeError | ImportError:
    """The error for ``module.name`` and ``from module import name``.

    A 0.2 name gets a ``RemovedImportError`` (an ImportError keeps its message through a
    ``from ... import`` statement, which replaces an AttributeError's by "cannot import
    name"); any other name the usual AttributeError.
    """
    advice = MODULE_NAMES.get(name)
    if advice is None:
        return AttributeError(f"module {module!r} has no attribute {name!r}")
    return RemovedImportError(f"{module}.{name} is a name of RLStructures 0.2; {advice}", name=name)


def removed_attribute(owner: str, name: str) -> AttributeError:
    """The error for ``batcher.name``: RemovedNameError for a 0.2 name, else AttributeError."""
    advice = BATCHER_ATTRIBUTES.get(name)
    if advice is None:
        return AttributeError(f"{owner!r} object has no attribute {name!r}")
    return RemovedNameError(f"{owner}.{name} is a name of RLStructures 0.2; {advice}")
