"""What users hand to a VecEnv, checked: the ``"action"`` leaf, and ``env_info`` rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from rlstructures.agents._spaces import ActionSpec
from rlstructures.agents.errors import ActionError, EnvInfoError
from rlstructures.dicttensor import DictTensor

__all__ = ["check_action", "env_info_columns", "idle_actions"]


def check_action(
    spec: ActionSpec, action: DictTensor, n: int, copy: bool = True
) -> npt.NDArray[Any]:
    """The ``[n, *spec.shape]`` numpy array of ``action["action"]``, checked.

    Args:
        spec: the action space's spec.
        action: what the agent returned: a DictTensor of batch ``(n,)`` with key
            ``"action"`` (numpy or torch); other keys are ignored.
        n: how many envs are running.
        copy: return a fresh array even when the leaf already is a numpy array of
            ``spec.dtype``.

    Raises:
        ActionError: not a DictTensor, no ``"action"`` key, a wrong batch size, shape or
            dtype, or a value outside the space.
    """
    if type(action) is DictTensor and action.batch_shape == (n,):  # the usual case, fast
        try:
            value = action["action"]
        except KeyError:
            pass
        else:
            return spec.check(value, n, copy)
    if not isinstance(action, DictTensor):
        raise ActionError(
            f"step() takes a DictTensor holding the key 'action', got "
            f"{type(action).__name__}. Wrap it: `DictTensor({{'action': a}})`."
        )
    if "action" not in action:
        raise ActionError(
            f"the action DictTensor has keys {sorted(action.keys())} but no 'action' key, "
            "which is what the envs receive. Return it from the agent: "
            "`DictTensor({'action': a, ...})`."
        )
    if action.batch_shape != (n,):
        raise ActionError(
            f"the action DictTensor has batch_shape {action.batch_shape}, expected "
            f"({n},): one row per running env, in the order of the ids returned by the "
            "last reset()/step()."
        )
    return spec.check(action["action"], n, copy)


def idle_actions(spec: ActionSpec, n: int) -> npt.NDArray[Any]:
    """``[n, *spec.shape]`` valid actions (zeros, clipped into the space's bounds).

    What a vector env receives for the sub-envs that no agent drives (ended episodes in
    episode mode, reset steps).
    """
    row = np.zeros(spec.shape, spec.dtype)
    if spec.low is not None and spec.high is not None:
        row = np.clip(row, spec.low, spec.high).astype(spec.dtype)
    return np.broadcast_to(row, (n, *spec.shape)).copy()


def env_info_columns(env_info: object, n: int) -> dict[str, npt.NDArray[Any]] | None:
    """The numpy columns ``[n, ...]`` of ``env_info`` (None when it is None or keyless).

    A keyless DictTensor is accepted whatever its batch shape: there is nothing to pass.

    Raises:
        EnvInfoError: not a DictTensor of batch ``(n,)``.
    """
    if env_info is None:
        return None
    if not isinstance(env_info, DictTensor):
        raise EnvInfoError(
            f"env_info must be a DictTensor of batch ({n},) or None, got "
            f"{type(env_info).__name__}. Wrap it: `DictTensor({{'task': tasks}})`."
        )
    if not env_info.keys():  # nothing to pass, whatever its batch shape (DictTensor({}))
        return None
    if env_info.batch_shape != (n,):
        raise EnvInfoError(
            f"env_info has batch_shape {env_info.batch_shape}, expected ({n},): one row per env."
        )
    result: dict[str, npt.NDArray[Any]] = env_info.numpy().to_dict()
    return result
