"""The worker process of MultiProcessBatcher: one VecEnv, one agent, commands over a pipe.

It runs a ``Collector`` (both halves, env and agent) over its rows of the shared buffer;
the messages (``_protocol.py``) are small and once per command, never per step.
"""

from __future__ import annotations

import ctypes
import gc
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import reduction
from multiprocessing.connection import Connection
from typing import Any, Final

from rlstructures.agents import Agent, VecEnv
from rlstructures.batchers._build import build_collector
from rlstructures.batchers._collector import Collector
from rlstructures.batchers._exceptions import describe_exception
from rlstructures.batchers._layout import BufferLayout, Specs, rows
from rlstructures.batchers._protocol import (
    Command,
    Done,
    Failed,
    Ready,
    ResetDone,
    WeightsDone,
    unknown,
)
from rlstructures.batchers._shm import Segment
from rlstructures.batchers._weights import WeightsLayout, restore

__all__ = [
    "WorkerConfig",
    "exit_worker",
    "process_alive",
    "receive",
    "report_failure",
    "unpickle_factories",
    "worker_main",
]


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """Everything a worker needs (pickled once, at start)."""

    index: int
    factories: Any  # pickled (make_agent, make_env), or the pair itself with "fork"
    seed: int
    agent_seed: int | None
    layout: BufferLayout
    specs: Specs
    n_envs: int
    store_agent_state: bool
    torch_threads: int | None
    batch_scheduling: bool
    parent_pid: int
    from_main_thread: bool  # the owner started the worker from its main thread


def _set_torch_threads(n: int | None) -> None:
    if n is not None and "torch" in sys.modules:
        import torch

        torch.set_num_threads(n)


def _use_batch_scheduling() -> None:
    """Run this process under SCHED_BATCH where the OS has it (Linux); best effort.

    A CPU-bound worker then never preempts a running process when it wakes up (its share
    of CPU is unchanged): ``execute()`` wakes the workers one after the other, and without
    this the first one often preempted the owner before it had woken the others.
    """
    policy = getattr(os, "SCHED_BATCH", None)
    if policy is None:
        return
    try:
        os.sched_setscheduler(0, policy, os.sched_param(0))
    except OSError:  # a sandbox that forbids it: keep the default policy
        pass


def _die_with_owner(owner_pid: int, by_parent_death_signal: bool) -> None:
    """Make sure this worker never outlives the process that owns the batcher.

    Args:
        owner_pid: the owner's pid.
        by_parent_death_signal: the owner started this worker from its main thread, so
            Linux's ``PR_SET_PDEATHSIG`` applies (it fires when the *thread* that started
            the child ends: for a batcher built in another thread, that thread's end would
            kill the workers of a live owner). Otherwise a thread watches the owner.
    """
    if os.getppid() == owner_pid and by_parent_death_signal:  # spawn and fork
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: killed with the parent
            except (OSError, AttributeError):
                pass
        if os.getppid() != owner_pid:  # the owner died before prctl took effect
            os._exit(0)
        if sys.platform.startswith("linux"):
            return
    # forkserver (our parent is the fork server), another thread, or no prctl: a watcher
    threading.Thread(
        target=_watch_owner, args=(owner_pid, os.getppid() == owner_pid), daemon=True
    ).start()


def _watch_owner(owner_pid: int, is_parent: bool) -> None:
    while True:
        time.sleep(0.25)
        if is_parent:
            if os.getppid() != owner_pid:  # reparented: the owner is gone
                os._exit(0)
            continue
        if not process_alive(owner_pid):
            os._exit(0)


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_UNPICKLE_HINT: Final = (
    "The worker could not rebuild make_agent / make_env. Define them (and the classes they "
    "use) in an importable module, not inside `if __name__ == '__main__':` or a function."
)


def unpickle_factories(payload: bytes) -> Any:
    """Rebuild what the owner pickled for a worker, with a hint when it cannot be."""
    try:
        return pickle.loads(payload)
    except Exception as exc:
        raise RuntimeError(f"{_UNPICKLE_HINT} ({type(exc).__name__}: {exc})") from exc


