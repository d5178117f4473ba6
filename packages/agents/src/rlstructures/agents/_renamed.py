"""RLStructures 0.2 names of agents and envs, each with what to write instead.

``from rlstructures.agents import RL_Agent`` or ``env.gym_envs`` get an error that says what
replaces the name: GymVecEnv holds a ``RemovedAttribute`` per 0.2 name (no cost on normal
attribute access), the package a module ``__getattr__`` (called only for missing names).
The guide is ``docs/migrating-from-0.2.md`` at the root of the repository.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from rlstructures.dicttensor import RemovedImportError

__all__ = ["GYM_VEC_ENV", "missing_module_name"]

_GYM_ENV: Final = (
    "`GymEnv(envs, seed)` (a list of gym envs) is `GymVecEnv(make_env, n_envs, seed)`: "
    "`make_env` creates one env (a gymnasium id such as 'CartPole-v1' works), env k is "
    "seeded seed + k. `from rlstructures.agents import GymVecEnv`."
)

#: 0.2 module-level names (``from rlstructures import RL_Agent``).
MODULE: Final[Mapping[str, str]] = {
    "RL_Agent": "subclass `Agent`: `from rlstructures.agents import Agent`. Its methods "
                "are the same (`__call__(state, observation, agent_info, history)`, "
                "`initial_state`, `call_replay`, ...); `initial_state` is optional for a "
                "stateless agent.",
    "RL_Agent_CheckDevice": "there is no device checker: observations are numpy, an agent "
                            "moves what it needs with `.to(device)` and may return numpy or "
                            "torch on any device.",
    "replay_agent_stateless": "call your method directly (`agent.method(trajectories)`), or "
                              "use `replay_agent(agent, trajectories, method=...)`.",
    "GymEnv": _GYM_ENV,
    "GymEnvInf": _GYM_ENV.replace("GymEnv(envs", "GymEnvInf(envs").replace(
        "seed)`: ", "seed, auto_reset=True)`: "
    ),
    "DeviceEnv": "there is no device env wrapper: observations are numpy DictTensors; the "
                 "agent calls `observation.to(device)`.",
    "RL_Batcher": "use `LocalBatcher` or `MultiProcessBatcher` from rlstructures.batchers.",
}

#: 0.2 methods and attributes of ``GymEnv``/``GymEnvInf``.
GYM_VEC_ENV: Final[Mapping[str, str]] = {
    "gym_envs": "the envs are `env.envs` (a tuple).",
    "envs_running": "the running ids are what `reset()` and `step()` return with each "
                    "observation.",
    "specs_input": "the action space is `env.action_space` (a gymnasium space).",
}


def missing_module_name(module: str, name: str) -> AttributeError | ImportError:
    """The error of ``module.name`` or ``from module import name`` (see dicttensor's)."""
    advice = MODULE.get(name)
    if advice is None:
        return AttributeError(f"module {module!r} has no attribute {name!r}", name=name)
    return RemovedImportError(
        f"{module}.{name} is a name of RLStructures 0.2; {advice}", name=name
    )
