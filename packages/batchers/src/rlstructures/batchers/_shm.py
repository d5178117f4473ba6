"""Shared memory segments that never outlive their users.

A segment is a file in /dev/shm (named ``rls_<pid>_<random>``) mapped by the parent and the
workers. The parent unlinks the name as soon as every worker has mapped it: the memory
stays valid while mapped and is released by the kernel when the last process unmaps it or
exits, so nothing is left in /dev/shm even when a process is killed. No resource_tracker
is involved, hence none of its warnings.
"""

from __future__ import annotations

import mmap
import os
import secrets
import tempfile
from typing import Final

__all__ = ["SHM_DIR", "Segment"]

SHM_DIR: Final = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
PREFIX: Final = "rls_"


class Segment:
    """A named, mapped shared memory file.

    Args:
        path: the file path.
        size: its size in bytes.
        create: create it (exclusively) instead of opening an existing one.
    """

    def __init__(self, path: str, size: int, *, create: bool) -> None:
        self.path = path
        self.size = max(int(size), 1)
        flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
        fd = os.open(path, flags, 0o600)
        try:
            if create:
                os.ftruncate(fd, self.size)
            self.buffer: mmap.mmap = mmap.mmap(fd, self.size)
        except BaseException:
            if create:
                os.unlink(path)
            raise
        finally:
            os.close(fd)
        self._owner = create
        self._open = True

    @staticmethod
    def create(size: int) -> Segment:
        """A new zero-filled segment with a fresh name."""
        path = os.path.join(SHM_DIR, f"{PREFIX}{os.getpid()}_{secrets.token_hex(6)}")
        return Segment(path, size, create=True)

    @staticmethod
    def attach(path: str, size: int) -> Segment:
        """Map an existing segment (in a worker)."""
        return Segment(path, size, create=False)

    def unlink(self) -> None:
        """Remove the name (the memory lives on while mapped). Idempotent."""
        if self._owner:
            self._owner = False
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    def close(self) -> None:
        """Unmap (deferred to garbage collection while numpy views still exist). Idempotent."""
        if self._open:
            self._open = False
            try:
                self.buffer.close()
            except BufferError:
                pass  # views are alive; the mapping goes when they are collected
