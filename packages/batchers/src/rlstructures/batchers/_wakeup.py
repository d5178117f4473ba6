"""Wake-ups between processes: unnamed POSIX semaphores living in a shared segment.

InferenceBatcher's owner and workers hand each step over with one semaphore each way
(measured on a 2-core VM: ~2.4 us per wake-up, against ~12 us for a pipe round trip). The
semaphores are ``sem_init(pshared=1)`` objects inside the exchange segment, which already
reaches the workers as a file descriptor: they have no name, so nothing is ever left in
/dev/shm and no ``resource_tracker`` is involved, whoever is killed when.

Every wait is bounded (``wait(i, timeout)``, ~0.1 s at a time in the callers) so that the
caller can check that the other side is still alive between two waits: a dead or stuck
process is reported within seconds, never a hang. Spinning (``try_wait`` in a loop) is
only an opt-in: it wins ~2 us per wake-up on an idle machine, but on a loaded one a
spinning process takes the core the other side needs (700+ us at p99 on 2 cores once a
third process wants a core).

Linux (glibc or musl) only: macOS has no process-shared unnamed semaphores.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import sys
import time
from collections.abc import Callable
from typing import Any, Final

import numpy as np

__all__ = ["SEM_SLOT", "Semaphores", "semaphores_available", "wait_bounded"]

SEM_SLOT: Final = 64  # bytes per semaphore (glibc's sem_t is 32 bytes on 64-bit Linux)
POLL: Final = 0.1  # seconds of one bounded wait, between two liveness checks


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


_LIBC: Any = None
_CLOCKWAIT: bool = False  # sem_clockwait (glibc >= 2.30) takes a CLOCK_MONOTONIC deadline


def _libc() -> Any:
    global _LIBC, _CLOCKWAIT
    if _LIBC is None:
        if not sys.platform.startswith("linux"):
            raise OSError(
                "InferenceBatcher needs process-shared POSIX semaphores (Linux); on this "
                f"system ({sys.platform}) use MultiProcessBatcher."
            )
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        for name in ("sem_init", "sem_post", "sem_trywait", "sem_timedwait"):
            getattr(libc, name).restype = ctypes.c_int
            getattr(libc, name).argtypes = [ctypes.c_void_p] + (
                [ctypes.c_int, ctypes.c_uint]
                if name == "sem_init"
                else [ctypes.POINTER(_Timespec)]
                if name == "sem_timedwait"
                else []
            )
        try:
            libc.sem_clockwait.restype = ctypes.c_int
            libc.sem_clockwait.argtypes = [
                ctypes.c_void_p,
                ctypes.c_int,
                ctypes.POINTER(_Timespec),
            ]
            _CLOCKWAIT = True
        except AttributeError:  # older glibc, musl: sem_timedwait on CLOCK_REALTIME
            _CLOCKWAIT = False
        _LIBC = libc
    return _LIBC


def semaphores_available() -> bool:
    """Whether this system has process-shared unnamed semaphores (Linux)."""
    try:
        _libc()
    except OSError:
        return False
    return True


class Semaphores:
    """``n`` process-shared semaphores in ``n * SEM_SLOT`` bytes of a shared buffer.

    The object keeps a numpy view of those bytes, so the mapping (and with it every
    semaphore address) stays valid as long as the object lives, even when the segment is
    closed meanwhile (its unmapping is deferred to garbage collection then).

    Args:
        buffer: the shared mapping (``Segment.buffer``).
        offset: where the first semaphore starts (a multiple of ``SEM_SLOT``).
        n: how many.
        init: initialise them to 0 (the owner, once, before any worker maps them).
    """

    def __init__(self, buffer: Any, offset: int, n: int, *, init: bool) -> None:
        self._libc = _libc()
        self._bytes = np.frombuffer(buffer, dtype=np.uint8, count=n * SEM_SLOT, offset=offset)
        base = int(self._bytes.ctypes.data)
        self._addresses = [base + i * SEM_SLOT for i in range(n)]
        if init:
            for address in self._addresses:
                if self._libc.sem_init(address, 1, 0) != 0:
                    code = ctypes.get_errno()
                    raise OSError(code, f"sem_init failed: {os.strerror(code)}")

    def __len__(self) -> int:
        return len(self._addresses)

    def post(self, i: int) -> None:
        """Wake whoever waits on semaphore ``i`` (or the next one to wait)."""
        if self._libc.sem_post(self._addresses[i]) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"sem_post failed: {os.strerror(code)}")

    def try_wait(self, i: int) -> bool:
        """Take semaphore ``i`` if it is posted; never blocks."""
        return bool(self._libc.sem_trywait(self._addresses[i]) == 0)

    def wait(self, i: int, timeout: float) -> bool:
        """Take semaphore ``i``, waiting ``timeout`` seconds at most; False if it expired.

        The GIL is released during the wait (ctypes). An interrupted wait (a signal)
        returns False like an expired one: callers loop anyway.
        """
        libc = self._libc
        address = self._addresses[i]
        if libc.sem_trywait(address) == 0:  # posted already: no clock reading
            return True
        if timeout <= 0:
            return False
        clock = time.CLOCK_MONOTONIC if _CLOCKWAIT else time.CLOCK_REALTIME
        deadline = time.clock_gettime_ns(clock) + int(timeout * 1e9)
        ts = _Timespec(deadline // 1_000_000_000, deadline % 1_000_000_000)
        if _CLOCKWAIT:
            rc = libc.sem_clockwait(address, time.CLOCK_MONOTONIC, ctypes.byref(ts))
        else:
            rc = libc.sem_timedwait(address, ctypes.byref(ts))
        if rc == 0:
            return True
        code = ctypes.get_errno()
        if code in (errno.ETIMEDOUT, errno.EINTR, errno.EAGAIN):
            return False
        raise OSError(code, f"sem_timedwait failed: {os.strerror(code)}")


def wait_bounded(
    sems: Semaphores,
    i: int,
    check: Callable[[], None],
    *,
    deadline: float | None = None,
    spin: bool = False,
) -> bool:
    """Take semaphore ``i``, calling ``check()`` every ``POLL`` seconds meanwhile.

    Args:
        sems: the semaphores.
        i: which one.
        check: raises when waiting is pointless (the other side died, the batcher closed).
        deadline: ``time.monotonic()`` value to give up at (None: never).
        spin: poll with ``try_wait`` instead of sleeping (opt-in: costs a core while it
            waits).

    Returns:
        True once taken; False when ``deadline`` passed first.
    """
    if sems.try_wait(i):
        return True
    while True:
        if spin:
            until = time.monotonic() + POLL
            while time.monotonic() < until:
                if sems.try_wait(i):
                    return True
        else:
            wait = POLL if deadline is None else min(POLL, max(0.0, deadline - time.monotonic()))
            if sems.wait(i, wait):
                return True
        check()
        if deadline is not None and time.monotonic() >= deadline:
            return sems.try_wait(i)
