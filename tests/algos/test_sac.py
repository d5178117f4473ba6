"""SAC: its losses and networks on hand-made tensors, and a short run that writes everything."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from rlstructures.algos import sac
from rlstructures.algos._actor import NumpyActor
from rlstructures.algos._checkpoint import checkpoint_path
from rlstructures.algos._envs import describe_env
from rlstructures.algos._replay_buffer import ReplayBuffer
from rlstructures.algos.errors import ConfigError, UnsupportedSpaceError
from rlstructures.dicttensor import DictTensor, TemporalDictTensor
from rlstructures.logging import read_trajectories
from tests.algos.helpers import logged_scalars


# --- targets: bootstrap on truncation, never on termination ------------------------------
def test_a_truncated_step_bootstraps_and_a_terminated_one_does_not() -> None:
    reward = torch.tensor([1.0, 1.0, 1.0])
    discount = torch.full((3,), 0.9)
    terminated = torch.tensor([False, True, False])  # 0: truncated (time limit), 1: terminal
    next_q = torch.tensor([[5.0, 5.0, 2.0], [4.0, 6.0, 3.0]])
    next_logprob = torch.tensor([-1.0, -1.0, 0.5])
    target = sac.soft_q_target(reward, discount, terminated, next_q, next_logprob, 0.2)
    # truncated: 1 + 0.9 * (min(5, 4) + 0.2); terminated: 1; otherwise 1 + 0.9 * (2 - 0.1)
    torch.testing.assert_close(target, torch.tensor([1 + 0.9 * 4.2, 1.0, 1 + 0.9 * 1.9]))
    assert not target.requires_grad


def test_the_replayed_truncated_step_leads_to_the_kept_final_observation() -> None:
    # one env, 3 steps: the episode is truncated at step 1 and the env auto-resets; the
    # replayed transition must lead to the final observation (9), not the reset one (0)
    steps = TemporalDictTensor(
        {
            "observation/frame": np.repeat(np.array([[[1.0], [2.0], [0.0]]], np.float32), 3, -1),
            "action/squashed": np.zeros((1, 3, 1), np.float32),
            "_observation/frame": np.repeat(np.array([[[2.0], [9.0], [1.0]]], np.float32), 3, -1),
            "_observation/reward": np.ones((1, 3), np.float32),
            "_observation/terminated": np.zeros((1, 3), bool),
            "_observation/done": np.array([[False, True, False]]),
        }
    )
    buffer = ReplayBuffer(10, keys=("observation/frame", "action/squashed", "_observation/frame"))
    buffer.add(steps)
    env = describe_env("Pendulum-v1")
    rows = sac._batch(buffer.sample(64), env, torch.device("cpu"))
    pairs = {(float(o[0]), float(n[0])) for o, n in zip(rows["obs"], rows["next_obs"], strict=True)}
    assert pairs <= {(1.0, 2.0), (2.0, 9.0), (0.0, 1.0)}
    assert (2.0, 9.0) in pairs
    assert not rows["terminated"].any()


# --- the loss ------------------------------------------------------------------------------
def test_sac_loss_values_and_where_each_gradient_goes() -> None:
    q = torch.tensor([[1.0, 2.0], [3.0, 0.0]], requires_grad=True)
    target = torch.tensor([1.0, 1.0])
    q_pi = torch.tensor([[1.0, 2.0], [0.0, 3.0]], requires_grad=True)
    logprob = torch.tensor([-1.0, 1.0], requires_grad=True)
    log_alpha = torch.tensor(math.log(0.5), requires_grad=True)
    loss, stats = sac.sac_loss(q, target, q_pi, logprob, log_alpha, target_entropy=-1.0)
    # Q: 0.5 * (mean(0, 1) + mean(4, 1)); policy: mean(0.5 * -1 - 0, 0.5 * 1 - 2);
    # alpha: -mean(log 0.5 * ([-1, 1] - 1))
    torch.testing.assert_close(stats["q_loss"], torch.tensor(1.5))
    torch.testing.assert_close(stats["policy_loss"], torch.tensor(-1.0))
    torch.testing.assert_close(stats["alpha_loss"], torch.tensor(math.log(0.5)))
    torch.testing.assert_close(stats["alpha"], torch.tensor(0.5))
    torch.testing.assert_close(stats["entropy"], torch.tensor(0.0))
    torch.testing.assert_close(loss, torch.tensor(1.5 - 1.0 + math.log(0.5)))
    loss.backward()  # type: ignore[no-untyped-call]
    assert q.grad is not None
    assert q_pi.grad is not None
    assert logprob.grad is not None
    torch.testing.assert_close(q.grad, torch.tensor([[0.0, 0.5], [1.0, -0.5]]))
    # the policy's loss reaches the smaller Q of each action only, alpha's not the logprob
    torch.testing.assert_close(q_pi.grad, torch.tensor([[0.0, -0.5], [-0.5, 0.0]]))
    torch.testing.assert_close(logprob.grad, torch.tensor([0.25, 0.25]))
    assert log_alpha.grad is not None
    torch.testing.assert_close(log_alpha.grad, torch.tensor(1.0))  # -mean(logprob - 1)


def test_a_fixed_alpha_gets_no_gradient() -> None:
    log_alpha = torch.tensor(0.0, requires_grad=True)
    q = torch.zeros(2, 3, requires_grad=True)
    logprob = torch.zeros(3, requires_grad=True)
    loss, stats = sac.sac_loss(q, torch.ones(3), torch.zeros(2, 3), logprob, log_alpha, None)
    loss.backward()  # type: ignore[no-untyped-call]
    assert log_alpha.grad is None
    assert float(stats["alpha_loss"]) == 0.0


# --- networks ------------------------------------------------------------------------------
def test_squashed_sample_matches_torch_distributions() -> None:
    torch.manual_seed(0)
    out = torch.randn(1000, 4, requires_grad=True)
    torch.manual_seed(1)
    action, logprob = sac.squashed_sample(out)
    torch.manual_seed(1)
    noise = torch.randn(1000, 2)
    mean, log_std = out.detach().chunk(2, dim=-1)
    log_std = log_std.clamp(-20.0, 2.0)  # as the acting copies clip it
    u = mean + log_std.exp() * noise
    dist = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(mean, log_std.exp()),
        [torch.distributions.TanhTransform()],
        validate_args=False,
    )
    torch.testing.assert_close(action, torch.tanh(u))
    want = dist.log_prob(torch.tanh(u)).sum(-1)  # type: ignore[no-untyped-call]
    ok = torch.tanh(u).abs().max(dim=-1).values < 0.999  # where float32 atanh is accurate
    torch.testing.assert_close(logprob[ok], want[ok], rtol=1e-4, atol=1e-3)
    assert bool((action.abs() <= 1).all())
    logprob.sum().backward()  # type: ignore[no-untyped-call]
    assert out.grad is not None
    assert bool(out.grad.abs().sum() > 0)


def test_twin_q_is_two_independent_mlps() -> None:
    torch.manual_seed(0)
    q = sac.TwinQ((5, 8, 8, 1), "relu")
    obs, action = torch.randn(7, 3), torch.randn(7, 2)
    x = torch.cat((obs, action), dim=-1)
    got = q(obs, action)
    assert got.shape == (2, 7)
    for k in range(2):
        h = x
        for i, (w, b) in enumerate(zip(q.weight, q.bias, strict=True)):
            h = h @ w[k] + b[k, 0]
            h = torch.relu(h) if i < 2 else h
        torch.testing.assert_close(got[k], h.squeeze(-1))
    assert not torch.equal(q.weight[0][0], q.weight[0][1])  # initialised independently
    action.requires_grad_(True)
    q(obs, action, detach_weights=True).sum().backward()
    assert all(p.grad is None for p in q.parameters())
    assert action.grad is not None  # the policy's gradient goes through the action


def test_the_acting_copy_computes_the_learner_policy() -> None:
    env = describe_env("Pendulum-v1")
    agent = sac.SACAgent(env, (16, 16), "relu")
    actor = NumpyActor(agent.actor_spec())
    actor.update(agent.actor_weights())
    obs = np.random.default_rng(0).standard_normal((6, 3)).astype(np.float32)
    want = agent.policy(torch.from_numpy(obs)).detach()
    torch.testing.assert_close(agent.policy_out(torch.from_numpy(obs)), want)
    np.testing.assert_allclose(actor.forward(obs), want.numpy(), rtol=1e-5)
    spec = agent.actor_spec()
    assert spec.head == "squashed_gaussian"
    assert (spec.action_low, spec.action_high) == ((-2.0,), (2.0,))


def test_config_checks_and_spaces() -> None:
    with pytest.raises(ConfigError, match="tau"):
        sac.SACConfig(tau=0.0)
    with pytest.raises(ConfigError, match=r"batch_size \(--batch-size\)"):
        sac.SACConfig(batch_size=0)
    preset = sac.SACConfig.from_preset("Pendulum-v1")
    assert (preset.learning_rate, preset.total_steps, preset.n_envs) == (1e-3, 20_000, 1)
    assert preset.hidden_sizes == (64, 64)
    with pytest.raises(UnsupportedSpaceError, match=r"Discrete.2.*a2c, ppo, ddqn"):
        sac.train(sac.SACConfig(env_id="CartPole-v1", progress="none"))


# --- a short run ---------------------------------------------------------------------------
def test_a_short_run_writes_everything_and_resumes(tmp_path: Path) -> None:
    logdir = tmp_path / "run"
    small = {
        "env_id": "Pendulum-v1",
        "logdir": str(logdir),
        "n_envs": 2,
        "train_freq": 4,
        "gradient_steps": 2,
        "learning_starts": 40,
        "batch_size": 32,
        "hidden_sizes": (32, 32),
        "eval_every": 200,
        "eval_episodes": 2,
        "progress": "none",
    }
    config = sac.SACConfig(total_steps=400, save_trajectories=True, **small)  # type: ignore[arg-type]
    result = sac.train(config)
    assert result.steps == 400
    scalars = logged_scalars(logdir)
    losses = {t for t in scalars if t.startswith("losses/")}
    assert {"losses/q_loss", "losses/policy_loss", "losses/alpha_loss", "losses/alpha"} <= losses
    assert all(math.isfinite(v) for t in losses for _, v in scalars[t])
    assert min(s for s, _ in scalars["losses/q_loss"]) >= 40  # not before learning_starts
    alphas = [v for _, v in scalars["losses/alpha"]]
    assert alphas[-1] != alphas[0]  # tuned
    assert [s for s, _ in scalars["eval/episodic_return"]] == [200, 400]
    assert scalars["charts/episodic_length"][0][1] == 200  # Pendulum truncates at 200
    saved = torch.load(checkpoint_path(logdir), weights_only=True)
    assert saved["step"] == 400
    assert set(saved["state"]["model"]) >= {"log_alpha", "q.weight.0", "q_target.weight.0"}
    assert json.loads((logdir / "checkpoints" / "config.json").read_text())["tau"] == 0.005
    back = read_trajectories(logdir / "trajectories")
    assert int(np.asarray(back.lengths).sum()) == 400
    assert "action/squashed" in back.trajectories.keys()
    # resume with no update left (learning_starts beyond the budget): the weights and the
    # optimiser state saved at the end are exactly the ones restored, logs continue after 400
    rows_before = scalars["charts/SPS"]
    again = {**small, "learning_starts": 10_000}
    second = sac.train(sac.SACConfig(total_steps=600, resume=str(logdir), **again))  # type: ignore[arg-type]
    assert second.steps == 600
    sps = logged_scalars(logdir)["charts/SPS"]
    assert sps[: len(rows_before)] == rows_before
    assert min(s for s, _ in sps[len(rows_before) :]) > 400
    resumed = torch.load(checkpoint_path(logdir), weights_only=True)
    assert resumed["step"] == 600
    for key, value in saved["state"]["model"].items():
        torch.testing.assert_close(resumed["state"]["model"][key], value)
    assert resumed["state"]["optimizer"]["steps"] == saved["state"]["optimizer"]["steps"] > 0


def test_batches_as_tensors_keep_their_dtypes() -> None:
    sample = DictTensor(
        {
            "observation/frame": np.zeros((4, 3), np.float32),
            "action/squashed": np.zeros((4, 1), np.float32),
            "_observation/frame": np.zeros((4, 3), np.float32),
            "_observation/reward": np.zeros(4, np.float64),
            "_observation/terminated": np.zeros(4, bool),
            "discount": np.full(4, 0.99, np.float32),
        }
    )
    rows = sac._batch(sample, describe_env("Pendulum-v1"), torch.device("cpu"))
    assert rows["reward"].dtype == torch.float32
    assert rows["terminated"].dtype == torch.bool
    assert rows["action"].shape == (4, 1)
