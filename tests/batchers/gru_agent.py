"""A small recurrent torch agent, importable by worker processes (used by the tests)."""

from __future__ import annotations

import numpy as np
import torch

from rlstructures.agents import Agent, GymVecEnv
from rlstructures.dicttensor import DictTensor, TemporalDictTensor


def make_cartpole(seed: int, n_envs: int = 3, auto_reset: bool = True) -> GymVecEnv:
    return GymVecEnv("CartPole-v1", n_envs, seed, auto_reset=auto_reset)


class GRUAgent(Agent):
    """GRU over CartPole observations; stores its logits and acts greedily (deterministic)."""

    def __init__(self, replaying: bool = False) -> None:
        self.replaying = replaying
        torch.manual_seed(0)
        self.cell = torch.nn.GRUCell(4, 8)
        self.head = torch.nn.Linear(8, 2)

    def initial_state(self, agent_info: DictTensor, batch_size: int) -> DictTensor:
        return DictTensor({"h": np.zeros((batch_size, 8), np.float32)}, batch_shape=(batch_size,))

    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        with torch.set_grad_enabled(self.replaying):  # no autograd graph while acting
            state = self.reset_where_initial(
                state, self.initial_state(agent_info, len(state)), observation
            )
            h = self.cell(observation.torch()["frame"], state.torch()["h"])
            logits = self.head(h)
        action = logits.argmax(-1)
        out = DictTensor({"action": action, "logits": logits}, batch_shape=(len(action),))
        return out, DictTensor({"h": h}, batch_shape=(len(action),))
