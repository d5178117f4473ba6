"""Reading the scalar logs back (CSV and Arrow parts), checking everything that is read.

What a crash leaves, a cut last record (a partial CSV line, a partial Arrow message at the
end of a part that has no end-of-stream marker), is dropped with a warning: the rows before
it are the run's log. Anything else that does not read back exactly as written is damage:
`CorruptFileError` names the file and the byte offset of the first bad line or batch, and
carries the rows before it as ``partial``. Arrow batches are validated in full (offsets,
UTF-8) before anything touches their buffers, and their sequence number and CRC-32 are
checked, so a flipped bit, a lost or repeated batch is an error and never a wrong table.
Files are read into memory, never memory-mapped: logs are small, and a file truncated by
someone else while its table is in use cannot crash the process (SIGBUS).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Final

import numpy as np

# pyarrow is a hard dependency of rlstructures-logging, so a module-level import is allowed.
import pyarrow as pa  # noqa: TID253
import pyarrow.csv  # noqa: TID253
import pyarrow.ipc  # noqa: TID253

from rlstructures.logging._csv import CSV_HEADER
from rlstructures.logging._ipc import check_regular
from rlstructures.logging._scalars import (
    CRC_KEY,
    EOS,
    SEQ_KEY,
    arrow_parts,
    batch_crc,
    empty_scalar_table,
    scalar_schema,
    schema_message,
)
from rlstructures.logging.errors import CorruptFileError

__all__ = ["read_arrow_scalars", "read_csv_scalars"]

_log = logging.getLogger(__name__)

_CONTINUATION: Final = b"\xff\xff\xff\xff"
#: At most this many candidate positions are tried when looking for a message after damage.
_MAX_PROBES: Final = 4096


def _table(batches: list[Any]) -> Any:
    schema = scalar_schema()
    return pa.Table.from_batches(
        [b.replace_schema_metadata(schema.metadata) for b in batches], schema=schema)


def _check_batch(batch: Any, meta: Any, seq: int) -> str | None:
    """What is wrong with a batch read from a part, or None (validation first, then CRC)."""
    expected = scalar_schema()
    if batch.schema.names != expected.names or batch.schema.types != expected.types:
        return f"a batch of columns {batch.schema.names} ({batch.schema.types})"
    try:
        batch.validate(full=True)
    except pa.ArrowException as exc:
        return f"an invalid batch ({exc})"
    if any(column.null_count for column in batch.columns):
        return "a batch with missing values"
    if meta is None or CRC_KEY not in meta:
        return None  # written by a version without checksums
    if meta.get(SEQ_KEY) != str(seq).encode():
        return f"batch number {meta.get(SEQ_KEY)!r} where {seq} was expected (lost or repeated)"
    if meta[CRC_KEY] != f"{batch_crc(batch):08x}".encode():
        return "a batch whose CRC-32 does not match its values (flipped bits)"
    return None


def _valid_message_after(data: memoryview, start: int) -> bool:
    """True when a complete, valid record batch message starts somewhere after ``start``.

    Tells a cut last message (a crash: nothing valid follows) from damage in the middle.
    """
    schema, raw = scalar_schema(), bytes(data[start:])
    at, probes = raw.find(_CONTINUATION, 1), 0
    while at >= 0 and probes < _MAX_PROBES:
        probes += 1
        try:
            message = pa.ipc.read_message(pa.py_buffer(raw[at:]))
            if message.type == "record batch":
                batch = pa.ipc.read_record_batch(message, schema)
                batch.validate(full=True)
                return True
        except (pa.ArrowException, OSError, EOFError, ValueError, MemoryError):
            pass
        at = raw.find(_CONTINUATION, at + 1)
    return False


def read_arrow_part(path: Path) -> list[Any]:
    """The record batches of one Arrow part, checked (see the module docstring).

    Raises:
        CorruptFileError: a damaged part; ``partial`` holds the batches before the damage.
    """
    check_regular(path)
    data = memoryview(path.read_bytes())
    head = schema_message()
    if len(data) < len(head) and head.startswith(data):
        if len(data):
            _log.warning("%s: cut inside its schema (its writer died creating it); skipped.",
                         path)
        return []
    source = pa.BufferReader(pa.py_buffer(data))
    try:
        reader = pa.ipc.open_stream(source)
        if bytes(data[: len(head)]) != head:
            schema = reader.schema
            expected = scalar_schema()
            if schema.names != expected.names or schema.types != expected.types:
                raise CorruptFileError(
                    f"{path} holds columns {schema.names} of types {schema.types}, not the "
                    f"scalar table {expected.names} ({expected.types}) that Logger writes. "
                    "Move it out of the log directory.", path=path, offset=0)
    except (pa.ArrowException, OSError, EOFError, ValueError, MemoryError) as exc:
        raise CorruptFileError(f"{path} does not start with an Arrow stream schema ({exc}).",
                               path=path, offset=0) from exc
    closed = bytes(data[-len(EOS):]) == EOS
    batches: list[Any] = []
    while True:
        offset = source.tell()
        try:
            batch, meta = reader.read_next_batch_with_custom_metadata()
        except StopIteration:
            if source.tell() < len(data):
                problem = f"an end-of-stream marker followed by {len(data) - source.tell()} bytes"
                break
            return batches
        except (pa.ArrowException, OSError, EOFError, ValueError, MemoryError) as exc:
            if not closed and not _valid_message_after(data, offset):
                _log.warning("%s: stopped after %d complete record batches at a cut one "
                             "(%s): its writer died, or is writing it now.", path,
                             len(batches), exc)
                return batches
            problem = f"a damaged message ({exc})"
            break
        problem = _check_batch(batch, meta, len(batches)) or ""
        if problem:
            break
        batches.append(batch)
    raise CorruptFileError(
        f"{path} is damaged at byte {offset}: {problem}. The {len(batches)} record batches "
        "before it are in this error's `partial` attribute.",
        path=path, offset=offset, partial=_table(batches))


def read_arrow_scalars(logdir: Path) -> Any:
    """Every Arrow part of ``logdir`` as one ``pyarrow.Table``; None when there is none.

    Raises:
        CorruptFileError: a damaged part or one holding another schema; ``partial`` holds
            the rows of the parts before it and of that part before the damage.
    """
    parts = arrow_parts(logdir)
    if not parts:
        return None
    batches: list[Any] = []
    for path in parts:
        try:
            batches.extend(read_arrow_part(path))
        except CorruptFileError as exc:
            partial: Any = exc.partial
            exc.partial = _table([*batches, *(partial.to_batches() if partial else [])])
            raise
    return _table(batches)


def _parse_csv(data: bytes) -> Any:
    schema = scalar_schema()
    convert = pa.csv.ConvertOptions(
        column_types=dict(zip(schema.names, schema.types, strict=True)),
        null_values=[],
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
        check_utf8=True,
    )
    parse = pa.csv.ParseOptions(newlines_in_values=False, ignore_empty_lines=False)
    # One block for the whole file: a row never straddles two blocks.
    read = pa.csv.ReadOptions(block_size=max(1 << 20, len(data) + 1))
    table = pa.csv.read_csv(pa.py_buffer(data), read_options=read, parse_options=parse,
                            convert_options=convert)
    if table.column_names != list(schema.names):
        raise pa.ArrowInvalid(f"columns {table.column_names}")
    return table.cast(schema)


def _first_bad_line(data: bytes) -> tuple[int, int]:
    """``(line index, byte offset)`` of the first line that makes the CSV fail (bisection).

    ``data`` (complete lines, a good header) does not parse; the lines before the one
    returned do.
    """
    ends = np.flatnonzero(np.frombuffer(data, np.uint8) == ord("\n")) + 1
    good, bad = 1, len(ends)  # the first `good` lines parse, the first `bad` do not
    while bad - good > 1:
        mid = (good + bad) // 2
        try:
            _parse_csv(data[: int(ends[mid - 1])])
            good = mid
        except (pa.ArrowException, ValueError):
            bad = mid
    return bad - 1, int(ends[bad - 2])


def read_csv_scalars(path: Path) -> Any:
    """``scalars.csv`` as a ``pyarrow.Table`` of the scalar schema.

    A partial last line (left by a process killed while writing it) is ignored.

    Raises:
        CorruptFileError: the header is not ``wall_time,step,tag,value``, or a line does not
            parse; ``offset`` is the byte where that line starts and ``partial`` holds the
            rows before it.
    """
    check_regular(path)
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    if len(complete) < len(data) and complete:
        _log.warning("%s: ignored a partial last line of %d bytes (its writer died while "
                     "writing it, or is writing it now).", path, len(data) - len(complete))
    if not complete:
        return empty_scalar_table()
    if not complete.startswith(CSV_HEADER):
        raise CorruptFileError(
            f"{path} does not start with the header {CSV_HEADER.decode()!r} that Logger "
            "writes.", path=path, offset=0)
    try:
        return _parse_csv(complete)
    except (pa.ArrowException, ValueError) as exc:
        line, start = _first_bad_line(complete)
        text = complete[start : complete.find(b"\n", start)][:120]
        partial = _parse_csv(complete[:start])
        raise CorruptFileError(
            f"{path} is damaged at line {line + 1} (byte {start}): {text!r} does not parse "
            f"as wall_time,step,tag,value ({exc}). The {partial.num_rows} rows before it are "
            "in this error's `partial` attribute.",
            path=path, offset=start, partial=partial) from exc

