"""`MultiProcessBatcher`: one worker process per seed, trajectories in shared memory."""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import selectors
import signal
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from multiprocessing import reduction
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from typing import TYPE_CHECKING, Any, Final, NamedTuple, cast

import numpy as np

from rlstructures.agents import Agent, VecEnv
from rlstructures.batchers._base import Batcher, BatcherOptions
from rlstructures.batchers._exceptions import interrupted, remote_error
from rlstructures.batchers._layout import BufferLayout
from rlstructures.batchers._pool import Output
from rlstructures.batchers._protocol import (
    Close,
    Done,
    Execute,
    Failed,
    Reply,
    Reset,
    Weights,
    WeightsDone,
    unknown,
)
from rlstructures.batchers._shm import Segment, format_bytes
from rlstructures.batchers._weights import WeightsLayout, split
from rlstructures.batchers._worker import WorkerConfig, worker_main
from rlstructures.batchers.errors import (
    AgentOutputError,
    BatcherTimeoutError,
    WorkerError,
)
from rlstructures.dicttensor import DictTensor, Trajectories

if TYPE_CHECKING:
    from typing import Unpack  # Python >= 3.11; annotations only (3.10 at runtime)

__all__ = ["MultiProcessBatcher"]


def _dumps(msg: NamedTuple) -> bytes:
    """A message pickled as ``Connection.send`` does."""
    return bytes(ForkingPickler.dumps(msg))


# the usual command, pickled once
_EXECUTE: Final = _dumps(Execute(None))

#: The longest single wait of the selector (seconds); longer timeouts loop.
_MAX_SELECT: Final = 86400.0
START_TIMEOUT: Final = 120.0  # seconds for workers to import, build their env and agent
JOIN_TIMEOUT: Final = 5.0


@dataclass(slots=True)
class _Worker:
    index: int
    seed: int
    process: Any  # multiprocessing.process.BaseProcess
    conn: Connection
    ready: bool = False
    busy: bool = False
    resetting: bool = False
    n_running: int = 0
    weights_version: int = 0


# Worker processes of every live batcher. A fork of their owner (``os.fork()``) inherits
# multiprocessing's registry of the owner's children, and at its exit multiprocessing would
# terminate those that are daemons and try to join them ("can only join a child process"):
# the child forgets them right after the fork (a hook registered once, below).
_WORKER_PROCESSES: weakref.WeakSet[Any] = weakref.WeakSet()


def _forget_workers_after_fork() -> None:
    children = getattr(mp.process, "_children", None)  # multiprocessing's registry (a set)
    if isinstance(children, set):
        children.difference_update(_WORKER_PROCESSES)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_workers_after_fork)


@dataclass(slots=True)
class _Resources:
    """What must be released, shared with the finalizer (which must not reference the batcher).

    ``release`` acts only in the process that created it (``pid``): in a forked child the
    workers, pipes and segments are the parent's.
    """

    pid: int = field(default_factory=os.getpid)
    workers: list[_Worker] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    selector: selectors.BaseSelector | None = None
    # a pipe that close() in another thread writes to, to wake a wait (see _interrupt)
    wakeup: tuple[int, int] = field(default_factory=os.pipe)

    def release(self) -> None:
        if os.getpid() != self.pid:
            return
        if self.selector is not None:
            self.selector.close()
            self.selector = None
        for fd in self.wakeup:
            try:
                os.close(fd)
            except OSError:
                pass
        self.wakeup = (-1, -1)
        for w in self.workers:
            try:
                # mid-collection, it would not read Close before the slice ends; stopped
                # (SIGSTOP), never: either would make the join below wait JOIN_TIMEOUT
                if w.busy or _is_stopped(w.process.pid):
                    w.process.kill()
                elif w.process.is_alive():
                    w.conn.send(Close())
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + JOIN_TIMEOUT
        for w in self.workers:
            w.process.join(max(0.0, deadline - time.monotonic()))
            if w.process.is_alive():
                w.process.kill()
                w.process.join(JOIN_TIMEOUT)
            w.conn.close()
            if w.process.exitcode is not None:
                w.process.close()
        self.workers.clear()
        for seg in self.segments:
            seg.close()
        self.segments.clear()


