"""Double DQN for a few hundred steps, in-process; its command-line errors."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rlstructures.algos import TrainResult, dqn
from rlstructures.algos._checkpoint import Stateful, checkpoint_path, load_checkpoint
from rlstructures.algos._cli import main
from rlstructures.algos._envs import describe_env
from rlstructures.algos._optim import Adam
from rlstructures.algos.errors import ConfigError
from rlstructures.logging import read_trajectories
from tests.algos.helpers import logged_scalars

SMALL: dict[str, Any] = {
    "n_envs": 2,
    "train_freq": 16,
    "gradient_steps": 2,
    "batch_size": 16,
    "learning_starts": 64,
    "target_update_interval": 64,
    "eval_every": 128,
    "eval_episodes": 2,
    "progress": "none",
}


# the CartPole-v1 preset is duelling with 3-step targets: the first variant is plain DQN's path
VARIANTS: list[dict[str, Any]] = [
    {"dueling": False, "n_step": 1, "anneal_lr": False},
    {"dueling": True, "n_step": 3, "tau": 0.5, "anneal_lr": True},
]


@pytest.mark.parametrize("extra", VARIANTS)
def test_a_short_run_writes_everything_and_resumes(extra: dict[str, Any], tmp_path: Path) -> None:
    logdir = tmp_path / "run"
    config = dqn.DQNConfig.from_preset(
        "CartPole-v1", logdir=str(logdir), total_steps=320, save_trajectories=True,
        **{**SMALL, **extra},
    )  # fmt: skip
    result = dqn.train(config)
    assert isinstance(result, TrainResult)
    assert result.steps == 320
    scalars = logged_scalars(logdir)
    assert {"losses/td_loss", "losses/q_values", "charts/epsilon", "charts/SPS"} <= set(scalars)
    # learning starts once 64 transitions are stored: 320 / 16 - 64 / 16 + 1 phases
    assert len(scalars["losses/td_loss"]) == 17
    assert all(math.isfinite(v) for t in scalars if t.startswith("losses/") for _, v in scalars[t])
    epsilon = [v for _, v in scalars["charts/epsilon"]]
    assert epsilon[0] == 1.0
    assert epsilon[-1] == pytest.approx(config.exploration_final_eps)
    assert result.evaluations[-1].step == 320
    lrs = [v for _, v in scalars["charts/learning_rate"]]
    if config.anneal_lr:  # linear decay to 0 over total_steps
        assert lrs[0] == pytest.approx(config.learning_rate * (1 - 64 / 320))
        assert lrs[-1] == 0.0
        assert all(a > b for a, b in itertools.pairwise(lrs))
    else:
        assert set(lrs) == {config.learning_rate}
    assert all(v >= 1 for _, v in scalars["charts/episodic_length"])
    # checkpoint: torch.load(weights_only=True), config as JSON, the step
    saved = torch.load(checkpoint_path(logdir), weights_only=True)
    assert saved["step"] == 320
    assert set(saved["state"]) == {"q", "target", "optimizer"}
    saved_config = json.loads((logdir / "checkpoints" / "config.json").read_text())
    assert saved_config["gradient_steps"] == 2
    assert saved_config["dueling"] == config.dueling
    # trajectories: every collected batch, with the acting copies' actions
    back = read_trajectories(logdir / "trajectories")
    assert int(np.asarray(back.lengths).sum()) == 320
    assert "action/action" in back.trajectories.keys()
    assert result.learning_curve is not None
    # resume: the saved weights are the starting point, logging continues after step 320
    resumed = dqn.DQNConfig.from_preset(
        "CartPole-v1",
        resume=str(logdir),
        total_steps=480,
        plot=False,
        save_trajectories=True,
        **{**SMALL, **extra},
    )
    second = dqn.train(resumed)
    assert second.steps == 480
    after = logged_scalars(logdir)
    assert after["charts/SPS"][: len(scalars["charts/SPS"])] == scalars["charts/SPS"]
    assert min(s for s, _ in after["charts/SPS"][len(scalars["charts/SPS"]) :]) > 320
    # the empty buffer refills first: random actions, no learning for 64 steps
    new_eps = [v for s, v in after["charts/epsilon"] if s > 320]
    assert new_eps[:3] == [1.0, 1.0, 1.0]
    assert (logdir / "trajectories-from-320").is_dir()


def test_resume_restores_the_saved_networks(tmp_path: Path) -> None:
    logdir = tmp_path / "run"
    config = dqn.DQNConfig.from_preset("CartPole-v1", logdir=str(logdir), total_steps=160,
                                       plot=False, **SMALL)  # fmt: skip
    dqn.train(config)
    saved = torch.load(checkpoint_path(logdir), weights_only=True)["state"]
    env = describe_env("CartPole-v1")
    q, target = (dqn.QNetwork(env, (64, 64), "relu", config.dueling) for _ in range(2))
    optimizer = Adam(q.parameters(), lr=1e-3)
    state: dict[str, Stateful] = {"q": q, "target": target, "optimizer": optimizer}
    step = load_checkpoint(logdir, algo="ddqn", state=state, device=torch.device("cpu"))
    assert step == 160
    for net, key in ((q, "q"), (target, "target")):
        for name, value in net.state_dict().items():
            torch.testing.assert_close(value, saved[key][name])
    assert optimizer.steps == saved["optimizer"]["steps"] > 0


def test_configs_check_their_values() -> None:
    with pytest.raises(ConfigError, match=r"--train-freq 10 is not a multiple of --n-envs 4"):
        dqn.DQNConfig(train_freq=10, n_envs=4)
    with pytest.raises(ConfigError, match=r"tau \(--tau\) must be in \(0.0, 1.0\]"):
        dqn.DQNConfig(tau=0.0)
    with pytest.raises(ConfigError, match="gradient_steps"):
        dqn.DQNConfig(gradient_steps=0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["ddqn", "--env", "Pendulum-v1"],
            "ddqn cannot handle the action space Box(1,) (continuous) of Pendulum-v1; "
            "algorithms that can: a2c, ppo, sac.",
        ),
        (["ddqn", "--batch-size", "0"], "batch_size (--batch-size) must be a positive int"),
        (["ddqn", "--n-envs", "3"], "--train-freq"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert message in err
