"""SAC: soft actor-critic with twin Q networks and automatic entropy tuning (Haarnoja et al., 2018).

Read it top to bottom: the config (its field docstrings are the ``rlstructures-train sac``
help), the networks (a tanh-squashed Gaussian policy and a twin Q network whose two
members are computed together), the losses (pure, unit-tested), and ``train``: every
``train_freq`` steps per env the batch collected meanwhile goes into the replay buffer and
``gradient_steps`` updates follow, each on ``batch_size`` transitions drawn uniformly.
Collection runs in a worker process while the learner updates, so each batch comes from
the policy one update behind.

Box actions only. The policy acts in ``[-1, 1]`` (``tanh`` of a Gaussian sample); the env
receives that rescaled to its bounds, and the Q networks and the replay buffer see the
``[-1, 1]`` value (``action/squashed``), as stable-baselines3's SAC does.

Example:
    >>> from rlstructures.algos import sac
    >>> config = sac.SACConfig.from_preset("Pendulum-v1", target_return=-200)
    >>> result = sac.train(config)  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from rlstructures.algos._actor import LOG_STD_MAX, LOG_STD_MIN, ActorSpec
from rlstructures.algos._config import TrainConfig, in_range, positive
from rlstructures.algos._envs import EnvInfo, check_actions, describe_env
from rlstructures.algos._networks import MLP, actor_weights, observation_tensor
from rlstructures.algos._optim import Adam
from rlstructures.algos._replay_buffer import ReplayBuffer
from rlstructures.algos._result import TrainResult
from rlstructures.algos._run import Run, setup_learner
from rlstructures.algos.errors import ConfigError
from rlstructures.dicttensor import DictTensor
from rlstructures.logging import ScalarLogger

__all__ = [
    "SACConfig",
    "SACAgent",
    "TwinQ",
    "squashed_sample",
    "soft_q_target",
    "sac_loss",
    "train",
    "main",
]

_HALF_LOG_2PI: Final = 0.5 * math.log(2.0 * math.pi)
_LOG_2: Final = math.log(2.0)
#: Losses are logged once per this many env steps (each log reads the tensors' values).
LOG_EVERY: Final = 100


@dataclass(frozen=True, kw_only=True)
class SACConfig(TrainConfig):
    """SAC's hyperparameters (names and defaults as stable-baselines3's ``SAC``)."""

    algo: ClassVar[str] = "sac"

    n_envs: int = 1
    """Envs stepped in parallel, all worker processes together."""
    learning_rate: float = 3e-4
    """Learning rate of the policy, the Q networks and the entropy coefficient (Adam)."""
    buffer_size: int = 1_000_000
    """Transitions kept in the replay buffer."""
    learning_starts: int = 100
    """Transitions collected before the first gradient step."""
    batch_size: int = 256
    """Transitions per gradient step."""
    tau: float = 0.005
    """Polyak coefficient of the target Q networks (1: copy the online ones)."""
    gamma: float = 0.99
    """Discount factor."""
    train_freq: int = 1
    """Steps per env per collection (updates follow each collection)."""
    gradient_steps: int = 1
    """Gradient steps after each collection."""
    ent_coef: float = 1.0
    """Entropy coefficient alpha: its initial value when autotuned, else fixed."""
    autotune: bool = True
    """Tune alpha so that the policy's entropy stays near --target-entropy."""
    target_entropy: float | None = None
    """Entropy the tuning aims at (default: -action_dim)."""
    hidden_sizes: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the policy and of each Q network."""
    activation: Literal["tanh", "relu"] = "relu"
    """Activation between hidden layers."""

    def __post_init__(self) -> None:
        TrainConfig.__post_init__(self)
        positive(self, "buffer_size", "batch_size", "train_freq", "gradient_steps")
        positive(self, "learning_starts", allow_zero=True)
        in_range(self, "learning_rate", 0.0, 1.0, open_low=True)
        in_range(self, "tau", 0.0, 1.0, open_low=True)
        in_range(self, "gamma", 0.0, 1.0)
        in_range(self, "ent_coef", 0.0, 1e6, open_low=True)
        if not self.hidden_sizes or any(h < 1 for h in self.hidden_sizes):
            raise ConfigError(f"--hidden-sizes must be positive ints, got {self.hidden_sizes}.")


# --- networks --------------------------------------------------------------------------
class TwinQ(nn.Module):
    """Two Q networks ``Q_k(s, a)``, k = 0, 1, computed as one: stacked weights, batched matmuls.

    Layer i holds ``weight[i]`` ``[2, in, out]`` and ``bias[i]`` ``[2, 1, out]``; a forward
    pass is one ``torch.baddbmm`` per layer for both members (the input is shared), so the
    twin costs one call chain, not two. Initialised as ``torch.nn.Linear`` (uniform in
    ``+-1/sqrt(fan_in)``), each member independently, as stable-baselines3's critics.

    Args:
        sizes: ``(obs_dim + action_dim, *hidden, 1)``.
        activation: ``"tanh"`` or ``"relu"``.

    Example:
        >>> q = TwinQ((4, 8, 8, 1), "relu")
        >>> q(torch.zeros(5, 3), torch.zeros(5, 1)).shape
        torch.Size([2, 5])
    """

    def __init__(self, sizes: Sequence[int], activation: Literal["tanh", "relu"]) -> None:
        super().__init__()
        self.sizes = tuple(int(s) for s in sizes)
        if len(self.sizes) < 2 or self.sizes[-1] != 1:
            raise ValueError(f"TwinQ needs sizes (in, ..., 1), got {self.sizes}.")
        self.weight = nn.ParameterList()
        self.bias = nn.ParameterList()
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:], strict=True):
            bound = 1.0 / math.sqrt(fan_in)
            self.weight.append(
                nn.Parameter(torch.empty(2, fan_in, fan_out).uniform_(-bound, bound))
            )
            self.bias.append(nn.Parameter(torch.empty(2, 1, fan_out).uniform_(-bound, bound)))
        self._act_ = torch.tanh_ if activation == "tanh" else torch.relu_

    def forward(
        self, obs: torch.Tensor, action: torch.Tensor, *, detach_weights: bool = False
    ) -> torch.Tensor:
        """``Q_k(s, a)`` of both members: ``[N, obs_dim]``, ``[N, action_dim]`` -> ``[2, N]``.

        ``detach_weights``: gradients reach the inputs only (the policy's loss).
        """
        x = torch.cat((obs, action), dim=-1).expand(2, -1, -1)
        last = len(self.weight) - 1
        for i, (weight, bias) in enumerate(zip(self.weight, self.bias, strict=True)):
            if detach_weights:
                weight, bias = weight.detach(), bias.detach()
            x = torch.baddbmm(bias, x, weight)
            if i < last:  # in place: the matmul's backward does not need its output
                x = self._act_(x)
        return x.squeeze(-1)


def squashed_sample(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A sample of the tanh-squashed Gaussian ``out = [mean, log_std]``, and its log-density.

    ``a = tanh(u)``, ``u ~ N(mean, exp(log_std))`` (log_std clipped to [-20, 2], as the acting
    copies do); ``log pi(a) = log N(u) - sum log(1 - tanh(u)^2)``, the correction written
    as ``2 (log 2 - u - softplus(-2u))``, exact where ``1 - tanh^2`` rounds to 0.

    Args:
        out: ``[N, 2 d]`` the policy network's output.

    Returns:
        ``(action [N, d] in [-1, 1], logprob [N])`` (reparameterised: gradients flow).
    """
    mean, log_std = out.chunk(2, dim=-1)
    log_std = log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)
    noise = torch.randn_like(mean)
    u = mean + log_std.exp() * noise
    correction = 2.0 * (_LOG_2 - u - nn.functional.softplus(-2.0 * u))
    logprob = (-0.5 * noise.pow(2) - log_std - _HALF_LOG_2PI - correction).sum(-1)
    return torch.tanh(u), logprob


