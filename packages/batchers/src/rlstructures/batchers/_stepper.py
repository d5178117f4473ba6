"""A background thread of the owner that runs one job at a time (InferenceBatcher's slices).

``execute()`` hands a slice to the thread and returns at once; ``get()`` waits for it
(bounded waits: the caller's ``timeout`` is honoured) and re-raises what the job raised.
The thread lives as long as the batcher: no thread start per slice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Stepper"]

R = TypeVar("R")


class Stepper(Generic[R]):
    """Runs ``job()`` calls in one daemon thread, one after the other.

    Args:
        name: the thread's name (shown by debuggers and ``py-spy``).
    """

    def __init__(self, name: str) -> None:
        self._cond = threading.Condition()
        self._job: Callable[[], R] | None = None
        self._done = threading.Event()
        self._done.set()  # nothing in flight
        self._result: R | None = None
        self._error: BaseException | None = None
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def thread(self) -> threading.Thread:
        """The thread the jobs run in."""
        return self._thread

    @property
    def busy(self) -> bool:
        """Whether a job is in flight."""
        return not self._done.is_set()

    def submit(self, job: Callable[[], R]) -> None:
        """Run ``job`` in the thread; returns at once.

        Raises:
            RuntimeError: a job is in flight already, or the stepper is closed.
        """
        with self._cond:
            if self._closing or not self._done.is_set():
                raise RuntimeError("Stepper.submit: busy or closed")  # the batcher checks first
            self._done.clear()
            self._result, self._error = None, None
            self._job = job
            self._cond.notify()

    def wait(self, timeout: float | None) -> bool:
        """Whether the job in flight ended within ``timeout`` seconds (None: no limit)."""
        return self._done.wait(timeout)

    def result(self) -> R:
        """What the finished job returned; re-raises what it raised."""
        if not self._done.is_set():
            raise RuntimeError("Stepper.result: the job is still running")
        error, self._error = self._error, None
        if error is not None:
            raise error
        result = self._result
        if result is None:
            raise RuntimeError("Stepper.result: no job ran")
        return result

    def close(self, timeout: float) -> bool:
        """Stop the thread once its job (if any) returns; whether it stopped in time."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread is threading.current_thread():
            return False
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._job is None and not self._closing:
                    self._cond.wait()
                if self._job is None:
                    return
                job, self._job = self._job, None
            try:
                self._result = job()
            except BaseException as exc:  # handed to get(); the thread goes on
                self._error = exc
            finally:
                del job
                self._done.set()
