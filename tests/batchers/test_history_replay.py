"""An attention agent over its history, through LocalBatcher: replay equals acting.

The batchers pass ``history`` (the slice's earlier ``observation/*`` and the agent's own
``action/*``); ``Agent.call_replay`` rebuilds the same from the stored slice
(``Agent.history_at``), so ``replay_agent`` gives back exactly what the agent output.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from rlstructures.agents import GymVecEnv, replay_agent
from rlstructures.batchers import LocalBatcher
from tests.agents.helpers import AttentionAgent


def make_env(seed: int, auto_reset: bool) -> GymVecEnv:
    return GymVecEnv("CartPole-v1", 3, seed, auto_reset=auto_reset)


@pytest.mark.parametrize("auto_reset", [False, True])
def test_replayed_attention_outputs_equal_acting_outputs(auto_reset: bool) -> None:
    with LocalBatcher(AttentionAgent, functools.partial(make_env, auto_reset=auto_reset),
                      n_timesteps=6, seeds=[1, 2]) as batcher:
        batcher.reset()
        for _ in range(3):  # several slices: history restarts at each
            batcher.execute()
            trajectories, n_running = batcher.get()
            steps = trajectories.trajectories
            mask = steps.mask()
            assert mask.any()
            agent = AttentionAgent()  # the same weights (seeded), a fresh call log
            out = replay_agent(agent, trajectories)
            for key in ("action", "score"):
                np.testing.assert_array_equal(out[key][mask], steps[f"action/{key}"][mask])
            assert max(agent.calls) == int(trajectories.lengths.max()) - 1
            if not n_running:
                break
