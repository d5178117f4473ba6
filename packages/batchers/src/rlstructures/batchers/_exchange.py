"""The exchange segment of InferenceBatcher: observations in, actions out, one step at a time.

For W workers of n envs each (N = W * n rows, ordered by worker then env) and T steps:

* ``sem:go`` / ``sem:done``: W semaphores each (``_wakeup.Semaphores``). The owner posts
  ``go[w]`` when the actions of worker w are written; worker w posts ``done[w]`` when the
  observations of its next step (or the end of its slice) are written.
* ``status`` ``[W]`` int64: after each step, k >= 0 when worker w's k running envs all
  continue, ``-2 - k`` when some ended (``pos`` is written then), -1 when the worker failed
  (its error is on its pipe). Its slice is over when k is 0 or T steps were made.
* ``ids`` ``[N]`` int64: worker w's running env indices (local, sorted) in its first
  ``status[w]`` rows of ``[w * n, (w + 1) * n)``.
* ``pos`` ``[N]`` int64: positions of the continuing envs among the previous step's ids
  (``EnvSide.step``), in worker w's first k rows, when some ended.
* ``obs:<key>`` ``[S, N, *row]``: observations the agent reads. Envs with ``step_into``
  (every env runs at every step) write step t + 1 into slot t + 1 (S = T + 1, slot T is
  where the next slice starts, like Collector's stage); other envs write the observations
  of their running envs into slot 0 (S = 1), at the rows given by ``ids``.
* ``action:<key>`` ``[N, *row]``: the actions the envs take, C-contiguous rows.

Rows of different workers never share bytes; each side writes only when the other waits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from rlstructures.batchers._layout import ALIGN, Entry, Specs
from rlstructures.batchers._wakeup import SEM_SLOT

__all__ = ["ExchangeLayout"]


@dataclass(frozen=True, slots=True)
class ExchangeLayout:
    """Offsets of the exchange segment's parts (picklable: sent to the workers)."""

    entries: tuple[Entry, ...]
    size: int
    n_workers: int
    n_envs_per_worker: int
    n_slots: int
    go: int  # offset of the W "go" semaphores
    done: int  # offset of the W "done" semaphores

    @staticmethod
    def build(specs: Specs, n_workers: int, n_envs_per_worker: int, n_slots: int) -> ExchangeLayout:
        """Lay out the exchange for ``n_workers`` workers of ``n_envs_per_worker`` envs.

        Args:
            specs: the probe specs (observation and action rows).
            n_workers: W.
            n_envs_per_worker: n.
            n_slots: observation slots, T + 1 with ``step_into`` envs, else 1.
        """
        w, n = n_workers, n_workers * n_envs_per_worker
        go = 0
        done = -(-w * SEM_SLOT // ALIGN) * ALIGN
        offset = 2 * done
        arrays: list[tuple[str, tuple[int, ...], str]] = [
            ("status", (w,), np.dtype(np.int64).str),
            ("ids", (n,), np.dtype(np.int64).str),
            ("pos", (n,), np.dtype(np.int64).str),
        ]
        arrays += [
            (f"obs:{k}", (n_slots, n, *s.shape), s.dtype.str) for k, s in specs.observation.items()
        ]
        arrays += [(f"action:{k}", (n, *s.shape), s.dtype.str) for k, s in specs.action.items()]
        entries = []
        for name, shape, dtype in arrays:
            entry = Entry(name, shape, dtype, offset)
            entries.append(entry)
            offset += -(-entry.nbytes // ALIGN) * ALIGN
        return ExchangeLayout(tuple(entries), offset, w, n_envs_per_worker, n_slots, go, done)

    def views(self, buffer: Any) -> dict[str, npt.NDArray[Any]]:
        """Numpy views of every array over ``buffer``, by entry name."""
        out: dict[str, npt.NDArray[Any]] = {}
        for e in self.entries:
            arr = np.frombuffer(
                buffer, dtype=np.dtype(e.dtype), count=math.prod(e.shape), offset=e.offset
            )
            out[e.name] = arr.reshape(e.shape)
        return out

    def of(self, views: Mapping[str, npt.NDArray[Any]], prefix: str) -> dict[str, npt.NDArray[Any]]:
        """The arrays named ``prefix:<key>``, by key."""
        start = len(prefix) + 1
        return {k[start:]: v for k, v in views.items() if k.startswith(prefix + ":")}
