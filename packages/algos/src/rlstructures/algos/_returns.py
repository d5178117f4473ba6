"""Returns math on ``[B, T]`` rollouts: GAE, discounted and n-step returns.

Every function takes the per-step arrays of a batch of B sequences of T steps as a batcher
returns them (row b, step t is the transition ``s_t -> s'_t``):

* ``rewards [B, T]``: the reward of the transition (``"_observation/reward"``);
* ``next_values [B, T]``: the value of the next observation ``s'_t``
  (``"_observation/frame"``). When an episode ends at t, ``s'_t`` is the episode's final
  observation (auto-reset envs keep it), not the first observation of the next episode;
* ``terminated [B, T]`` and ``done [B, T]`` (terminated or truncated) bool, of the
  transition (``"_observation/terminated"``, ``"_observation/done"``);
* ``mask [B, T]`` bool, optional: the valid steps (``t < lengths``); a padding step is
  treated as the end of the sequence and gets 0.

The rules, the same in every function: a terminated transition is never bootstrapped (its
target is the reward); a truncated one is bootstrapped from ``V(s'_t)``, the kept final
observation; a sequence cut by the end of the slice is bootstrapped from ``V(s'_{T-1})``;
nothing is ever carried across ``done`` (an auto-reset), so a rollout crossing an episode
boundary picks up nothing from the next episode.

The functions work on numpy arrays and on torch tensors alike (CPU or CUDA) and return
the type they are given. Each is a short loop over T, checked against a naive per-element
Python loop by property tests.
"""

from __future__ import annotations

from typing import Any, TypeVar

__all__ = ["discounted_returns", "gae_advantages", "nstep_returns"]

Array = TypeVar("Array")


def _prepare(
    rewards: Any, next_values: Any, terminated: Any, done: Any, mask: Any
) -> tuple[Any, Any, Any]:
    """``(not_terminal, not_cut, rewards)`` as float arrays of the rewards' type."""
    shape = tuple(rewards.shape)
    for name, value in (("next_values", next_values), ("terminated", terminated), ("done", done)):
        if tuple(value.shape) != shape:
            raise ValueError(
                f"{name} has shape {tuple(value.shape)} but rewards has {shape}: every "
                "argument is one value per step, [B, T]."
            )
    if len(shape) != 2:
        raise ValueError(f"rewards must be [B, T], got shape {shape}.")
    cut = done
    if mask is not None:  # a step is cut when it or the step after it is padding
        following = mask & True  # a copy, numpy or torch
        following[:, :-1] = mask[:, 1:]
        cut = cut | ~mask | ~following
    zero = rewards * 0
    not_terminal = zero + ~terminated
    not_cut = zero + ~cut
    if mask is not None:
        rewards = rewards * mask
    return not_terminal, not_cut, rewards


def gae_advantages(
    rewards: Array,
    values: Array,
    next_values: Array,
    terminated: Array,
    done: Array,
    *,
    gamma: float,
    lam: float,
    mask: Array | None = None,
) -> Array:
    """Generalized advantage estimates (Schulman et al., 2016) of a ``[B, T]`` rollout.

    ``delta_t = r_t + gamma * (1 - terminated_t) * V(s'_t) - V(s_t)`` and
    ``A_t = delta_t + gamma * lam * (1 - done_t) * A_{t+1}``, with ``A_T = 0``. The
    lambda-returns (value targets) are ``A + values``; ``lam=1`` gives the discounted
    returns minus ``values``.

    Args:
        rewards: ``[B, T]`` float, the transitions' rewards.
        values: ``[B, T]`` float, ``V(s_t)``.
        next_values: ``[B, T]`` float, ``V(s'_t)`` (final observations where episodes end).
        terminated: ``[B, T]`` bool.
        done: ``[B, T]`` bool (terminated or truncated).
        gamma: discount factor.
        lam: the GAE lambda.
        mask: ``[B, T]`` bool valid steps, or None (all valid).

    Returns:
        ``[B, T]`` advantages, 0 on padding steps.

    Example:
        >>> import numpy as np
        >>> ones = np.ones((1, 3), np.float32)
        >>> no = np.zeros((1, 3), bool)
        >>> gae_advantages(ones, 0 * ones, 0 * ones, no, no, gamma=0.5, lam=1.0)
        array([[1.75, 1.5 , 1.  ]], dtype=float32)
    """
    r: Any = rewards
    not_terminal, not_cut, r = _prepare(r, next_values, terminated, done, mask)
    v: Any = values
    nv: Any = next_values
    if tuple(v.shape) != tuple(r.shape):
        raise ValueError(f"values has shape {tuple(v.shape)} but rewards has {tuple(r.shape)}.")
    deltas = r + gamma * not_terminal * nv - v
    if mask is not None:
        deltas = deltas * mask
    advantages = deltas * 0
    running = deltas[:, 0] * 0
    for t in range(deltas.shape[1] - 1, -1, -1):
        running = deltas[:, t] + gamma * lam * not_cut[:, t] * running
        advantages[:, t] = running
    result: Array = advantages
    return result


