"""Agent parameters (a ``state_dict``) laid out in one flat buffer.

``update(state_dict)`` writes the arrays into shared memory once; each worker copies them
out. Only the layout (names, shapes, dtypes) and non-array values travel by pickle.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from rlstructures.batchers._layout import ALIGN
from rlstructures.dicttensor import is_tensor

__all__ = ["WeightsLayout", "restore", "split"]


@dataclass(frozen=True, slots=True)
class WeightsLayout:
    """Where each array of a state_dict lives: ``(key, shape, dtype, offset, kind)``.

    ``kind`` is "numpy", "torch", or "bfloat16" (a torch tensor travelling as int16 bits).
    """

    entries: tuple[tuple[str, tuple[int, ...], str, int, str], ...]
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
        for key, shape, dtype, offset, kind in self.entries:
            src = np.frombuffer(buffer, dtype=dtype, count=math.prod(shape), offset=offset)
            arr = src.reshape(shape).copy()
            if kind == "numpy":
                out[key] = arr
            else:
                import torch

                tensor = torch.from_numpy(arr)
                out[key] = tensor.view(torch.bfloat16) if kind == "bfloat16" else tensor
        return out


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
        kind = "torch" if is_tensor(value) else "numpy"
        if kind == "torch":
            tensor = value.detach().cpu()
            if str(tensor.dtype) == "torch.bfloat16":  # no numpy dtype: send its bits
                kind, tensor = "bfloat16", tensor.view(sys.modules["torch"].int16)
            try:
                arr = tensor.numpy()
            except TypeError:  # another dtype numpy lacks: pickled like other values
                others[key] = value
                continue
        elif isinstance(value, np.ndarray):
            arr = value
        else:
            others[key] = value
            continue
        if arr.dtype.kind not in "biufc":
            others[key] = value
            continue
        arrays[key] = np.ascontiguousarray(arr)
        entries.append((key, tuple(arr.shape), arr.dtype.str, offset, kind))
        offset += -(-arr.nbytes // ALIGN) * ALIGN
    return WeightsLayout(tuple(entries), max(offset, ALIGN)), arrays, others


def restore(layout: WeightsLayout, buffer: Any, others: Mapping[str, Any]) -> dict[str, Any]:
    """The state_dict rebuilt from ``buffer`` plus the pickled values, in layout order."""
    out = layout.read(buffer)
    out.update(others)
    return out
