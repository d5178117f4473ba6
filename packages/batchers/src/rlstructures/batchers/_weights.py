"""Agent parameters (a ``state_dict``) laid out in one flat buffer.

``update(state_dict)`` writes the arrays into shared memory once; each worker copies them
out. Only the layout (names, shapes, dtypes) and non-array values travel by pickle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from rlstructures.batchers._layout import ALIGN

__all__ = ["WeightsLayout", "restore", "split"]


@dataclass(frozen=True, slots=True)
class WeightsLayout:
    """Where each array of a state_dict lives: ``(key, shape, dtype, offset, is_torch)``."""

    entries: tuple[tuple[str, tuple[int, ...], str, int, bool], ...]
    size: int

    @property
    def signature(self) -> tuple[tuple[str, tuple[int, ...], str], ...]:
        """Keys, shapes and dtypes: a new segment is needed when it changes."""
        return tuple((k, s, d) for k, s, d, _, _ in self.entries)

    def write(self, buffer: Any, arrays: Mapping[str, npt.NDArray[Any]]) -> None:
        """Copy ``arrays`` into ``buffer``."""
        for key, shape, dtype, offset, _ in self.entries:
            dst = np.frombuffer(buffer, dtype=dtype, count=math.prod(shape), offset=offset)
            dst[:] = arrays[key].reshape(-1)

    def read(self, buffer: Any) -> dict[str, Any]:
        """Copies of the arrays in ``buffer`` (torch tensors where the original was torch)."""
        out: dict[str, Any] = {}
        for key, shape, dtype, offset, is_torch in self.entries:
            src = np.frombuffer(buffer, dtype=dtype, count=math.prod(shape), offset=offset)
            arr = src.reshape(shape).copy()
            if is_torch:
                import torch

                out[key] = torch.from_numpy(arr)
            else:
                out[key] = arr
        return out


def _is_tensor(value: object) -> bool:
    import sys

    mod = sys.modules.get("torch")
    return mod is not None and isinstance(value, mod.Tensor)


def split(
    state_dict: Mapping[str, Any],
) -> tuple[WeightsLayout, dict[str, npt.NDArray[Any]], dict[str, Any]]:
    """Split a state_dict into a layout, its arrays (numpy) and the other (pickled) values."""
    given: object = state_dict
    if not isinstance(given, Mapping):
        raise TypeError(
            f"update() takes a mapping (e.g. `model.state_dict()`), got {type(given).__name__}."
        )
    arrays: dict[str, npt.NDArray[Any]] = {}
    others: dict[str, Any] = {}
    entries = []
    offset = 0
    for key, value in state_dict.items():
        is_torch = _is_tensor(value)
        if is_torch:
            arr = value.detach().cpu().numpy()
        elif isinstance(value, np.ndarray):
            arr = value
        else:
            others[key] = value
            continue
        if arr.dtype.kind not in "biufc":
            others[key] = value
            continue
        arrays[key] = np.ascontiguousarray(arr)
        entries.append((key, tuple(arr.shape), arr.dtype.str, offset, is_torch))
        offset += -(-arr.nbytes // ALIGN) * ALIGN
    return WeightsLayout(tuple(entries), max(offset, ALIGN)), arrays, others


def restore(layout: WeightsLayout, buffer: Any, others: Mapping[str, Any]) -> dict[str, Any]:
    """The state_dict rebuilt from ``buffer`` plus the pickled values, in layout order."""
    out = layout.read(buffer)
    out.update(others)
    return out
