"""Batchers with real gymnasium envs and a recurrent torch agent, replayed afterwards."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from rlstructures.agents import replay_agent
from tests.batchers.conftest import OTHERS, REFERENCE, BatcherKind
from tests.batchers.gru_agent import GRUAgent, make_cartpole

pytestmark = pytest.mark.timeout(120)


# an agent per worker: torch's float results depend on the batch of the call (one VecEnv's
# rows here, as in REFERENCE; InferenceBatcher calls its agent on every worker's rows)
@pytest.mark.parametrize("cls", [k for k in OTHERS if k.agent_per_worker])
@pytest.mark.parametrize("auto_reset", [True, False])
def test_gru_agent_same_as_the_reference_and_in_replay(cls: BatcherKind, auto_reset: bool) -> None:
    env = functools.partial(make_cartpole, n_envs=3, auto_reset=auto_reset)
    results = []
    for kind in (REFERENCE, cls):
        with kind(GRUAgent, env, n_timesteps=40, seeds=[0, 100], store_agent_state=True) as b:
            b.reset()
            b.execute()
            tr, _ = b.get()
            second = None
            if b.n_running:
                b.execute()
                second = b.get()[0]
            results.append((tr, second))
    (local, local2), (proc, proc2) = results
    assert local.equal(proc)
    if local2 is not None:
        assert proc2 is not None
        assert local2.equal(proc2)
    steps = local.trajectories
    assert steps["action/logits"].dtype == np.float32
    if auto_reset:  # episodes restart mid-slice: the agent reset its state there
        assert steps["observation/initial_state"][:, 1:].any()
    # replay with gradients: the same logits as while acting, on every valid step
    agent = GRUAgent(replaying=True)
    for batch in (local, local2) if local2 is not None else (local,):
        out = replay_agent(agent, batch)
        mask = batch.trajectories.mask()
        logits = out["logits"]
        assert isinstance(logits, torch.Tensor)
        np.testing.assert_allclose(
            logits.detach().numpy()[mask], batch.trajectories["action/logits"][mask], atol=1e-5
        )
        loss = logits[torch.from_numpy(mask)].pow(2).mean()
        loss.backward()  # type: ignore[no-untyped-call]  # unannotated in torch
        assert agent.head.weight.grad is not None
        assert agent.cell.weight_hh.grad is not None
