"""Arrow IPC reading shared by the trajectory files, checking everything that is read.

Writers append record batches to files that another process may read while they are
written, and that a killed process leaves unfinished. A file is therefore read as a stream
of messages (an IPC *file* is a stream after its 8-byte magic, then a footer), memory-mapped
(numeric buffers are not copied), and every batch is validated in full before anything
touches its buffers. At the first message that does not read:

* a *cut last message* (the file has no footer, and no valid message follows: what a writer
  killed mid-write leaves) ends the file quietly, with a logged warning;
* anything else is damage: `CorruptFileError` names the file and the byte offset, and
  carries the batches read before it as ``partial``.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

# pyarrow is a hard dependency of rlstructures-logging, so a module-level import is allowed.
import pyarrow as pa  # noqa: TID253
import pyarrow.ipc  # noqa: TID253

from rlstructures.logging.errors import CorruptFileError

__all__ = ["FILE_MAGIC", "READ_ERRORS", "IpcContents", "check_regular", "create_exclusive",
           "read_ipc"]

_log = logging.getLogger(__name__)

#: The first bytes of an Arrow IPC *file* (the stream format has no magic).
FILE_MAGIC: Final = b"ARROW1"
_FILE_PREFIX: Final = 8  # magic + 2 bytes of padding, then the same messages as a stream
_CONTINUATION: Final = b"\xff\xff\xff\xff"
_MAX_PROBES: Final = 4096
#: What pyarrow raises for bytes that are not a valid message (MemoryError: a damaged
#: length of a compressed buffer asks for exabytes).
READ_ERRORS: Final = (pa.ArrowException, OSError, EOFError, ValueError, MemoryError,
                      UnicodeDecodeError)


def check_regular(path: Path) -> None:
    """CorruptFileError unless ``path`` is a regular file (not a FIFO, a device...)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise
    except OSError as exc:  # a symlink loop (ELOOP), a name too long...
        raise CorruptFileError(f"{path} cannot be opened: {exc.strerror or exc}.",
                               path=path) from exc
    if stat.S_ISDIR(mode):
        raise CorruptFileError(f"{path} is a directory, not a file; move it away.", path=path)
    if not stat.S_ISREG(mode):
        raise CorruptFileError(f"{path} is not a regular file (a device, a FIFO?).", path=path)


def create_exclusive(path: Path) -> bool:
    """Create ``path`` empty if it does not exist; False if it already did (atomic)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    os.close(fd)
    return True


@dataclass(frozen=True)
class IpcContents:
    """What was read of an Arrow IPC file or stream.

    Attributes:
        schema: its schema (None when the file holds no complete schema yet).
        batches: the record batches, validated.
        metadata: each batch's custom metadata (None where it has none).
        finished: False for an IPC file without a valid footer (its writer did not close it).
    """

    schema: Any
    batches: list[Any]
    metadata: list[Any]
    finished: bool


def _valid_message_after(source: Any, schema: Any, start: int) -> bool:
    """True when a complete, valid record batch message starts somewhere after ``start``."""
    size = source.size()
    raw = bytes(source.read_at(size - start, start))  # the failure path only
    at, probes = raw.find(_CONTINUATION, 1), 0
    while at >= 0 and probes < _MAX_PROBES:
        probes += 1
        try:
            message = pa.ipc.read_message(pa.py_buffer(raw[at:]))
            if message.type == "record batch":
                pa.ipc.read_record_batch(message, schema).validate(full=True)
                return True
        except READ_ERRORS:
            pass
        at = raw.find(_CONTINUATION, at + 1)
    return False


def _has_footer(source: Any, size: int) -> bool:
    """True when an IPC file ends with a footer: its length, then the magic ``ARROW1``."""
    if size < _FILE_PREFIX + len(FILE_MAGIC) + 4:
        return False
    tail = bytes(source.read_at(len(FILE_MAGIC) + 4, size - len(FILE_MAGIC) - 4))
    footer = int.from_bytes(tail[:4], "little", signed=True)
    return tail[4:] == FILE_MAGIC and 0 < footer <= size - _FILE_PREFIX - len(tail)


def _footer_start(source: Any, size: int) -> int:
    """Where the footer of an IPC file starts (its messages end there)."""
    tail = bytes(source.read_at(4, size - len(FILE_MAGIC) - 4))
    return size - len(FILE_MAGIC) - 4 - int.from_bytes(tail, "little", signed=True)


def read_ipc(path: Path) -> IpcContents:
    """Read an Arrow IPC file or stream, memory-mapped (see the module docstring).

    Raises:
        CorruptFileError: a damaged file; ``partial`` holds the batches read before the
            damage (a list of record batches).
    """
    check_regular(path)
    with open(path, "rb") as fh:
        head = fh.read(_FILE_PREFIX)
    is_file = head.startswith(FILE_MAGIC)
    start = _FILE_PREFIX if is_file else 0
    source = pa.memory_map(str(path))
    size = source.size()
    if size <= start:
        return IpcContents(None, [], [], False)
    closed = is_file and _has_footer(source, size)  # its writer closed it
    if not closed:
        # Its writer may still append, or cut a failed write back: read it (copies) rather
        # than map it, so that a cut under the reader can never be a SIGBUS.
        source = pa.OSFile(str(path))
        size = source.size()
    source.seek(start)
    try:
        reader = pa.ipc.open_stream(source)
        schema = reader.schema
        _ = schema.names, schema.metadata  # decodes the names (UTF-8) now
    except READ_ERRORS as exc:
        if not closed:  # unfinished: its writer may have died writing the schema
            _log.warning("%s: no complete Arrow schema at its start (%s).", path, exc)
            return IpcContents(None, [], [], False)
        raise CorruptFileError(f"{path}: no valid Arrow schema at its start ({exc}).",
                               path=path, offset=start) from exc
    batches: list[Any] = []
    metadata: list[Any] = []
    while True:
        offset = source.tell()
        try:
            batch, meta = reader.read_next_batch_with_custom_metadata()
        except StopIteration:
            end = _footer_start(source, size) if closed else size
            if source.tell() != end:  # a damaged message that reads as end-of-stream
                problem = (f"an end-of-stream marker {end - source.tell()} bytes before the "
                           "end of the messages")
                break
            return IpcContents(schema, batches, metadata, closed)
        except READ_ERRORS as exc:
            if not closed and not _valid_message_after(source, schema, offset):
                _log.warning("%s: stopped after %d complete record batches at a cut one "
                             "(%s): its writer died, or is writing it now.", path,
                             len(batches), exc)
                return IpcContents(schema, batches, metadata, False)
            problem = f"a damaged message ({type(exc).__name__}: {exc})"
            break
        try:
            batch.validate(full=True)
        except READ_ERRORS as exc:
            problem = f"an invalid record batch ({exc})"
            break
        if any(column.null_count for column in batch.columns):
            problem = "a record batch with missing values (this package writes none)"
            break
        batches.append(batch)
        metadata.append(meta)
    raise CorruptFileError(
        f"{path} is damaged at byte {offset}: {problem}.", path=path, offset=offset,
        partial=batches)
