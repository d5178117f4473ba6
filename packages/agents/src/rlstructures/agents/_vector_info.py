"""Info fields of a gymnasium vector env (batched, with ``"_name"`` masks) as arrays.

A gymnasium ``VectorEnv`` returns one info dict for the batch: ``info[name]`` holds one
value per sub-env and ``info["_" + name]`` says which sub-envs have one (nested dicts the
same way, e.g. ``info["episode"]["r"]`` under the mask ``info["_episode"]``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from rlstructures.agents._info import InfoLeaf
from rlstructures.agents.errors import ObservationError

__all__ = ["batched_info", "list_info_error"]


def list_info_error(info: Any, when: str) -> ObservationError:
    """The error for infos given as one entry per sub-env (a list), not batched."""
    return ObservationError(
        f"the vector env's info from {when} is a {type(info).__name__} (one entry per "
        "sub-env), not a dict: GymVectorVecEnv reads gymnasium's batched infos (a dict of "
        "[num_envs] arrays with their '_<name>' masks). gymnasium.wrappers.vector."
        "DictInfoToList makes such lists: remove that wrapper (info_keys gives you the "
        "fields per env)."
    )


def batched_info(leaf: InfoLeaf, info: Any, rows: int, when: str) -> npt.NDArray[Any]:
    """``[rows, *leaf.shape]`` array of ``leaf.dtype``: the field per sub-env, 0 where absent.

    Raises:
        ObservationError: the field's values do not fit ``rows`` rows of the leaf's spec.
    """
    if isinstance(info, (list, tuple)):
        raise list_info_error(info, when)
    out = np.zeros((rows, *leaf.shape), leaf.dtype)
    mask = np.ones(rows, np.bool_)
    level = info
    for depth, name in enumerate(leaf.path):
        if not isinstance(level, Mapping) or name not in level:
            return out
        flags = level.get("_" + name)
        if flags is not None:
            mask &= _mask(flags, rows, leaf, depth)
        level = level[name]
    if not mask.any():
        return out
    try:
        values = np.asarray(level)
        if values.shape[:1] != (rows,):
            raise ValueError(values.shape)
        out[mask] = values[mask]
    except (TypeError, ValueError, OverflowError, IndexError):
        shown = repr(level)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise ObservationError(
            f"the vector env's info[{'/'.join(leaf.path)!r}] from {when} is {shown}, which is "
            f"not one {leaf.dtype}{list(leaf.shape)} value per sub-env ({rows} rows; what "
            f"info_keys declares for {leaf.key!r}). Declare its spec, e.g. "
            f"`info_keys={{{'/'.join(leaf.path)!r}: Spec(shape, dtype)}}`."
        ) from None
    return out


def _mask(flags: Any, rows: int, leaf: InfoLeaf, depth: int) -> npt.NDArray[np.bool_]:
    arr = np.asarray(flags)
    if arr.shape != (rows,):
        name = "/".join(leaf.path[: depth + 1])
        raise ObservationError(
            f"the vector env's info mask '_{name}' has shape {arr.shape}, expected ({rows},): "
            "one bool per sub-env, as gymnasium's vector envs give."
        )
    return arr.astype(np.bool_, copy=False)
