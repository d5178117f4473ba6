"""Example 5 (numpy-only tabular Q-learning): keys, exact replay, the update rule, by path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from rlstructures.agents import replay_agent
from rlstructures.algos.examples import tabular_q
from rlstructures.batchers import LocalBatcher
from rlstructures.dicttensor import TemporalDictTensor

ROOT = Path(__file__).resolve().parents[2]


def test_replay_redraws_the_same_exploration() -> None:
    q = np.random.default_rng(0).normal(size=(tabular_q.N_STATES, tabular_q.N_ACTIONS))
    weights = {"q": q, "epsilon": 0.5}
    with LocalBatcher(
        tabular_q.EpsilonGreedyAgent,
        tabular_q.make_env,
        n_timesteps=30,
        seeds=[3],
        agent_seeds=[3],
    ) as batcher:
        batcher.update(weights)
        batcher.reset()
        batcher.execute()
        batcher.get()  # the second slice starts from a stored, advanced random state
        batcher.execute()
        trajectories, _ = batcher.get()
    steps = trajectories.trajectories
    assert {"action/action", "action/explored"} <= set(steps.keys())
    assert list(trajectories.info.keys()) == ["agent_state/rng"]
    explored = steps["action/explored"][steps.mask()]
    assert 0.3 < explored.mean() < 0.7  # epsilon 0.5: both branches are exercised
    agent = tabular_q.EpsilonGreedyAgent()
    agent.update(weights)
    replayed = replay_agent(agent, trajectories)
    mask = steps.mask()
    for key in ("action", "explored"):
        assert np.array_equal(replayed[key][mask], steps[f"action/{key}"][mask])


def test_q_update_does_not_bootstrap_on_termination() -> None:
    def batch(terminated: bool) -> TemporalDictTensor:
        return TemporalDictTensor(
            {
                "observation/frame": np.array([[0]]),
                "action/action": np.array([[1]]),
                "_observation/frame": np.array([[2]]),
                "_observation/reward": np.array([[1.0]], np.float32),
                "_observation/terminated": np.array([[terminated]]),
            }
        )

    for terminated, expected in ((True, 1.0), (False, 1.0 + 0.5 * 4.0)):
        q = np.zeros((3, 2))
        q[2] = [4.0, -1.0]
        tabular_q.q_update(q, batch(terminated), lr=1.0, gamma=0.5)
        assert q[0, 1] == expected


def test_runs_by_path_without_torch(tmp_path: Path) -> None:
    script = ROOT / "packages/algos/examples/tabular_q.py"
    done = subprocess.run(
        [sys.executable, str(script), "--iterations", "3", "--logdir", str(tmp_path / "log")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "stored keys: ['_observation/done'" in done.stdout
    assert "torch imported: False" in done.stdout
    assert (tmp_path / "log" / "scalars.csv").exists()


def test_learns_taxi(tmp_path: Path) -> None:
    out = tabular_q.run(iterations=100, logdir=str(tmp_path))
    first, last = out["curve"][0][1], out["curve"][-1][1]
    assert first < -300  # from random walks ...
    assert last > first + 300
    greedy = out["greedy_returns"]
    assert len(greedy) > 10
    assert greedy.mean() > 0  # ... to delivering the passenger
