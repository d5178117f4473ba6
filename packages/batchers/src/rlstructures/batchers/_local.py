"""`LocalBatcher`: every VecEnv and agent copy in the calling process."""

from __future__ import annotations

import functools
import os
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from rlstructures.batchers._base import Batcher
from rlstructures.batchers._build import build_collector
from rlstructures.batchers._collector import Collector
from rlstructures.batchers._exceptions import worker_error
from rlstructures.batchers._layout import rows
from rlstructures.batchers._pool import private_buffer
from rlstructures.batchers._weights import restore, split
from rlstructures.batchers.errors import AgentOutputError
from rlstructures.dicttensor import DictTensor, Trajectories

__all__ = ["LocalBatcher"]

_T = TypeVar("_T")


class LocalBatcher(Batcher):
    """Runs one agent copy and one VecEnv per seed in the calling process, one after another.

    Same signature, semantics and results as ``MultiProcessBatcher`` (given the same seeds
    and a deterministic agent): the tool for debugging and tests. ``execute()`` collects
    synchronously, so ``get(blocking=False)`` is always ready. An exception from an env or
    an agent (a ``WorkerError``), or a Ctrl-C during ``execute()``, closes the batcher: the
    envs stopped mid-slice.

    Example:
        >>> import functools
        >>> from rlstructures.batchers.testing import CountingEnv, CountingAgent
        >>> with LocalBatcher(CountingAgent, functools.partial(CountingEnv, n_envs=2),
        ...                   n_timesteps=3, seeds=[0, 10]) as batcher:
        ...     batcher.reset()
        ...     batcher.execute()
        ...     trajectories, n_running = batcher.get()
        >>> trajectories.trajectories["observation/frame"].shape  # [B, T, *frame_shape]
        (4, 3, 1)
        >>> n_running  # episode mode: two of the four counters ended after 3 steps
        2
    """

    def _start(self) -> None:
        self._collectors: list[Collector] = []
        # closes the VecEnvs and agents on close(), garbage collection or interpreter exit,
        # once, and only in this process (not in a forked child)
        self._finalizer = weakref.finalize(self, _close_all, self._collectors, os.getpid())
        self._result: int | None = None
        self._buffer = private_buffer(self.layout, "LocalBatcher's trajectory buffer", zeros=True)
        self._views = self.layout.views(self._buffer)
        n = self.n_envs_per_worker
        for w, seed in enumerate(self.seeds):
            collector = build_collector(
                self.make_agent,
                self.make_env,
                seed=seed,
                agent_seed=None if self.agent_seeds is None else self.agent_seeds[w],
                views=rows(self._views, w * n, (w + 1) * n),
                specs=self.specs,
                n_envs=n,
                n_timesteps=self.n_timesteps,
                store_agent_state=self.store_agent_state,
                worker=w,
            )
            self._collectors.append(collector)

    def _agent_thread(self) -> int | None:
        running: int | None = getattr(self, "_running_in", None)  # None before _start()
        return running

    def _run(self, worker: int, fn: Callable[[], _T]) -> _T:
        try:
            self._running_in: int | None = threading.get_ident()  # agent and envs run here
            try:
                return fn()
            finally:
                self._running_in = None
        except AgentOutputError:
            self.close()
            raise
        except Exception as exc:
            self.close()
            raise worker_error(worker, self.seeds[worker], exc) from exc
        except BaseException:  # Ctrl-C mid-slice: envs and buffer no longer agree
            self.close()
            raise

    def _reset(self, agent_info: DictTensor, env_info: DictTensor) -> None:
        for w, c in enumerate(self._collectors):
            ai, ei = self._worker_rows(agent_info, w), self._worker_rows(env_info, w)
            self._run(w, functools.partial(c.reset, ai, ei))

    def _execute(self, agent_info: DictTensor | None) -> None:
        total = 0
        for w, c in enumerate(self._collectors):
            ai = None if agent_info is None else self._worker_rows(agent_info, w)
            total += self._run(w, functools.partial(c.execute, ai))
        self._result = total

    def _wait(self, blocking: bool, timeout: float | None) -> int | None:
        return self._result

    def _assemble(self) -> Trajectories:
        return self._assemble_from(self._buffer)

    def _update(self, state_dict: Mapping[str, Any], timeout: float | None) -> None:
        layout, arrays, others = split(state_dict)
        buffer = bytearray(layout.size)
        layout.write(buffer, arrays)
        for w, c in enumerate(self._collectors):
            sd = restore(layout, buffer, others)
            self._run(w, functools.partial(c.agent.update, sd))

    def _close(self) -> None:
        self._finalizer()


def _close_all(collectors: list[Collector], pid: int) -> None:
    """Close every collector (its env and agent), if this is the process that made them."""
    if os.getpid() != pid:
        return
    while collectors:
        try:
            collectors.pop(0).close()
        except Exception:
            pass
