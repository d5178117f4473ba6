"""Double DQN (van Hasselt et al., 2016), optionally with a duelling head (Wang et al., 2016).

Read it top to bottom: the config (its field docstrings are the ``rlstructures-train ddqn``
help), the Q-network, the loss (pure, unit-tested) and ``train``. Workers collect
``train_freq`` env steps per batch with an epsilon-greedy copy of the online network (the
epsilon of the schedule travels with the weights, by ``update()``) while the learner makes
``gradient_steps`` gradient steps on minibatches drawn uniformly from the replay buffer;
each collected batch is added to the buffer, so the data are one update behind.

The target of a transition ``(s, a, r, s')`` is ``r + discount * (1 - terminated) *
Q_target(s', argmax_a' Q_online(s', a'))`` (Double DQN: the online network chooses, the
target network values; ``double_q=False`` gives DQN's ``max_a' Q_target(s', a')``), with
``discount = gamma ** m`` for the m rewards of an n-step row. ``s'`` is the kept final
observation where an episode ended, so a truncated episode is bootstrapped from its last
state and a terminated one is not; no row crosses an auto-reset.

Discrete actions only.

Example:
    >>> from rlstructures.algos import dqn
    >>> config = dqn.DQNConfig.from_preset("CartPole-v1", total_steps=50_000)
    >>> result = dqn.train(config)  # doctest: +SKIP
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy.typing as npt
import torch
from torch import nn

from rlstructures.algos._actor import ActorSpec, layer_key
from rlstructures.algos._config import TrainConfig, in_range, positive
from rlstructures.algos._envs import EnvInfo, check_actions, describe_env
from rlstructures.algos._networks import MLP, actor_weights, observation_tensor
from rlstructures.algos._optim import Adam, clip_grad_norm_
from rlstructures.algos._replay_buffer import ReplayBuffer
from rlstructures.algos._result import TrainResult
from rlstructures.algos._run import Run, setup_learner
from rlstructures.algos.errors import ConfigError
from rlstructures.logging import ScalarLogger

__all__ = ["DQNConfig", "QNetwork", "dqn_loss", "epsilon_at", "train", "main"]


@dataclass(frozen=True, kw_only=True)
class DQNConfig(TrainConfig):
    """Double DQN's hyperparameters (names and defaults as stable-baselines3's ``DQN``)."""

    algo: ClassVar[str] = "ddqn"

    n_envs: int = 1
    """Envs stepped in parallel, all worker processes together."""
    learning_rate: float = 1e-4
    """Learning rate (Adam)."""
    anneal_lr: bool = False
    """Decay the learning rate linearly to 0 over total_steps (steadies the end of training)."""
    buffer_size: int = 1_000_000
    """Transitions kept in the replay buffer."""
    learning_starts: int = 100
    """Transitions collected (with uniform random actions) before learning starts."""
    batch_size: int = 32
    """Transitions per gradient step."""
    train_freq: int = 4
    """Env steps (all envs together) collected between two learning phases."""
    gradient_steps: int = 1
    """Gradient steps per learning phase (one per train_freq env steps)."""
    target_update_interval: int = 10_000
    """Env steps between two updates of the target network."""
    tau: float = 1.0
    """Target update: target <- tau * online + (1 - tau) * target (1: a copy)."""
    gamma: float = 0.99
    """Discount factor."""
    n_step: int = 1
    """Rewards summed per target (n-step returns; stops at episode ends)."""
    double_q: bool = True
    """Double DQN: the online network picks the next action, the target network values it."""
    dueling: bool = False
    """Duelling head: Q = V + A - mean(A), from one last layer with n_actions + 1 outputs."""
    exploration_fraction: float = 0.1
    """Fraction of total_steps over which epsilon decays linearly."""
    exploration_initial_eps: float = 1.0
    """Epsilon at the start of the decay."""
    exploration_final_eps: float = 0.05
    """Epsilon after the decay."""
    loss: Literal["huber", "mse"] = "huber"
    """TD loss: huber (smooth L1, as stable-baselines3) or mse."""
    max_grad_norm: float = 10.0
    """Clip the gradients' global norm to this."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the Q-network."""
    activation: Literal["tanh", "relu"] = "relu"
    """Activation between hidden layers."""

    def __post_init__(self) -> None:
        TrainConfig.__post_init__(self)
        positive(self, "buffer_size", "batch_size", "train_freq", "gradient_steps", "n_step")
        positive(self, "target_update_interval")
        positive(self, "learning_starts", allow_zero=True)
        in_range(self, "learning_rate", 0.0, 1.0, open_low=True)
        in_range(self, "tau", 0.0, 1.0, open_low=True)
        in_range(self, "gamma", 0.0, 1.0)
        for name in ("exploration_fraction", "exploration_initial_eps", "exploration_final_eps"):
            in_range(self, name, 0.0, 1.0)
        in_range(self, "max_grad_norm", 0.0, 1e9, open_low=True)
        if self.train_freq % self.n_envs:
            raise ConfigError(
                f"--train-freq {self.train_freq} is not a multiple of --n-envs {self.n_envs}: "
                "each env makes train_freq / n_envs steps per collection."
            )
        if not self.hidden_sizes or any(h < 1 for h in self.hidden_sizes):
            raise ConfigError(f"--hidden-sizes must be positive ints, got {self.hidden_sizes}.")


