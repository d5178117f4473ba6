"""`Spec`: the per-row shape and dtype of one leaf."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, SupportsIndex

import numpy as np
import numpy.typing as npt

__all__ = ["Spec"]


@dataclass(frozen=True, slots=True)
class Spec:
    """Shape and dtype of one row of a leaf (the batch dimensions excluded).

    Args:
        shape: per-row shape, e.g. ``()`` for a scalar per row, ``(4,)`` (or ``4``) for a
            vector.
        dtype: anything ``numpy.dtype`` accepts; normalised to a ``numpy.dtype``.

    Example:
        >>> Spec((4,), "float32")
        Spec(shape=(4,), dtype=dtype('float32'))
    """

    shape: tuple[int, ...]
    dtype: np.dtype[Any]

    def __init__(
        self, shape: SupportsIndex | Sequence[SupportsIndex], dtype: npt.DTypeLike
    ) -> None:
        given: object = shape
        if isinstance(given, Sequence) and not isinstance(given, str):
            dims = tuple(operator.index(d) for d in given)
        elif isinstance(given, SupportsIndex) and not isinstance(given, bool):
            dims = (operator.index(given),)
        else:
            raise TypeError(
                f"Spec shape must be a tuple of ints (or an int), got {shape!r}; e.g. "
                "`Spec((4,), 'float32')`."
            )
        if any(d < 0 for d in dims):
            raise ValueError(f"Spec shape must hold non-negative sizes, got {dims}.")
        object.__setattr__(self, "shape", dims)
        object.__setattr__(self, "dtype", np.dtype(dtype))
