"""A2C: synchronous advantage actor-critic with GAE (Mnih et al., 2016; Schulman et al., 2016).

Read it top to bottom: the config (its field docstrings are the ``rlstructures-train a2c``
help), the loss (pure, unit-tested), and ``train``: one gradient step per collected batch
of ``n_envs x n_steps`` steps. Collection runs in worker processes while the learner
updates, so each batch comes from the policy one update behind (a small, constant lag).

Discrete actions (categorical policy) and Box actions (diagonal Gaussian; the env receives
the sample clipped to the bounds, the loss uses the unclipped sample).

Example:
    >>> from rlstructures.algos import a2c
    >>> config = a2c.A2CConfig.from_preset("CartPole-v1", total_steps=50_000)
    >>> result = a2c.train(config)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch

from rlstructures.algos._config import TrainConfig, in_range, positive
from rlstructures.algos._envs import check_actions, describe_env
from rlstructures.algos._networks import ActorCritic
from rlstructures.algos._optim import Adam, RMSprop, clip_grad_norm_
from rlstructures.algos._result import TrainResult
from rlstructures.algos._rollout import on_policy_batch
from rlstructures.algos._run import Run, setup_learner
from rlstructures.algos.errors import ConfigError
from rlstructures.logging import ScalarLogger

__all__ = ["A2CConfig", "a2c_loss", "train", "main"]


@dataclass(frozen=True, kw_only=True)
class A2CConfig(TrainConfig):
    """A2C's hyperparameters (names and defaults as stable-baselines3's ``A2C``)."""

    algo: ClassVar[str] = "a2c"

    n_steps: int = 5
    """Steps per env per collection: each gradient step learns from n_envs x n_steps steps."""
    learning_rate: float = 7e-4
    """Learning rate."""
    anneal_lr: bool = False
    """Decay the learning rate linearly to 0 over total_steps."""
    optimizer: Literal["rmsprop", "adam"] = "rmsprop"
    """RMSprop (alpha 0.99, as stable-baselines3) or Adam."""
    optimizer_eps: float = 1e-5
    """Epsilon of the optimizer's denominator."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 1.0
    """GAE lambda (1: n-step returns, as in the original A2C)."""
    normalize_advantage: bool = False
    """Normalise the advantages of each batch to mean 0, std 1."""
    ent_coef: float = 0.0
    """Weight of the entropy bonus."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    max_grad_norm: float = 0.5
    """Clip the gradients' global norm to this."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the policy and the value networks."""
    activation: Literal["tanh", "relu"] = "tanh"
    """Activation between hidden layers."""
    log_std_init: float = 0.0
    """Initial log standard deviation of the Gaussian policy (Box actions)."""

    def __post_init__(self) -> None:
        TrainConfig.__post_init__(self)
        positive(self, "n_steps")
        in_range(self, "learning_rate", 0.0, 1.0, open_low=True)
        in_range(self, "optimizer_eps", 0.0, 1.0, open_low=True)
        in_range(self, "gamma", 0.0, 1.0)
        in_range(self, "gae_lambda", 0.0, 1.0)
        for name in ("ent_coef", "vf_coef"):
            in_range(self, name, 0.0, 1e6)
        in_range(self, "max_grad_norm", 0.0, 1e9, open_low=True)
        if not self.hidden_sizes or any(h < 1 for h in self.hidden_sizes):
            raise ConfigError(f"--hidden-sizes must be positive ints, got {self.hidden_sizes}.")


# --- loss ------------------------------------------------------------------------------
def a2c_loss(
    logprob: torch.Tensor,
    entropy: torch.Tensor,
    value: torch.Tensor,
    advantage: torch.Tensor,
    returns: torch.Tensor,
    config: A2CConfig,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The A2C loss of a batch, and its statistics (detached).

    ``loss = -mean(logprob * A) + vf_coef * mean((R - V)^2) - ent_coef * mean(H)`` (the
    value error is not halved: stable-baselines3's convention).

    Args:
        logprob: ``[N]`` log-probabilities of the stored actions (with gradients).
        entropy: ``[N]`` entropies of the policy.
        value: ``[N]`` state values (with gradients).
        advantage: ``[N]`` advantages (constants).
        returns: ``[N]`` value targets (constants).
        config: ``normalize_advantage``, ``vf_coef``, ``ent_coef``.

    Returns:
        ``(loss, stats)``; stats: ``policy_loss``, ``value_loss``, ``entropy``.
    """
    if config.normalize_advantage and len(advantage) > 1:
        advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
    policy_loss = -(logprob * advantage).mean()
    value_loss = (returns - value).pow(2).mean()
    mean_entropy = entropy.mean()
    loss = policy_loss + config.vf_coef * value_loss
    if config.ent_coef:  # no backward pass through the entropy when its weight is 0
        loss = loss - config.ent_coef * mean_entropy
    stats = {
        "policy_loss": policy_loss.detach(),
        "value_loss": value_loss.detach(),
        "entropy": mean_entropy.detach(),
    }
    return loss, stats


# --- training loop ---------------------------------------------------------------------
def train(config: A2CConfig, logger: ScalarLogger | None = None) -> TrainResult:
    """Train A2C as ``config`` says; logs, checkpoints and evaluations as in `Run`.

    Args:
        config: the hyperparameters (``A2CConfig.from_preset(env_id)`` for the presets).
        logger: where scalars go; None: a `Logger` on the run's logdir.

    Returns:
        The `TrainResult` (steps, time, evaluations, where the files are).

    Raises:
        ConfigError: an unknown env, or a space A2C cannot handle (one-line messages).
    """
    env = describe_env(config.env_id)
    check_actions(env, config.algo)
    device = setup_learner(config)
    model = ActorCritic(env, config.hidden_sizes, config.activation, config.log_std_init)
    model.to(device)
    optimizer: Adam | RMSprop
    if config.optimizer == "rmsprop":
        optimizer = RMSprop(
            model.parameters(), lr=config.learning_rate, alpha=0.99, eps=config.optimizer_eps
        )
    else:
        optimizer = Adam(model.parameters(), lr=config.learning_rate, eps=config.optimizer_eps)
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
            # --- loss
            logprob, entropy = model.logprob_entropy(batch["obs"], batch["action"])
            value = model.state_value(batch["obs"])
            loss, stats = a2c_loss(
                logprob, entropy, value, batch["advantage"], batch["return"], config
            )
            # --- update
            lr = config.learning_rate * ((1.0 - run.fraction) if config.anneal_lr else 1.0)
            optimizer.lr = lr
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]  # torch leaves it unannotated
            clip_grad_norm_(optimizer.params, config.max_grad_norm)
            optimizer.step()
            logged = {f"losses/{k}": float(v) for k, v in stats.items()}
            logged["charts/learning_rate"] = lr
            run.publish(model.actor_weights(), logged)
    return run.result


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rlstructures.algos.a2c ...``: ``rlstructures-train a2c ...``."""
    import sys

    from rlstructures.algos._cli import main as cli_main

    return cli_main(["a2c", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