def _factories(payload: Any) -> tuple[Callable[[], Agent], Callable[[int], VecEnv]]:
    if not isinstance(payload, bytes):
        return payload  # type: ignore[no-any-return]  # "fork": the objects themselves
    factories: tuple[Callable[[], Agent], Callable[[int], VecEnv]] = unpickle_factories(payload)
    return factories


def report_failure(conn: Connection, exc: BaseException) -> None:
    """Send the owner a ``Failed`` message for ``exc``; a closed pipe means nobody listens."""
    try:
        conn.send(Failed(*describe_exception(exc)))
    except (OSError, ValueError):
        pass


def receive(conn: Connection) -> Any:
    """The owner's next message, or None once the owner is gone (workers ignore SIGINT)."""
    try:
        return conn.recv()
    except (EOFError, OSError):
        return None


def exit_worker(conn: Connection, closable: Any, segments: tuple[Segment | None, ...]) -> None:
    """Close what the worker holds (errors ignored), the pipe, and end the process at once.

    ``os._exit`` skips interpreter teardown work (atexit hooks of user libraries) that
    could hang a worker the owner is waiting for.
    """
    if closable is not None:
        try:
            closable.close()
        except Exception:
            pass
    for seg in segments:
        if seg is not None:
            seg.close()
    conn.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def worker_main(cfg: WorkerConfig, conn: Connection) -> None:
    """Entry point of a worker process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _die_with_owner(cfg.parent_pid, cfg.from_main_thread)
    if cfg.batch_scheduling:
        _use_batch_scheduling()
    segment: Segment | None = None
    weights: Segment | None = None
    collector: Collector | None = None
    wlayout: WeightsLayout | None = None
    try:
        segment = Segment.attach(reduction.recv_handle(conn), cfg.layout.size)
        start = cfg.index * cfg.n_envs
        views = rows(cfg.layout.views(segment.buffer), start, start + cfg.n_envs)
        make_agent, make_env = _factories(cfg.factories)
        collector = build_collector(
            make_agent,
            make_env,
            seed=cfg.seed,
            agent_seed=cfg.agent_seed,
            views=views,
            specs=cfg.specs,
            n_envs=cfg.n_envs,
            n_timesteps=cfg.layout.n_timesteps,
            store_agent_state=cfg.store_agent_state,
            worker=cfg.index,
        )
        _set_torch_threads(cfg.torch_threads)
        del views
        # What exists now (modules, the env, the agent) lives as long as the worker: out of
        # the collector's reach, full collections no longer walk it (they cost milliseconds
        # with torch imported, stalling the whole batch at random slices).
        gc.collect()
        gc.freeze()
        conn.send(Ready())
        while True:
            msg = receive(conn)
            if msg is None:  # the owner is gone: quietly
                break
            kind = getattr(msg, "kind", None)
            if kind is Command.EXECUTE:
                conn.send(Done(collector.execute(msg.agent_info)))
            elif kind is Command.RESET:
                collector.reset(msg.agent_info, msg.env_info)
                conn.send(ResetDone())
            elif kind is Command.WEIGHTS:
                if msg.layout is not None:  # a new segment: its file descriptor follows
                    if weights is not None:
                        weights.close()
                    weights = Segment.attach(reduction.recv_handle(conn), msg.layout.size)
                    wlayout = msg.layout
                if wlayout is None or weights is None:  # the owner sends a layout first
                    raise ValueError("a weights message without a layout before it")
                collector.agent.update(restore(wlayout, weights.buffer, msg.others))
                conn.send(WeightsDone(msg.version))
            elif kind is Command.CLOSE:
                break
            else:
                raise unknown(msg, f"worker {cfg.index}", Command)
    except BaseException as exc:  # KeyboardInterrupt or EOFError too: raised by env or agent
        report_failure(conn, exc)
    finally:
        exit_worker(conn, collector, (weights, segment))
