"""Exceptions described as text, whatever they do: for WorkerError messages.

An env or agent may raise an exception whose ``__str__`` raises, returns megabytes, or
whose traceback cannot be formatted; the worker's diagnosis must reach the owner anyway.
"""

from __future__ import annotations

import traceback
from typing import Final

from rlstructures.batchers.errors import BatcherStateError, WorkerError

__all__ = ["describe_exception", "interrupted", "remote_error", "worker_error"]

MAX_CHARS: Final = 20_000  # of the message, and of each end of the traceback


def _clip(text: str, keep: int) -> str:
    if len(text) <= 2 * keep:
        return text
    return f"{text[:keep]}\n[... {len(text) - 2 * keep} characters left out ...]\n{text[-keep:]}"


def _message(exc: BaseException) -> str:
    try:
        text = str(exc)
    except BaseException as inner:  # even SystemExit: this runs while reporting an error
        return f"<str() of the exception failed: {type(inner).__name__}>"
    return _clip(text, MAX_CHARS // 2)


def _traceback(exc: BaseException) -> str:
    try:
        return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except BaseException:  # fall back to the frames alone
        try:
            frames = "".join(traceback.format_tb(exc.__traceback__))
        except BaseException:
            frames = "<the traceback could not be formatted>\n"
        last = f"{type(exc).__name__}: {_message(exc)}"
        return f"Traceback (most recent call last):\n{frames}{last}\n"


def describe_exception(exc: BaseException) -> tuple[str, str, str]:
    """``(type name, message, traceback)`` of ``exc``; never raises.

    The message and the traceback are clipped to about ``MAX_CHARS`` characters each
    (their start and their end are kept).
    """
    return type(exc).__name__, _message(exc), _clip(_traceback(exc), MAX_CHARS)


def worker_error(worker: int, seed: int, exc: BaseException) -> WorkerError:
    """The WorkerError for an exception raised by worker ``worker``."""
    return remote_error(worker, seed, *describe_exception(exc))


def remote_error(worker: int, seed: int, name: str, message: str, tb: str) -> WorkerError:
    """The WorkerError for an exception described by worker ``worker``."""
    return WorkerError(
        f"worker {worker} (seed {seed}) raised {name}: {message}\n"
        f"--- worker traceback ---\n{tb}",
        worker=worker,
        remote_traceback=tb,
    )


def interrupted(waiting_for: str) -> BatcherStateError:
    """The error of a call whose wait for ``waiting_for`` was ended by ``close()``."""
    return BatcherStateError(
        "this call was interrupted: close() was called (from another thread or a signal "
        f"handler) while it waited for {waiting_for}; the batcher is closed."
    )
