"""Fork safety: a Logger's or TrajectoryWriter's files belong to the process that opened them.

A child made by ``os.fork()`` (or multiprocessing's "fork" start method) inherits the parent's
objects, open files and pending rows. If the child flushed them, wrote footers or ran the
finalizers at its exit, rows would be written twice and files finished under the parent's
feet. So every such object records the pid that created it; in any other process it does
nothing at exit and refuses to be used (the caller raises WriterClosedError saying so).
An ``os.register_at_fork`` hook marks every live object in the child, so the hot paths
test one attribute and never call ``os.getpid()``.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import Final

__all__ = ["EXIT_LOCK_TIMEOUT", "ProcessOwned", "Sections", "not_picklable"]

#: How long a close at interpreter exit waits for a thread that is logging or writing (a
#: daemon thread may hold the lock forever there: do not hang on it).
EXIT_LOCK_TIMEOUT: Final = 10.0


class ProcessOwned:
    """Base of the state objects whose files only their creating process may touch."""

    __slots__ = ("__weakref__", "forked", "pid")

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.forked = False
        _OWNED.add(self)

    def in_owner(self) -> bool:
        """True in the process that created the object (not in a forked child)."""
        return not self.forked and self.pid == os.getpid()


class Sections(ProcessOwned):
    """A process-owned state whose methods run as *sections* under one re-entrant lock.

    A signal handler runs in the thread it interrupts, possibly in the middle of a section
    (a flush, a write) that holds the lock: a plain lock would deadlock it, and running its
    work at once would cut into the interrupted one. So the lock is re-entrant and ``depth``
    is 1 while a section runs (only the thread holding the lock can see 1): a call that
    finds it so appends its work to ``deferred``, which runs when that section ends.
    """

    __slots__ = ("deferred", "depth", "lock")

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.RLock()
        self.depth = 0
        self.deferred: list[Callable[[], None]] = []

    def run(self, section: Callable[[], None]) -> None:
        """Run ``section`` (the caller holds the lock, depth is 0), then what was deferred."""
        self.depth = 1
        try:
            section()
        finally:
            self.end()

    def end(self) -> None:
        """End a section: what signal handlers asked meanwhile (depth still 1), then 0."""
        try:
            while self.deferred:
                self.deferred.pop(0)()
        finally:
            self.depth = 0

    def run_or_defer(self, section: Callable[[], None]) -> None:
        """Take the lock and run ``section``, or defer it when this thread is in a section.

        At interpreter exit a daemon thread may hold the lock forever: after
        ``EXIT_LOCK_TIMEOUT`` seconds ``section`` runs without it.
        """
        locked = self.lock.acquire(timeout=EXIT_LOCK_TIMEOUT)
        try:
            if locked and self.depth:  # a signal handler interrupted this thread's section
                self.deferred.append(section)
                return
            self.run(section)
        finally:
            if locked:
                self.lock.release()


_OWNED: Final[weakref.WeakSet[ProcessOwned]] = weakref.WeakSet()


def _mark_forked() -> None:
    for owned in list(_OWNED):
        owned.forked = True


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_mark_forked)


def not_picklable(kind: str, remedy: str) -> TypeError:
    """The TypeError for pickling (or copying) an object that holds this process's files."""
    return TypeError(
        f"a {kind} cannot be pickled or copied: it holds files open in this process (pid "
        f"{os.getpid()}), which another process cannot write safely. {remedy}"
    )