def discounted_returns(
    rewards: Array,
    next_values: Array,
    terminated: Array,
    done: Array,
    *,
    gamma: float,
    mask: Array | None = None,
) -> Array:
    """Discounted returns of a ``[B, T]`` rollout, bootstrapped where a sequence is cut.

    ``G_t = r_t + gamma * (1 - terminated_t) * (V(s'_t) if done_t or t = T-1 else G_{t+1})``.

    Args:
        rewards: ``[B, T]`` float, the transitions' rewards.
        next_values: ``[B, T]`` float, ``V(s'_t)``.
        terminated: ``[B, T]`` bool.
        done: ``[B, T]`` bool.
        gamma: discount factor.
        mask: ``[B, T]`` bool valid steps, or None.

    Returns:
        ``[B, T]`` returns, 0 on padding steps.

    Example:
        >>> import numpy as np
        >>> r = np.ones((1, 3), np.float32)
        >>> v = np.full((1, 3), 10.0, np.float32)           # V(s'_t)
        >>> term = np.array([[False, False, False]])
        >>> done = np.array([[False, True, False]])          # truncated at t=1
        >>> discounted_returns(r, v, term, done, gamma=0.5)  # 1 + .5 * 6, 1 + .5 * 10, 1 + .5 * 10
        array([[4., 6., 6.]], dtype=float32)
    """
    r: Any = rewards
    not_terminal, not_cut, r = _prepare(r, next_values, terminated, done, mask)
    nv: Any = next_values
    out = r * 0
    running = nv[:, -1]
    for t in range(r.shape[1] - 1, -1, -1):
        following = not_cut[:, t] * running + (1 - not_cut[:, t]) * nv[:, t]
        running = r[:, t] + gamma * not_terminal[:, t] * following
        out[:, t] = running
    if mask is not None:
        out = out * mask
    result: Array = out
    return result


def nstep_returns(
    rewards: Array,
    next_values: Array,
    terminated: Array,
    done: Array,
    *,
    gamma: float,
    n: int,
    mask: Array | None = None,
) -> Array:
    """n-step targets of a ``[B, T]`` rollout (DQN, SAC with n > 1).

    ``target_t = sum_{k<m} gamma^k r_{t+k} + gamma^m (1 - terminated_{t+m-1}) V(s'_{t+m-1})``
    where ``m = min(n, T - t, 1 + steps to the first done from t)``: the sum stops at the
    end of an episode (no value from the next one), at the end of the slice and after n
    steps. ``n=1`` gives the one-step target ``r_t + gamma (1 - terminated_t) V(s'_t)``.

    Args:
        rewards: ``[B, T]`` float, the transitions' rewards.
        next_values: ``[B, T]`` float, ``V(s'_t)``.
        terminated: ``[B, T]`` bool.
        done: ``[B, T]`` bool.
        gamma: discount factor.
        n: the number of steps (>= 1).
        mask: ``[B, T]`` bool valid steps, or None.

    Returns:
        ``[B, T]`` targets, 0 on padding steps.

    Example:
        >>> import numpy as np
        >>> r = np.ones((1, 4), np.float32)
        >>> v = np.full((1, 4), 10.0, np.float32)
        >>> term = np.array([[False, False, True, False]])
        >>> nstep_returns(r, v, term, term, gamma=0.5, n=2)  # 1 + .5 + .25*10, 1 + .5, 1, 1 + .5*10
        array([[4. , 1.5, 1. , 6. ]], dtype=float32)
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}.")
    r: Any = rewards
    not_terminal, not_cut, r = _prepare(r, next_values, terminated, done, mask)
    nv: Any = next_values
    width = r.shape[1]
    out = r * 0
    alive = out + 1  # 1 while the sum for step t is still running
    discount = 1.0
    for k in range(min(n, width)):
        stop = width - k  # columns t with t + k < T
        r_k, nt_k, nc_k, nv_k = r[:, k:], not_terminal[:, k:], not_cut[:, k:], nv[:, k:]
        a = alive[:, :stop]
        out[:, :stop] += a * discount * r_k
        ends = nc_k * 0 + 1 if k == n - 1 else 1 - nc_k  # the sum stops after this step
        ends[:, -1] = 1  # ... and at the last column (the end of the slice)
        out[:, :stop] += a * ends * discount * gamma * nt_k * nv_k
        alive[:, :stop] = a * (1 - ends)
        discount *= gamma
    if mask is not None:
        out = out * mask
    result: Array = out
    return result
