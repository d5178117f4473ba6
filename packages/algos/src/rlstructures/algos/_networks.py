"""Torch networks and distributions shared by the algorithms (the learner side).

* `ActorCritic`: the policy and value networks of A2C and PPO.
* `MLP`: linear layers with tanh/relu between them, orthogonally initialised (gain
  ``sqrt(2)`` on hidden layers, ``output_gain`` on the last, biases 0), as stable-baselines3
  and CleanRL initialise their policies.
* `actor_weights`: an MLP's parameters as the numpy weights a `NumpyActor` takes.
* `categorical_logprob_entropy`, `gaussian_logprob_entropy`: log-probabilities of stored
  actions and entropies, without ``torch.distributions``' validation overhead.
* `observation_tensor`: a stored ``"frame"`` as the float input of the networks.
* `resolve_device`: ``"auto"`` -> CUDA when present, else CPU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from rlstructures.algos._actor import ActorSpec, layer_key
from rlstructures.algos._envs import EnvInfo
from rlstructures.algos.errors import ConfigError

__all__ = [
    "MLP",
    "ActorCritic",
    "actor_weights",
    "categorical_logprob_entropy",
    "gaussian_logprob_entropy",
    "observation_tensor",
    "resolve_device",
]

_HALF_LOG_2PI: Final = 0.5 * math.log(2.0 * math.pi)


class MLP(nn.Module):
    """``sizes[0] -> sizes[1] -> ... -> sizes[-1]`` linear layers, activation in between.

    Args:
        sizes: widths, input first, at least two.
        activation: ``"tanh"`` or ``"relu"``.
        output_gain: orthogonal-init gain of the last layer (0.01 for a policy head, 1 for
            a value head, as in stable-baselines3).

    Example:
        >>> net = MLP((4, 64, 64, 2), "tanh", output_gain=0.01)
        >>> net(torch.zeros(3, 4)).shape
        torch.Size([3, 2])
    """

    def __init__(
        self, sizes: Sequence[int], activation: Literal["tanh", "relu"], *, output_gain: float
    ) -> None:
        super().__init__()
        if len(sizes) < 2:
            raise ValueError(f"an MLP needs an input and an output width, got {list(sizes)}.")
        self.sizes = tuple(int(s) for s in sizes)
        self.activation = activation
        linears = [nn.Linear(a, b) for a, b in zip(self.sizes[:-1], self.sizes[1:], strict=True)]
        for i, layer in enumerate(linears):
            gain = output_gain if i == len(linears) - 1 else math.sqrt(2.0)
            nn.init.orthogonal_(layer.weight, gain)
            nn.init.zeros_(layer.bias)
        self.layers = nn.ModuleList(linears)
        self._act = torch.tanh if activation == "tanh" else torch.relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, sizes[0]] -> [N, sizes[-1]]``."""
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < last:
                x = self._act(x)
        return x


def actor_weights(net: MLP, **extra: torch.Tensor | float) -> dict[str, npt.NDArray[Any]]:
    """``net``'s parameters (and ``extra`` ones, e.g. ``log_std=``) for ``NumpyActor.update``.

    The arrays are numpy (CPU copies when ``net`` is on a GPU, views otherwise: the batcher's
    ``update`` copies them at once), so the worker processes never need torch.
    """
    out: dict[str, npt.NDArray[Any]] = {}
    for i, layer in enumerate(net.layers):
        assert isinstance(layer, nn.Linear)  # built by MLP.__init__
        out[layer_key(i, "weight")] = _numpy(layer.weight)
        out[layer_key(i, "bias")] = _numpy(layer.bias)
    for key, value in extra.items():
        out[key] = (
            _numpy(value) if isinstance(value, torch.Tensor) else np.asarray(value, np.float32)
        )
    return out


def _numpy(t: torch.Tensor) -> npt.NDArray[Any]:
    return np.asarray(t.detach().cpu().numpy())


