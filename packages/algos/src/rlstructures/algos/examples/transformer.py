"""A transformer agent: attention over the last k observations, given by ``require_history()``.

Same task as `recurrent_ppo` (CartPole-v1 with the velocities hidden), no recurrent state
at all: the agent asks the batcher for the history of the slice being collected
(``require_history()``) and attends over its last ``k`` frames of the current episode.
Replaying it rebuilds the same history (``Agent.history_at``), so the replayed logits equal
the acting ones; the PPO loop is `recurrent_ppo.train` with whole slices (no chunks: the
history is the slice's). The attention weights are an output: stored in ``action/attention``.

The window starts afresh at each slice (a batcher's history is that of the current slice):
the first steps of a slice see fewer frames. Carry the last frames in the agent state to
lift that.

Run: ``python -m rlstructures.algos.examples.transformer`` (about 50 s).
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from rlstructures.algos.examples.recurrent_ppo import PolicyAgent, train
from rlstructures.algos.functional import categorical_logprob_entropy
from rlstructures.dicttensor import DictTensor, TemporalDictTensor, Trajectories

__all__ = ["Attention", "TransformerAgent", "window", "run", "main"]


def window(frames: torch.Tensor, initial: torch.Tensor, k: int) -> tuple[torch.Tensor, ...]:
    """The last ``k`` of ``[B, n, 2]`` frames (left-padded) and which are valid ``[B, k]``.

    Valid: in the current episode (not before the last ``initial`` True), not padding.
    """
    b, n = initial.shape
    pad = max(k - n, 0)  # at the start of a slice: pad on the left
    frames = torch.cat([frames.new_zeros(b, pad, 2), frames], 1)[:, -k:]
    initial = torch.cat([initial.new_zeros(b, pad), initial], 1)[:, -k:].long()
    later_starts = initial.flip(1).cumsum(1).flip(1) - initial  # episode starts after each
    real = torch.arange(k, device=frames.device) >= pad
    return frames, (later_starts == 0) & real


class Attention(nn.Module):
    """One attention layer (the current frame's query on the window) and a linear head."""

    def __init__(self, k: int, d: int, n_out: int) -> None:
        super().__init__()
        self.embed, self.position = nn.Linear(2, d), nn.Parameter(torch.randn(k, d) * 0.1)
        self.qkv, self.head = nn.Linear(d, 3 * d), nn.Sequential(nn.Linear(d, d), nn.Tanh(),
                                                                  nn.Linear(d, n_out))

    def forward(self, frames: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``(output [B, n_out], attention [B, k])`` of ``[B, k, 2]`` frames."""
        x = torch.tanh(self.embed(frames * 10.0)) + self.position  # angles are ~0.1 rad
        q, key, v = self.qkv(x).chunk(3, -1)
        scores = (q[:, -1:] * key).sum(-1) / key.shape[-1] ** 0.5  # [B, k]
        weights = scores.masked_fill(~valid, float("-inf")).softmax(-1)
        return self.head((weights[..., None] * v).sum(1) + x[:, -1]), weights


class TransformerAgent(PolicyAgent):
    """Actor and critic, each an `Attention` over the last ``k`` frames; stateless."""

    def __init__(self, k: int = 8, d: int = 32) -> None:
        super().__init__()
        self.k = k
        self.net = nn.ModuleList([Attention(k, d, 2), Attention(k, d, 1)])

    def require_history(self) -> bool:
        """Yes: the frames of the slice so far."""
        return True

    def forward(self, frames: torch.Tensor, initial: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits, value and the actor's attention from ``[B, n, 2]`` frames (the last: now)."""
        frames, valid = window(frames, initial, self.k)
        actor, critic = self.net.children()
        (logits, attention), (value, _) = actor(frames, valid), critic(frames, valid)
        return {"logits": logits, "value": value[:, 0], "attention": attention}

    def inputs(self, observation: DictTensor, history: TemporalDictTensor) -> list[torch.Tensor]:
        """``[frames, initial]`` ``[B, t + 1, ...]``: the history, then the observation."""
        past, now = history.torch(), observation.torch()
        return [torch.cat([past[f"observation/{key}"], now[key][:, None]], 1)
                for key in ("frame", "initial_state")]

    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        """Acts; stores the action, its log-probability, the logits and the attention."""
        if history is None:
            raise ValueError("TransformerAgent needs `history` (it has require_history()).")
        with torch.no_grad():
            out = self.forward(*self.inputs(observation, history))
        stored = {"logits": out["logits"], "attention": out["attention"]}
        return DictTensor(self.sample(out["logits"]) | stored), state

    def call_replay(
        self, trajectories: Trajectories, t: int, state: DictTensor
    ) -> tuple[DictTensor, DictTensor]:
        """Step t again with gradients, from the history rebuilt by ``history_at``."""
        steps = trajectories.trajectories.temporal_index(t).torch()
        history = self.history_at(trajectories, t)
        out = self.forward(*self.inputs(steps.select_prefix("observation/"), history))
        logprob, entropy = categorical_logprob_entropy(out["logits"], steps["action/action"])
        return DictTensor(out | {"logprob": logprob, "entropy": entropy}), state

    def replay_values(
        self, trajectories: Trajectories, t: int, state: DictTensor
    ) -> tuple[DictTensor, DictTensor]:
        """``V(s_t)`` and ``V(s'_t)``: the window moved on by the next observation."""
        steps = trajectories.trajectories.temporal_index(t).torch()
        frames, initial = self.inputs(steps.select_prefix("observation/"),
                                      self.history_at(trajectories, t))
        value = self.forward(frames, initial)["value"]
        frames = torch.cat([frames, steps["_observation/frame"][:, None]], 1)
        initial = torch.cat([initial, torch.zeros_like(initial[:, :1])], 1)  # same episode
        next_value = self.forward(frames, initial)["value"]
        return DictTensor({"value": value, "next_value": next_value}), state


def run(steps: int = 60_000, seed: int = 0, k: int = 8, n_timesteps: int = 32,
        logdir: str = "runs/examples/transformer") -> dict[str, Any]:
    """Train the transformer agent on masked CartPole with `recurrent_ppo.train`."""
    make_agent = functools.partial(TransformerAgent, k)
    return train(make_agent, steps=steps, seed=seed, logdir=logdir, chunk=None,
                 n_envs=1024 // n_timesteps, n_timesteps=n_timesteps)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: train, then print the final evaluation and the stored keys."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k", type=int, default=8, help="frames attended over")
    parser.add_argument("--logdir", default="runs/examples/transformer")
    args = parser.parse_args(argv)
    out = run(steps=args.steps, seed=args.seed, k=args.k, logdir=args.logdir)
    print("stored keys:", sorted(out["last"].trajectories.keys()))
    print(f"final evaluation (16 greedy episodes): {out['final_return']:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
