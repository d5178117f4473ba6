"""--device: auto picks CUDA when present; the learner runs there, the actors stay on CPU."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from rlstructures.algos import a2c, ppo
from rlstructures.algos._checkpoint import load_checkpoint
from rlstructures.algos._cli import main
from rlstructures.algos._envs import describe_env
from rlstructures.algos._networks import ActorCritic, resolve_device
from rlstructures.algos._optim import Adam, RMSprop
from rlstructures.algos.errors import ConfigError
from rlstructures.logging import read_logs


def test_auto_is_cuda_exactly_when_a_gpu_is_visible() -> None:
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == want
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="is not a device"):
        resolve_device("gpu0")
    with pytest.raises(ConfigError, match="cpu or cuda"):
        resolve_device("meta")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a CPU-only machine")
def test_cuda_without_a_gpu_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ppo", "--device", "cuda", "--total-steps", "100"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no CUDA device is visible here" in err


@pytest.mark.cuda
@pytest.mark.parametrize("module", [a2c, ppo], ids=["a2c", "ppo"])
def test_training_on_cuda(module: Any, tmp_path: Path) -> None:
    config_class = module.A2CConfig if module is a2c else module.PPOConfig
    logdir = tmp_path / "run"
    config = config_class.from_preset(
        "CartPole-v1",
        device="cuda",
        total_steps=512,
        n_envs=4,
        eval_every=256,
        eval_episodes=2,
        progress="none",
        logdir=str(logdir),
        plot=False,
    )
    result = module.train(config)
    assert result.steps >= 512
    table = read_logs(logdir).to_pydict()
    losses = [
        v for t, v in zip(table["tag"], table["value"], strict=True) if t.startswith("losses/")
    ]
    assert losses
    assert all(math.isfinite(v) for v in losses)
    # the CUDA checkpoint loads into a CPU learner (map_location)
    env = describe_env("CartPole-v1")
    model = ActorCritic(env, config.hidden_sizes, config.activation)
    optimizer = Adam(model.parameters()) if module is ppo else RMSprop(model.parameters())
    step = load_checkpoint(logdir, algo=config.algo, state={"model": model, "optimizer": optimizer})
    assert step == result.steps
    assert next(model.parameters()).device.type == "cpu"
    assert optimizer.state_dict()["steps"] > 0


@pytest.mark.cuda
def test_a_cpu_checkpoint_resumes_on_cuda(tmp_path: Path) -> None:
    logdir = tmp_path / "run"
    base = ppo.PPOConfig.from_preset(
        "CartPole-v1",
        total_steps=256,
        n_envs=2,
        n_steps=64,
        batch_size=64,
        n_epochs=1,
        eval_every=0,
        eval_episodes=2,
        progress="none",
        logdir=str(logdir),
        plot=False,
        device="cpu",
    )
    ppo.train(base)
    resumed = ppo.PPOConfig.from_preset(
        "CartPole-v1",
        total_steps=512,
        n_envs=2,
        n_steps=64,
        batch_size=64,
        n_epochs=1,
        eval_every=0,
        eval_episodes=2,
        progress="none",
        resume=str(logdir),
        plot=False,
        device="cuda",
    )
    assert ppo.train(resumed).steps >= 512
