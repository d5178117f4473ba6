"""PPO: proximal policy optimisation with the clipped surrogate and GAE (Schulman et al., 2017).

Read it top to bottom: the config (its field docstrings are the ``rlstructures-train ppo``
help), the loss (pure, unit-tested), one update, and ``train``. Collection runs in worker
processes while the learner updates: each batch was collected by the policy one update
behind, and its log-probabilities were stored by the acting copies (``action/logprob``),
so the ratio below is taken against the policy that really acted.

Discrete actions (categorical policy) and Box actions (diagonal Gaussian; the env receives
the sample clipped to the bounds, the loss uses the unclipped sample).

Example:
    >>> from rlstructures.algos import ppo
    >>> config = ppo.PPOConfig.from_preset("CartPole-v1", total_steps=50_000)
    >>> result = ppo.train(config)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal, NamedTuple

import torch

from rlstructures.algos._config import TrainConfig, in_range, positive
from rlstructures.algos._envs import check_actions, describe_env
from rlstructures.algos._networks import ActorCritic
from rlstructures.algos._optim import Adam, clip_grad_norm_
from rlstructures.algos._result import TrainResult
from rlstructures.algos._rollout import on_policy_batch
from rlstructures.algos._run import Run, setup_learner
from rlstructures.algos.errors import ConfigError
from rlstructures.dicttensor import DictTensor
from rlstructures.logging import ScalarLogger

__all__ = ["PPOConfig", "PolicyOutput", "ppo_loss", "train", "main"]


@dataclass(frozen=True, kw_only=True)
class PPOConfig(TrainConfig):
    """PPO's hyperparameters (names and defaults as stable-baselines3's ``PPO``)."""

    algo: ClassVar[str] = "ppo"

    n_steps: int = 2048
    """Steps per env per collection: each update learns from n_envs x n_steps steps."""
    learning_rate: float = 3e-4
    """Adam learning rate."""
    anneal_lr: bool = False
    """Decay the learning rate linearly to 0 over total_steps."""
    batch_size: int = 64
    """Minibatch size."""
    n_epochs: int = 10
    """Passes over each rollout."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE lambda (1: Monte-Carlo advantages, 0: one-step TD)."""
    clip_range: float = 0.2
    """Clipping of the probability ratio to [1 - clip, 1 + clip]."""
    anneal_clip: bool = False
    """Decay clip_range linearly to 0 over total_steps."""
    clip_range_vf: float | None = None
    """Clip the value change around the old value to +-this (none: no value clipping)."""
    normalize_advantage: bool = True
    """Normalise the advantages of each minibatch to mean 0, std 1."""
    ent_coef: float = 0.0
    """Weight of the entropy bonus."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    max_grad_norm: float = 0.5
    """Clip the gradients' global norm to this."""
    target_kl: float | None = None
    """Stop an update's epochs once the approximate KL exceeds 1.5 x this (none: never)."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the policy and the value networks."""
    activation: Literal["tanh", "relu"] = "tanh"
    """Activation between hidden layers."""
    log_std_init: float = 0.0
    """Initial log standard deviation of the Gaussian policy (Box actions)."""

    def __post_init__(self) -> None:
        TrainConfig.__post_init__(self)
        positive(self, "n_steps", "batch_size", "n_epochs")
        in_range(self, "learning_rate", 0.0, 1.0, open_low=True)
        in_range(self, "gamma", 0.0, 1.0)
        in_range(self, "gae_lambda", 0.0, 1.0)
        in_range(self, "clip_range", 0.0, 10.0, open_low=True)
        for name in ("ent_coef", "vf_coef"):
            in_range(self, name, 0.0, 1e6)
        in_range(self, "max_grad_norm", 0.0, 1e9, open_low=True)
        if not self.hidden_sizes or any(h < 1 for h in self.hidden_sizes):
            raise ConfigError(f"--hidden-sizes must be positive ints, got {self.hidden_sizes}.")


class PolicyOutput(NamedTuple):
    """What the current networks say about a minibatch (with gradients)."""

    logprob: torch.Tensor
    """``[N]`` log-probabilities of the stored actions."""
    entropy: torch.Tensor
    """``[N]`` entropies of the policy."""
    value: torch.Tensor
    """``[N]`` state values."""


