"""A hierarchical agent: a manager picks options, a worker acts on the current one.

On CartPole-v1, the manager chooses one of ``n_options`` options when the current one has
run ``k`` steps or when the termination head fires (a Bernoulli of ``beta(s, option)``);
the worker's policy is conditioned on the option. The agent state is ``(option, age)``.
Every decision is an output, so the batcher stores it: ``action/option``, ``action/switch``
(a new option chosen at this step) and ``action/terminate`` (the termination head's draw),
next to ``action/action`` and the joint ``action/logprob`` of all the decisions, on which
PPO trains (`recurrent_ppo.train`). The final episodes are written to Arrow with
`TrajectoryWriter` and a DuckDB query counts the option switches per episode.

Run: ``python -m rlstructures.algos.examples.hierarchical`` (about 35 s).
"""

from __future__ import annotations

import argparse
import functools
import glob
import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from rlstructures.agents import GymVecEnv
from rlstructures.algos.examples.recurrent_ppo import PolicyAgent, train
from rlstructures.algos.functional import categorical_logprob_entropy
from rlstructures.batchers import LocalBatcher
from rlstructures.dicttensor import DictTensor, TemporalDictTensor, Trajectories
from rlstructures.logging import TrajectoryWriter

__all__ = ["OptionsAgent", "make_env", "switches_per_episode", "run", "main"]


def make_env(seed: int, n_envs: int = 32, auto_reset: bool = True) -> GymVecEnv:
    """CartPole-v1 envs (module level: picklable)."""
    return GymVecEnv("CartPole-v1", n_envs, seed, auto_reset=auto_reset)


def mlp(n_in: int, n_out: int) -> nn.Sequential:
    """``n_in -> 64 -> n_out`` with a tanh."""
    return nn.Sequential(nn.Linear(n_in, 64), nn.Tanh(), nn.Linear(64, n_out))


class OptionsAgent(PolicyAgent):
    """Manager, termination head, option-conditioned worker and critic."""

    def __init__(self, n_options: int = 4, k: int = 8) -> None:
        super().__init__()
        self.n, self.k = n_options, k
        self.manager, self.beta = mlp(4, n_options), mlp(4, n_options)
        self.worker, self.critic = mlp(4 + n_options, 2), mlp(4, 1)
        self.net = nn.ModuleList([self.manager, self.beta, self.worker, self.critic])

    def initial_state(self, agent_info: DictTensor, batch_size: int) -> DictTensor:
        """No option yet, and an age of ``k``: the manager chooses at the first step."""
        zeros = torch.zeros(batch_size, dtype=torch.int64)
        return DictTensor({"option": zeros, "age": zeros + self.k})

    def decide(self, state: DictTensor, observation: DictTensor,
               stored: DictTensor | None = None) -> tuple[dict[str, torch.Tensor], DictTensor]:
        """One step: sample the decisions (or take the ``stored`` ones) and score them."""
        fresh = self.initial_state(DictTensor({}), len(observation))
        state = self.reset_where_initial(state.torch(), fresh, observation)
        s, previous = observation.torch()["frame"], state["option"]
        forced = state["age"] >= self.k  # the option has run out: the manager must choose
        beta = torch.sigmoid(self.beta(s).gather(1, previous[:, None])[:, 0])
        if stored is None:
            terminate = torch.rand(len(s), generator=self.generator) < beta.detach()
        else:
            terminate = stored["terminate"]
        switch = forced | terminate
        manager = self.manager(s).log_softmax(-1)
        if stored is None:
            pick = torch.multinomial(manager.detach().exp(), 1, generator=self.generator)[:, 0]
            option = torch.where(switch, pick, previous)
        else:
            option = stored["option"]
        logits = self.worker(torch.cat([s, nn.functional.one_hot(option, self.n).float()], 1))
        action = self.sample(logits)["action"] if stored is None else stored["action"]
        worker_logprob, worker_entropy = categorical_logprob_entropy(logits, action)
        beta_logprob = torch.where(terminate, beta, 1 - beta).clamp_min(1e-8).log()
        logprob = (worker_logprob + torch.where(forced, 0.0, beta_logprob)
                   + torch.where(switch, manager.gather(1, option[:, None])[:, 0], 0.0))
        entropy = worker_entropy - torch.where(switch, (manager.exp() * manager).sum(-1), 0.0)
        out = {"action": action, "option": option, "switch": switch,
               "terminate": terminate, "logprob": logprob, "entropy": entropy,
               "value": self.critic(s)[:, 0]}
        age = torch.where(switch, 1, state["age"] + 1)
        return out, DictTensor({"option": option, "age": age})

    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        """Acts; everything that was decided is stored under ``action/...``."""
        with torch.no_grad():
            out, new_state = self.decide(state, observation)
        keys = ("action", "option", "switch", "terminate", "logprob")
        return DictTensor({key: out[key] for key in keys}), new_state

    def call_replay(
        self, trajectories: Trajectories, t: int, state: DictTensor
    ) -> tuple[DictTensor, DictTensor]:
        """Step t again with the stored decisions: their log-probability, with gradients."""
        steps = trajectories.trajectories.temporal_index(t).torch()
        out, new_state = self.decide(state, steps.select_prefix("observation/"),
                                     steps.select_prefix("action/"))
        return DictTensor({k: out[k] for k in ("logprob", "entropy", "value")}), new_state

    def replay_values(
        self, trajectories: Trajectories, t: int, state: DictTensor
    ) -> tuple[DictTensor, DictTensor]:
        """``V(s_t)`` and ``V(s'_t)`` (the critic ignores the option)."""
        steps = trajectories.trajectories.temporal_index(t).torch()
        value, next_value = (self.critic(steps[f"{p}/frame"])[:, 0]
                             for p in ("observation", "_observation"))
        return DictTensor({"value": value, "next_value": next_value}), state


