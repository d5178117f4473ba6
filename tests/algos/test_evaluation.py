"""Evaluator: deterministic episodes in a second batcher; checkpoints."""

from __future__ import annotations

import functools
import time
from pathlib import Path

import gymnasium
import numpy as np
import pytest
import torch

from rlstructures.algos._actor import ActorSpec, NumpyActor
from rlstructures.algos._checkpoint import load_checkpoint, save_checkpoint
from rlstructures.algos._evaluation import Evaluator
from rlstructures.algos._networks import MLP, actor_weights
from rlstructures.algos.errors import CheckpointError


def _reference_returns(net: MLP, n: int, seed: int, rounds: int) -> list[list[float]]:
    """What `rounds` evaluations must find: greedy episodes, env k seeded seed + k once."""
    envs = [gymnasium.make("CartPole-v1") for _ in range(n)]
    out = []
    for r in range(rounds):
        returns = []
        for k, env in enumerate(envs):
            obs, _ = env.reset(seed=seed + k) if r == 0 else env.reset()
            total, done = 0.0, False
            while not done:
                with torch.no_grad():
                    action = int(net(torch.as_tensor(obs[None], dtype=torch.float32)).argmax())
                obs, reward, terminated, truncated, _ = env.step(action)
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
        out.append(returns)
    return out


def test_evaluations_are_greedy_episodes_and_never_block(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = MLP((4, 16, 2), "tanh", output_gain=1.0)
    spec = ActorSpec(head="categorical", sizes=(4, 16, 2), deterministic=True)
    evaluator = Evaluator(
        functools.partial(NumpyActor, spec),
        "CartPole-v1",
        n_episodes=3,
        seed=50,
        max_episode_steps=500,
        start=time.perf_counter(),
    )
    try:
        weights = actor_weights(net)
        evaluator.submit(10, weights)
        evaluator.submit(20, weights)  # waits for the first (a copy of the weights is kept)
        assert evaluator.busy
        evaluator.poll()  # non-blocking: with or without a result
        results = evaluator.wait()
    finally:
        evaluator.close()
    assert [r.step for r in results] == [10, 20]
    want = _reference_returns(net, 3, 50, 2)
    assert [list(r.returns) for r in results] == want
    assert results[0].mean_return == pytest.approx(np.mean(want[0]))
    assert results[0].lengths == tuple(int(x) for x in want[0])


def test_checkpoints_load_with_weights_only_and_refuse_mismatches(tmp_path: Path) -> None:
    net = MLP((4, 8, 2), "tanh", output_gain=1.0)
    save_checkpoint(
        tmp_path,
        algo="ppo",
        step=123,
        seconds=1.0,
        state={"model": net},
        config={"algo": "ppo", "seed": 0},
    )
    payload = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert payload["step"] == 123
    fresh = MLP((4, 8, 2), "tanh", output_gain=1.0)
    assert load_checkpoint(tmp_path, algo="ppo", state={"model": fresh}) == 123
    for a, b in zip(fresh.parameters(), net.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    with pytest.raises(CheckpointError, match="saved by ppo, not a2c"):
        load_checkpoint(tmp_path, algo="a2c", state={"model": fresh})
    with pytest.raises(CheckpointError, match="does not fit"):
        load_checkpoint(
            tmp_path, algo="ppo", state={"model": MLP((4, 9, 2), "tanh", output_gain=1.0)}
        )
    with pytest.raises(CheckpointError, match="no state for"):
        load_checkpoint(tmp_path, algo="ppo", state={"other": fresh})
