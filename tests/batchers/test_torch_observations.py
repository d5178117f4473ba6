"""Torch agents on the fast path: ``observation.torch()`` views made once per stage slot
(StagedObservation) and torch actions viewed as numpy without the full check."""

from __future__ import annotations

import copy
import functools
import pickle
from typing import Any

import numpy as np
import pytest

from rlstructures.agents import Agent
from rlstructures.batchers import AgentOutputError, LocalBatcher, MultiProcessBatcher
from rlstructures.dicttensor import DictTensor, TemporalDictTensor
from tests.batchers.test_step_into_path import (
    LeanAgent,
    assert_same_runs,
    collect,
    make_plain,
    make_step_only,
)

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.timeout(120)


def execute_and_get(b: Any) -> None:
    b.execute()
    b.get()


class TorchLeanAgent(Agent):
    """LeanAgent written the natural torch way: torch views in, torch actions out.

    ``mode``: "plain"; "replace" (replaces the frame leaf before ``torch()``: the views
    must follow); "add" (adds a key before ``torch()``: it must be there); "grad" (the
    score comes out of an autograd graph, so it needs the full conversion).
    """

    def __init__(self, mode: str = "plain") -> None:
        self.mode = mode

    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        if self.mode == "replace":
            observation["frame"] = -observation["frame"]
        if self.mode == "add":
            observation["lean"] = observation["frame"][:, 2].copy()
        obs = observation.torch()
        assert set(obs.keys()) == set(observation.keys())
        for k, v in obs.items():  # views of the very leaves the agent holds
            assert np.shares_memory(v.numpy(), observation[k]), k
        frame = obs["frame"]
        lean = obs["lean"] if self.mode == "add" else frame[:, 2]
        if self.mode == "replace":
            lean = -lean
        score = lean.clone()
        if self.mode == "grad":
            score = score.requires_grad_() * 1.0
        action = (lean < 0).to(torch.int64)
        return DictTensor({"action": action, "score": score}), state


@pytest.mark.parametrize("mode", ["plain", "replace", "add", "grad"])
@pytest.mark.parametrize("cls", [LocalBatcher, MultiProcessBatcher])
def test_torch_agent_equals_numpy_agent(cls: Any, mode: str) -> None:
    # 3 slices: each stage slot is read as torch once per slice, its views made once
    agent = functools.partial(TorchLeanAgent, mode)
    fast = collect(cls, agent, make_plain, 5)
    assert_same_runs(fast, collect(LocalBatcher, LeanAgent, make_plain, 5))
    assert_same_runs(fast, collect(LocalBatcher, agent, make_step_only, 5))


class DtypeSwitchAgent(Agent):
    """Torch int64 actions, then int32 from its call ``at_call`` on."""

    def __init__(self, at_call: int = 4) -> None:
        self.calls, self.at_call = 0, at_call

    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        self.calls += 1
        dtype = torch.int32 if self.calls >= self.at_call else torch.int64
        return DictTensor({"action": torch.zeros(len(observation), dtype=dtype)}), state


@pytest.mark.parametrize("cls", [LocalBatcher, MultiProcessBatcher])
def test_a_torch_action_changing_dtype_is_caught(cls: Any) -> None:
    # the probe is the first call of its own agent; in the collection, call 4 is step 3
    with cls(DtypeSwitchAgent, make_plain, n_timesteps=6, seeds=[0]) as b:
        b.reset()
        with pytest.raises(
            AgentOutputError,
            match=r"worker 0, step 3: action\['action'\] is int32\[\] per row, expected int64",
        ):
            execute_and_get(b)


class CapturingAgent(Agent):
    """Keeps what it was given at each call, to look at it after a LocalBatcher slice."""

    def __init__(self) -> None:
        self.seen: list[tuple[DictTensor, Any]] = []

    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        self.seen.append((observation, observation.torch()))
        return DictTensor({"action": np.zeros(len(observation), np.int64)}), state


def test_the_views_are_made_once_per_slot_and_pickle_as_plain_dicttensors() -> None:
    agents: list[CapturingAgent] = []

    def make_agent() -> CapturingAgent:
        agents.append(CapturingAgent())
        return agents[-1]

    with LocalBatcher(make_agent, make_plain, n_timesteps=3, seeds=[0]) as b:
        b.reset()
        for _ in range(2):
            b.execute()
            b.get()
    seen = agents[-1].seen
    assert len(seen) == 6
    for t in range(3):  # slot t in slices 1 and 2: the same tensors, fresh containers
        (obs1, views1), (obs2, views2) = seen[t], seen[t + 3]
        assert obs1 is not obs2
        assert views1 is not views2
        assert all(views1[k] is views2[k] for k in views1.keys())
    obs, views = seen[-1]
    for k in obs.keys():
        np.testing.assert_array_equal(views[k].numpy(), obs[k])
    for twin in (pickle.loads(pickle.dumps(obs)), copy.copy(obs), copy.deepcopy(obs)):
        assert type(twin) is DictTensor
        assert twin.equal(obs)
