"""InferenceBatcher on CUDA: the agent gets device tensors, results equal the CPU run.

Marked ``cuda``: skipped without a CUDA device (tests/conftest.py).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest

from rlstructures.agents import Agent
from rlstructures.batchers import InferenceBatcher, LocalBatcher
from rlstructures.batchers.testing import CountingEnv
from rlstructures.dicttensor import DictTensor, TemporalDictTensor

pytestmark = [pytest.mark.cuda, pytest.mark.timeout(120)]


class TorchCounter(Agent):
    """Integer arithmetic in torch (exact on any device); reads its history when asked.

    The action is ``(count + frame[:, 0] + sum of the history's frame[:, :, 0]) % 2``; it
    records the device of every observation it got.
    """

    def __init__(self, history: bool = False) -> None:
        self.history = history
        self.devices: set[str] = set()

    def require_history(self) -> bool:
        return self.history

    def initial_state(self, agent_info: DictTensor, batch_size: int) -> DictTensor:
        import torch

        return DictTensor(
            {"count": torch.zeros(batch_size, dtype=torch.int64)}, batch_shape=(batch_size,)
        )

    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        import torch

        frame = torch.as_tensor(observation["frame"])
        self.devices.add(frame.device.type)
        initial = torch.as_tensor(observation["initial_state"])
        count = torch.as_tensor(state["count"]).to(frame.device)
        count = torch.where(initial, torch.zeros_like(count), count) + 1
        act = count + frame[:, 0].to(torch.int64)
        if history is not None:
            past = torch.as_tensor(history["observation/frame"]).to(frame.device)
            act = act + past[:, :, 0].to(torch.int64).sum(dim=1)
            act = act + torch.as_tensor(history["action/action"]).to(frame.device).sum(dim=1)
        n = len(act)
        action = DictTensor({"action": act % 2}, batch_shape=(n,))
        return action, DictTensor({"count": count}, batch_shape=(n,))


def run(cls: Any, auto_reset: bool, history: bool, **kw: Any) -> list[Any]:
    env = functools.partial(CountingEnv, n_envs=3, auto_reset=auto_reset)
    agent = functools.partial(TorchCounter, history=history)
    out = []
    with cls(agent, env, n_timesteps=5, seeds=[0, 5], **kw) as b:
        b.reset()
        for _ in range(3):
            b.execute()
            tr, n = b.get()
            out.append(tr)
            if not n:
                break
        if cls is InferenceBatcher:
            out.append(b._owner.agent.devices)
    return out


@pytest.mark.parametrize("auto_reset", [False, True])
@pytest.mark.parametrize("history", [False, True])
def test_cuda_agent_identical_to_cpu(auto_reset: bool, history: bool) -> None:
    torch = pytest.importorskip("torch")
    ref = run(LocalBatcher, auto_reset, history)
    got = run(InferenceBatcher, auto_reset, history, device="cuda:0")
    devices = got.pop()
    assert devices == {"cuda"}  # the probe step ran elsewhere (on numpy), not counted here
    torch.cuda.synchronize()
    assert len(ref) == len(got)
    for a, c in zip(ref, got, strict=True):
        assert c.trajectories["action/action"].device.type == "cuda"
        assert c.numpy().equal(a)


def test_pinned_handover_reused_across_gets() -> None:
    torch = pytest.importorskip("torch")
    env = functools.partial(CountingEnv, n_envs=2, auto_reset=True)
    with (
        InferenceBatcher(TorchCounter, env, n_timesteps=4, seeds=[0], device="cuda:0") as b,
        LocalBatcher(TorchCounter, env, n_timesteps=4, seeds=[0]) as ref,
    ):
        b.reset()
        ref.reset()
        for _ in range(4):  # the same pinned buffer each time, results still right
            b.execute()
            ref.execute()
            got, _ = b.get()
            want, _ = ref.get()
            torch.cuda.synchronize()
            assert got.numpy().equal(want)
            np.testing.assert_array_equal(got.lengths.cpu().numpy(), want.lengths)
