"""Example: multitask goal-reaching (env_info tasks, agent_info modes, one batcher)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from rlstructures.agents import replay_agent
from rlstructures.algos.examples import multitask


def test_goal_line() -> None:
    env = multitask.goal_line()
    obs, _ = env.reset(seed=0, options={"target": np.int64(3)})
    assert obs[1] == np.float32(0.3)
    position = round(float(obs[0]) * multitask.SIZE)
    action = 2 if position < 3 else 0 if position > 3 else 1
    for _ in range(abs(position - 3) or 1):
        obs, reward, terminated, _, _ = env.step(np.int64(action))
    assert terminated
    assert reward == 1.0


def test_tasks_modes_and_replay(tmp_path: Path) -> None:
    out = multitask.run(iterations=3, logdir=str(tmp_path))
    last, task, greedy = out["last"], out["task"], out["greedy"]
    assert np.array_equal(last.info["env_info/target"], task)
    assert np.array_equal(last.info["agent_info/deterministic"], greedy)
    steps = last.trajectories
    seen_target = np.rint(steps["observation/frame"][..., 1] * multitask.SIZE)
    assert (seen_target == task[:, None]).all()  # every env, every episode: its own task
    assert {"action/action", "action/logprob"} <= set(steps.keys())
    assert {(t, m) for t in multitask.TARGETS for m in ("train", "eval")} == set(out["returns"])
    csv = (tmp_path / "scalars.csv").read_text()
    assert "task1/eval_return" in csv
    assert "task9/train_return" in csv
    agent = multitask.GoalAgent()
    agent.update(out["weights"])
    replayed = replay_agent(agent, last)
    actions = torch.as_tensor(steps["action/action"])
    assert torch.allclose(replayed["logprob"], torch.as_tensor(steps["action/logprob"]),
                          atol=1e-6)
    greedy_rows = torch.as_tensor(greedy)
    assert torch.equal(replayed["logits"].argmax(-1)[greedy_rows], actions[greedy_rows])
    assert not torch.equal(replayed["logits"].argmax(-1)[~greedy_rows], actions[~greedy_rows])
