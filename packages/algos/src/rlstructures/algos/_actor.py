"""`NumpyActor`: the acting copy of an MLP policy, in numpy, for batcher workers.

The learner trains torch networks; the copies that act in the batcher's worker processes
compute the same function in numpy from the weights the learner sends with
``batcher.update(actor_weights(...))``. Such a worker never imports torch (about 1.5 s
less to start on the reference machine) and one step of a small MLP costs a few
microseconds instead of torch's per-operation overhead. ``tests/algos/test_actor.py``
checks that both compute the same outputs.

Heads (the last layer's meaning):

* ``"categorical"``: logits of a Discrete action; samples, stores ``logprob``.
* ``"gaussian"``: the mean of a diagonal Gaussian with a state-independent ``log_std``
  (a weight); samples ``sample`` (stored, with its ``logprob``) and sends the env
  ``action = clip(sample, low, high)``.
* ``"squashed_gaussian"``: ``[mean, log_std]`` (SAC); ``action = low + (tanh(u) + 1) / 2 *
  (high - low)`` with ``u ~ N(mean, exp(log_std))``, log_std clipped to [-20, 2]; stores
  ``squashed = tanh(u)`` (in [-1, 1]).
* ``"epsilon_greedy"``: Q-values (DQN); the greedy action, or with probability
  ``epsilon`` (a weight, so that its schedule travels with ``update()``) a uniform one.

With ``deterministic=True`` (evaluation): the most likely action (argmax, the mean,
``tanh(mean)``, the greedy action), and only ``"action"`` is stored.

Torch-free: this module imports numpy only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from rlstructures.agents import Agent
from rlstructures.dicttensor import DictTensor, TemporalDictTensor

__all__ = ["LOG_STD_MAX", "LOG_STD_MIN", "ActorSpec", "Head", "NumpyActor", "layer_key"]

Head = Literal["categorical", "gaussian", "squashed_gaussian", "epsilon_greedy"]
Activation = Literal["tanh", "relu"]
F32 = npt.NDArray[np.float32]

#: Bounds of a squashed Gaussian's log standard deviation (as in SAC's reference code).
LOG_STD_MIN: Final = -20.0
LOG_STD_MAX: Final = 2.0


def layer_key(i: int, what: Literal["weight", "bias"]) -> str:
    """The weights key of the i-th linear layer: ``"layer{i}.weight"`` / ``".bias"``."""
    return f"layer{i}.{what}"


@dataclass(frozen=True, slots=True)
class ActorSpec:
    """What a `NumpyActor` computes.

    Attributes:
        head: the meaning of the last layer (see the module docstring).
        sizes: the MLP's widths, input first: ``(obs_dim, *hidden, out)``.
        activation: between layers (none after the last).
        obs_discrete: one-hot encode a Discrete observation (``sizes[0]`` values).
        action_low, action_high: flat Box bounds (gaussian heads).
        action_shape: the Box action's row shape (gaussian heads).
        deterministic: act greedily (evaluation).
    """

    head: Head
    sizes: tuple[int, ...]
    activation: Activation = "tanh"
    obs_discrete: bool = False
    action_low: tuple[float, ...] = ()
    action_high: tuple[float, ...] = ()
    action_shape: tuple[int, ...] = ()
    deterministic: bool = False

    def __post_init__(self) -> None:
        if len(self.sizes) < 2:
            raise ValueError(f"sizes needs an input and an output width, got {self.sizes}.")
        if self.head in ("gaussian", "squashed_gaussian") and not self.action_low:
            raise ValueError(f"a {self.head} head needs action_low, action_high, action_shape.")


class NumpyActor(Agent):
    """A stateless numpy MLP policy: the acting side of the algorithms (see module doc).

    Until the first ``update`` its weights are zeros (uniform or zero-mean actions): the
    batchers' probe step calls the agent before any weights are sent.

    Args:
        spec: what to compute.

    Example:
        >>> import numpy as np
        >>> actor = NumpyActor(ActorSpec(head="categorical", sizes=(4, 2)))
        >>> actor.update({"layer0.weight": np.array([[1, 0, 0, 0], [0, 1, 0, 0]], np.float32),
        ...               "layer0.bias": np.zeros(2, np.float32)})
        >>> obs = DictTensor({"frame": np.array([[9.0, 0, 0, 0]], np.float32)})
        >>> out, _ = actor(DictTensor({}, batch_shape=1), obs, DictTensor({}, batch_shape=1))
        >>> out["action"], out["logprob"].round(4)
        (array([0]), array([-0.0001], dtype=float32))
    """

    def __init__(self, spec: ActorSpec) -> None:
        self.spec = spec
        sizes = spec.sizes
        self._layers: list[tuple[F32, F32]] = [
            (np.zeros((sizes[i], sizes[i + 1]), np.float32), np.zeros(sizes[i + 1], np.float32))
            for i in range(len(sizes) - 1)
        ]
        out = sizes[-1] // 2 if spec.head == "squashed_gaussian" else sizes[-1]
        self._log_std = np.zeros(out, np.float32)
        self._epsilon = 0.0
        self._low = np.asarray(spec.action_low, np.float32)
        self._high = np.asarray(spec.action_high, np.float32)
        self._rng = np.random.default_rng(0)

    # ------------------------------------------------------------------ Agent API
    def seed(self, seed: int) -> None:
        """Seed the sampling generator."""
        self._rng = np.random.default_rng(seed)

    def update(self, state_dict: Mapping[str, Any]) -> None:
        """Take new weights (numpy arrays, e.g. from ``actor_weights``).

        Keys: ``layer{i}.weight [out, in]`` and ``layer{i}.bias [out]`` for every layer, plus
        ``log_std`` (gaussian head) or ``epsilon`` (epsilon_greedy head) when it has one.
        """
        layers = []
        for i in range(len(self._layers)):
            weight = np.asarray(state_dict[layer_key(i, "weight")], np.float32)
            bias = np.asarray(state_dict[layer_key(i, "bias")], np.float32)
            layers.append((np.ascontiguousarray(weight.T), bias.copy()))
        self._layers = layers
        if "log_std" in state_dict:
            self._log_std = np.asarray(state_dict["log_std"], np.float32).reshape(-1).copy()
        if "epsilon" in state_dict:
            self._epsilon = float(np.asarray(state_dict["epsilon"]))

    def __call__(
        self,
        state: DictTensor,
        observation: DictTensor,
        agent_info: DictTensor,
        history: TemporalDictTensor | None = None,
    ) -> tuple[DictTensor, DictTensor]:
        """Act on ``observation["frame"]`` ``[B, *obs_shape]``; see the module doc for keys."""
        out = self.forward(np.asarray(observation["frame"]))
        n = out.shape[0]
        return DictTensor(self._act(out), batch_shape=(n,)), state

    # ------------------------------------------------------------------ computation
    def forward(self, frame: npt.NDArray[Any]) -> F32:
        """The MLP's output ``[B, sizes[-1]]`` for observations ``[B, *obs_shape]``."""
        n = frame.shape[0]
        if self.spec.obs_discrete:
            x = np.zeros((n, self.spec.sizes[0]), np.float32)
            x[np.arange(n), frame.reshape(n).astype(np.int64)] = 1.0
        else:
            x = frame.reshape(n, -1).astype(np.float32, copy=False)
        last = len(self._layers) - 1
        relu = self.spec.activation == "relu"
        for i, (weight_t, bias) in enumerate(self._layers):
            x = x @ weight_t
            x += bias
            if i < last:
                if relu:
                    np.maximum(x, 0.0, out=x)
                else:
                    np.tanh(x, out=x)
        return x

    def _act(self, out: F32) -> dict[str, npt.NDArray[Any]]:
        head, rng, n = self.spec.head, self._rng, out.shape[0]
        if head == "categorical":
            if self.spec.deterministic:
                return {"action": out.argmax(axis=1)}
            logp = out - _logsumexp(out)
            cdf = np.cumsum(np.exp(logp), axis=1)
            u = rng.random((n, 1), dtype=np.float32) * cdf[:, -1:]
            action = np.minimum((u > cdf).sum(axis=1), out.shape[1] - 1)
            chosen = logp[np.arange(n), action]
            return {"action": action.astype(np.int64), "logprob": chosen.astype(np.float32)}
        if head == "epsilon_greedy":
            action = out.argmax(axis=1).astype(np.int64)
            if not self.spec.deterministic and self._epsilon > 0.0:
                explore = np.asarray(rng.random(n) < self._epsilon)
                action[explore] = rng.integers(0, out.shape[1], int(explore.sum()))
            return {"action": action}
        shape = (n, *self.spec.action_shape)
        if head == "gaussian":
            if self.spec.deterministic:
                return {"action": np.clip(out, self._low, self._high).reshape(shape)}
            std = np.exp(self._log_std)
            noise = rng.standard_normal(out.shape, dtype=np.float32)
            sample = out + std * noise
            logprob = (-0.5 * noise**2 - self._log_std - _HALF_LOG_2PI).sum(axis=1)
            return {
                "action": np.clip(sample, self._low, self._high).reshape(shape),
                "sample": sample.reshape(shape),
                "logprob": logprob.astype(np.float32),
            }
        half = out.shape[1] // 2
        mean = out[:, :half]
        if self.spec.deterministic:
            squashed = np.tanh(mean)
        else:
            log_std = np.clip(out[:, half:], LOG_STD_MIN, LOG_STD_MAX)
            noise = rng.standard_normal(mean.shape, dtype=np.float32)
            squashed = np.tanh(mean + np.exp(log_std) * noise)
        action = self._low + (squashed + 1.0) * 0.5 * (self._high - self._low)
        action = np.clip(action, self._low, self._high).astype(np.float32).reshape(shape)
        if self.spec.deterministic:
            return {"action": action}
        return {"action": action, "squashed": squashed.astype(np.float32).reshape(shape)}


_HALF_LOG_2PI: Final = np.float32(0.5 * np.log(2.0 * np.pi))


def _logsumexp(x: F32) -> F32:
    top = x.max(axis=1, keepdims=True)
    return np.asarray(top + np.log(np.exp(x - top).sum(axis=1, keepdims=True)), np.float32)