class SACAgent(nn.Module):
    """The policy, the twin Q network, its target copy and ``log_alpha``.

    Args:
        env: the env's description (Box actions).
        hidden_sizes: hidden widths of the policy and of each Q network.
        activation: ``"tanh"`` or ``"relu"``.
        ent_coef: the initial entropy coefficient alpha.
    """

    def __init__(
        self,
        env: EnvInfo,
        hidden_sizes: Sequence[int],
        activation: Literal["tanh", "relu"],
        ent_coef: float = 1.0,
    ) -> None:
        super().__init__()
        self.env = env
        d = env.action_dim
        self.policy = MLP((env.obs_dim, *hidden_sizes, 2 * d), activation, output_gain=1.0)
        for layer in self.policy.layers:  # torch's default init, as stable-baselines3's SAC
            assert isinstance(layer, nn.Linear)  # built by MLP
            layer.reset_parameters()
        self.q = TwinQ((env.obs_dim + d, *hidden_sizes, 1), activation)
        self.q_target = TwinQ(self.q.sizes, activation)
        self.q_target.load_state_dict(self.q.state_dict())
        self.q_target.requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.tensor(math.log(ent_coef)))

    def policy_out(self, obs: torch.Tensor) -> torch.Tensor:
        """``policy(obs)``: ``[N, obs_dim] -> [N, 2 d]`` (mean, log_std), activations in place."""
        act_ = torch.tanh_ if self.policy.activation == "tanh" else torch.relu_
        x, last = obs, len(self.policy.layers) - 1
        for i, layer in enumerate(self.policy.layers):
            assert isinstance(layer, nn.Linear)  # built by MLP
            x = torch.addmm(layer.bias, x, layer.weight.t())
            if i < last:
                x = act_(x)
        return x

    def actor_spec(self) -> ActorSpec:
        """What the acting copies compute: this policy, sampling its squashed Gaussian."""
        env = self.env
        return ActorSpec(
            head="squashed_gaussian",
            sizes=self.policy.sizes,
            activation=self.policy.activation,
            obs_discrete=env.obs_discrete,
            action_low=env.action_low,
            action_high=env.action_high,
            action_shape=env.action_shape,
        )

    def actor_weights(self) -> dict[str, npt.NDArray[Any]]:
        """The policy's weights for the acting copies (numpy)."""
        return actor_weights(self.policy)

    def learned(self) -> list[nn.Parameter]:
        """The parameters the optimiser updates: policy, Q networks, ``log_alpha``."""
        return [*self.policy.parameters(), *self.q.parameters(), self.log_alpha]


