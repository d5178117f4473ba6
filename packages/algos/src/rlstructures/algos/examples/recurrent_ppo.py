"""Recurrent PPO: a GRU policy on CartPole-v1 with the velocities hidden from the agent.

The agent sees only the cart position and the pole angle; it must remember past frames to
infer the velocities. Its GRU hidden vector is the agent state: the batcher stores it at
every step (``store_agent_state=True``), the learner cuts each batch into chunks of
``chunk`` steps, each started from the stored hidden state, and computes PPO's loss
(``ppo_loss``) on what `replay_agent` recomputes over each chunk, gradients through time
included. ``--no-memory`` replaces the GRU by a feed-forward layer (same sizes, same
training): the memoryless baseline.

Run: ``python -m rlstructures.algos.examples.recurrent_ppo`` (about 35 s).
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium
import numpy as np
import torch
from torch import nn

from rlstructures.agents import Agent, EpisodeTracker, GymVecEnv, replay_agent
from rlstructures.algos.functional import categorical_logprob_entropy, gae_advantages
from rlstructures.algos.ppo import PolicyOutput, PPOConfig, ppo_loss
from rlstructures.batchers import LocalBatcher, MultiProcessBatcher
from rlstructures.dicttensor import DictTensor, TemporalDictTensor, Trajectories
from rlstructures.logging import Logger

__all__ = ["masked_cartpole", "make_env", "Trunk", "PolicyAgent", "GRUAgent", "chunks",
           "ppo_update", "train", "main", "Output"]

Output = tuple[DictTensor, DictTensor]  # what an agent returns: (output, new state)


def masked_cartpole() -> gymnasium.Env[Any, Any]:
    """CartPole-v1 (500 steps at most) without the velocities: observations ``[x, theta]``."""
    space = gymnasium.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    env = gymnasium.make("CartPole-v1")
    return gymnasium.wrappers.TransformObservation(env, lambda obs: obs[[0, 2]], space)


def make_env(seed: int, n_envs: int = 16, auto_reset: bool = True) -> GymVecEnv:
    """``n_envs`` masked CartPoles (module level: picklable for worker processes)."""
    return GymVecEnv(masked_cartpole, n_envs, seed, auto_reset=auto_reset)


class Trunk(nn.Module):
    """An encoder, a GRU cell (or, without memory, a tanh layer) and a linear head."""

    def __init__(self, hidden: int, n_out: int, memory: bool) -> None:
        super().__init__()
        self.enc, self.head, self.memory = nn.Linear(2, hidden), nn.Linear(hidden, n_out), memory
        self.cell = nn.GRUCell(hidden, hidden) if memory else nn.Linear(hidden, hidden)

    def forward(self, frame: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(output [B, n_out], next h [B, hidden])``."""
        x = torch.tanh(self.enc(frame))
        h = self.cell(x, h) if self.memory else torch.tanh(self.cell(x))
        return self.head(h), h


class PolicyAgent(Agent):
    """The base of the agents `ppo_update` trains: sampling and weight updates.

    A subclass sets ``net`` (an ``nn.Module`` holding all its weights) and writes
    ``call_replay`` returning ``logprob`` (of the stored action), ``entropy`` and ``value``,
    and ``replay_values`` returning ``value`` and ``next_value``.
    """

    net: nn.Module

    def __init__(self) -> None:
        self.greedy, self.generator = False, torch.Generator().manual_seed(0)

    def sample(self, logits: torch.Tensor) -> dict[str, torch.Tensor]:
        """``action`` (argmax when greedy) and its ``logprob`` (PPO's ratio needs it)."""
        logp = logits.detach().log_softmax(-1)
        action = (logp.argmax(-1) if self.greedy
                  else torch.multinomial(logp.exp(), 1, generator=self.generator)[:, 0])
        return {"action": action, "logprob": logp.gather(1, action[:, None])[:, 0]}

    def update(self, state_dict: Mapping[str, Any]) -> None:
        """New weights (and ``"greedy"``: argmax instead of sampling)."""
        self.greedy = bool(state_dict.get("greedy", False))
        self.net.load_state_dict({k: v for k, v in state_dict.items() if k != "greedy"})

    def seed(self, seed: int) -> None:
        """Seeds the action sampling."""
        self.generator.manual_seed(seed)