def categorical_logprob_entropy(
    logits: torch.Tensor, actions: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probabilities of ``actions`` and entropies under ``softmax(logits)``.

    Args:
        logits: ``[N, n_actions]``.
        actions: ``[N]`` int64.

    Returns:
        ``(logprob [N], entropy [N])``.
    """
    logp = torch.log_softmax(logits, dim=-1)
    chosen = logp.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
    entropy = -(logp.exp() * logp).sum(-1)
    return chosen, entropy


def gaussian_logprob_entropy(
    mean: torch.Tensor, log_std: torch.Tensor, sample: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-densities of ``sample`` and entropies of a diagonal Gaussian.

    Args:
        mean: ``[N, d]``.
        log_std: ``[d]`` or ``[N, d]``.
        sample: ``[N, d]`` (the unclipped samples the actor drew).

    Returns:
        ``(logprob [N], entropy [N])``, summed over the d dimensions.
    """
    z = (sample - mean) * torch.exp(-log_std)
    logprob = (-0.5 * z.pow(2) - log_std - _HALF_LOG_2PI).sum(-1)
    entropy = (0.5 + _HALF_LOG_2PI + log_std).expand_as(mean).sum(-1)
    return logprob, entropy


def observation_tensor(frame: torch.Tensor, env: EnvInfo) -> torch.Tensor:
    """A stored ``"frame"`` ``[*batch, *obs_shape]`` as float32 ``[*batch, obs_dim]``.

    ``batch`` is whatever leads (``[B, T]`` or ``[N]``); a Discrete observation is one-hot
    encoded over its ``env.obs_dim`` values.
    """
    if env.obs_discrete:
        return nn.functional.one_hot(frame.long(), env.obs_dim).float()
    lead = frame.shape[: frame.dim() - len(env.obs_shape)]
    return frame.reshape(*lead, env.obs_dim).float()


def resolve_device(spec: str) -> torch.device:
    """``"auto"``: ``cuda`` when a GPU is visible, else ``cpu``; otherwise ``torch.device``.

    Raises:
        ConfigError: an unknown device string, or CUDA asked for where there is none.
    """
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except (RuntimeError, ValueError):
        raise ConfigError(
            f"--device {spec!r} is not a device; use auto, cpu, cuda or cuda:N."
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {spec}: no CUDA device is visible here; use cpu or auto.")
        index: int | None = device.index
        if index is not None and index >= torch.cuda.device_count():
            raise ConfigError(
                f"--device {spec}: there are {torch.cuda.device_count()} CUDA devices "
                f"(cuda:0 .. cuda:{torch.cuda.device_count() - 1})."
            )
    elif device.type != "cpu":
        raise ConfigError(f"--device {spec!r}: the learner runs on cpu or cuda[:N].")
    return device


class ActorCritic(nn.Module):
    """Separate policy and value MLPs (stable-baselines3's ``MlpPolicy``), for A2C and PPO.

    ``policy`` outputs the logits of a Discrete action, or the mean of a diagonal Gaussian
    whose state-independent ``log_std`` is a parameter (Box actions); ``value`` outputs
    ``V(s)``. The acting copies are `NumpyActor`s built from ``actor_spec()`` and fed
    ``actor_weights()``.

    Args:
        env: the env's description.
        hidden_sizes: widths of the hidden layers (both networks).
        activation: ``"tanh"`` or ``"relu"``.
        log_std_init: initial log standard deviation (Box actions).
    """

    def __init__(
        self,
        env: EnvInfo,
        hidden_sizes: Sequence[int],
        activation: Literal["tanh", "relu"],
        log_std_init: float = 0.0,
    ) -> None:
        super().__init__()
        self.env = env
        self.policy = MLP(
            (env.obs_dim, *hidden_sizes, env.action_dim), activation, output_gain=0.01
        )
        self.value = MLP((env.obs_dim, *hidden_sizes, 1), activation, output_gain=1.0)
        self.log_std: nn.Parameter | None = None
        if env.action_kind == "box":
            self.log_std = nn.Parameter(torch.full((env.action_dim,), float(log_std_init)))

    def actor_spec(self) -> ActorSpec:
        """What the acting copies compute: this policy, sampling (categorical or Gaussian)."""
        env = self.env
        return ActorSpec(
            head="categorical" if env.action_kind == "discrete" else "gaussian",
            sizes=self.policy.sizes,
            activation=self.policy.activation,
            obs_discrete=env.obs_discrete,
            action_low=env.action_low,
            action_high=env.action_high,
            action_shape=env.action_shape,
        )

    def actor_weights(self) -> dict[str, npt.NDArray[Any]]:
        """The policy's weights for the acting copies (numpy)."""
        if self.log_std is None:
            return actor_weights(self.policy)
        return actor_weights(self.policy, log_std=self.log_std)

    def state_value(self, obs: torch.Tensor) -> torch.Tensor:
        """``V(s)``: ``[*batch, obs_dim] -> [*batch]``."""
        out: torch.Tensor = self.value(obs)
        return out.squeeze(-1)

    def logprob_entropy(
        self, obs: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probabilities of stored ``actions`` and the policy's entropies, ``[N]`` each.

        Args:
            obs: ``[N, obs_dim]``.
            actions: ``[N]`` int64 (Discrete) or ``[N, action_dim]`` float (Box: the
                unclipped samples, ``"action/sample"``).
        """
        out = self.policy(obs)
        if self.log_std is None:
            return categorical_logprob_entropy(out, actions)
        return gaussian_logprob_entropy(out, self.log_std, actions)
