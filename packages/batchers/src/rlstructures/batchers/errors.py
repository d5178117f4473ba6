"""Exceptions raised by rlstructures.batchers.

Every leaf class also subclasses the builtin exception it refines.
"""

from __future__ import annotations

__all__ = [
    "AgentOutputError",
    "BatcherError",
    "BatcherStateError",
    "BatcherTimeoutError",
    "RemovedImportError",
    "RemovedNameError",
    "SharedMemoryError",
    "WorkerError",
]


class BatcherError(Exception):
    """Base class of every error raised by rlstructures.batchers."""


class WorkerError(BatcherError, RuntimeError):
    """A worker (its env or its agent) raised, or the worker process died.

    The message holds the worker index and the worker's own traceback. The batcher is
    closed when this is raised: its processes are gone and its shared memory released.

    Attributes:
        worker: index of the failing worker (its position in ``seeds``).
        remote_traceback: the formatted traceback from the worker, or "" when it died.
    """

    def __init__(self, message: str, *, worker: int, remote_traceback: str = "") -> None:
        super().__init__(message)
        self.worker = worker
        self.remote_traceback = remote_traceback

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_worker_error, (str(self), self.worker, self.remote_traceback))


def _rebuild_worker_error(message: str, worker: int, remote_traceback: str) -> WorkerError:
    return WorkerError(message, worker=worker, remote_traceback=remote_traceback)


class AgentOutputError(BatcherError, ValueError):
    """An agent returned something that does not fit the buffers (key, batch, shape, dtype)."""


class BatcherStateError(BatcherError, RuntimeError):
    """A call made in the wrong state.

    For example ``get()`` before ``execute()``, ``execute()`` with no env running, or any
    call after ``close()``.
    """


class BatcherTimeoutError(BatcherError, TimeoutError):
    """``get(timeout=...)`` expired before the workers finished."""


class SharedMemoryError(BatcherError, OSError):
    """Shared memory for a batcher's buffers could not be allocated (e.g. /dev/shm is full).

    Raised when the buffer is allocated (at construction, or by ``update()`` for the
    weights), never later: the whole size is reserved up front, so a full /dev/shm cannot
    kill a process with SIGBUS at a later write. Nothing stays allocated. ``errno`` is the
    system's (``ENOSPC`` when full); the message says how much was needed, how much is
    free and what to change.
    """


class RemovedNameError(BatcherError, AttributeError):
    """A method of RLStructures 0.2's batcher (``n_elems``); the message names ours."""


class RemovedImportError(BatcherError, ImportError):
    """``from rlstructures.batchers import RL_Batcher`` (a 0.2 name); the message names ours."""
