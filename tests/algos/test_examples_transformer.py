"""Example: a transformer agent with require_history() (windows, replay equal to acting)."""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from rlstructures.agents import replay_agent
from rlstructures.algos.examples import recurrent_ppo, transformer
from rlstructures.batchers import LocalBatcher


def test_window_keeps_the_current_episode_only() -> None:
    frames = torch.arange(10.0).reshape(1, 5, 2)
    initial = torch.tensor([[True, False, False, True, False]])
    out, valid = transformer.window(frames, initial, k=4)
    assert torch.equal(out, frames[:, 1:])
    assert valid.tolist() == [[False, False, True, True]]  # the episode began at step 3
    out, valid = transformer.window(frames[:, :2], initial[:, :2] & False, k=4)
    assert torch.equal(out[:, 2:], frames[:, :2])
    assert valid.tolist() == [[False, False, True, True]]  # the padding never counts


def test_replayed_logits_and_attention_equal_acting_ones() -> None:
    torch.manual_seed(0)
    agent = transformer.TransformerAgent(k=4, d=8)
    make_env = functools.partial(recurrent_ppo.make_env, n_envs=4)
    with LocalBatcher(
        functools.partial(transformer.TransformerAgent, 4, 8), make_env, n_timesteps=40,
        seeds=[0], agent_seeds=[0],
    ) as batcher:
        batcher.update(agent.net.state_dict())
        batcher.reset()
        batcher.execute()
        trajectories, _ = batcher.get()
    steps = trajectories.trajectories.torch()
    assert {"action/logits", "action/attention", "action/logprob"} <= set(steps.keys())
    assert steps["observation/initial_state"][:, 1:].any()  # episodes restart mid-slice
    out = replay_agent(agent, trajectories)  # rebuilds each step's history: history_at
    for key in ("logits", "attention", "logprob"):
        assert torch.allclose(out[key], steps[f"action/{key}"], atol=1e-6), key
    attention = steps["action/attention"]
    assert torch.allclose(attention.sum(-1), torch.ones(4, 40))
    starts = steps["observation/initial_state"]
    assert (attention[starts][:, -1] == 1).all()  # a new episode sees its first frame only
    assert (attention[:, 0, :-1] == 0).all()  # the slice's first step has no history
    values = replay_agent(agent, trajectories, method="replay_values")
    go_on = ~steps["_observation/done"][:, :-1]
    assert torch.allclose(values["next_value"][:, :-1][go_on], values["value"][:, 1:][go_on],
                          atol=1e-5)


def test_short_run(tmp_path: Path) -> None:
    out = transformer.run(steps=2048, k=4, logdir=str(tmp_path))
    assert "action/attention" in out["last"].trajectories.keys()
    assert 0 < out["final_return"] <= 500
