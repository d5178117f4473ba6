"""Shared memory segments without a name: nothing to leak, whoever is killed when.

A segment is an anonymous file, mapped by the owner and handed to the workers as a file
descriptor over their pipe (``multiprocessing.reduction.send_handle``):

* Linux: a file opened with ``O_TMPFILE`` in /dev/shm. It never has a name, and its pages
  count against /dev/shm's size like any file there (Docker's 64 MB default included).
* Linux without a usable /dev/shm: ``memfd_create`` (counted as the process's memory).
* elsewhere: a file of ``tempfile.gettempdir()`` unlinked right after it is opened (a kill
  between those two calls, microseconds apart, would leave the name).

The kernel frees the memory when the last process holding the file (an fd or a mapping)
unmaps it or exits, whatever the way: no cleanup pass, no ``resource_tracker``.

The whole size is reserved up front with ``posix_fallocate``: a full /dev/shm is a
``SharedMemoryError`` at allocation, never a SIGBUS at the first write to a missing page.
"""

from __future__ import annotations

import errno
import mmap
import os
import secrets
import tempfile
from typing import Final

from rlstructures.batchers.errors import SharedMemoryError

__all__ = ["SHM_DIR", "Segment", "format_bytes"]

SHM_DIR: Final = "/dev/shm"
_NO_SPACE: Final = (errno.ENOSPC, errno.EDQUOT, errno.ENOMEM, errno.EFBIG)
_CANNOT_RESERVE: Final = (errno.EOPNOTSUPP, errno.EINVAL, errno.ENODEV)


def format_bytes(n: int) -> str:
    """``n`` bytes for people: "17.3 MiB"."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _anonymous_file() -> tuple[int, str]:
    """A new empty file that has no name: ``(fd, where)``, ``where`` for messages."""
    tmpfile = getattr(os, "O_TMPFILE", None)
    if tmpfile is not None and os.path.isdir(SHM_DIR):
        try:
            return os.open(SHM_DIR, tmpfile | os.O_RDWR | os.O_CLOEXEC, 0o600), SHM_DIR
        except OSError:  # an old kernel, or a read-only /dev/shm: the next way
            pass
    memfd = getattr(os, "memfd_create", None)
    if memfd is not None:
        return memfd("rlstructures", os.MFD_CLOEXEC), "memory (memfd_create)"
    directory = tempfile.gettempdir()
    path = os.path.join(directory, f"rls_{os.getpid()}_{secrets.token_hex(6)}")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    os.unlink(path)
    return fd, directory


def _free_space(where: str) -> str:
    """What is free at ``where``, for the error message."""
    try:
        if where.startswith("memory"):
            with open("/proc/meminfo") as f:
                fields = dict(line.split(":", 1) for line in f)
            free = int(fields["MemAvailable"].split()[0]) * 1024
            return f"{where} has {format_bytes(free)} available"
        st = os.statvfs(where)
    except (OSError, KeyError, ValueError, IndexError):
        return f"{where} has less free"
    free, total = st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize
    return f"{where} has {format_bytes(free)} free (of {format_bytes(total)})"


def _address_limit() -> str:
    """This process's address space limit (RLIMIT_AS), as text."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    except (ImportError, OSError, ValueError):  # pragma: no cover - not POSIX
        return "unknown"
    return "none" if soft == resource.RLIM_INFINITY else format_bytes(soft)


def _reserve(fd: int, size: int, where: str, what: str, fix: str) -> None:
    """Give the file ``size`` bytes, every page allocated now (or a SharedMemoryError)."""
    reserving = False
    try:
        os.ftruncate(fd, size)
        if hasattr(os, "posix_fallocate"):
            reserving = True
            os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if reserving and exc.errno in _CANNOT_RESERVE:
            return  # a file system that cannot reserve: pages come at their first use
        if exc.errno in _NO_SPACE:
            raise SharedMemoryError(
                exc.errno,
                f"{what} needs {format_bytes(size)} of shared memory, but "
                f"{_free_space(where)}. {fix} Or give the machine more shared memory: with "
                "Docker, `docker run --shm-size=4g ...` (or `--ipc=host`); elsewhere `mount -o "
                "remount,size=4G /dev/shm`.",
            ) from None
        raise SharedMemoryError(
            exc.errno, f"{what}: could not allocate {format_bytes(size)} in {where}: {exc}"
        ) from exc


class Segment:
    """An anonymous shared memory file and its mapping.

    Build one with ``create`` (the owner) or ``attach`` (a worker, from a received fd).

    Attributes:
        fd: the file descriptor the owner hands to workers (None once closed, and in
            workers, which keep only the mapping).
        size: bytes.
        buffer: the mapping.
    """

    def __init__(self, fd: int, size: int, *, keep_fd: bool) -> None:
        self.size = size
        try:
            self.buffer: mmap.mmap = mmap.mmap(fd, size)
        except BaseException:
            os.close(fd)
            raise
        self.fd: int | None = fd
        if not keep_fd:
            os.close(fd)
            self.fd = None
        self._open = True

    @staticmethod
    def create(size: int, *, what: str, fix: str) -> Segment:
        """A new zero-filled segment of ``size`` bytes, every page reserved.

        Args:
            size: bytes (at least 1 is allocated).
            what: what it holds, for the error message ("the trajectory buffer ...").
            fix: how to need less, for the error message.

        Raises:
            SharedMemoryError: not enough shared memory (nothing is left allocated).
        """
        size = max(int(size), 1)
        fd, where = _anonymous_file()
        try:
            _reserve(fd, size, where, what, fix)
        except BaseException:
            os.close(fd)
            raise
        try:
            return Segment(fd, size, keep_fd=True)  # closes fd if the mapping fails
        except OSError as exc:
            if exc.errno != errno.ENOMEM:  # EMFILE (mmap dups the fd): the caller says
                raise
            raise SharedMemoryError(  # the address space is limited (ulimit -v) or full
                exc.errno,
                f"{what}: could not map its {format_bytes(size)} of shared memory into this "
                f"process ({exc.strerror or exc}; address space limit: {_address_limit()}). "
                f"{fix} Or raise the limit (`ulimit -v`, RLIMIT_AS).",
            ) from None

    @staticmethod
    def attach(fd: int, size: int) -> Segment:
        """Map a segment received as ``fd`` (in a worker); the fd is closed once mapped."""
        return Segment(fd, max(int(size), 1), keep_fd=False)

    def fileno(self) -> int:
        """The owner's file descriptor, to hand to a worker.

        Raises:
            ValueError: the segment was attached (workers keep no fd) or is closed.
        """
        if self.fd is None:
            raise ValueError("this segment holds no file descriptor (attached, or closed)")
        return self.fd

    def close(self) -> None:
        """Close the fd and unmap. Idempotent.

        While numpy views of the buffer still exist, the unmapping is deferred to their
        garbage collection; calling ``close()`` again once they are gone unmaps at once.
        """
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)
        if self._open:
            try:
                self.buffer.close()
            except BufferError:
                return  # views are alive: unmapped when they are collected, or a later close()
            self._open = False
