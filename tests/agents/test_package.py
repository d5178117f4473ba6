"""The package surface: public names, lazy optional imports, the errors module."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import rlstructures.agents
from rlstructures.agents import errors


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, check=False, timeout=60)


def test_public_names() -> None:
    assert set(rlstructures.agents.__all__) == {
        "Agent", "replay_agent", "EpisodeTracker", "VecEnv", "EnvIds", "StepResult",
        "StepIntoVecEnv", "GymVecEnv", "GymVectorVecEnv", "errors", "__version__",
        *errors.__all__,
    }
    for name in rlstructures.agents.__all__:
        assert hasattr(rlstructures.agents, name)
    for name in errors.__all__:  # the error classes are exported like the other packages'
        assert getattr(rlstructures.agents, name) is getattr(errors, name)


def test_one_missing_dependency_error_and_one_is_tensor() -> None:
    import rlstructures.dicttensor

    assert errors.MissingDependencyError is rlstructures.dicttensor.MissingDependencyError
    assert not hasattr(rlstructures.agents, "is_tensor")


def test_import_loads_neither_torch_nor_gymnasium() -> None:
    done = _run("""
        import sys
        import rlstructures.agents
        from rlstructures.agents import Agent, GymVecEnv, GymVectorVecEnv, replay_agent, errors
        print(sorted(m for m in ("torch", "gymnasium", "gym") if m in sys.modules))
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_missing_gymnasium_names_the_extra() -> None:
    done = _run("""
        import sys
        sys.modules["gymnasium"] = None  # as if it were not installed
        from rlstructures.agents import GymVecEnv
        from rlstructures.agents.errors import MissingDependencyError
        try:
            GymVecEnv("CartPole-v1", 2, seed=0)
        except MissingDependencyError as exc:
            assert isinstance(exc, ImportError)
            print(exc)
    """)
    assert done.returncode == 0, done.stderr
    assert "GymVecEnv needs gymnasium" in done.stdout
    assert "pip install 'rlstructures-agents[gym]'" in done.stdout


def test_numpy_only_agent_and_replay_work_without_torch() -> None:
    done = _run("""
        import sys
        sys.modules["torch"] = None  # as if it were not installed
        import numpy as np
        from rlstructures.agents import Agent, replay_agent
        from rlstructures.dicttensor import DictTensor, TemporalDictTensor, Trajectories

        class Greedy(Agent):
            def initial_state(self, agent_info, batch_size):
                return DictTensor({"t": np.zeros(batch_size, np.int64)})
            def __call__(self, state, observation, agent_info, history=None):
                state = self.reset_where_initial(
                    state, self.initial_state(agent_info, len(observation)), observation)
                action = (observation["frame"][:, 2] > 0).astype(np.int64)
                return DictTensor({"action": action}), DictTensor({"t": state["t"] + 1})

        steps = TemporalDictTensor({
            "observation/frame": np.ones((2, 3, 4), np.float32),
            "observation/initial_state": np.zeros((2, 3), bool),
        }, np.array([3, 2]))
        out = replay_agent(Greedy(), Trajectories(DictTensor({}, batch_shape=(2,)), steps))
        print(out["action"].tolist())
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[[1, 1, 1], [1, 1, 0]]"


@pytest.mark.parametrize("name", sorted(set(errors.__all__) - {"MissingDependencyError"}))
def test_errors_refine_a_builtin(name: str) -> None:
    cls = getattr(errors, name)
    assert issubclass(cls, errors.AgentsError)
    if cls is not errors.AgentsError:
        builtins = (ValueError, TypeError, RuntimeError, ImportError)
        assert any(issubclass(cls, b) for b in builtins)
