"""Gymnasium ``info`` fields kept as observation keys (``GymVecEnv(..., info_keys=...)``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from rlstructures.agents.errors import ObservationError
from rlstructures.dicttensor import Spec

__all__ = ["INFO_PREFIX", "InfoLeaf", "info_leaves", "stack_info"]

#: Observation keys of info fields are ``INFO_PREFIX + name``.
INFO_PREFIX: Final = "info/"
#: The spec of a field named without one: a float32 scalar per step.
DEFAULT_SPEC: Final = Spec((), np.float32)
_MISSING: Final = object()


@dataclass(frozen=True, slots=True)
class InfoLeaf:
    """One info field kept as an observation key.

    Attributes:
        key: its observation key, ``"info/<name>"``.
        path: the keys that lead to it in a (nested) info dict (``name`` split at "/").
        shape: its row shape.
        dtype: its dtype.
        zero: the value of a step whose info lacks the field (zeros of ``shape``).
    """

    key: str
    path: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    zero: npt.NDArray[Any]


def info_leaves(
    info_keys: Sequence[str] | Mapping[str, Spec | npt.DTypeLike],
) -> tuple[InfoLeaf, ...]:
    """The leaves of ``info_keys``: names (float32 scalars) or ``{name: Spec or dtype}``.

    Raises:
        TypeError: ``info_keys`` is a str, or holds names that are not non-empty str.
        ValueError: a name appears twice.
    """
    given: object = info_keys
    if isinstance(given, str) or not isinstance(given, (Sequence, Mapping)):
        raise TypeError(
            f"info_keys must be a sequence of info field names or a mapping {{name: Spec or "
            f"dtype}}, got {given!r}; e.g. `info_keys=('is_success',)`."
        )
    specs: list[tuple[object, Any]] = (
        list(given.items()) if isinstance(given, Mapping) else [(k, DEFAULT_SPEC) for k in given]
    )
    leaves: list[InfoLeaf] = []
    for name, spec in specs:
        if not isinstance(name, str) or not name or any(not p for p in name.split("/")):
            raise TypeError(
                f"info_keys holds {name!r}; each must be the name of an info field (a "
                "non-empty str; 'a/b' reads info['a']['b'])."
            )
        if not isinstance(spec, Spec):
            try:
                spec = Spec((), np.dtype(spec))
            except TypeError:
                raise TypeError(
                    f"info_keys[{name!r}] is {spec!r}; give a dtype (e.g. 'bool') or a "
                    "`Spec(shape, dtype)`."
                ) from None
        if spec.dtype.kind not in "biuf":
            raise TypeError(
                f"info_keys[{name!r}] has dtype {spec.dtype}; info fields kept as "
                "observation keys must be bool, integer or float."
            )
        leaves.append(
            InfoLeaf(
                INFO_PREFIX + name,
                tuple(name.split("/")),
                spec.shape,
                spec.dtype,
                np.zeros(spec.shape, spec.dtype),
            )
        )
    keys = [leaf.key for leaf in leaves]
    if len(set(keys)) != len(keys):
        raise ValueError(f"info_keys names a field twice: {keys}.")
    return tuple(leaves)


def _field(info: Any, path: tuple[str, ...]) -> Any:
    for p in path:
        if not isinstance(info, Mapping):
            return _MISSING
        info = info.get(p, _MISSING)
        if info is _MISSING:
            return _MISSING
    return info


def stack_info(
    leaf: InfoLeaf, infos: Sequence[Any], env_ids: Any, when: str
) -> npt.NDArray[Any]:
    """``[n, *leaf.shape]`` array of ``leaf.dtype``: the field of each info (zeros if absent).

    Raises:
        ObservationError: a value does not fit the leaf's shape or dtype; names the env.
    """
    values = []
    for info in infos:
        value = _field(info, leaf.path)
        values.append(leaf.zero if value is _MISSING else value)
    try:
        arr = np.array(values, dtype=leaf.dtype)
        if arr.shape == (len(values), *leaf.shape):
            return arr
    except (TypeError, ValueError, OverflowError):
        pass
    for j, value in enumerate(values):
        try:
            row = np.array(value, dtype=leaf.dtype)
            if row.shape == leaf.shape:
                continue
        except (TypeError, ValueError, OverflowError):
            pass
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise ObservationError(
            f"env {int(env_ids[j])} returned info[{'/'.join(leaf.path)!r}] = {shown} from "
            f"{when}, which is not a {leaf.dtype}{list(leaf.shape)} value (what info_keys "
            f"declares for {leaf.key!r}). Declare its spec, e.g. "
            f"`info_keys={{{'/'.join(leaf.path)!r}: Spec(shape, dtype)}}`."
        )
    raise ObservationError(f"info field {leaf.key!r} from {when} cannot be stacked.")
