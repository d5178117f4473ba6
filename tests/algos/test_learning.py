"""PPO learns: on CartPole-v1 it clearly beats a random policy within a fixed step budget."""

from __future__ import annotations

from pathlib import Path

import gymnasium
import numpy as np

from rlstructures.algos import ppo

BUDGET = 30_000


def _random_policy_return(episodes: int = 50) -> float:
    env = gymnasium.make("CartPole-v1")
    rng = np.random.default_rng(0)
    total = 0.0
    for k in range(episodes):
        env.reset(seed=k)
        done = False
        while not done:
            _, reward, terminated, truncated, _ = env.step(int(rng.integers(2)))
            total += float(reward)
            done = terminated or truncated
    return total / episodes


def test_ppo_beats_a_random_policy_on_cartpole(tmp_path: Path) -> None:
    config = ppo.PPOConfig.from_preset(
        "CartPole-v1",
        total_steps=BUDGET,
        logdir=str(tmp_path / "ppo"),
        eval_every=0,
        eval_episodes=10,
        progress="none",
        plot=False,
        seed=1,
    )
    result = ppo.train(config)
    random_return = _random_policy_return()
    assert 15 < random_return < 30  # CartPole's random policy: about 22
    final = result.last_evaluation
    assert final is not None
    assert final.step == result.steps
    assert final.mean_return > 5 * random_return, (final.mean_return, random_return)