def switches_per_episode(path: str) -> list[tuple[Any, ...]]:
    """``(episode, steps, switches, options used)`` per trajectory of an Arrow dataset."""
    import pyarrow.dataset

    steps = pyarrow.dataset.dataset(sorted(glob.glob(os.path.join(path, "part-*.arrow"))),
                                    format="ipc").to_table()
    try:
        import duckdb
    except ImportError:  # duckdb is optional: pyarrow's group_by gives the same table
        print("(duckdb is not installed: the same count with pyarrow's group_by)")
        table = steps.group_by("trajectory").aggregate(
            [("t", "count"), ("action/switch", "sum"), ("action/option", "count_distinct")])
        return sorted(tuple(row.values()) for row in table.to_pylist())
    query = """SELECT trajectory, count(*), sum(CAST("action/switch" AS INTEGER)),
                      count(DISTINCT "action/option")
               FROM steps GROUP BY trajectory ORDER BY trajectory"""
    connection = duckdb.connect()
    connection.register("steps", steps)
    return connection.execute(query).fetchall()


def run(steps: int = 60_000, seed: int = 0, logdir: str = "runs/examples/hierarchical"
        ) -> dict[str, Any]:
    """Train with `recurrent_ppo.train`, write 8 episodes to ``logdir/episodes``, count."""
    out = train(OptionsAgent, steps=steps, seed=seed, logdir=logdir, make_env=make_env,
                chunk=None)  # the decisions depend on the state: replay whole slices
    episodes = os.path.join(logdir, "episodes")
    make = functools.partial(make_env, n_envs=8, auto_reset=False)  # one episode per env
    with LocalBatcher(OptionsAgent, make, n_timesteps=500, seeds=[seed + 1]) as batcher, \
            TrajectoryWriter(episodes, metadata={"env_id": "CartPole-v1"}) as writer:
        batcher.update(out["agent"].net.state_dict())
        batcher.reset()
        batcher.execute()
        last, _ = batcher.get()
        writer.write(last)
    return {**out, "last": last, "episodes": episodes, "switches": switches_per_episode(episodes)}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: train, export, print the stored keys and the switches per episode."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--logdir", default="runs/examples/hierarchical")
    args = parser.parse_args(argv)
    out = run(steps=args.steps, seed=args.seed, logdir=args.logdir)
    print("stored keys:", sorted(out["last"].trajectories.keys()))
    print(f"final evaluation (16 episodes, greedy worker): {out['final_return']:.1f}")
    print(f"episodes written to {out['episodes']}; per episode (DuckDB):")
    print("episode  steps  switches  options used")
    for row in out["switches"]:
        print("  ".join(f"{value:>7}" for value in row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
