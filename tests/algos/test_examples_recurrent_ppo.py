"""Example: recurrent PPO on masked CartPole (stored states, replay, learning)."""

from __future__ import annotations

import functools
from pathlib import Path

import gymnasium
import numpy as np
import torch

from rlstructures.agents import replay_agent
from rlstructures.algos.examples import recurrent_ppo
from rlstructures.batchers import LocalBatcher
from rlstructures.dicttensor import DictTensor, Trajectories
from tests.algos.helpers import logged_scalars


def _collect(agent: recurrent_ppo.GRUAgent, slices: int = 2) -> Trajectories:
    make = functools.partial(recurrent_ppo.make_env, n_envs=4)
    with LocalBatcher(
        functools.partial(recurrent_ppo.GRUAgent, agent.hidden, agent.memory), make, n_timesteps=32,
        seeds=[0], agent_seeds=[0], store_agent_state=True,
    ) as batcher:
        batcher.update(agent.net.state_dict())
        batcher.reset()
        for _ in range(slices):  # the last slice starts from a state carried from the first
            batcher.execute()
            trajectories, _ = batcher.get()
    return trajectories.torch()


def _logprob(out_logits: torch.Tensor, trajectories: Trajectories) -> torch.Tensor:
    actions = trajectories.trajectories["action/action"][..., None]
    return out_logits.log_softmax(-1).gather(-1, actions)[..., 0]


def test_the_agent_sees_no_velocity() -> None:
    env = recurrent_ppo.masked_cartpole()
    obs, _ = env.reset(seed=1)
    full, _ = gymnasium.make("CartPole-v1").reset(seed=1)
    assert obs.shape == (2,)
    assert np.array_equal(obs, full[[0, 2]])


def test_replay_from_stored_states_equals_acting() -> None:
    torch.manual_seed(0)
    agent = recurrent_ppo.GRUAgent(hidden=8)
    trajectories = _collect(agent)
    steps = trajectories.trajectories
    assert {"agent_state/h", "_agent_state/h", "action/logprob"} <= set(steps.keys())
    assert steps["agent_state/h"].shape == (4, 32, 2, 8)
    assert steps["observation/initial_state"][:, 1:].any()  # episodes restart mid-slice
    stored = steps["action/logprob"]
    whole = replay_agent(agent, trajectories)  # from the state at the start of the slice
    assert torch.allclose(_logprob(whole["logits"], trajectories), stored, atol=1e-6)
    assert torch.allclose(whole["logprob"], stored, atol=1e-6)
    batch = recurrent_ppo.chunks(trajectories, 8)  # each chunk from its stored state
    assert batch.trajectories.batch_shape == (16, 8)
    parts = replay_agent(agent, batch)
    assert torch.allclose(_logprob(parts["logits"], batch), batch.trajectories["action/logprob"],
                          atol=1e-6)
    values = replay_agent(agent, batch, method="replay_values")
    assert torch.allclose(values["value"], parts["value"])
    # V(s'_t) carried by the memory is V(s_{t+1}) wherever the episode goes on
    go_on = ~batch.trajectories["_observation/done"][:, :-1]
    assert torch.allclose(values["next_value"][:, :-1][go_on], values["value"][:, 1:][go_on],
                          atol=1e-6)


def test_memoryless_agent_ignores_the_past() -> None:
    agent = recurrent_ppo.GRUAgent(hidden=8, memory=False)
    observation = DictTensor({"frame": torch.randn(3, 2), "initial_state": torch.zeros(3) > 0})
    logits_a, value_a, _ = agent.step(DictTensor({"h": torch.zeros(3, 2, 8)}), observation)
    logits_b, value_b, _ = agent.step(DictTensor({"h": torch.randn(3, 2, 8)}), observation)
    assert torch.equal(logits_a, logits_b)
    assert torch.equal(value_a, value_b)


def test_recurrent_ppo_learns(tmp_path: Path) -> None:
    out = recurrent_ppo.train(recurrent_ppo.GRUAgent, steps=30_720, seed=0, logdir=str(tmp_path))
    returns = [r for _, r in logged_scalars(tmp_path)["charts/episodic_return"]]
    assert np.mean(returns[:3]) < 30  # about a random policy's return
    assert np.mean(returns[-5:]) > 50  # the GRU has learned to infer the velocities
    keys = set(out["last"].trajectories.keys())
    assert {"agent_state/h", "_agent_state/h", "action/logprob", "observation/frame"} <= keys
