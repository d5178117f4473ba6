"""The output pool: private buffers for ``get()``'s copy, recycled once nobody holds them.

The rule: an output (a buffer of ``layout.size`` bytes, the numpy views of every array of
the layout over it and the DictTensors over those views) may be reused when the reference
counts of its buffer and of each of its views are back to what they were when only the pool
held them. Every array of a returned Trajectories, and every view or tensor made from one
(``arr[:, 1:]``, ``torch.from_numpy(arr)``), references either the buffer or one of those
views, so equal counts mean that nothing outside the pool can see the memory any more. The
counts are measured right after the output is built, by the same function that checks
them later, so they include whatever the interpreter itself counts.

Why: a recycled buffer's pages are touched already (writing fresh pages is ~10x slower) and
nothing has to be built. ``SIZE`` outputs are kept: a training loop typically still holds
the previous result and something made from the one before while ``execute()`` runs.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from rlstructures.batchers._layout import BufferLayout
from rlstructures.batchers._shm import format_bytes
from rlstructures.dicttensor import DictTensor, TemporalDictTensor, Trajectories

__all__ = ["SIZE", "Output", "OutputPool", "private_buffer"]

SIZE: Final = 3  # outputs kept for reuse


def private_buffer(layout: BufferLayout, what: str, zeros: bool = False) -> npt.NDArray[np.uint8]:
    """``layout.size`` bytes of this process's memory, or a MemoryError saying what to change."""
    try:
        return (np.zeros if zeros else np.empty)(layout.size, np.uint8)
    except MemoryError:
        raise MemoryError(
            f"{what} needs {format_bytes(layout.size)} of memory ({layout.n_envs} envs x "
            f"n_timesteps={layout.n_timesteps}), which this process could not allocate. Lower "
            "`n_timesteps` or the number of envs, or make the observations smaller."
        ) from None


@dataclass(slots=True)
class Output:
    """A private buffer for ``get()``'s copy and the DictTensors over it."""

    buffer: npt.NDArray[np.uint8]
    views: tuple[npt.NDArray[Any], ...]  # every array of the layout, over ``buffer``
    steps: DictTensor  # [n_envs, n_timesteps]
    info: DictTensor  # [n_envs]
    lengths: npt.NDArray[np.int64]
    free: tuple[int, ...] = ()  # reference counts when only the pool holds it


def _references(output: Output) -> tuple[int, ...]:
    """Reference counts of an output's buffer and views, always taken from here."""
    return (sys.getrefcount(output.buffer), *[sys.getrefcount(v) for v in output.views])


class OutputPool:
    """Up to ``SIZE`` outputs of one layout, most recently used last (see the module rule).

    Args:
        layout: the layout of every output (the batcher's buffer).
    """

    def __init__(self, layout: BufferLayout) -> None:
        self.layout = layout
        self.outputs: list[Output] = []

    def take(self) -> Output:
        """A free output (recycled, or new when every pooled one is still held)."""
        pool = self.outputs
        for i in range(len(pool)):
            if _references(pool[i]) == pool[i].free:
                output = pool.pop(i)
                pool.append(output)  # most recently used last
                return output
        out = private_buffer(self.layout, "get()'s copy of the trajectories")
        views = self.layout.views(out)
        n, t = self.layout.n_envs, self.layout.n_timesteps
        step = {k[5:]: v for k, v in views.items() if k.startswith("step:")}
        info = {k[5:]: v for k, v in views.items() if k.startswith("info:")}
        output = Output(
            out,
            tuple(views.values()),
            DictTensor(step, batch_shape=(n, t)),
            DictTensor(info, batch_shape=(n,)),
            views["lengths"],
        )
        del out, views, step, info
        output.free = _references(output)
        pool.append(output)
        if len(pool) > SIZE:
            del pool[0]
        return output

    def fill(self, output: Output, buffer: Any) -> Trajectories:
        """Copy ``buffer`` (the batcher's, ``layout.size`` bytes) into ``output``.

        ``buffer``'s steps past each env's length are zeros already: ``EnvSide.finish``
        zeroes them where the slice was collected (``Padding``).

        Returns:
            The Trajectories over ``output``.
        """
        np.copyto(output.buffer, np.frombuffer(buffer, dtype=np.uint8))
        return _trajectories(output)

    def gather(self, output: Output, parts: Sequence[Any], part_layout: BufferLayout) -> (
        Trajectories
    ):
        """Copy the buffers of equal parts of the rows (one per worker) into ``output``.

        Args:
            output: from ``take()``.
            parts: buffers of ``part_layout`` (``n`` rows each; read-only ones do), part
                ``w`` holding rows ``[w * n, (w + 1) * n)``, with the steps past each
                env's length zeroed already (``EnvSide.finish``).
            part_layout: the layout of one part (this pool's, for ``n`` envs).

        Returns:
            The Trajectories over ``output``.
        """
        n = part_layout.n_envs
        for w, part in enumerate(parts):
            sources = part_layout.views(part).values()
            for dst, src in zip(output.views, sources, strict=True):
                dst[w * n : (w + 1) * n] = src
        return _trajectories(output)


def _trajectories(output: Output) -> Trajectories:
    steps = TemporalDictTensor(DictTensor(output.steps), output.lengths)  # fresh mappings
    return Trajectories(DictTensor(output.info), steps)
