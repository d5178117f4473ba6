"""Zero the steps past each row's length: what ``get()`` promises of the padding.

``EnvSide.finish`` does it at the end of every slice, where the slice was collected (each
worker for its own rows, in parallel), so that ``get()`` copies the buffer as it is: one
memcpy in the process that waits for the workers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from rlstructures.batchers._slice_end import as_elements, flat_view

__all__ = ["Padding"]


class Padding:
    """The padding of ``[n, T, *row]`` step arrays after ``lengths`` ``[n]`` steps.

    Args:
        steps: the arrays; their views are made once, here.
        lengths: the ``[n]`` valid steps per row (read at each ``zero``).
        n_timesteps: T.
    """

    def __init__(
        self,
        steps: Iterable[npt.NDArray[Any]],
        lengths: npt.NDArray[np.int64],
        n_timesteps: int,
    ) -> None:
        self._lengths, self._t = lengths, n_timesteps
        self._steps = np.arange(n_timesteps)
        self._flat: list[npt.NDArray[Any]] = []  # one element per step, [n * T]
        self._masked: list[npt.NDArray[Any]] = []  # the others: zeroed through a mask
        for v in steps:
            if v.size == 0:
                continue  # nothing to zero (0-byte rows, or no rows)
            # (element views of a C-contiguous array are C-contiguous: flat views)
            elements = as_elements(v, 2) if v.flags.c_contiguous else None
            if elements is None:
                self._masked.append(v)
            else:
                self._flat.append(flat_view(elements))

    def zero(self) -> None:
        """Zero the steps at and past each row's length (nothing when every row is full)."""
        lengths, t = self._lengths, self._t
        if min(lengths.tolist(), default=t) >= t:
            return
        padding = self._steps[None, :] >= lengths[:, None]
        flat = np.flatnonzero(padding)  # few: indices beat a mask over every step
        for elements in self._flat:
            elements[flat] = 0  # zero bytes, whatever the row's dtype
        for v in self._masked:
            v[padding] = 0
