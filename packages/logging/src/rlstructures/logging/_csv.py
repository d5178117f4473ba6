"""CSV backend of the Logger: ``scalars.csv``, one ``wall_time,step,tag,value`` row per value.

Several Loggers (processes, or threads of one process) may append to the same
``scalars.csv``. Each flush runs under an exclusive advisory lock on the file
(``fcntl.flock``), held only for that flush:

* the rows go out as whole lines with ``os.write`` on a file opened with ``O_APPEND``;
* a failed write (disk full, file size limit) is cut back to the size the file had when
  the lock was taken, so the file keeps only whole lines and nobody else's rows;
* a partial last line found *under the lock* was left by a process that died inside its
  write (a live writer never leaves one outside the lock), so it is provably dead and is cut
  before appending. Nothing else ever truncates the file, and opening a Logger changes
  nothing, so a second Logger can never cut the lines of a live one.

Where ``flock`` is not supported (some network file systems), a partial last line is left
alone and the rows start on a new line; readers then report that line as damaged.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Final

from rlstructures.logging._appendfile import (
    failed_write,
    file_id,
    undo_append,
    write_all,
)
from rlstructures.logging._scalars import SCALAR_COLUMNS, HParamValue, ScalarRows
from rlstructures.logging.errors import CorruptFileError, LogWriteError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]  # no advisory locks there

__all__ = ["CSV_HEADER", "CSV_NAME", "CsvScalarWriter", "format_rows"]

_log = logging.getLogger(__name__)

CSV_NAME: Final = "scalars.csv"
CSV_HEADER: Final = (",".join(SCALAR_COLUMNS) + "\n").encode()
_NEEDS_QUOTES: Final = frozenset(',"')
_TAIL_CHUNK: Final = 1 << 16
#: How long a flush waits for another process's flush of the same file.
LOCK_TIMEOUT: Final = 60.0
_NO_LOCKS: Final = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.ENOSYS}
_FLAGS: Final = os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)


def _quote(tag: str) -> str:
    """A CSV field for ``tag`` (RFC 4180: quoted when it holds a comma, a quote or spaces)."""
    if _NEEDS_QUOTES.intersection(tag) or tag != tag.strip():
        return '"' + tag.replace('"', '""') + '"'
    return tag


def format_rows(rows: ScalarRows) -> bytes:
    """The rows as UTF-8 CSV lines (floats in their shortest round-trip form)."""
    lines = [
        f"{w!r},{s},{_quote(t)},{v!r}\n"
        for w, s, t, v in zip(rows.wall_time, rows.step, rows.tag, rows.value, strict=True)
    ]
    return "".join(lines).encode("utf-8")


def _complete_size(fd: int, size: int) -> int:
    """Size of the file up to and including its last newline."""
    end = size
    while end > 0:
        start = max(0, end - _TAIL_CHUNK)
        cut = os.pread(fd, end - start, start).rfind(b"\n")
        if cut >= 0:
            return start + cut + 1
        end = start
    return 0


class CsvScalarWriter:
    """Appends scalars to ``logdir/scalars.csv`` (created with its header if missing)."""

    def __init__(self, logdir: Path) -> None:
        self.path = logdir / CSV_NAME
        self._locks = fcntl is not None
        self._fd = -1
        self._open()
        try:
            with self._locked():
                pass  # creates the header, or checks it
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)  # it may have been removed
        fd = os.open(self.path, _FLAGS, 0o644)
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):  # a FIFO would hang readers, /dev/null lose every row
            os.close(fd)
            kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device" if (
                stat.S_ISCHR(mode) or stat.S_ISBLK(mode)) else "not a regular file"
            raise CorruptFileError(
                f"{self.path} is {kind} (through a symlink?), not the regular file that "
                "Logger appends its rows to. Move it away, or use another log directory.",
                path=self.path,
            )
        self._fd = fd
        self._id = file_id(fd)
        self._header_checked = False

    def _same_file(self) -> bool:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        return (st.st_dev, st.st_ino) == self._id

    @contextlib.contextmanager
    def _locked(self) -> Iterator[int]:
        """Hold the file's lock (reopening it if ``path`` was replaced); yield its size."""
        for _ in range(100):
            self._lock()
            if self._same_file():
                break
            self._unlock()
            _log.warning("%s was removed or replaced while a Logger was appending to it; "
                         "appending to the file now at that path.", self.path)
            os.close(self._fd)
            self._open()
        else:
            raise LogWriteError(errno.ESTALE, f"{self.path} keeps being replaced; not written.")
        try:
            if not self._header_checked:
                self._check_header(os.fstat(self._fd).st_size)
                self._header_checked = True
            yield os.fstat(self._fd).st_size
        finally:
            self._unlock()

    def _lock(self) -> None:
        if not self._locks:
            return
        deadline = time.monotonic() + LOCK_TIMEOUT
        pause = 1e-4
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LogWriteError(
                        errno.EAGAIN,
                        f"{self.path} stayed locked by another Logger for {LOCK_TIMEOUT:.0f} "
                        "s (a process stopped in the middle of a flush?); the rows stay "
                        "pending and the next flush retries.",
                    ) from None
                time.sleep(pause)
                pause = min(2 * pause, 0.05)
            except OSError as exc:
                if exc.errno not in _NO_LOCKS:
                    raise
                self._locks = False
                _log.warning("%s: this file system does not support flock (%s); a partial "
                             "line left by a dead writer will not be repaired.", self.path, exc)
                return

    def _unlock(self) -> None:
        if self._locks:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _check_header(self, size: int) -> None:
        """Under the lock: write the header of an empty file, refuse a foreign one."""
        head = os.pread(self._fd, len(CSV_HEADER), 0)
        if head == CSV_HEADER:
            return
        if size > len(head) or not CSV_HEADER.startswith(head):
            raise CorruptFileError(
                f"{self.path} exists but starts with {head[:80]!r}, not the header "
                f"{CSV_HEADER.decode()!r} that Logger writes. Use another log directory, or "
                "move that file away."
            )
        if head:  # part of a header: its writer died while writing it
            os.ftruncate(self._fd, 0)
        self._append(CSV_HEADER, 0)

    def _append(self, data: bytes, size: int) -> None:
        try:
            write_all(self._fd, data)
        except BaseException as exc:
            broken = undo_append(self._fd, size, self.path, exc)
            if broken is not None:
                raise broken from exc
            if isinstance(exc, OSError):
                raise failed_write(self.path, exc, "scalar rows") from exc
            raise

    def write(self, rows: ScalarRows) -> None:
        """Append the rows as whole lines, under the lock; all or nothing."""
        data = format_rows(rows)
        with self._locked() as size:
            if size and os.pread(self._fd, 1, size - 1) != b"\n":
                if self._locks:
                    complete = _complete_size(self._fd, size)
                    _log.warning(
                        "%s: cut %d bytes of an incomplete last line left by a process that "
                        "died while writing it.", self.path, size - complete)
                    os.ftruncate(self._fd, complete)
                    size = complete
                else:
                    data = b"\n" + data
            self._append(data, size)

    def write_hparams(self, hparams: Mapping[str, HParamValue]) -> None:
        """Nothing: the Logger writes hparams.json itself."""

    def close(self) -> None:
        """Close the file."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

