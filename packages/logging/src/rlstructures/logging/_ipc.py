"""Arrow IPC helpers shared by the scalar logs and the trajectory files.

Both writers append record batches to files that another process may read while they are
written, and that a killed process leaves unfinished. The readers here therefore read
batch by batch and stop at the first damaged message instead of failing the whole file.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Final

# pyarrow is a hard dependency of rlstructures-logging, so a module-level import is allowed.
import pyarrow as pa  # noqa: TID253
import pyarrow.ipc  # noqa: TID253

__all__ = ["FILE_MAGIC", "create_exclusive", "read_ipc", "read_stream_batches"]

_log = logging.getLogger(__name__)

#: The first bytes of an Arrow IPC *file* (the stream format has no magic).
FILE_MAGIC: Final = b"ARROW1"
_FILE_PREFIX: Final = 8  # magic + 2 bytes of padding, then the same messages as a stream


def create_exclusive(path: Path) -> bool:
    """Create ``path`` empty if it does not exist; False if it already did (atomic)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def read_stream_batches(path: Path, offset: int = 0) -> tuple[Any, list[Any]]:
    """Read the schema and every complete record batch of an IPC stream, memory-mapped.

    Stops quietly at a clean end of file, and with a logged warning at a truncated or damaged
    message (what a writer killed mid-write leaves): the batches before it are returned.

    Args:
        path: the file.
        offset: where the stream starts (8 for the body of an unfinished IPC *file*).

    Returns:
        ``(schema, batches)``; schema is None when the file holds no complete schema yet.
    """
    if os.path.getsize(path) <= offset:
        return None, []
    source = pa.memory_map(str(path))
    source.seek(offset)
    try:
        reader = pa.ipc.open_stream(source)
    except (pa.ArrowInvalid, OSError) as exc:
        _log.warning("%s: no complete Arrow schema at its start (%s); skipped.", path, exc)
        return None, []
    batches: list[Any] = []
    while True:
        try:
            batches.append(reader.read_next_batch())
        except StopIteration:
            break
        except (pa.ArrowInvalid, OSError) as exc:
            _log.warning(
                "%s: stopped after %d complete record batches at a truncated one (%s); "
                "the process writing it probably died.",
                path, len(batches), exc,
            )
            break
    return reader.schema, batches


def read_ipc(path: Path) -> tuple[Any, list[Any], bool]:
    """Read an Arrow IPC file or stream, memory-mapped (numeric buffers are not copied).

    A finished IPC file is opened through its footer. An unfinished one (its writer did not
    close it) and a stream are read message by message up to the last complete batch.

    Returns:
        ``(schema, batches, finished)``; ``finished`` is False when a file had no footer.
    """
    with open(path, "rb") as fh:
        head = fh.read(len(FILE_MAGIC))
    if head != FILE_MAGIC:
        schema, batches = read_stream_batches(path)
        return schema, batches, True
    try:
        reader = pa.ipc.open_file(pa.memory_map(str(path)))
    except (pa.ArrowInvalid, OSError):
        schema, batches = read_stream_batches(path, _FILE_PREFIX)
        _log.warning(
            "%s: unfinished Arrow file (no footer: its writer was not closed); recovered "
            "%d complete record batches.", path, len(batches),
        )
        return schema, batches, False
    batches = [reader.get_batch(i) for i in range(reader.num_record_batches)]
    return reader.schema, batches, True
