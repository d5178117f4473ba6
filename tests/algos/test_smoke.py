"""Each algorithm for a few hundred steps, in-process: losses, logs, checkpoints, trajectories."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rlstructures.algos import TrainResult, a2c, ppo
from rlstructures.algos._checkpoint import checkpoint_path
from rlstructures.algos._config import TrainConfig
from rlstructures.algos._envs import describe_env
from rlstructures.algos._networks import ActorCritic
from rlstructures.algos._optim import RMSprop
from rlstructures.algos._run import Run
from rlstructures.algos.errors import ConfigError
from rlstructures.logging import read_trajectories
from tests.algos.helpers import logged_scalars

SMALL: dict[str, Any] = {"n_envs": 2, "eval_every": 128, "eval_episodes": 2, "progress": "none"}
CASES = [
    (a2c, "CartPole-v1", {"n_steps": 8}),
    (ppo, "CartPole-v1", {"n_steps": 16, "batch_size": 16, "n_epochs": 2}),
    (a2c, "Pendulum-v1", {"n_steps": 8}),
    (ppo, "Pendulum-v1", {"n_steps": 16, "batch_size": 16, "n_epochs": 2}),
]


def _config(module: Any, env_id: str, extra: dict[str, Any], logdir: Path, **kw: Any) -> Any:
    cls = module.A2CConfig if module is a2c else module.PPOConfig
    return cls.from_preset(env_id, logdir=str(logdir), **{**SMALL, **extra, **kw})


@pytest.mark.parametrize(
    ("module", "env_id", "extra"),
    CASES,
    ids=[f"{m.__name__.rsplit('.', 1)[1]}-{e}" for m, e, _ in CASES],
)
def test_a_short_run_writes_everything(
    module: Any, env_id: str, extra: dict[str, Any], tmp_path: Path
) -> None:
    logdir = tmp_path / "run"
    config = _config(module, env_id, extra, logdir, total_steps=320, save_trajectories=True)
    result = module.train(config)
    assert isinstance(result, TrainResult)
    assert result.steps >= 320
    assert result.logdir == logdir
    scalars = logged_scalars(logdir)
    losses = [t for t in scalars if t.startswith("losses/")]
    assert {"losses/policy_loss", "losses/value_loss", "losses/entropy"} <= set(losses)
    if module is ppo:
        assert {"losses/approx_kl", "losses/clipfrac", "losses/explained_variance"} <= set(losses)
    assert all(math.isfinite(v) for t in losses for _, v in scalars[t])
    assert "charts/SPS" in scalars
    evals = scalars["eval/episodic_return"]
    assert [s for s, _ in evals] == [e.step for e in result.evaluations]
    assert result.evaluations[-1].step == result.steps  # the final evaluation
    assert len(result.evaluations[-1].returns) == 2
    if env_id == "CartPole-v1":  # episodes that short end within 320 steps
        assert all(v >= 1 for _, v in scalars["charts/episodic_length"])
    # checkpoint: torch.load(weights_only=True), config as JSON, the step
    saved = torch.load(checkpoint_path(logdir), weights_only=True)
    assert saved["step"] == result.steps
    assert saved["algo"] == config.algo
    assert set(saved["state"]) == {"model", "optimizer"}
    assert json.loads((logdir / "checkpoints" / "config.json").read_text())["n_steps"] == (
        config.n_steps
    )
    # trajectories: every collected batch, with the actor's stored outputs
    back = read_trajectories(logdir / "trajectories")
    assert int(np.asarray(back.lengths).sum()) == result.steps
    assert "action/logprob" in back.trajectories.keys()
    assert result.learning_curve is not None
    assert result.learning_curve.stat().st_size > 0


def test_resume_restores_the_weights_and_continues_the_logs(tmp_path: Path) -> None:
    logdir = tmp_path / "run"
    first = a2c.train(
        _config(a2c, "CartPole-v1", {"n_steps": 8}, logdir, total_steps=200, plot=False)
    )
    saved = torch.load(checkpoint_path(logdir), weights_only=True)
    # the resume path of Run, on fresh networks: the weights are the saved ones
    config = _config(
        a2c, "CartPole-v1", {"n_steps": 8}, logdir, total_steps=400, resume=str(logdir), plot=False
    )
    env = describe_env("CartPole-v1")
    model = ActorCritic(env, config.hidden_sizes, config.activation)
    optimizer = RMSprop(model.parameters())
    with Run(
        config,
        env=env,
        actor=model.actor_spec(),
        n_timesteps=8,
        state={"model": model, "optimizer": optimizer},
        device=torch.device("cpu"),
    ) as run:
        assert run.step == first.steps
        for key, value in model.state_dict().items():
            torch.testing.assert_close(value, saved["state"]["model"][key])
        run.start(model.actor_weights())
    # and a resumed training run logs after the saved step, keeping the earlier rows
    rows_before = logged_scalars(logdir)["charts/SPS"]
    second = a2c.train(config)
    assert second.steps >= 400
    sps = logged_scalars(logdir)["charts/SPS"]
    assert sps[: len(rows_before)] == rows_before
    assert min(s for s, _ in sps[len(rows_before) :]) > first.steps
    with pytest.raises(ConfigError, match="already has"):
        a2c.train(config)  # 400 steps done: nothing left to do


def test_a_fresh_run_refuses_a_used_logdir(tmp_path: Path) -> None:
    (tmp_path / "scalars.csv").write_text("x")
    with pytest.raises(ConfigError, match="--resume"):
        a2c.train(_config(a2c, "CartPole-v1", {}, tmp_path, total_steps=100))


def test_configs_check_their_values() -> None:
    with pytest.raises(ConfigError, match=r"total_steps \(--total-steps\) must be a positive"):
        ppo.PPOConfig(total_steps=0)
    with pytest.raises(ConfigError, match="gamma"):
        a2c.A2CConfig(gamma=1.5)
    with pytest.raises(ConfigError, match="multiple of --n-processes"):
        TrainConfig(n_envs=3, n_processes=2)
    assert ppo.PPOConfig.from_preset("CartPole-v1").n_epochs == 20
    assert ppo.PPOConfig.from_preset("CartPole-v1", n_epochs=3).n_epochs == 3
    assert ppo.PPOConfig.from_preset("Acrobot-v1").n_epochs == 10  # no preset: defaults
