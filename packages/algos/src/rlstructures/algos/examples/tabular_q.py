"""Tabular Q-learning on Taxi-v4 with a numpy-only agent, collected by a MultiProcessBatcher.

No torch anywhere: the agent is a Q table and an epsilon-greedy rule. Its random numbers come
from a small counter-free generator (xorshift64) kept *in the agent state*, so the batcher
stores where each stream stands and `replay_agent` redraws the same numbers: replayed
actions equal the acting ones, exploration included. The learner updates the table from each
batch and sends it to the workers with ``batcher.update()``.

Run: ``python -m rlstructures.algos.examples.tabular_q`` (about 5 s); ``--help`` for flags.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from rlstructures.agents import Agent, EpisodeTracker, GymVecEnv
from rlstructures.batchers import MultiProcessBatcher
from rlstructures.dicttensor import DictTensor, TemporalDictTensor, Trajectories
from rlstructures.logging import Logger

__all__ = ["EpsilonGreedyAgent", "make_env", "q_update", "run", "main"]

N_STATES, N_ACTIONS = 500, 6  # Taxi-v4


def make_env(seed: int, n_envs: int = 8) -> GymVecEnv:
    """Worker w's envs (module level, so that worker processes can import it)."""
    return GymVecEnv("Taxi-v4", n_envs, seed, auto_reset=True)


class EpsilonGreedyAgent(Agent):
    """Greedy in a Q table with probability 1 - epsilon, else a uniform random action."""

    def __init__(self) -> None:
        self.q = np.zeros((N_STATES, N_ACTIONS), np.float64)
        self.epsilon, self._seed = 1.0, 0

    def initial_state(self, agent_info: DictTensor, batch_size: int) -> DictTensor:
        """The random streams of fresh envs: one per row (kept across episodes)."""
        rows = np.arange(1, batch_size + 1, dtype=np.uint64)  # one random stream per env
        return DictTensor({"rng": rows * np.uint64(0x9E3779B97F4A7C15) ^ np.uint64(self._seed)})

    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        """One epsilon-greedy step; stores ``action`` and ``explored`` (bool)."""
        x = state["rng"].copy()  # xorshift64: the next number of each env's stream
        x ^= x << np.uint64(13)
        x ^= x >> np.uint64(7)
        x ^= x << np.uint64(17)
        u = (x >> np.uint64(11)).astype(np.float64) * 2.0**-53  # uniform in [0, 1)
        q = self.q[observation["frame"]]
        explore = u < self.epsilon  # then u / epsilon is uniform in [0, 1) again
        random_action = np.minimum(u / max(self.epsilon, 1e-12) * N_ACTIONS, N_ACTIONS - 1)
        action = np.where(explore, random_action.astype(np.int64), q.argmax(1))
        return DictTensor({"action": action, "explored": explore}), DictTensor({"rng": x})

    def update(self, state_dict: Mapping[str, Any]) -> None:
        """``{"q": [500, 6] table, "epsilon": float}`` from the learner."""
        self.q, self.epsilon = state_dict["q"], float(state_dict["epsilon"])

    def seed(self, seed: int) -> None:
        """Seeds the random streams of the next ``initial_state``."""
        self._seed = seed


def q_update(
    q: npt.NDArray[np.float64], steps: TemporalDictTensor, lr: float, gamma: float
) -> None:
    """One Q-learning pass over a ``[B, T]`` batch, step by step in time, in place."""
    for t in range(steps.max_length):
        rows = steps.lengths > t
        s, a = steps["observation/frame"][rows, t], steps["action/action"][rows, t]
        s2 = steps["_observation/frame"][rows, t]
        r = steps["_observation/reward"][rows, t]
        alive = ~steps["_observation/terminated"][rows, t]  # bootstrap unless terminated
        target = r + gamma * alive * q[s2].max(1)
        np.add.at(q, (s, a), lr * (target - q[s, a]))


def run(
    iterations: int = 150,
    n_timesteps: int = 100,
    seed: int = 0,
    lr: float = 0.5,
    gamma: float = 0.99,
    logdir: str = "runs/examples/tabular_q",
) -> dict[str, Any]:
    """Train, log ``charts/episodic_return`` and return the curve and the last batch."""
    q = np.zeros((N_STATES, N_ACTIONS), np.float64)
    tracker, curve, returns = EpisodeTracker(), [], np.zeros(0)
    with (
        MultiProcessBatcher(
            EpsilonGreedyAgent,
            make_env,
            n_timesteps=n_timesteps,
            seeds=[seed, seed + 1000],
            agent_seeds=[seed, seed + 1],
        ) as batcher,
        Logger(logdir, backends=("csv",)) as logger,
    ):
        batcher.update({"q": q, "epsilon": 1.0})
        batcher.reset()
        batcher.execute()
        step = 0
        for i in range(iterations):
            trajectories, _ = batcher.get()
            epsilon = max(0.02, 1.0 - 2.0 * i / iterations)  # decays over the first half
            batcher.update({"q": q.copy(), "epsilon": epsilon if i < iterations - 1 else 0.0})
            batcher.execute()  # the workers collect while we learn
            q_update(q, trajectories.trajectories, lr, gamma)
            step += int(trajectories.lengths.sum())
            ended = tracker.update(trajectories)
            returns = np.concatenate([returns, ended["return"]])[-200:]
            for value in ended["return"]:
                logger.add_scalar("charts/episodic_return", value, step)
            if (i + 1) % max(1, iterations // 10) == 0 and len(returns):
                curve.append((step, float(returns.mean())))
                print(f"step {step:>7}  epsilon {epsilon:.2f}  mean return {curve[-1][1]:8.2f}")
        last, _ = batcher.get()  # acted greedily (epsilon 0) with the final table
        greedy = EpisodeTracker().update(last)["return"]  # episodes fully inside it
    return {"curve": curve, "last": last, "greedy_returns": greedy, "q": q, "logdir": logdir}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: train, print the learning curve, the stored keys and a greedy return."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--logdir", default="runs/examples/tabular_q")
    args = parser.parse_args(argv)
    out = run(iterations=args.iterations, seed=args.seed, logdir=args.logdir)
    last: Trajectories = out["last"]
    print("stored keys:", sorted(last.trajectories.keys()))
    print("agent state at slice start:", sorted(last.info.keys()))
    greedy = out["greedy_returns"]
    print(
        f"greedy episodes in the last batch: {len(greedy)}, mean return "
        f"{greedy.mean() if len(greedy) else float('nan'):.2f}"
    )
    print(
        f"learning curve: {out['logdir']}/scalars.csv "
        f"(plot: rlstructures-plot {out['logdir']} -o tabular_q.png)"
    )
    print("torch imported:", "torch" in sys.modules)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
