"""Where every array of a batcher lives in one flat buffer, and the probe that finds the specs.

A batcher's buffer holds, for N envs (all workers) and T = n_timesteps:

* step arrays ``[N, T, *row]``: ``observation/*``, ``action/*``, ``_observation/*`` and, with
  ``store_agent_state``, ``agent_state/*`` and ``_agent_state/*``;
* info arrays ``[N, *row]``: ``agent_info/*``, ``env_info/*``, ``agent_state/*`` (the state at
  the start of the slice);
* ``lengths`` ``[N]`` int64.

Worker w owns rows ``[w * n, (w + 1) * n)`` of every array, so workers never write to the
same bytes and no lock is needed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from rlstructures.dicttensor import Spec

__all__ = ["ALIGN", "BufferLayout", "Entry", "Specs"]

ALIGN: Final = 64  # bytes; every array starts on a cache line


@dataclass(frozen=True, slots=True)
class Entry:
    """One array of the buffer."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    offset: int

    @property
    def nbytes(self) -> int:
        """Size in bytes."""
        return math.prod(self.shape) * np.dtype(self.dtype).itemsize


@dataclass(frozen=True, slots=True)
class Specs:
    """The per-row specs found by the probe step: what one env and one agent produce."""

    observation: dict[str, Spec]
    action: dict[str, Spec]
    state: dict[str, Spec]
    agent_info: dict[str, Spec]
    env_info: dict[str, Spec]


@dataclass(frozen=True, slots=True)
class BufferLayout:
    """Offsets of every array in the flat buffer (picklable: sent to the workers)."""

    entries: tuple[Entry, ...]
    size: int
    n_envs: int
    n_timesteps: int

    @staticmethod
    def build(specs: Specs, n_envs: int, n_timesteps: int, store_agent_state: bool) -> BufferLayout:
        """Lay out every array for ``n_envs`` envs and ``n_timesteps`` steps."""
        step: dict[str, Spec] = {}
        step.update({f"observation/{k}": s for k, s in specs.observation.items()})
        step.update({f"action/{k}": s for k, s in specs.action.items()})
        step.update({f"_observation/{k}": s for k, s in specs.observation.items()})
        if store_agent_state:
            step.update({f"agent_state/{k}": s for k, s in specs.state.items()})
            step.update({f"_agent_state/{k}": s for k, s in specs.state.items()})
        info: dict[str, Spec] = {}
        info.update({f"agent_info/{k}": s for k, s in specs.agent_info.items()})
        info.update({f"env_info/{k}": s for k, s in specs.env_info.items()})
        info.update({f"agent_state/{k}": s for k, s in specs.state.items()})
        arrays: list[tuple[str, tuple[int, ...], str]] = []
        arrays += [
            (f"step:{k}", (n_envs, n_timesteps, *s.shape), s.dtype.str) for k, s in step.items()
        ]
        arrays += [(f"info:{k}", (n_envs, *s.shape), s.dtype.str) for k, s in info.items()]
        arrays.append(("lengths", (n_envs,), np.dtype(np.int64).str))
        entries = []
        offset = 0
        for name, shape, dtype in arrays:
            entry = Entry(name, shape, dtype, offset)
            entries.append(entry)
            offset += -(-entry.nbytes // ALIGN) * ALIGN
        return BufferLayout(tuple(entries), max(offset, ALIGN), n_envs, n_timesteps)

    def views(self, buffer: Any) -> dict[str, npt.NDArray[Any]]:
        """Numpy views of every array over ``buffer`` (bytearray, mmap, ...)."""
        out: dict[str, npt.NDArray[Any]] = {}
        for e in self.entries:
            count = math.prod(e.shape)
            arr = np.frombuffer(buffer, dtype=np.dtype(e.dtype), count=count, offset=e.offset)
            out[e.name] = arr.reshape(e.shape)
        return out


def rows(
    views: Mapping[str, npt.NDArray[Any]], start: int, stop: int
) -> dict[str, npt.NDArray[Any]]:
    """The rows ``start:stop`` (one worker's envs) of every array, as views."""
    return {k: v[start:stop] for k, v in views.items()}