class GRUAgent(PolicyAgent):
    """Actor and critic, each its own `Trunk`; the state holds both hidden vectors."""

    def __init__(self, hidden: int = 64, memory: bool = True) -> None:
        super().__init__()
        self.memory, self.hidden = memory, hidden
        self.net = nn.ModuleList([Trunk(hidden, 2, memory), Trunk(hidden, 1, memory)])

    def initial_state(self, agent_info: DictTensor, batch_size: int) -> DictTensor:
        """Zero hidden vectors per env: the actor's and the critic's, ``[B, 2, hidden]``."""
        return DictTensor({"h": torch.zeros(batch_size, 2, self.hidden)})

    def step(self, state: DictTensor, observation: DictTensor) -> tuple[torch.Tensor, ...]:
        """``(logits [B, 2], value [B], next h)``; a fresh state where an episode starts."""
        fresh = self.initial_state(DictTensor({}), len(observation))
        h = self.reset_where_initial(state.torch(), fresh, observation)["h"]
        actor, critic = self.net.children()
        frame = observation.torch()["frame"]
        (logits, h_pi), (value, h_v) = actor(frame, h[:, 0]), critic(frame, h[:, 1])
        return logits, value[:, 0], torch.stack([h_pi, h_v], 1)

    def __call__(self, state: DictTensor, observation: DictTensor, agent_info: DictTensor,
                 history: TemporalDictTensor | None = None) -> Output:
        """Acts; stores the action and its log-probability (what PPO's ratio needs)."""
        with torch.no_grad():
            logits, _, h = self.step(state, observation)
        return DictTensor(self.sample(logits)), DictTensor({"h": h})

    def call_replay(self, trajectories: Trajectories, t: int, state: DictTensor) -> Output:
        """Step t again, with gradients: what the loss needs, and the logits."""
        steps = trajectories.trajectories.temporal_index(t)
        logits, value, h = self.step(state, steps.select_prefix("observation/"))
        logprob, entropy = categorical_logprob_entropy(logits, steps["action/action"])
        out = {"logits": logits, "value": value, "logprob": logprob, "entropy": entropy}
        return DictTensor(out), DictTensor({"h": h})

    def replay_values(self, trajectories: Trajectories, t: int, state: DictTensor) -> Output:
        """``V(s_t)`` and ``V(s'_t)``: one more step on the next observation (no reset)."""
        steps = trajectories.trajectories.temporal_index(t)
        _, value, h = self.step(state, steps.select_prefix("observation/"))
        _, next_value, _ = self.step(DictTensor({"h": h}), steps.select_prefix("_observation/"))
        return DictTensor({"value": value, "next_value": next_value}), DictTensor({"h": h})


def chunks(trajectories: Trajectories, length: int) -> Trajectories:
    """``[B, T]`` full sequences as ``[B * T / length, length]``, each from its stored state."""
    steps = trajectories.trajectories
    b, n = len(steps), steps.max_length // length
    data = {k: v[:, : n * length].reshape(b * n, length, *v.shape[2:]) for k, v in steps.items()}
    info = DictTensor({"agent_state/h": data["agent_state/h"][:, 0]})  # each chunk's first
    return Trajectories(info, TemporalDictTensor(data))


