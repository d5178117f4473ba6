"""The policies of tools/bench/inference_batchers.py, in a module of their own.

Kept out of the benchmark script so that worker processes started with "spawn" (which
import the parent's main script) import torch only when they unpickle an agent:
InferenceBatcher's workers, which build no agent, then never import it.
"""

from __future__ import annotations

import itertools

import torch

from rlstructures.agents import Agent
from rlstructures.dicttensor import DictTensor, TemporalDictTensor

WINDOW = 8  # observations the transformer attends over


class Attention(torch.nn.Module):
    """The small transformer policy: ``[n, t, 4]`` observations to ``[n, 2]`` logits."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Linear(4, 64)
        self.layer = torch.nn.TransformerEncoderLayer(
            64, 4, dim_feedforward=128, dropout=0.0, batch_first=True
        )
        self.head = torch.nn.Linear(64, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.layer(self.embed(x))[:, -1])
        return logits


def mlp(*sizes: int) -> torch.nn.Module:
    layers: list[torch.nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers += [torch.nn.Linear(a, b), torch.nn.Tanh()]
    return torch.nn.Sequential(*layers[:-1])


def make_policy(kind: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if kind == "small":
        return mlp(4, 64, 64, 2)
    if kind == "large":
        return mlp(4, 1024, 1024, 2)
    if kind == "transformer":
        return Attention().eval()
    if kind == "50M":
        return mlp(4, 5000, 5000, 5000, 2)
    raise ValueError(f"unknown policy {kind!r}")


class PolicyAgent(Agent):
    """A benchmark policy as a stateless Agent (the transformer reads ``history``)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.policy = make_policy(kind)

    def require_history(self) -> bool:
        return self.kind == "transformer"

    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        with torch.no_grad():
            frame = torch.as_tensor(observation["frame"], dtype=torch.float32)
            if history is not None:
                past = torch.as_tensor(history["observation/frame"], dtype=torch.float32)
                seq = torch.cat([past[:, -(WINDOW - 1) :], frame[:, None]], dim=1)
                logits = self.policy(seq)
            else:
                logits = self.policy(frame)
            action = torch.multinomial(torch.softmax(logits, dim=-1), 1)[:, 0]
        return DictTensor({"action": action.numpy()}, batch_shape=(len(action),)), state
