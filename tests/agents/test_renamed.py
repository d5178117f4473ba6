"""RLStructures 0.2 names of agents and envs fail with an error naming the new one."""

from __future__ import annotations

import pytest

from rlstructures.agents import GymVecEnv
from rlstructures.dicttensor import RemovedImportError, RemovedNameError


@pytest.mark.parametrize(
    ("name", "replacement"),
    [
        ("RL_Agent", "subclass `Agent`"),
        ("RL_Agent_CheckDevice", "no device checker"),
        ("replay_agent_stateless", "replay_agent(agent, trajectories, method=...)"),
        ("GymEnv", "GymVecEnv(make_env, n_envs, seed)"),
        ("GymEnvInf", "GymVecEnv(make_env, n_envs, seed, auto_reset=True)"),
        ("DeviceEnv", "observation.to(device)"),
        ("RL_Batcher", "LocalBatcher` or `MultiProcessBatcher"),
    ],
)
def test_a_02_import_names_its_replacement(name: str, replacement: str) -> None:
    with pytest.raises(RemovedImportError) as info:
        exec(f"from rlstructures.agents import {name}", {})
    assert str(info.value).startswith(f"rlstructures.agents.{name} is a name of RLStructures 0.2")
    assert replacement in str(info.value)


def test_other_module_names_are_attribute_errors() -> None:
    import rlstructures.agents

    with pytest.raises(AttributeError, match="has no attribute 'Agnet'"):
        rlstructures.agents.Agnet  # type: ignore[attr-defined]  # noqa: B018  # on purpose


@pytest.mark.parametrize(
    ("name", "replacement"),
    [("gym_envs", "env.envs"), ("envs_running", "reset()` and `step()` return"),
     ("specs_input", "env.action_space")],
)
def test_a_02_gym_env_attribute_names_its_replacement(name: str, replacement: str) -> None:
    with GymVecEnv("CartPole-v1", 2, seed=0) as env:
        with pytest.raises(RemovedNameError, match=rf"GymVecEnv.{name} is a name of RLStr"):
            getattr(env, name)
        with pytest.raises(AttributeError) as info:
            getattr(env, name)
        assert replacement in str(info.value)
        with pytest.raises(AttributeError, match="'GymVecEnv' object has no attribute 'x'"):
            env.x  # type: ignore[attr-defined]  # noqa: B018  # the point of the test


def test_a_list_of_envs_as_0_2_gym_env_took_says_to_pass_a_factory() -> None:
    import gymnasium

    from rlstructures.agents import EnvError

    envs = [gymnasium.make("CartPole-v1") for _ in range(3)]
    with pytest.raises(EnvError, match=r"list of 3 envs, as RLStructures 0.2's GymEnv\(envs, "
                                       r"seed\) took; .*GymVecEnv\(lambda: gymnasium.make"):
        GymVecEnv(envs, 3, seed=0)  # type: ignore[arg-type]  # the 0.2 call, on purpose
    for env in envs:
        env.close()

    class NoSpaces:  # a 0.2 tutorial env: no observation_space
        def reset(self) -> int:
            return 0

        def step(self, action: int) -> tuple[int, float, bool, dict[str, int]]:
            return 0, 0.0, False, {}

    with pytest.raises(EnvError, match=r"list of 2 envs"):
        GymVecEnv([NoSpaces(), NoSpaces()], 2, seed=0)  # type: ignore[arg-type]  # on purpose