def ppo_update(agent: PolicyAgent, optimizer: torch.optim.Optimizer, batch: Trajectories,
               rng: np.random.Generator, epochs: int = 10, minibatches: int = 2) -> None:
    """GAE on the current critic, then PPO epochs on minibatches of replayed chunks."""
    s, config = batch.trajectories, PPOConfig(ent_coef=0.01)  # the loss's coefficients
    with torch.no_grad():
        out = replay_agent(agent, batch, method="replay_values")
        adv = gae_advantages(s["_observation/reward"], out["value"], out["next_value"],
                             s["_observation/terminated"], s["_observation/done"],
                             gamma=0.99, lam=0.95)
    old = DictTensor({"logprob": s["action/logprob"], "advantage": adv,
                      "return": adv + out["value"], "value": out["value"]})
    for _ in range(epochs):
        for rows in np.array_split(rng.permutation(len(batch)), minibatches):
            replayed = replay_agent(agent, batch[rows])  # [M, chunk, ...], with gradients
            policy = PolicyOutput(*(replayed[k].flatten() for k in ("logprob", "entropy", "value")))
            flat = DictTensor({k: v.flatten() for k, v in old[rows].items()})
            loss, _ = ppo_loss(flat, policy, config, clip_range=0.2)
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]  # unannotated in torch
            nn.utils.clip_grad_norm_(list(agent.net.parameters()), 0.5)
            optimizer.step()


def train(make_agent: Callable[[], PolicyAgent], *, steps: int, seed: int, logdir: str,
          make_env: Callable[..., GymVecEnv] = make_env, n_envs: int = 32,
          n_timesteps: int = 32, chunk: int | None = 16, lr: float = 1e-3) -> dict[str, Any]:
    """PPO, a worker collecting while the learner updates (chunk None: whole slices).

    Logs ``charts/episodic_return`` in ``logdir``; returns the final evaluation (the mean
    return of 16 greedy episodes), the last batch collected and the agent.
    """
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    agent, rng, tracker = make_agent(), np.random.default_rng(seed), EpisodeTracker()
    optimizer = torch.optim.Adam(agent.net.parameters(), lr=lr)
    with (MultiProcessBatcher(make_agent, functools.partial(make_env, n_envs=n_envs),
                              n_timesteps=n_timesteps, seeds=[seed], agent_seeds=[seed],
                              store_agent_state=chunk is not None) as batcher,
          Logger(logdir, backends=("csv",)) as logger):
        batcher.update(agent.net.state_dict())
        batcher.reset()
        batcher.execute()
        for i in range(max(1, steps // (n_envs * n_timesteps))):  # whole batches, at least one
            done = (i + 1) * n_envs * n_timesteps
            trajectories, _ = batcher.get()
            batcher.execute()  # the worker collects the next batch while we learn
            batch = trajectories.torch()
            ppo_update(agent, optimizer, chunks(batch, chunk) if chunk else batch, rng)
            batcher.update(agent.net.state_dict())
            returns = tracker.update(trajectories)["return"]  # of the episodes that ended
            if len(returns):
                logger.add_scalar("charts/episodic_return", returns.mean(), done)
                if done % 25_600 == 0:
                    print(f"step {done:>7}  mean training return {returns.mean():6.1f}")
    greedy = functools.partial(make_env, n_envs=16, auto_reset=False)  # one episode per env
    with LocalBatcher(make_agent, greedy, n_timesteps=500, seeds=[seed + 10_000]) as batcher:
        batcher.update({**agent.net.state_dict(), "greedy": True})
        batcher.reset()
        batcher.execute()
        episodes, _ = batcher.get()
    final = float(episodes.trajectories["_observation/reward"].sum(1).mean())
    return {"final_return": final, "last": trajectories, "agent": agent}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: train, then print the stored keys and the final evaluation."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-memory", action="store_true", help="memoryless baseline")
    parser.add_argument("--logdir", default="runs/examples/recurrent_ppo")
    args = parser.parse_args(argv)
    make_agent = functools.partial(GRUAgent, memory=not args.no_memory)
    out = train(make_agent, steps=args.steps, seed=args.seed, logdir=args.logdir)
    print("stored keys:", sorted(out["last"].trajectories.keys()))
    print(f"final evaluation (16 greedy episodes): {out['final_return']:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