# --- losses ----------------------------------------------------------------------------
def soft_q_target(
    reward: torch.Tensor,
    discount: torch.Tensor,
    terminated: torch.Tensor,
    next_q: torch.Tensor,
    next_logprob: torch.Tensor,
    alpha: torch.Tensor | float,
) -> torch.Tensor:
    """The soft Bellman target ``r + discount * (1 - terminated) * (min_k Q'_k - alpha log pi)``.

    A truncated transition (time limit) is bootstrapped from the next state, whose value
    the caller computed on the kept final observation; a terminated one is not.

    Args:
        reward: ``[N]``.
        discount: ``[N]`` ``gamma ** m`` (m rewards summed in ``reward``).
        terminated: ``[N]`` bool.
        next_q: ``[2, N]`` the target networks' ``Q'_k(s', a')``, ``a' ~ pi(s')``.
        next_logprob: ``[N]`` ``log pi(a' | s')``.
        alpha: the entropy coefficient.

    Returns:
        ``[N]`` targets (no gradient).
    """
    soft_value = next_q.min(dim=0).values - alpha * next_logprob
    return (reward + discount * (~terminated).to(reward.dtype) * soft_value).detach()


def sac_loss(
    q: torch.Tensor,
    target: torch.Tensor,
    q_pi: torch.Tensor,
    logprob: torch.Tensor,
    log_alpha: torch.Tensor,
    target_entropy: float | None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The sum of SAC's three losses, for one backward pass, and their statistics (detached).

    * Q: ``0.5 * sum_k mean((Q_k(s, a) - target)^2)`` (gradients to the Q networks).
    * policy: ``mean(alpha * log pi(a~|s) - min_k Q_k(s, a~))``, ``a~ ~ pi(s)``
      reparameterised (gradients to the policy only: ``q_pi`` comes from detached Q weights).
    * alpha: ``-mean(log_alpha * (log pi(a~|s) + target_entropy))`` (gradient to
      ``log_alpha`` only); 0 when ``target_entropy`` is None (alpha fixed).

    Args:
        q: ``[2, N]`` ``Q_k(s, a)`` of the stored actions.
        target: ``[N]`` `soft_q_target` (constants).
        q_pi: ``[2, N]`` ``Q_k(s, a~)`` of fresh policy actions.
        logprob: ``[N]`` ``log pi(a~ | s)``.
        log_alpha: ``[]`` the log entropy coefficient.
        target_entropy: the entropy alpha's tuning aims at; None: alpha is not tuned.

    Returns:
        ``(loss, stats)``; stats: ``q_loss``, ``policy_loss``, ``alpha_loss``, ``alpha``,
        ``entropy`` (``-mean log pi``), ``q_values`` (mean of ``Q_k(s, a)``).
    """
    alpha = log_alpha.detach().exp()
    q_loss = 0.5 * (q - target).pow(2).mean(dim=1).sum()
    policy_loss = (alpha * logprob - q_pi.min(dim=0).values).mean()
    loss = q_loss + policy_loss
    if target_entropy is None:
        alpha_loss = torch.zeros((), device=q.device)
    else:
        alpha_loss = -(log_alpha * (logprob.detach() + target_entropy)).mean()
        loss = loss + alpha_loss
    stats = {
        "q_loss": q_loss.detach(),
        "policy_loss": policy_loss.detach(),
        "alpha_loss": alpha_loss.detach(),
        "alpha": alpha,
        "entropy": -logprob.detach().mean(),
        "q_values": q.detach().mean(),
    }
    return loss, stats


# --- one gradient step ------------------------------------------------------------------
def _update(
    agent: SACAgent,
    optimizer: Adam,
    batch: Mapping[str, torch.Tensor],
    *,
    target_entropy: float | None,
    tau: float,
    target_params: tuple[list[torch.Tensor], list[torch.Tensor]],
) -> dict[str, torch.Tensor]:
    obs, next_obs = batch["obs"], batch["next_obs"]
    with torch.no_grad():
        next_action, next_logprob = squashed_sample(agent.policy_out(next_obs))
        target = soft_q_target(
            batch["reward"],
            batch["discount"],
            batch["terminated"],
            agent.q_target(next_obs, next_action),
            next_logprob,
            agent.log_alpha.exp(),
        )
    q = agent.q(obs, batch["action"])
    action, logprob = squashed_sample(agent.policy_out(obs))
    q_pi = agent.q(obs, action, detach_weights=True)
    loss, stats = sac_loss(q, target, q_pi, logprob, agent.log_alpha, target_entropy)
    optimizer.zero_grad()
    loss.backward()  # type: ignore[no-untyped-call]  # torch leaves it unannotated
    optimizer.step()
    with torch.no_grad():  # Polyak averaging of the target networks, in place
        torch._foreach_lerp_(target_params[0], target_params[1], tau)
    return stats


def _batch(sample: DictTensor, env: EnvInfo, device: torch.device) -> dict[str, torch.Tensor]:
    def tensor(key: str) -> torch.Tensor:
        return torch.from_numpy(np.asarray(sample[key])).to(device, non_blocking=True)

    return {
        "obs": observation_tensor(tensor("observation/frame"), env),
        "action": tensor("action/squashed").reshape(-1, env.action_dim),
        "next_obs": observation_tensor(tensor("_observation/frame"), env),
        "reward": tensor("_observation/reward").float(),
        "terminated": tensor("_observation/terminated"),
        "discount": tensor("discount"),
    }


# --- training loop ---------------------------------------------------------------------
def train(config: SACConfig, logger: ScalarLogger | None = None) -> TrainResult:
    """Train SAC as ``config`` says; logs, checkpoints and evaluations as in `Run`.

    The replay buffer is not saved in checkpoints: a resumed run collects
    ``learning_starts`` fresh transitions before it updates again.

    Args:
        config: the hyperparameters (``SACConfig.from_preset(env_id)`` for the presets).
        logger: where scalars go; None: a `Logger` on the run's logdir.

    Returns:
        The `TrainResult` (steps, time, evaluations, where the files are).

    Raises:
        ConfigError: an unknown env, or a Discrete action space (one-line messages).
    """
    env = describe_env(config.env_id)
    check_actions(env, config.algo)
    device = setup_learner(config)
    agent = SACAgent(env, config.hidden_sizes, config.activation, config.ent_coef).to(device)
    learned = agent.learned() if config.autotune else agent.learned()[:-1]
    optimizer = Adam(learned, lr=config.learning_rate)
    target_entropy: float | None = None
    if config.autotune:
        given = config.target_entropy
        target_entropy = -float(env.action_dim) if given is None else given
    target_params: tuple[list[torch.Tensor], list[torch.Tensor]] = (
        list(agent.q_target.parameters()),
        list(agent.q.parameters()),
    )
    buffer = ReplayBuffer(
        config.buffer_size,
        keys=("observation/frame", "action/squashed", "_observation/frame"),
        seed=config.seed,
    )
    with Run(
        config,
        env=env,
        actor=agent.actor_spec(),
        n_timesteps=config.train_freq,
        state={"model": agent, "optimizer": optimizer},
        device=device,
        logger=logger,
    ) as run:
        run.start(agent.actor_weights())
        stats: dict[str, torch.Tensor] = {}
        next_log = run.step
        while run.running:
            # --- collection: the steps the worker made while we learned on the last batch
            buffer.add(run.collect())
            # --- updates, on transitions drawn from everything collected so far
            if len(buffer) >= max(config.learning_starts, 1):
                for _ in range(config.gradient_steps):
                    sample = buffer.sample(config.batch_size, gamma=config.gamma)
                    stats = _update(
                        agent,
                        optimizer,
                        _batch(sample, env, device),
                        target_entropy=target_entropy,
                        tau=config.tau,
                        target_params=target_params,
                    )
            logged: dict[str, float] = {}
            if stats and run.step >= next_log:  # reading a value waits for the device
                logged = {f"losses/{k}": float(v) for k, v in stats.items()}
                next_log = run.step + LOG_EVERY
            run.publish(agent.actor_weights(), logged)
    return run.result


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rlstructures.algos.sac ...``: ``rlstructures-train sac ...``."""
    import sys

    from rlstructures.algos._cli import main as cli_main

    return cli_main(["sac", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
