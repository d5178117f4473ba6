"""The Agent base class: default hooks, call_replay, reset_where_initial on both backends."""

from __future__ import annotations

import numpy as np
import pytest

from rlstructures.agents import Agent
from rlstructures.dicttensor import DictTensor, TemporalDictTensor, Trajectories
from tests.agents.helpers import ConstantAgent

torch = pytest.importorskip("torch")


def test_agent_is_abstract() -> None:
    with pytest.raises(TypeError, match="abstract"):
        Agent()  # type: ignore[abstract] # the point of the test


def test_default_initial_state_is_keyless_with_batch_size_rows() -> None:
    agent = ConstantAgent()  # writes no initial_state
    assert "initial_state" not in type(agent).__dict__
    for n in (0, 1, 5):
        state = agent.initial_state(DictTensor({}, batch_shape=(n,)), n)
        assert state.batch_shape == (n,)
        assert not state.keys()


def test_default_hooks() -> None:
    agent = ConstantAgent()
    assert agent.require_history() is False
    agent.update({"w": np.zeros(2)})
    agent.seed(3)
    agent.close()


def test_default_call_replay_feeds_observation_and_agent_info() -> None:
    class Echo(Agent):
        def __call__(
            self,
            state: DictTensor,
            observation: DictTensor,
            agent_info: DictTensor,
            history: TemporalDictTensor | None = None,
        ) -> tuple[DictTensor, DictTensor]:
            assert list(observation.keys()) == ["frame"]
            return DictTensor({"action": observation["frame"] + agent_info["k"]}), state

    steps = TemporalDictTensor({
        "observation/frame": np.arange(6).reshape(2, 3),
        "action/action": np.zeros((2, 3), np.int64),
    })
    info = DictTensor({"agent_info/k": np.array([100, 200]), "env_info/task": np.zeros(2)})
    out, _ = Echo().call_replay(Trajectories(info, steps), 2, DictTensor({}, batch_shape=(2,)))
    np.testing.assert_array_equal(out["action"], [102, 205])


def test_reset_where_initial_numpy() -> None:
    state = DictTensor({"h": np.arange(6, dtype=np.float32).reshape(3, 2),
                        "n": np.array([4, 5, 6])})
    fresh = DictTensor({"h": np.zeros((3, 2), np.float32), "n": np.zeros(3, np.int64)})
    obs = DictTensor({"initial_state": np.array([True, False, True])})
    out = Agent.reset_where_initial(state, fresh, obs)
    np.testing.assert_array_equal(out["h"], [[0, 0], [2, 3], [0, 0]])
    np.testing.assert_array_equal(out["n"], [0, 5, 0])
    none = DictTensor({"initial_state": np.zeros(3, np.bool_)})
    assert Agent.reset_where_initial(state, fresh, none) is state
    empty = DictTensor({}, batch_shape=(3,))
    assert Agent.reset_where_initial(empty, empty, obs) is empty
    # A torch mask or a torch `initial` with a numpy state: the result stays numpy.
    out = Agent.reset_where_initial(state, fresh.torch(), obs.torch())
    assert out.backend == "numpy"
    np.testing.assert_array_equal(out["n"], [0, 5, 0])


def test_reset_where_initial_torch_keeps_gradients() -> None:
    h = torch.ones(3, 2, requires_grad=True)
    state = DictTensor({"h": h * 2})
    fresh = DictTensor({"h": np.zeros((3, 2), np.float32)})  # numpy: converted
    obs = DictTensor({"initial_state": np.array([False, True, False])})
    out = Agent.reset_where_initial(state, fresh, obs)
    assert out.backend == "torch"
    assert torch.equal(out["h"].detach(), torch.tensor([[2.0, 2.0], [0.0, 0.0], [2.0, 2.0]]))
    out["h"].sum().backward()
    assert h.grad is not None
    assert torch.equal(h.grad, torch.tensor([[2.0, 2.0], [0.0, 0.0], [2.0, 2.0]]))
