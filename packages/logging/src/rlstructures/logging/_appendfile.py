"""Append-only files whose failed appends are undone, so a full disk never corrupts them.

Every record (a flush of scalar rows, an Arrow message, a TensorBoard event batch) is
handed to the operating system with ``os.write`` calls on a file opened with ``O_APPEND``.
When one fails (``ENOSPC``, ``EFBIG`` under ``RLIMIT_FSIZE``, ``EIO``) or is interrupted
(KeyboardInterrupt between two calls), the file is truncated back to the size it had
before the record: it holds only whole records, and the next append may succeed once
space is freed. Only if that truncation fails too is the file marked broken, and every
later append raises.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path
from typing import Final

from rlstructures.logging.errors import LogWriteError

__all__ = [
    "APPEND_FLAGS",
    "ExclusiveAppender",
    "failed_write",
    "file_id",
    "undo_append",
    "write_all",
]

_log = logging.getLogger(__name__)

#: ``os.open`` flags of an append-only file (not inherited by exec'd children).
APPEND_FLAGS: Final = os.O_WRONLY | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write every byte of ``data`` (``os.write`` may write fewer; a full disk raises)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:  # pragma: no cover - write(2) returns 0 only for 0 bytes
            raise OSError(errno.EIO, "write returned 0")
        view = view[written:]


def file_id(fd: int) -> tuple[int, int]:
    """``(device, inode)`` of an open file, to notice a path replaced under its writer."""
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def undo_append(fd: int, size: int, path: Path, exc: BaseException) -> LogWriteError | None:
    """Truncate ``fd`` back to ``size`` after a failed append; an error if that fails too."""
    try:
        os.ftruncate(fd, size)
    except OSError as undo:
        return LogWriteError(
            getattr(exc, "errno", None) or errno.EIO,
            f"{path}: an append failed ({exc}) and cutting the file back to its last complete "
            f"record at byte {size} failed too ({undo}); it may end with a partial record "
            "(readers stop before it). No further writes go to it.",
        )
    return None


def failed_write(path: Path, exc: OSError, what: str) -> LogWriteError:
    """The error raised for an append that failed and was undone."""
    return LogWriteError(
        exc.errno or errno.EIO,
        f"writing {what} to {path} failed ({exc.strerror or exc}); the file was cut back to "
        "its last complete record, so everything written before reads back. Free some disk "
        "space (or raise the file size limit); the next write retries.",
    )


class ExclusiveAppender:
    """A file that only this object writes: an Arrow part, an event file.

    The file was created empty with ``O_EXCL`` by its owner. ``append`` is all or nothing;
    ``size`` is the end of the last complete record.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, APPEND_FLAGS)
        self.size = os.fstat(self._fd).st_size
        self._id = file_id(self._fd)
        self._broken: LogWriteError | None = None

    def replaced(self) -> bool:
        """True when ``path`` no longer names this file (deleted, renamed or replaced)."""
        try:
            st = os.stat(self.path)
        except OSError:
            return True
        return (st.st_dev, st.st_ino) != self._id

    def append(self, data: bytes | memoryview, what: str = "a record") -> None:
        """Append ``data`` whole, or leave the file as it was and raise LogWriteError."""
        if self._broken is not None:
            raise self._broken
        try:
            write_all(self._fd, data)
        except BaseException as exc:
            self._broken = undo_append(self._fd, self.size, self.path, exc)
            if self._broken is not None:
                raise self._broken from exc
            if isinstance(exc, OSError):
                raise failed_write(self.path, exc, what) from exc
            raise  # KeyboardInterrupt and the like, after the undo
        self.size += len(data)

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)