# --- loss ------------------------------------------------------------------------------
def ppo_loss(
    batch: DictTensor, out: PolicyOutput, config: PPOConfig, *, clip_range: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The PPO loss of a minibatch, and its statistics (detached).

    ``loss = -min(r A, clip(r, 1-c, 1+c) A) + vf_coef (R - V)^2 / 2 ... - ent_coef H``
    averaged over the minibatch, with ``r = exp(logprob - old logprob)`` (the value term
    is ``max`` of the clipped and unclipped errors when ``clip_range_vf`` is set).

    Args:
        batch: ``[N]`` rows with ``"logprob"`` (of the acting policy), ``"advantage"``,
            ``"return"`` and ``"value"`` (the values when the rollout was prepared).
        out: the current networks' outputs on the same rows.
        config: ``normalize_advantage``, ``clip_range_vf``, ``vf_coef``, ``ent_coef``.
        clip_range: the ratio clipping now (``config.clip_range``, annealed or not).

    Returns:
        ``(loss, stats)``; stats: ``policy_loss``, ``value_loss``, ``entropy``,
        ``approx_kl`` (``E[(r - 1) - log r]``) and ``clipfrac``.
    """
    advantage = batch["advantage"]
    if config.normalize_advantage and len(advantage) > 1:
        advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
    log_ratio = out.logprob - batch["logprob"]
    ratio = log_ratio.exp()
    surrogate = torch.min(
        ratio * advantage, torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range) * advantage
    )
    policy_loss = -surrogate.mean()
    value_error = (out.value - batch["return"]).pow(2)
    if config.clip_range_vf is not None:
        old = batch["value"]
        clipped = old + torch.clamp(out.value - old, -config.clip_range_vf, config.clip_range_vf)
        value_error = torch.max(value_error, (clipped - batch["return"]).pow(2))
    value_loss = 0.5 * value_error.mean()
    entropy = out.entropy.mean()
    loss = policy_loss + config.vf_coef * value_loss
    if config.ent_coef:  # no backward pass through the entropy when its weight is 0
        loss = loss - config.ent_coef * entropy
    with torch.no_grad():
        stats = {
            "policy_loss": policy_loss.detach(),
            "value_loss": value_loss.detach(),
            "entropy": entropy.detach(),
            "approx_kl": ((ratio - 1.0) - log_ratio).mean(),
            "clipfrac": ((ratio - 1.0).abs() > clip_range).float().mean(),
        }
    return loss, stats


# --- update ----------------------------------------------------------------------------
def _minibatches(batch: DictTensor, size: int, generator: torch.Generator) -> list[DictTensor]:
    """One epoch's minibatches: a random partition of the rows (the whole batch if small)."""
    n = len(batch)
    if n <= size:  # one minibatch: its order does not matter
        return [batch]
    order = torch.randperm(n, generator=generator).to(batch["obs"].device)
    return [batch[order[start : start + size]] for start in range(0, n, size)]


def _update(
    model: ActorCritic,
    optimizer: Adam,
    batch: DictTensor,
    config: PPOConfig,
    clip_range: float,
    generator: torch.Generator,
) -> dict[str, float]:
    """``n_epochs`` passes of minibatch gradient steps; the mean statistics.

    With ``target_kl``, the update stops before the first step whose minibatch's
    approximate KL exceeds ``1.5 * target_kl`` (as stable-baselines3 does).
    """
    sums: dict[str, torch.Tensor] = {}
    n_steps = 0
    too_far = False
    for _ in range(config.n_epochs):
        if too_far:
            break
        for mb in _minibatches(batch, config.batch_size, generator):
            logprob, entropy = model.logprob_entropy(mb["obs"], mb["action"])
            out = PolicyOutput(logprob, entropy, model.state_value(mb["obs"]))
            loss, stats = ppo_loss(mb, out, config, clip_range=clip_range)
            kl_limit = config.target_kl
            if kl_limit is not None and float(stats["approx_kl"]) > 1.5 * kl_limit:
                too_far = True
                break
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]  # torch leaves it unannotated
            clip_grad_norm_(optimizer.params, config.max_grad_norm)
            optimizer.step()
            for key, value in stats.items():
                sums[key] = sums[key] + value if key in sums else value
            n_steps += 1
    means = {f"losses/{k}": float(v) / n_steps for k, v in sums.items()} if n_steps else {}
    returns, values = batch["return"], batch["value"]
    variance = float(returns.var()) if len(batch) > 1 else 0.0
    means["losses/explained_variance"] = (
        1.0 - float((returns - values).var()) / variance if variance > 0 else 0.0
    )
    means["losses/gradient_steps"] = float(n_steps)
    return means


# --- training loop ---------------------------------------------------------------------
def train(config: PPOConfig, logger: ScalarLogger | None = None) -> TrainResult:
    """Train PPO as ``config`` says; logs, checkpoints and evaluations as in `Run`.

    Args:
        config: the hyperparameters (``PPOConfig.from_preset(env_id)`` for the presets).
        logger: where scalars go; None: a `Logger` on the run's logdir.

    Returns:
        The `TrainResult` (steps, time, evaluations, where the files are).

    Raises:
        ConfigError: an unknown env, or a space PPO cannot handle (one-line messages).
    """
    env = describe_env(config.env_id)
    check_actions(env, config.algo)
    device = setup_learner(config)
    model = ActorCritic(env, config.hidden_sizes, config.activation, config.log_std_init)
    model.to(device)
    optimizer = Adam(model.parameters(), lr=config.learning_rate, eps=1e-5)
    generator = torch.Generator().manual_seed(config.seed)
    with Run(
        config,
        env=env,
        actor=model.actor_spec(),
        n_timesteps=config.n_steps,
        state={"model": model, "optimizer": optimizer},
        device=device,
        logger=logger,
    ) as run:
        run.start(model.actor_weights())
        while run.running:
            # --- rollout: the batch the workers collected while we learned on the last one
            steps = run.collect().trajectories
            batch = on_policy_batch(model, steps, gamma=config.gamma, gae_lambda=config.gae_lambda)
            # --- update
            remaining = 1.0 - run.fraction
            lr = config.learning_rate * (remaining if config.anneal_lr else 1.0)
            optimizer.lr = lr
            clip = config.clip_range * (remaining if config.anneal_clip else 1.0)
            stats = _update(model, optimizer, batch, config, max(clip, 1e-8), generator)
            stats["charts/learning_rate"] = lr
            run.publish(model.actor_weights(), stats)
    return run.result


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rlstructures.algos.ppo ...``: ``rlstructures-train ppo ...``."""
    import sys

    from rlstructures.algos._cli import main as cli_main

    return cli_main(["ppo", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
