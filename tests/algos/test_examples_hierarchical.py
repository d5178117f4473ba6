"""Example: a hierarchical (options) agent: stored decisions, replay, Arrow + DuckDB export."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rlstructures.agents import replay_agent
from rlstructures.algos.examples import hierarchical
from rlstructures.batchers import LocalBatcher
from rlstructures.dicttensor import Trajectories
from rlstructures.logging import TrajectoryWriter


def _collect(agent: hierarchical.OptionsAgent, auto_reset: bool = True) -> Trajectories:
    make = functools.partial(hierarchical.make_env, n_envs=4, auto_reset=auto_reset)
    with LocalBatcher(
        functools.partial(hierarchical.OptionsAgent, agent.n, agent.k), make, n_timesteps=40,
        seeds=[0], agent_seeds=[0],
    ) as batcher:
        batcher.update(agent.net.state_dict())
        batcher.reset()
        for _ in range(2 if auto_reset else 1):  # slice 2 starts from a carried state
            batcher.execute()
            trajectories, _ = batcher.get()
    return trajectories


def test_decisions_are_stored_and_replayed() -> None:
    torch.manual_seed(0)
    agent = hierarchical.OptionsAgent(n_options=3, k=5)
    trajectories = _collect(agent)
    steps = trajectories.trajectories
    assert {"action/option", "action/switch", "action/terminate", "action/logprob"} <= set(
        steps.keys())
    assert set(trajectories.info.keys()) == {"agent_state/option", "agent_state/age"}
    option, switch = steps["action/option"], steps["action/switch"]
    assert (switch[:, 1:] | (option[:, 1:] == option[:, :-1])).all()  # no change unannounced
    assert switch[steps["observation/initial_state"]].all()  # a new episode: a new option
    for row in switch:  # at most k steps without a switch
        gaps = np.diff(np.flatnonzero(np.concatenate([[True], row, [True]])))
        assert gaps.max() <= 5
    assert (switch & ~steps["action/terminate"]).any()  # forced switches happen ...
    assert steps["action/terminate"].any()  # ... and the termination head fires
    replayed = replay_agent(agent, trajectories)
    assert torch.allclose(replayed["logprob"], torch.as_tensor(steps["action/logprob"]),
                          atol=1e-5)
    replayed["logprob"].sum().backward()
    assert agent.manager[0].weight.grad is not None
    assert agent.beta[0].weight.grad is not None


@pytest.mark.parametrize("duckdb", [True, False])
def test_switches_per_episode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              duckdb: bool) -> None:
    if not duckdb:
        monkeypatch.setitem(sys.modules, "duckdb", None)  # import duckdb raises ImportError
    trajectories = _collect(hierarchical.OptionsAgent(), auto_reset=False)
    with TrajectoryWriter(tmp_path / "episodes") as writer:
        writer.write(trajectories)
    rows = hierarchical.switches_per_episode(str(tmp_path / "episodes"))
    steps = trajectories.trajectories
    mask = steps.mask()
    expected = [
        (b, int(steps.lengths[b]), int(steps["action/switch"][b][mask[b]].sum()),
         len(set(steps["action/option"][b][mask[b]].tolist())))
        for b in range(len(steps)) if steps.lengths[b]
    ]
    assert [tuple(int(v) for v in row) for row in rows] == expected


def test_run_prints_the_switch_counts(tmp_path: Path) -> None:
    out = hierarchical.run(steps=2048, logdir=str(tmp_path))
    assert len(out["switches"]) == 8
    assert (tmp_path / "episodes" / "part-00000.arrow").exists()
