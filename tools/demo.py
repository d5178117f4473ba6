"""`make demo`: train an agent on CartPole-v1 with the whole rlstructures stack.

Until rlstructures-algos ships its algorithms, this script is the most complete thing that
runs: a small advantage actor-critic (A2C with GAE) written on the public APIs only:

* agents: ``GymVecEnv`` (CartPole-v1, auto-reset) and a torch ``Agent``;
* batchers: ``MultiProcessBatcher`` (2 worker processes, trajectories in shared memory),
  used asynchronously: the next collection runs while the learner computes its loss;
* dicttensor: the loss is a few tensor lines on the ``[B, T]`` TemporalDictTensor;
* logging: ``Logger`` (CSV, Arrow, tensorboard), ``TrajectoryWriter`` (an Arrow file of
  trajectories for offline analysis) and the ``rlstructures-plot`` learning curve.

Everything lands under ``runs/<name>/``. Run ``python tools/demo.py --help`` for options.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import subprocess
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from rlstructures.agents import Agent, EpisodeTracker, GymVecEnv
from rlstructures.batchers import MultiProcessBatcher
from rlstructures.dicttensor import DictTensor, TemporalDictTensor
from rlstructures.logging import Logger, TrajectoryWriter, read_trajectories


class ActorCritic(torch.nn.Module):
    """Policy logits and state value from a CartPole observation."""

    def __init__(self, obs_size: int = 4, n_actions: int = 2, hidden: int = 64) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Linear(obs_size, hidden),
            torch.nn.Tanh(),
            torch.nn.Linear(hidden, hidden),
            torch.nn.Tanh(),
        )
        self.pi = torch.nn.Linear(hidden, n_actions)
        self.v = torch.nn.Linear(hidden, 1)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(obs)
        return self.pi(h), self.v(h)[..., 0]


class SamplingAgent(Agent):
    """Samples actions from the policy; stores the action only (the learner recomputes)."""

    def __init__(self) -> None:
        self.model = ActorCritic()
        self.generator = torch.Generator().manual_seed(0)

    def seed(self, seed: int) -> None:
        self.generator.manual_seed(seed)

    def update(self, state_dict: Any) -> None:
        self.model.load_state_dict(state_dict)

    @torch.no_grad()
    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        logits, _ = self.model(observation.torch()["frame"])
        probs = torch.softmax(logits, dim=-1)
        action = torch.multinomial(probs, 1, generator=self.generator)[:, 0]
        return DictTensor({"action": action.numpy()}, batch_shape=(len(action),)), state


def make_env(seed: int, n_envs: int) -> GymVecEnv:
    """``n_envs`` CartPole-v1 envs seeded ``seed + k``, restarting ended episodes."""
    return GymVecEnv("CartPole-v1", n_envs, seed, auto_reset=True)


def a2c_loss(
    model: ActorCritic, steps: TemporalDictTensor, gamma: float, lam: float, entropy: float
) -> tuple[torch.Tensor, dict[str, float]]:
    """A2C loss with GAE on ``[B, T]`` steps (every step valid: auto-reset envs)."""
    s = steps.torch()
    logits, values = model(s["observation/frame"])
    with torch.no_grad():
        _, next_values = model(s["_observation/frame"])
    reward = s["_observation/reward"]
    not_terminal = (~s["_observation/terminated"]).float()
    not_done = (~s["_observation/done"]).float()
    deltas = reward + gamma * next_values * not_terminal - values.detach()
    advantages = torch.zeros_like(deltas)
    gae = torch.zeros_like(deltas[:, 0])
    for t in reversed(range(deltas.shape[1])):
        gae = deltas[:, t] + gamma * lam * not_done[:, t] * gae
        advantages[:, t] = gae
    returns = advantages + values.detach()
    logp = torch.log_softmax(logits, dim=-1)
    chosen = logp.gather(-1, s["action/action"][..., None])[..., 0]
    ent = -(logp.exp() * logp).sum(-1).mean()
    policy_loss = -(chosen * advantages).mean()
    value_loss = 0.5 * (returns - values).pow(2).mean()
    loss = policy_loss + 0.5 * value_loss - entropy * ent
    stats = {
        "losses/policy": policy_loss.item(),
        "losses/value": value_loss.item(),
        "losses/entropy": ent.item(),
    }
    return loss, stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="runs", help="parent directory of the run")
    parser.add_argument("--name", default="demo-cartpole-a2c", help="run directory name")
    parser.add_argument("--steps", type=int, default=800_000, help="env steps to train for")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--envs", type=int, default=16, help="envs per worker")
    parser.add_argument("--n-timesteps", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    run = Path(args.out) / args.name
    if run.exists():  # a fresh run each time: logs append otherwise
        shutil.rmtree(run)
    run.mkdir(parents=True)
    traj_path = run / "trajectories"

    model = ActorCritic()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    seeds = [args.seed + 1000 * w for w in range(args.workers)]
    hparams = {
        "algo": "a2c-gae",
        "env": "CartPole-v1",
        "lr": args.lr,
        "workers": args.workers,
        "envs_per_worker": args.envs,
        "n_timesteps": args.n_timesteps,
        "gamma": 0.99,
        "gae_lambda": 0.95,
        "entropy": 0.01,
        "seed": args.seed,
    }
    batcher = MultiProcessBatcher(
        SamplingAgent,
        functools.partial(make_env, n_envs=args.envs),
        n_timesteps=args.n_timesteps,
        seeds=seeds,
        agent_seeds=[s + 1 for s in seeds],
    )
    logger = Logger(run / "logs")
    writer = TrajectoryWriter(traj_path, format="arrow", metadata=hparams)
    tracker = EpisodeTracker()
    logger.add_hparams(hparams)
    recent: deque[float] = deque(maxlen=50)
    env_steps = 0
    start = time.perf_counter()
    with (
        batcher,
        logger,
        writer,
        tqdm(total=args.steps, unit="step", desc="A2C CartPole-v1") as bar,
    ):
        batcher.update(model.state_dict())
        batcher.reset()
        batcher.execute()
        while env_steps < args.steps:
            trajectories, _ = batcher.get()
            batcher.execute()  # the workers collect the next slice while we learn on this one
            steps = trajectories.trajectories
            n = int(steps.lengths.sum())
            env_steps += n
            # --- loss and update
            loss, stats = a2c_loss(model, steps, gamma=0.99, lam=0.95, entropy=0.01)
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]  # torch leaves it unannotated
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            optimizer.step()
            batcher.update(model.state_dict())
            # --- logs
            ended = tracker.update(trajectories)  # the episodes that ended in this slice
            for ret, length in zip(ended["return"].tolist(), ended["length"].tolist(), strict=True):
                recent.append(ret)
                logger.add_scalars(
                    {"charts/episodic_return": ret, "charts/episodic_length": float(length)},
                    env_steps,
                )
            if writer.n_trajectories < 2000:  # keep the offline-RL file small
                writer.write(trajectories)
            sps = env_steps / (time.perf_counter() - start)
            logger.add_scalars({**stats, "charts/SPS": sps}, env_steps)
            bar.update(n)
            if recent:
                bar.set_postfix(mean_return=f"{np.mean(recent):.1f}", sps=f"{sps:.0f}")
        batcher.get()
    # --- what a newcomer can look at
    back = read_trajectories(traj_path)
    png = run / "learning_curve.png"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "rlstructures.logging.plot",
            str(run / "logs"),
            "--tag",
            "charts/episodic_return",
            "-o",
            str(png),
        ],
        check=True,
    )
    print(f"\nmean return of the last 50 episodes: {np.mean(recent):.1f} (CartPole-v1 max: 500)")
    print(f"logs (CSV, Arrow, tensorboard): {run / 'logs'}")
    print(
        f"trajectories: {traj_path} ({len(back)} trajectories, "
        f"{int(back.lengths.sum())} steps; pandas/polars/DuckDB read it)"
    )
    print(f"learning curve: {png}")
    print(f"tensorboard --logdir {run / 'logs'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
