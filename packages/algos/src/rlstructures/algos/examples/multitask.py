"""Multitask, goal-conditioned: one batcher, a task and a behaviour mode per env.

``GoalLine`` is a small goal-reaching env defined here: a walker on positions 0..10 must
reach a target position, which is the task, given by ``env_info`` at ``reset()`` (row k of
``env_info`` goes to env k's ``reset(options=...)``, at every auto-reset too). ``agent_info``
says per env whether the agent samples (training) or takes its most likely action
(evaluation). One batcher collects all tasks in both modes at once; the learner trains on
the sampling envs only and logs the returns per task and mode.

Run: ``python -m rlstructures.algos.examples.multitask`` (about 20 s).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import gymnasium
import numpy as np
import torch
from torch import nn

from rlstructures.agents import EpisodeTracker, GymVecEnv
from rlstructures.algos.examples.recurrent_ppo import PolicyAgent, ppo_update
from rlstructures.algos.functional import categorical_logprob_entropy
from rlstructures.batchers import MultiProcessBatcher
from rlstructures.dicttensor import DictTensor, TemporalDictTensor, Trajectories
from rlstructures.logging import Logger

__all__ = ["GoalLine", "goal_line", "GoalAgent", "make_env", "run", "main"]

TARGETS = (1, 5, 9)  # the tasks
SIZE = 10


class GoalLine(gymnasium.Env[np.ndarray, np.int64]):
    """Walk left, stay or right on 0..SIZE; +1 and the end at the target, -0.05 a step."""

    observation_space = gymnasium.spaces.Box(0.0, 1.0, (2,), np.float32)
    action_space = gymnasium.spaces.Discrete(3)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        """A random start; the target is ``options["target"]`` (the task)."""
        super().reset(seed=seed)
        self.target = int(options["target"]) if options else 0
        self.position = int(self.np_random.integers(0, SIZE + 1))
        return self._obs(), {}

    def step(self, action: np.int64) -> Any:
        """Moves by ``action - 1``; ends at the target (terminated) or after 30 steps."""
        self.position = int(np.clip(self.position + int(action) - 1, 0, SIZE))
        reached = self.position == self.target
        return self._obs(), 1.0 if reached else -0.05, reached, False, {}

    def _obs(self) -> np.ndarray:
        return np.array([self.position, self.target], np.float32) / SIZE


def goal_line() -> gymnasium.Env[np.ndarray, np.int64]:
    """One GoalLine, cut after 30 steps (truncated)."""
    return gymnasium.wrappers.TimeLimit(GoalLine(), 30)


def make_env(seed: int, n_envs: int = 12) -> GymVecEnv:
    """``n_envs`` GoalLines (module level: picklable)."""
    return GymVecEnv(goal_line, n_envs, seed, auto_reset=True)


class GoalAgent(PolicyAgent):
    """An MLP policy and critic on ``[position, target]``; ``agent_info/deterministic``."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.ModuleList([nn.Sequential(nn.Linear(2, 64), nn.Tanh(), nn.Linear(64, n))
                                  for n in (3, 1)])

    def heads(self, frame: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits [B, 3], value [B])``."""
        actor, critic = self.net.children()
        x = torch.as_tensor(frame)
        return actor(x), critic(x)[:, 0]

    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        """Samples, or takes the argmax on the rows whose ``deterministic`` is True."""
        with torch.no_grad():
            logits, _ = self.heads(observation["frame"])
        out = self.sample(logits)
        greedy = torch.as_tensor(agent_info["deterministic"])
        out["action"] = torch.where(greedy, logits.argmax(-1), out["action"])
        out["logprob"] = logits.log_softmax(-1).gather(1, out["action"][:, None])[:, 0]
        return DictTensor(out), state

    def call_replay(
        self, trajectories: Trajectories, t: int, state: DictTensor
    ) -> tuple[DictTensor, DictTensor]:
        """Step t with gradients: ``logprob``, ``entropy``, ``value`` and the logits."""
        steps = trajectories.trajectories.temporal_index(t).torch()
        logits, value = self.heads(steps["observation/frame"])
        logprob, entropy = categorical_logprob_entropy(logits, steps["action/action"])
        out = {"logits": logits, "value": value, "logprob": logprob, "entropy": entropy}
        return DictTensor(out), state

    def replay_values(
        self, trajectories: Trajectories, t: int, state: DictTensor
    ) -> tuple[DictTensor, DictTensor]:
        """``V(s_t)`` and ``V(s'_t)``."""
        steps = trajectories.trajectories.temporal_index(t).torch()
        _, value = self.heads(steps["observation/frame"])
        _, next_value = self.heads(steps["_observation/frame"])
        return DictTensor({"value": value, "next_value": next_value}), state


def run(iterations: int = 60, seed: int = 0, logdir: str = "runs/examples/multitask"
        ) -> dict[str, Any]:
    """Train on all tasks at once; return the last mean return per (task, mode)."""
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    n = 2 * 12  # two workers of 12 envs: env k has task k % 3, greedy when k % 6 >= 3
    task = np.array([TARGETS[k % 3] for k in range(n)])
    greedy = np.arange(n) % 6 >= 3
    agent, rng, tracker = GoalAgent(), np.random.default_rng(seed), EpisodeTracker()
    recent: dict[tuple[int, str], list[float]] = {}  # the last 50 returns per (task, mode)
    optimizer = torch.optim.Adam(agent.net.parameters(), lr=3e-3)
    with (MultiProcessBatcher(GoalAgent, make_env, n_timesteps=30, seeds=[seed, seed + 100],
                              agent_seeds=[seed, seed + 1],
                              agent_info=DictTensor({"deterministic": np.zeros(1, bool)}),
                              env_info=DictTensor({"target": np.zeros(1, np.int64)})) as batcher,
          Logger(logdir, backends=("csv",)) as logger):
        batcher.update(agent.net.state_dict())
        batcher.reset(agent_info=DictTensor({"deterministic": greedy}),
                      env_info=DictTensor({"target": task}))
        batcher.execute()
        for i in range(iterations):
            trajectories, _ = batcher.get()
            batcher.execute()
            ppo_update(agent, optimizer, trajectories[np.flatnonzero(~greedy)].torch(), rng)
            batcher.update(agent.net.state_dict())
            ended = tracker.update(trajectories)
            for target in TARGETS:
                for mode, rows in (("train", ~greedy), ("eval", greedy)):
                    mine = rows[ended["env"]] & (task[ended["env"]] == target)
                    if mine.any():
                        logger.add_scalar(f"task{target}/{mode}_return",
                                          ended["return"][mine].mean(), i)
                        kept = recent.setdefault((target, mode), [])
                        kept[:] = (kept + ended["return"][mine].tolist())[-50:]
            if (i + 1) % 20 == 0:
                print(f"iteration {i + 1:>3}  greedy return " + "  ".join(
                    f"target {t}: {np.mean(recent.get((t, 'eval'), [np.nan])):5.2f}"
                    for t in TARGETS))
        batcher.get()  # the slice the last execute() started; then one with the final weights
        batcher.execute()
        last, _ = batcher.get()
    returns = {key: float(np.mean(v)) for key, v in recent.items()}
    weights = agent.net.state_dict()
    return {"returns": returns, "last": last, "task": task, "greedy": greedy, "weights": weights}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: train, print the greedy return per task and the stored keys."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--logdir", default="runs/examples/multitask")
    args = parser.parse_args(argv)
    out = run(iterations=args.iterations, seed=args.seed, logdir=args.logdir)
    last: Trajectories = out["last"]
    print("per-env info:", sorted(last.info.keys()))
    print("stored keys:", sorted(last.trajectories.keys()))
    for (target, mode), value in sorted(out["returns"].items()):
        print(f"target {target} {mode:>5}: mean return {value:5.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
