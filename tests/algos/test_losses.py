"""The pure losses of A2C and PPO on hand-made tensors."""

from __future__ import annotations

import math

import pytest
import torch

from rlstructures.algos.a2c import A2CConfig, a2c_loss
from rlstructures.algos.ppo import PolicyOutput, PPOConfig, ppo_loss
from rlstructures.dicttensor import DictTensor


def _batch(
    old_logprob: list[float], advantage: list[float], ret: list[float], value: list[float]
) -> DictTensor:
    return DictTensor(
        {
            k: torch.tensor(v)
            for k, v in (
                ("logprob", old_logprob),
                ("advantage", advantage),
                ("return", ret),
                ("value", value),
            )
        }
    )


def test_ppo_clips_the_ratio_on_the_side_the_advantage_favours() -> None:
    config = PPOConfig(normalize_advantage=False, vf_coef=0.5, ent_coef=0.01)
    batch = _batch([0.0, 0.0, 0.0], [1.0, -1.0, 2.0], [1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    new = torch.tensor([0.5, 0.5, -0.5], requires_grad=True)
    out = PolicyOutput(new, torch.tensor([1.0, 1.0, 1.0]), torch.tensor([1.0, 1.0, 1.0]))
    loss, stats = ppo_loss(batch, out, config, clip_range=0.2)
    r_hi, r_lo = math.exp(0.5), math.exp(-0.5)
    # A>0, r>1+c: clipped to 1.2; A<0, r>1+c: unclipped r*A; A>0, r<1-c: unclipped r*A
    surrogate = [1.2 * 1.0, r_hi * -1.0, r_lo * 2.0]
    want_policy = -sum(surrogate) / 3
    want_value = 0.5 * (0 + 1 + 4) / 3
    assert stats["policy_loss"].item() == pytest.approx(want_policy, rel=1e-6)
    assert stats["value_loss"].item() == pytest.approx(want_value, rel=1e-6)
    assert loss.item() == pytest.approx(want_policy + 0.5 * want_value - 0.01 * 1.0, rel=1e-6)
    assert stats["clipfrac"].item() == pytest.approx(1.0)
    want_kl = sum((math.exp(x) - 1) - x for x in (0.5, 0.5, -0.5)) / 3
    assert stats["approx_kl"].item() == pytest.approx(want_kl, rel=1e-6)
    loss.backward()  # type: ignore[no-untyped-call]
    assert new.grad is not None
    assert new.grad[0].item() == 0.0  # the clipped term carries no gradient
    assert new.grad[1].item() == pytest.approx(r_hi / 3, rel=1e-6)


def test_ppo_value_clipping_takes_the_larger_error() -> None:
    config = PPOConfig(normalize_advantage=False, clip_range_vf=0.1, vf_coef=1.0)
    batch = _batch([0.0], [0.0], [1.0], [0.0])
    out = PolicyOutput(torch.zeros(1), torch.zeros(1), torch.tensor([0.9]))
    _, stats = ppo_loss(batch, out, config, clip_range=0.2)
    # unclipped error (0.9 - 1)^2 = 0.01; clipped value 0.1: (0.1 - 1)^2 = 0.81
    assert stats["value_loss"].item() == pytest.approx(0.5 * 0.81, rel=1e-6)


def test_ppo_normalises_advantages_per_minibatch() -> None:
    config = PPOConfig(normalize_advantage=True)
    batch = _batch([0.0, 0.0], [10.0, 20.0], [0.0, 0.0], [0.0, 0.0])
    out = PolicyOutput(torch.zeros(2), torch.zeros(2), torch.zeros(2))
    _, stats = ppo_loss(batch, out, config, clip_range=0.2)
    assert stats["policy_loss"].item() == pytest.approx(0.0, abs=1e-6)  # mean 0 after norm


def test_a2c_loss() -> None:
    config = A2CConfig(vf_coef=0.25, ent_coef=0.1)
    logprob = torch.tensor([-1.0, -2.0], requires_grad=True)
    loss, stats = a2c_loss(
        logprob,
        torch.tensor([0.5, 0.7]),
        torch.tensor([1.0, 0.0]),
        torch.tensor([2.0, -1.0]),
        torch.tensor([3.0, 1.0]),
        config,
    )
    want_policy = -((-1.0 * 2.0) + (-2.0 * -1.0)) / 2
    want_value = ((3 - 1) ** 2 + (1 - 0) ** 2) / 2
    assert stats["policy_loss"].item() == pytest.approx(want_policy)
    assert stats["value_loss"].item() == pytest.approx(want_value)
    assert loss.item() == pytest.approx(want_policy + 0.25 * want_value - 0.1 * 0.6, rel=1e-6)
    loss.backward()  # type: ignore[no-untyped-call]
    assert logprob.grad is not None
    torch.testing.assert_close(logprob.grad, torch.tensor([-1.0, 0.5]))


def test_ppo_update_stops_at_the_kl_limit() -> None:
    from rlstructures.algos._envs import EnvInfo
    from rlstructures.algos._networks import ActorCritic
    from rlstructures.algos._optim import Adam
    from rlstructures.algos.ppo import _update

    env = EnvInfo("X", (4,), 4, False, "discrete", 2, (), (), (), None)
    torch.manual_seed(0)
    model = ActorCritic(env, (8,), "tanh")
    n = 64
    batch = DictTensor(
        {
            "obs": torch.randn(n, 4),
            "action": torch.randint(0, 2, (n,)),
            "logprob": torch.full((n,), -3.0),  # far from the current policy: a large KL
            "value": torch.zeros(n),
            "advantage": torch.randn(n),
            "return": torch.randn(n),
        }
    )
    generator = torch.Generator().manual_seed(0)
    free = _update(
        model, Adam(model.parameters()), batch, PPOConfig(n_epochs=3, batch_size=16), 0.2, generator
    )
    assert free["losses/gradient_steps"] == 12
    stopped = _update(
        model,
        Adam(model.parameters()),
        batch,
        PPOConfig(n_epochs=3, batch_size=16, target_kl=0.01),
        0.2,
        generator,
    )
    assert stopped["losses/gradient_steps"] == 0
    assert "losses/explained_variance" in stopped