def _is_stopped(pid: int | None) -> bool:
    """Whether process ``pid`` is stopped (state T or t in /proc; False where unknown)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("T", "t")
    except (OSError, IndexError):
        return False


def _describe_death(worker: _Worker, start_method: str) -> str:
    code = worker.process.exitcode
    if code is not None and code < 0:
        try:
            how = f"was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            how = f"was killed by signal {-code}"
    elif code == 0:
        how = "exited (code 0) without being asked to stop"
    else:
        how = f"exited with code {code}"
        if not worker.ready:
            how += _main_module_hint(start_method)
    return f"worker {worker.index} (seed {worker.seed}, pid {worker.process.pid}) {how}"


def _main_module_hint(start_method: str) -> str:
    """Why a worker may fail before it runs: "spawn" and "forkserver" re-import ``__main__``.

    Errors inside the worker's own code reach the owner as ``Failed`` messages; a worker
    that exits with an error code before it was ready failed while Python prepared the
    process, most often while it imported the main script again (a script that trains at
    its top level, without ``if __name__ == "__main__":``, runs again in every worker).
    """
    if start_method == "fork":
        return ""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    path = getattr(main, "__file__", None)
    if spec is not None and getattr(spec, "name", "__main__") != "__main__":
        what = f"the main module {spec.name!r}"  # `python -m ...`: re-imported by name
    elif isinstance(path, str):
        what = f"the main script {path!r}"
    else:
        return ""  # `python -c`, an interactive session: nothing is imported again
    return (
        f" before it was ready. With the {start_method!r} start method a worker first "
        f"imports {what} again (as `__mp_main__`), and its traceback (on stderr, above) "
        "says what failed there. If it is your own code at the top level of that file "
        "(building a batcher, training), put that code under "
        '`if __name__ == "__main__":`.'
    )


class MultiProcessBatcher(Batcher):
    """One worker process per seed, each with its VecEnv and its agent copy.

    Workers write the trajectories straight into one shared memory buffer (allocated once,
    from the specs found by a probe step); the learner reads them through views and
    ``get()`` hands back a copy the caller owns, so the next ``execute()`` can run while the
    caller computes. Nothing is pickled per step: one small message per command.
    ``update(state_dict)`` moves array parameters through shared memory too.

    Faults: an exception in a worker is raised from ``get()`` / ``execute()`` / ``reset()``
    as ``WorkerError`` with the worker's traceback; a worker killed by a signal likewise;
    every wait watches the worker processes, so nothing hangs. After a WorkerError the
    batcher is closed. ``close()`` is idempotent and also runs on garbage collection and at
    interpreter exit, and only in the process that created the batcher (not in a fork of
    it). The shared memory segments never have a name (workers get file descriptors), so
    nothing is left behind in /dev/shm whoever is killed when; their whole size is
    reserved up front, so a full /dev/shm is a ``SharedMemoryError`` at construction (or
    from ``update()``), never a SIGBUS later.

    Args:
        make_agent, make_env, n_timesteps, seeds, agent_info, env_info, agent_seeds, device,
        store_agent_state: see ``Batcher``.
        start_method: multiprocessing start method, "spawn" (default) or "forkserver"
            (both safe with threads and CUDA); "fork" is accepted but unsafe with threads.
        torch_threads: ``torch.set_num_threads`` in workers whose agent uses torch (1 by
            default: one core per worker); None leaves torch's default.
        batch_scheduling: run the workers under Linux's ``SCHED_BATCH`` policy (the default;
            ignored elsewhere): the same share of CPU as a process of the default policy,
            but a worker that wakes up never preempts a running process. Processes an env
            starts inherit it; an owner under a real-time policy has workers below it.
            Without it, the first worker woken by ``execute()`` often preempts the process
            that is still waking the others, which then start up to a scheduler tick
            (3-5 ms) late; it also keeps the learner's process from being interrupted by
            workers. False: the default policy.

    Note:
        With "spawn", the script that builds a batcher must guard its entry point with
        ``if __name__ == "__main__":`` and ``make_agent`` / ``make_env`` must be picklable
        (module-level functions or ``functools.partial`` of them).
    """

    def __init__(
        self,
        make_agent: Callable[[], Agent],
        make_env: Callable[[int], VecEnv],
        *,
        start_method: str = "spawn",
        torch_threads: int | None = 1,
        batch_scheduling: bool = True,
        **common: Unpack[BatcherOptions],
    ) -> None:
        if start_method not in mp.get_all_start_methods():
            raise ValueError(
                f"start_method {start_method!r} is not available here; choose one of "
                f"{mp.get_all_start_methods()}."
            )
        self._ctx: Any = mp.get_context(start_method)
        self._torch_threads = torch_threads
        self._batch_scheduling = bool(batch_scheduling)
        super().__init__(make_agent, make_env, **common)

    # ------------------------------------------------------------------ lifecycle
    def _start(self) -> None:
        self._res = _Resources()
        self._finalizer = weakref.finalize(self, self._res.release)
        self._weights_layout: WeightsLayout | None = None
        self._weights_segment: Segment | None = None
        self._weights_version = 0
        self._prepared: Output | None = None  # the output of the running collection
        ctx = self._ctx
        factories: Any = (self.make_agent, self.make_env)
        if ctx.get_start_method() != "fork":
            try:
                factories = pickle.dumps(factories)
            except Exception as exc:
                raise TypeError(
                    "MultiProcessBatcher sends make_agent and make_env to its worker "
                    f"processes, so both must be picklable; pickling failed: {exc}. Use "
                    "module-level functions or classes, or functools.partial of them (not "
                    "lambdas or local functions)."
                ) from exc
        segment = Segment.create(
            self.layout.size,
            what=_describe_buffer(self.layout),
            fix="Lower `n_timesteps` or the number of envs (`seeds` x the envs of each VecEnv), "
            "or make the observations smaller.",
        )
        self._res.segments.append(segment)
        # pre-touch every page once: first-touch faults cost ~10x a warm write
        np.frombuffer(segment.buffer, dtype=np.uint8)[:] = 0
        for i, seed in enumerate(self.seeds):
            cfg = WorkerConfig(
                index=i,
                factories=factories,
                seed=seed,
                agent_seed=None if self.agent_seeds is None else self.agent_seeds[i],
                layout=self.layout,
                specs=self.specs,
                n_envs=self.n_envs_per_worker,
                store_agent_state=self.store_agent_state,
                torch_threads=self._torch_threads,
                batch_scheduling=self._batch_scheduling,
                parent_pid=os.getpid(),
                from_main_thread=threading.current_thread() is threading.main_thread(),
            )
            parent, child = ctx.Pipe(duplex=True)
            process = ctx.Process(
                target=worker_main, args=(cfg, child), daemon=True, name=f"rlstructures-worker-{i}"
            )
            process.start()
            _WORKER_PROCESSES.add(process)
            child.close()
            worker = _Worker(i, seed, process, parent)
            self._res.workers.append(worker)
            try:  # the segment has no name: the worker gets its file descriptor
                reduction.send_handle(parent, segment.fileno(), process.pid)
            except OSError:
                pass  # it died already: the wait below reports how
        self._wait_for(
            lambda: [w for w in self._workers if not w.ready], START_TIMEOUT, "start"
        )

    @property
    def _workers(self) -> list[_Worker]:
        return self._res.workers

    def _close(self) -> None:
        self._finalizer()

    def _interrupt(self) -> None:
        try:
            os.write(self._res.wakeup[1], b"!")
        except OSError:  # closed already
            pass

    # ------------------------------------------------------------------ messages
    def _send(self, worker: _Worker, msg: NamedTuple) -> None:
        self._send_bytes(worker, _dumps(msg))

    def _send_bytes(self, worker: _Worker, payload: bytes) -> None:
        """Send a pickled message (the worker reads it with ``recv()``)."""
        try:
            worker.conn.send_bytes(payload)
        except (OSError, ValueError):
            self._pump(0.5)  # the worker died: report how
            self._fail(self._death(worker))

    def _fail(self, error: Exception) -> None:
        self.close()
        raise error

    def _death(self, worker: _Worker) -> WorkerError:
        """The error for a worker that died (how, and a hint when it died starting)."""
        return WorkerError(
            _describe_death(worker, self._ctx.get_start_method()), worker=worker.index
        )

    def _handle(self, worker: _Worker, msg: object) -> None:
        kind = getattr(msg, "kind", None)
        if kind is Reply.DONE:
            worker.busy, worker.n_running = False, int(cast(Done, msg).n_running)
        elif kind is Reply.READY:
            worker.ready = True
        elif kind is Reply.RESET_DONE:
            worker.resetting = False
        elif kind is Reply.WEIGHTS_DONE:
            worker.weights_version = int(cast(WeightsDone, msg).version)
        elif kind is Reply.FAILED:
            name, text, tb = cast(Failed, msg)[:3]
            if name == AgentOutputError.__name__:
                self._fail(AgentOutputError(text))
            self._fail(remote_error(worker.index, worker.seed, name, text, tb))
        else:
            error = unknown(msg, "the batcher", Reply)
            where = f"worker {worker.index} (seed {worker.seed})"
            self._fail(WorkerError(f"{where}: {error}", worker=worker.index))

    def _pump(self, timeout: float | None) -> None:
        """Handle the messages that arrive within ``timeout``; raise on a dead worker."""
        selector = self._res.selector
        if selector is None:  # one epoll set for the batcher's life: no setup per wait
            selector = self._res.selector = selectors.DefaultSelector()
            selector.register(self._res.wakeup[0], selectors.EVENT_READ, None)
            for w in self._workers:
                selector.register(w.conn, selectors.EVENT_READ, (w, False))
                selector.register(w.process.sentinel, selectors.EVENT_READ, (w, True))
        dead = []
        try:  # epoll takes at most ~24 days: a longer timeout waits in slices of one day
            events = selector.select(None if timeout is None else min(timeout, _MAX_SELECT))
        except (OSError, ValueError):
            if self.closed:  # close() in a signal handler of this thread released the selector
                raise interrupted("the workers") from None
            raise
        for key, _ in events:
            if key.data is None:  # close() from another thread
                raise interrupted("the workers")
            worker, exited = key.data
            if exited:
                dead.append(worker)
                continue
            try:
                msg = worker.conn.recv()
            except (EOFError, OSError):
                dead.append(worker)
                continue
            self._handle(worker, msg)
        if dead and self.closed:  # the pipes were closed under us, not by the workers
            raise interrupted("the workers")
        for worker in dead:
            while worker.conn.poll():  # a last message (its error) comes first
                try:
                    self._handle(worker, worker.conn.recv())
                except (EOFError, OSError):
                    break
            worker.process.join(1.0)
            self._fail(self._death(worker))

    def _wait_for(
        self, pending: Callable[[], list[_Worker]], timeout: float | None, what: str
    ) -> bool:
        """Handle messages until ``pending()`` is empty; False if ``timeout`` expired first.

        Args:
            pending: the workers still to answer.
            timeout: seconds at most (None: no limit).
            what: the call, for messages; "poll" returns False on expiry instead of raising.

        Raises:
            BatcherTimeoutError: ``timeout`` expired (the batcher is closed when ``what`` is
                "start": the workers may be half built).
            WorkerError: a worker raised or died.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while pending():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                self._pump(0)  # what already arrived counts
                late = pending()
                if not late:
                    break
                if what == "poll":
                    return False
                stopped = [w.index for w in late if _is_stopped(w.process.pid)]
                why = (
                    f"; workers {stopped} are stopped (SIGSTOP, Ctrl-Z or a debugger): "
                    "`kill -CONT` them"
                    if stopped
                    else ""
                )
                error = BatcherTimeoutError(
                    f"{what}: workers {[w.index for w in late]} did not answer within {timeout} s "
                    f"(they are alive: an env or agent may be stuck, or the machine "
                    f"overloaded{why})."
                )
                if what == "start":
                    self._fail(error)
                raise error
            self._pump(remaining)
        return True

    # ------------------------------------------------------------------ Batcher hooks
    def _reset(self, agent_info: DictTensor, env_info: DictTensor) -> None:
        for w in self._workers:
            w.resetting = True
            self._send(
                w,
                Reset(self._worker_rows(agent_info, w.index), self._worker_rows(env_info, w.index)),
            )
        self._wait_for(lambda: [w for w in self._workers if w.resetting], None, "reset()")

    def _execute(self, agent_info: DictTensor | None) -> None:
        # Everything before the first message: once a worker is woken, this process should
        # wake the others and go to sleep, leaving the cores to them.
        self._prepared = self._pool.take()
        messages = [
            _EXECUTE
            if agent_info is None
            else _dumps(Execute(self._worker_rows(agent_info, w.index)))
            for w in self._workers
        ]
        for w, msg in zip(self._workers, messages, strict=True):
            w.busy = True
            self._send_bytes(w, msg)
        self._pump(0)  # surface an immediate failure at once

    def _wait(self, blocking: bool, timeout: float | None) -> int | None:
        def busy() -> list[_Worker]:
            return [w for w in self._workers if w.busy]

        if blocking:
            self._wait_for(busy, timeout, "get()")
        elif not self._wait_for(busy, 0.0, "poll"):
            return None
        return sum(w.n_running for w in self._workers)

    def _assemble(self) -> Trajectories:
        prepared, self._prepared = self._prepared, None
        if prepared is None:  # pragma: no cover - execute() always prepares one
            prepared = self._pool.take()
        return self._pool.fill(prepared, self._res.segments[0].buffer)

    def _update(self, state_dict: Mapping[str, Any], timeout: float | None) -> None:
        layout, arrays, others = split(state_dict)
        previous = self._weights_version
        # Workers read the weights buffer when they handle the message: wait until they have
        # all read the previous version before overwriting it.
        self._wait_for(
            lambda: [w for w in self._workers if w.weights_version < previous], timeout, "update()"
        )
        version = previous + 1
        current = self._weights_layout
        fresh = current is None or layout.signature != current.signature
        if current is not None and not fresh:
            layout = current  # the same arrays: the same segment, nothing to send but a message
        else:
            new = Segment.create(
                layout.size,
                what=f"update()'s {len(arrays)} arrays",
                fix="Send fewer or smaller arrays to `update()`.",
            )
            old, self._weights_segment = self._weights_segment, new
            self._res.segments.append(new)
            self._weights_layout = layout
            if old is not None:
                self._res.segments.remove(old)
                old.close()
        segment = self._weights_segment
        if segment is None:  # pragma: no cover - set just above
            raise RuntimeError("weights segment missing")
        layout.write(segment.buffer, arrays)
        message = _dumps(Weights(version, layout if fresh else None, others))
        for w in self._workers:
            self._send_bytes(w, message)
            if fresh:  # a new segment: its file descriptor follows the message
                self._send_fd(w, segment.fileno())
        self._weights_version = version
        self._pump(0)

    def _send_fd(self, worker: _Worker, fd: int) -> None:
        try:
            reduction.send_handle(worker.conn, fd, worker.process.pid)
        except OSError:
            self._pump(0.5)  # the worker died: report how
            self._fail(self._death(worker))


def _describe_buffer(layout: BufferLayout) -> str:
    """The trajectory buffer and its largest arrays, for an allocation error."""
    largest = sorted(layout.entries, key=lambda e: -e.nbytes)[:3]
    arrays = ", ".join(
        f"{e.name.split(':', 1)[1] if ':' in e.name else e.name} {format_bytes(e.nbytes)}"
        for e in largest
    )
    return (
        f"MultiProcessBatcher's trajectory buffer ({layout.n_envs} envs x "
        f"n_timesteps={layout.n_timesteps}; largest arrays: {arrays})"
    )