def epsilon_at(config: DQNConfig, step: int, stored: int) -> float:
    """The exploration rate after ``step`` env steps with ``stored`` transitions in the buffer.

    1 until the buffer holds ``learning_starts`` transitions, then stable-baselines3's
    linear schedule from ``exploration_initial_eps`` to ``exploration_final_eps`` over the
    first ``exploration_fraction`` of ``total_steps``.
    """
    if stored < config.learning_starts:
        return 1.0
    span = config.exploration_fraction * config.total_steps
    progress = 1.0 if span <= 0 else min(1.0, step / span)
    start, end = config.exploration_initial_eps, config.exploration_final_eps
    return start + progress * (end - start)


# --- network ---------------------------------------------------------------------------
class QNetwork(nn.Module):
    """``Q(s, .)``: an MLP (PyTorch's default init), optionally duelling (`DQNConfig.dueling`).

    The duelling network's last layer has ``n_actions + 1`` outputs: the advantages, then
    the state value. Its greedy action is the argmax of the advantages, so the acting copy
    is the same MLP without the value row (``actor_spec``, ``actor_weights``).

    Args:
        env: the env's description (Discrete actions).
        hidden_sizes: widths of the hidden layers.
        activation: ``"tanh"`` or ``"relu"``.
        dueling: a duelling head.
    """

    def __init__(
        self,
        env: EnvInfo,
        hidden_sizes: Sequence[int],
        activation: Literal["tanh", "relu"],
        dueling: bool = False,
    ) -> None:
        super().__init__()
        self.env, self.dueling, self.n_actions = env, dueling, env.n_actions
        out = env.n_actions + (1 if dueling else 0)
        self.net = MLP((env.obs_dim, *hidden_sizes, out), activation, output_gain=1.0)
        for layer in self.net.layers:  # PyTorch's default init, as stable-baselines3's DQN:
            assert isinstance(layer, nn.Linear)  # on CartPole it learnt faster than orthogonal
            layer.reset_parameters()

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """``[*batch, obs_dim] -> [*batch, n_actions]`` Q-values."""
        out: torch.Tensor = self.net(obs)
        if not self.dueling:
            return out
        advantage, value = out[..., :-1], out[..., -1:]
        return value + advantage - advantage.mean(-1, keepdim=True)

    def actor_spec(self) -> ActorSpec:
        """What the acting copies compute: epsilon-greedy on these Q-values."""
        return ActorSpec(
            head="epsilon_greedy",
            sizes=(*self.net.sizes[:-1], self.n_actions),
            activation=self.net.activation,
            obs_discrete=self.env.obs_discrete,
        )

    def actor_weights(self, epsilon: float) -> dict[str, npt.NDArray[Any]]:
        """The weights of the acting copies (numpy), with their ``epsilon``."""
        weights = actor_weights(self.net, epsilon=epsilon)
        if self.dueling:  # drop the value row: argmax Q = argmax A
            last = len(self.net.layers) - 1
            for what in ("weight", "bias"):
                key = layer_key(last, what)
                weights[key] = weights[key][: self.n_actions]
        return weights


