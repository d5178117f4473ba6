"""From a collected ``[B, T]`` rollout to the flat rows A2C and PPO learn from."""

from __future__ import annotations

import torch

from rlstructures.algos._networks import ActorCritic, observation_tensor
from rlstructures.algos._returns import gae_advantages
from rlstructures.dicttensor import DictTensor, TemporalDictTensor

__all__ = ["on_policy_batch"]


@torch.no_grad()
def on_policy_batch(
    model: ActorCritic, steps: TemporalDictTensor, *, gamma: float, gae_lambda: float
) -> DictTensor:
    """The valid steps of a torch rollout as ``[N]`` rows, with GAE advantages.

    Values are those of ``model`` now (the learner's critic, one update newer than the
    policy that acted); ``V(s'_t)`` is computed on ``"_observation/frame"``, which holds
    the final observation where an episode ended, so truncated episodes are bootstrapped
    from it and terminated ones are not (see `gae_advantages`).

    Args:
        model: the actor-critic.
        steps: ``[B, T]`` torch steps with ``observation/frame``, ``_observation/*``,
            ``action/action`` (Discrete) or ``action/sample`` (Box) and ``action/logprob``.
        gamma: discount factor.
        gae_lambda: GAE lambda.

    Returns:
        DictTensor ``[N]`` (N valid steps): ``"obs" [N, obs_dim]``, ``"action"`` (``[N]``
        int64 or ``[N, action_dim]`` float), ``"logprob"`` (the acting policy's),
        ``"value"``, ``"advantage"``, ``"return"`` (``advantage + value``), all ``[N]``.
    """
    env = model.env
    b, t = steps.batch_shape
    obs = observation_tensor(steps["observation/frame"], env)
    values = model.state_value(obs)
    next_values = model.state_value(observation_tensor(steps["_observation/frame"], env))
    mask = steps.mask()
    full = bool(mask.all())
    advantages = gae_advantages(
        steps["_observation/reward"].float(),
        values,
        next_values,
        steps["_observation/terminated"],
        steps["_observation/done"],
        gamma=gamma,
        lam=gae_lambda,
        mask=None if full else mask,
    )
    if env.action_kind == "discrete":
        actions = steps["action/action"]
    else:
        actions = steps["action/sample"].reshape(b, t, env.action_dim)
    rows = {
        "obs": obs,
        "action": actions,
        "logprob": steps["action/logprob"],
        "value": values,
        "advantage": advantages,
        "return": advantages + values,
    }
    if full:
        flat = {k: v.reshape(b * t, *v.shape[2:]) for k, v in rows.items()}
    else:
        flat = {k: v[mask] for k, v in rows.items()}
    return DictTensor(flat)
