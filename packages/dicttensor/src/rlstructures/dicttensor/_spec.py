"""`Spec`: the per-row shape and dtype of one leaf."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Spec"]


@dataclass(frozen=True, slots=True)
class Spec:
    """Shape and dtype of one row of a leaf (the batch dimensions excluded).

    Args:
        shape: per-row shape, e.g. ``()`` for a scalar per row, ``(4,)`` for a vector.
        dtype: anything ``numpy.dtype`` accepts; normalised to a ``numpy.dtype``.

    Example:
        >>> Spec((4,), "float32")
        Spec(shape=(4,), dtype=dtype('float32'))
    """

    shape: tuple[int, ...]
    dtype: np.dtype[Any]

    def __init__(self, shape: tuple[int, ...] | list[int], dtype: npt.DTypeLike) -> None:
        dims = tuple(int(d) for d in shape)
        if any(d < 0 for d in dims):
            raise ValueError(f"Spec shape must hold non-negative sizes, got {tuple(shape)}.")
        object.__setattr__(self, "shape", dims)
        object.__setattr__(self, "dtype", np.dtype(dtype))