# --- loss ------------------------------------------------------------------------------
def dqn_loss(
    q_values: torch.Tensor,
    action: torch.Tensor,
    reward: torch.Tensor,
    discount: torch.Tensor,
    terminated: torch.Tensor,
    next_q_target: torch.Tensor,
    next_q_online: torch.Tensor | None,
    *,
    loss: Literal["huber", "mse"] = "huber",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The TD loss of a minibatch, and its statistics (detached).

    ``target = reward + discount * (1 - terminated) * next_q_target[a*]`` with ``a* =
    argmax next_q_online`` (Double DQN) or ``argmax next_q_target`` when ``next_q_online``
    is None (DQN); the loss is the mean Huber (smooth L1) or squared error between
    ``q_values[action]`` and the target (a constant).

    Args:
        q_values: ``[N, n_actions]`` online Q-values of the observations (with gradients).
        action: ``[N]`` int64 actions taken.
        reward: ``[N]`` rewards (n-step: their discounted sums).
        discount: ``[N]`` ``gamma ** m`` for the m rewards summed.
        terminated: ``[N]`` bool: the (last) transition ended the episode by termination.
        next_q_target: ``[N, n_actions]`` target-network Q-values of the next observations
            (the kept final observation where an episode ended).
        next_q_online: ``[N, n_actions]`` online Q-values of the next observations, or None.
        loss: ``"huber"`` or ``"mse"``.

    Returns:
        ``(loss, stats)``; stats: ``td_loss``, ``q_values`` (mean of ``q_values[action]``).
    """
    with torch.no_grad():
        chooser = next_q_target if next_q_online is None else next_q_online
        best = chooser.argmax(-1, keepdim=True)
        next_value = next_q_target.gather(-1, best).squeeze(-1)
        target = reward + discount * torch.where(terminated, 0.0, next_value)
    chosen = q_values.gather(-1, action.long().unsqueeze(-1)).squeeze(-1)
    if loss == "huber":
        value = nn.functional.smooth_l1_loss(chosen, target)
    else:
        value = nn.functional.mse_loss(chosen, target)
    return value, {"td_loss": value.detach(), "q_values": chosen.detach().mean()}


# --- update ----------------------------------------------------------------------------
def _learn(
    q: QNetwork,
    target: QNetwork,
    optimizer: Adam,
    buffer: ReplayBuffer,
    config: DQNConfig,
    device: torch.device,
) -> dict[str, float]:
    """``gradient_steps`` gradient steps; the mean statistics.

    All minibatches of the phase are drawn at once (uniform, with replacement: the same
    law as one draw per step, since the buffer does not change during the phase), and the
    target network, which does not change either, values all their next observations in
    one forward pass.
    """
    g, b = config.gradient_steps, config.batch_size
    rows = buffer.sample(g * b, n_step=config.n_step, gamma=config.gamma).to(device)
    env = q.env
    obs = observation_tensor(rows["observation/frame"], env).view(g, b, -1)
    next_obs = observation_tensor(rows["_observation/frame"], env)
    action = rows["action/action"].view(g, b)
    reward = rows["_observation/reward"].float().view(g, b)
    discount = rows["discount"].view(g, b)
    terminated = rows["_observation/terminated"].view(g, b)
    with torch.no_grad():
        next_target = target(next_obs).view(g, b, -1)
    next_obs = next_obs.view(g, b, -1)
    sums: dict[str, torch.Tensor] = {}
    for i in range(g):
        next_online = None
        if config.double_q:
            with torch.no_grad():
                next_online = q(next_obs[i])
        loss, stats = dqn_loss(
            q(obs[i]),
            action[i],
            reward[i],
            discount[i],
            terminated[i],
            next_target[i],
            next_online,
            loss=config.loss,
        )
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]  # torch leaves it unannotated
        clip_grad_norm_(optimizer.params, config.max_grad_norm)
        optimizer.step()
        for key, value in stats.items():
            sums[key] = sums[key] + value if key in sums else value
    return {f"losses/{k}": float(v) / g for k, v in sums.items()}


def _update_target(q: QNetwork, target: QNetwork, tau: float) -> None:
    online: list[torch.Tensor] = list(q.parameters())
    frozen: list[torch.Tensor] = list(target.parameters())
    with torch.no_grad():
        if tau >= 1.0:
            torch._foreach_copy_(frozen, online)
        else:
            torch._foreach_lerp_(frozen, online, tau)


# --- training loop ---------------------------------------------------------------------
def train(config: DQNConfig, logger: ScalarLogger | None = None) -> TrainResult:
    """Train Double DQN as ``config`` says; logs, checkpoints and evaluations as in `Run`.

    The replay buffer is not saved in checkpoints: after ``--resume`` it refills from fresh
    episodes, and learning resumes once it holds ``learning_starts`` transitions.

    Args:
        config: the hyperparameters (``DQNConfig.from_preset(env_id)`` for the presets).
        logger: where scalars go; None: a `Logger` on the run's logdir.

    Returns:
        The `TrainResult` (steps, time, evaluations, where the files are).

    Raises:
        ConfigError: an unknown env, or a space DQN cannot handle (one-line messages).
    """
    env = describe_env(config.env_id)
    check_actions(env, config.algo)
    device = setup_learner(config)
    q = QNetwork(env, config.hidden_sizes, config.activation, config.dueling).to(device)
    target = copy.deepcopy(q).requires_grad_(False)
    optimizer = Adam(q.parameters(), lr=config.learning_rate)
    buffer = ReplayBuffer(config.buffer_size, seed=config.seed)
    with Run(
        config,
        env=env,
        actor=q.actor_spec(),
        n_timesteps=config.train_freq // config.n_envs,
        state={"q": q, "target": target, "optimizer": optimizer},
        device=device,
        logger=logger,
    ) as run:
        interval = config.target_update_interval
        next_target_update = (run.step // interval + 1) * interval  # target: a copy now
        run.start(q.actor_weights(epsilon_at(config, run.step, 0)))
        while run.running:
            # --- rollout: the batch the workers collected while we learned on the last one
            buffer.add(run.collect())
            stats: dict[str, float] = {}
            if len(buffer) >= max(config.learning_starts, 1):
                # --- update
                if run.step >= next_target_update:
                    _update_target(q, target, config.tau)
                    next_target_update = (run.step // interval + 1) * interval
                lr = config.learning_rate * ((1.0 - run.fraction) if config.anneal_lr else 1.0)
                optimizer.lr = lr
                stats = _learn(q, target, optimizer, buffer, config, device)
                stats["charts/learning_rate"] = lr
            epsilon = epsilon_at(config, run.step, len(buffer))
            stats["charts/epsilon"] = epsilon
            run.publish(q.actor_weights(epsilon), stats)
    return run.result


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rlstructures.algos.dqn ...``: ``rlstructures-train ddqn ...``."""
    import sys

    from rlstructures.algos._cli import main as cli_main

    return cli_main(["ddqn", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
