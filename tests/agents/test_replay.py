"""replay_agent: numpy and torch agents, recurrent state, masking, gradients, errors."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rlstructures.agents import Agent, GymVecEnv, replay_agent
from rlstructures.agents.errors import ReplayError
from rlstructures.dicttensor import DictTensor, TemporalDictTensor, Trajectories
from tests.agents.helpers import AttentionAgent, ConstantAgent, RandomAgent, rollout

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------------- agents
class CountingAgent(Agent):
    """numpy, recurrent: the state counts the steps since the episode start; the output
    holds the count and twice the frame. Records every observation it is given."""

    def __init__(self) -> None:
        self.seen: list[npt.NDArray[Any]] = []

    def initial_state(self, agent_info: DictTensor, batch_size: int) -> DictTensor:
        return DictTensor({"count": np.zeros(batch_size, np.int64)})

    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        self.seen.append(observation["frame"].copy())
        b = len(observation)
        state = self.reset_where_initial(state, self.initial_state(agent_info, b), observation)
        count = state["count"] + 1
        out = {"action": np.zeros(b, np.int64), "count": count, "double": observation["frame"] * 2}
        return DictTensor(out), DictTensor({"count": count})


class GRUAgent(Agent):
    """torch, recurrent: a GRU cell over the frame, a softmax policy sampled with numpy."""

    def __init__(
        self, obs_dim: int = 4, n_actions: int = 2, hidden: int = 8, init_seed: int = 0
    ) -> None:
        with torch.random.fork_rng():
            torch.manual_seed(init_seed)
            self.gru = torch.nn.GRUCell(obs_dim, hidden)
            self.head = torch.nn.Linear(hidden, n_actions)
        self.hidden = hidden
        self.rng = np.random.default_rng(0)

    def initial_state(self, agent_info: DictTensor, batch_size: int) -> DictTensor:
        return DictTensor({"h": torch.zeros(batch_size, self.hidden)})

    def forward(self, state: DictTensor, observation: DictTensor) -> tuple[Any, DictTensor]:
        b = len(observation)
        fresh = self.initial_state(DictTensor({}, batch_shape=(b,)), b)
        # A state read back from stored trajectories is numpy: convert (free if torch).
        state = self.reset_where_initial(state.torch(), fresh, observation)
        h = self.gru(observation.torch()["frame"], state["h"])
        return self.head(h), DictTensor({"h": h})

    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        with torch.no_grad():
            logits, new_state = self.forward(state, observation)
        probs = torch.softmax(logits, dim=1).numpy()
        action = (self.rng.random(len(probs)) > probs[:, 0]).astype(np.int64)
        return DictTensor({"action": torch.from_numpy(action), "logits": logits}), new_state

    def call_replay(
        self, trajectories: Trajectories, t: int, state: DictTensor
    ) -> tuple[DictTensor, DictTensor]:
        observation = trajectories.trajectories.temporal_index(t).select_prefix("observation/")
        logits, new_state = self.forward(state, observation)
        return DictTensor({"logits": logits}), new_state


def cartpole() -> Any:
    return gym.make("CartPole-v1")


# ---------------------------------------------------------------------- tests
@pytest.mark.parametrize("auto_reset", [False, True])
def test_recurrent_torch_agent_replay_equals_acting(auto_reset: bool) -> None:
    # Episode mode: sequences of various lengths. Auto-reset mode: 80 steps hold several
    # CartPole episodes, so the agent resets its state inside sequences, in both paths.
    agent = GRUAgent()
    with GymVecEnv(cartpole, 4, seed=3, auto_reset=auto_reset) as env:
        trajectories = rollout(env, agent, 80)
    lengths = trajectories.lengths
    if auto_reset:
        assert (lengths == 80).all()
        assert trajectories.trajectories["observation/initial_state"][:, 1:].any()
    else:
        assert len(set(lengths.tolist())) > 1
    out = replay_agent(agent, trajectories)
    np.testing.assert_array_equal(out.lengths, lengths)
    mask = trajectories.trajectories.mask()
    acted = trajectories.trajectories["action/logits"]
    replayed = out["logits"].detach().numpy()
    np.testing.assert_allclose(replayed[mask], acted[mask], rtol=1e-5, atol=1e-6)
    assert (replayed[~mask] == 0).all()
    # A different (untrained) agent gives different logits: the comparison can fail.
    assert not np.allclose(replay_agent(GRUAgent(init_seed=1), trajectories)["logits"]
                           .detach().numpy()[mask], acted[mask])


def test_gradients_flow_through_replay() -> None:
    agent = GRUAgent()
    with GymVecEnv(cartpole, 3, seed=0) as env:
        trajectories = rollout(env, agent, 30)
    out = replay_agent(agent, trajectories.torch())
    logits = out["logits"]
    assert logits.requires_grad
    mask = torch.from_numpy(trajectories.trajectories.mask())
    actions = torch.from_numpy(trajectories.trajectories["action/action"])
    log_probs = torch.log_softmax(logits, dim=-1).gather(-1, actions[..., None])[..., 0]
    loss = -(log_probs * mask).sum() / mask.sum()
    loss.backward()
    for parameter in [*agent.gru.parameters(), *agent.head.parameters()]:
        assert parameter.grad is not None
        assert parameter.grad.abs().sum() > 0
    assert (logits.detach()[~mask] == 0).all()


def test_numpy_recurrent_agent_and_auto_reset_boundaries() -> None:
    agent = CountingAgent()
    with GymVecEnv(cartpole, 3, seed=0, auto_reset=True) as env:
        trajectories = rollout(env, agent, 60)
    out = replay_agent(agent, trajectories)
    assert out.backend == "numpy"
    acted = trajectories.trajectories["action/count"]
    np.testing.assert_array_equal(out["count"], acted)
    initial = trajectories.trajectories["observation/initial_state"]
    np.testing.assert_array_equal(out["count"][initial], 1)  # reset at each episode start
    assert out["count"].max() > 5


@given(st.lists(st.integers(0, 6), min_size=1, max_size=5), st.integers(0, 3))
def test_padding_is_never_given_to_the_agent(lengths_list: list[int], extra: int) -> None:
    lengths = np.array(lengths_list, np.int64)
    b, t_max = len(lengths), int(lengths.max()) + extra
    frame = np.arange(b * t_max, dtype=np.int64).reshape(b, t_max)
    valid = np.arange(t_max)[None, :] < lengths[:, None]
    frame[~valid] = -1  # a sentinel on padding steps
    steps = TemporalDictTensor({
        "observation/frame": frame,
        "observation/initial_state": np.zeros((b, t_max), np.bool_),
    }, lengths)
    agent = CountingAgent()
    out = replay_agent(agent, Trajectories(DictTensor({}, batch_shape=(b,)), steps))
    seen = np.concatenate(agent.seen) if agent.seen else np.zeros(0, np.int64)
    assert (seen != -1).all()
    assert len(seen) == lengths.sum()  # each valid step exactly once
    assert out.batch_shape == (b, t_max)
    if not lengths.sum():  # the agent was never called: its output keys are unknown
        assert not list(out.keys())
        return
    np.testing.assert_array_equal(out["double"][valid], frame[valid] * 2)
    np.testing.assert_array_equal(out["double"][~valid], 0)
    np.testing.assert_array_equal(out["count"][valid], (np.arange(t_max)[None, :] + 1
                                                        + np.zeros((b, 1), np.int64))[valid])


def test_initial_state_comes_from_stored_agent_state() -> None:
    steps = TemporalDictTensor({
        "observation/frame": np.zeros((2, 3), np.int64),
        "observation/initial_state": np.zeros((2, 3), np.bool_),
    })
    info = DictTensor({"agent_state/count": np.array([10, 20])})
    out = replay_agent(CountingAgent(), Trajectories(info, steps))
    np.testing.assert_array_equal(out["count"], [[11, 12, 13], [21, 22, 23]])


def test_stateless_agent_and_agent_info() -> None:
    class EpsilonAgent(ConstantAgent):
        def __call__(
            self,
            state: DictTensor,
            observation: DictTensor,
            agent_info: DictTensor,
            history: TemporalDictTensor | None = None,
        ) -> tuple[DictTensor, DictTensor]:
            return DictTensor({"action": agent_info["epsilon"] * 10}), state

    steps = TemporalDictTensor({"observation/frame": np.zeros((3, 2), np.float32)},
                               np.array([2, 0, 1]))
    info = DictTensor({"agent_info/epsilon": np.array([0.1, 0.2, 0.3])})
    out = replay_agent(EpsilonAgent(), Trajectories(info, steps))
    np.testing.assert_allclose(out["action"], [[1.0, 1.0], [0.0, 0.0], [3.0, 0.0]])


def test_stateless_agent_may_return_an_empty_dict_tensor_as_state() -> None:
    class Sloppy(ConstantAgent):
        def initial_state(self, agent_info: DictTensor, batch_size: int) -> DictTensor:
            return DictTensor({})  # batch_shape (0,), not (batch_size,)

        def __call__(
            self,
            state: DictTensor,
            observation: DictTensor,
            agent_info: DictTensor,
            history: TemporalDictTensor | None = None,
        ) -> tuple[DictTensor, DictTensor]:
            return DictTensor({"action": observation["frame"] + 1}), DictTensor({})

    steps = TemporalDictTensor({"observation/frame": np.zeros((2, 3), np.int64)},
                               np.array([3, 1]))
    out = replay_agent(Sloppy(), Trajectories(DictTensor({}, batch_shape=(2,)), steps))
    np.testing.assert_array_equal(out["action"], [[1, 1, 1], [1, 0, 0]])


def test_custom_method_and_empty_trajectories() -> None:
    class Probe(RandomAgent):
        def values(self, trajectories: Trajectories, t: int, state: DictTensor
                   ) -> tuple[DictTensor, DictTensor]:
            n = len(trajectories)
            return DictTensor({"value": np.full(n, float(t))}), state

    steps = TemporalDictTensor({"observation/frame": np.zeros((2, 3))}, np.array([3, 2]))
    trajectories = Trajectories(DictTensor({}, batch_shape=(2,)), steps)
    out = replay_agent(Probe(2), trajectories, method="values")
    np.testing.assert_array_equal(out["value"], [[0, 1, 2], [0, 1, 0]])
    empty = TemporalDictTensor({"observation/frame": np.zeros((2, 3))}, np.array([0, 0]))
    out = replay_agent(Probe(2), Trajectories(DictTensor({}, batch_shape=(2,)), empty),
                       method="values")
    assert out.batch_shape == (2, 3)
    assert not list(out.keys())


def test_replay_errors() -> None:
    steps = TemporalDictTensor({"observation/frame": np.zeros((2, 3))}, np.array([3, 2]))
    trajectories = Trajectories(DictTensor({}, batch_shape=(2,)), steps)

    class Bad(ConstantAgent):
        def __init__(self, mode: str) -> None:
            super().__init__()
            self.mode = mode

        def call_replay(self, trajectories: Trajectories, t: int, state: DictTensor) -> Any:
            n = len(trajectories)
            if self.mode == "batch":
                return DictTensor({"x": np.zeros(n + 1)}), state
            if self.mode == "keys":
                return DictTensor({f"x{t}": np.zeros(n)}), state
            if self.mode == "dtype":
                return DictTensor({"x": np.zeros(n, np.float32 if t else np.float64)}), state
            return DictTensor({"x": np.zeros(n)})

    with pytest.raises(ReplayError, match=r"output of batch_shape \(3,\) at step 0; expected "
                                          r"\(2,\)"):
        replay_agent(Bad("batch"), trajectories)
    with pytest.raises(ReplayError, match=r"at step 1 but .*'x0'.* at step 0"):
        replay_agent(Bad("keys"), trajectories)
    with pytest.raises(ReplayError, match=r"float32.* at step 1 but .*float64"):
        replay_agent(Bad("dtype"), trajectories)
    with pytest.raises(ReplayError, match="must return \\(output, new_state\\)"):
        replay_agent(Bad("tuple"), trajectories)
    with pytest.raises(ReplayError, match="has no method 'values'"):
        replay_agent(ConstantAgent(), trajectories, method="values")
    with pytest.raises(ReplayError, match="takes a Trajectories"):
        replay_agent(ConstantAgent(), steps)  # type: ignore[arg-type] # wrong on purpose


def test_torch_trajectories_and_torch_outputs() -> None:
    steps = TemporalDictTensor({
        "observation/frame": np.ones((2, 3), np.int64),
        "observation/initial_state": np.zeros((2, 3), np.bool_),
    }, np.array([3, 1]))
    trajectories = Trajectories(DictTensor({}, batch_shape=(2,)), steps).torch()

    class TorchCounting(CountingAgent):
        def call_replay(self, trajectories: Trajectories, t: int, state: DictTensor
                        ) -> tuple[DictTensor, DictTensor]:
            out, new_state = super().call_replay(trajectories.numpy(), t, state.numpy())
            return out.torch(), new_state.torch()

    out = replay_agent(TorchCounting(), trajectories)
    assert out.backend == "torch"
    assert torch.equal(out["count"], torch.tensor([[1, 2, 3], [1, 0, 0]]))
    assert torch.equal(out.lengths, torch.tensor([3, 1]))


# ---------------------------------------------------------------------- history (bug 3)
@pytest.mark.parametrize("auto_reset", [False, True])
def test_default_call_replay_rebuilds_the_history(auto_reset: bool) -> None:
    """An attention agent over its history replays to exactly what it output while acting."""
    agent = AttentionAgent()
    with GymVecEnv("CartPole-v1", n_envs=3, seed=5, auto_reset=auto_reset) as env:
        trajectories = rollout(env, agent, 25)
    if not auto_reset:
        assert len(set(trajectories.lengths.tolist())) > 1  # sequences of several lengths
    acted = agent.calls.copy()
    agent.calls.clear()
    out = replay_agent(agent, trajectories)
    assert agent.calls == acted  # the same history lengths, step by step
    steps = trajectories.trajectories
    mask = steps.mask()
    for key in ("action", "score"):
        np.testing.assert_array_equal(out[key][mask], steps[f"action/{key}"][mask])


def test_history_at_is_the_documented_history() -> None:
    steps = TemporalDictTensor({
        "observation/frame": np.arange(12).reshape(2, 6),
        "action/action": np.arange(12).reshape(2, 6) * 10,
        "_observation/frame": np.zeros((2, 6), np.int64),
        "agent_state/h": np.zeros((2, 6)),
    }, np.array([6, 3]))
    tr = Trajectories(DictTensor({}, batch_shape=(2,)), steps)
    history = Agent.history_at(tr, 4)
    assert sorted(history.keys()) == ["action/action", "observation/frame"]
    assert history.batch_shape == (2, 4)
    np.testing.assert_array_equal(history.lengths, [4, 3])
    np.testing.assert_array_equal(history["action/action"][0], [0, 10, 20, 30])
    assert Agent.history_at(tr, 0).batch_shape == (2, 0)
