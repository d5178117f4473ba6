"""The scalar table shared by every Logger backend, and its Arrow IPC stream backend.

Scalars are one long table, ``wall_time, step, tag, value``: one row per logged value, so a
new tag never changes the layout of what is already on disk.

The Arrow backend appends one record batch per flush to ``scalars-NNNNN.arrows``, an Arrow
IPC *stream* (no footer): a process killed at any point leaves a file that is readable up to
its last complete batch. Each Logger opens a new part, so nothing is ever rewritten. The
messages are encoded in memory and appended with one all-or-nothing write (a full disk
leaves the file as it was). Each batch carries, in its custom metadata, its number in the
file and a CRC-32 of its values, so a reader notices flipped bits, a lost or repeated batch.
"""

from __future__ import annotations

import json
import logging
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np

# pyarrow is a hard dependency of rlstructures-logging, so a module-level import is allowed.
import pyarrow as pa  # noqa: TID253
import pyarrow.ipc  # noqa: TID253

from rlstructures.logging._appendfile import ExclusiveAppender
from rlstructures.logging._ipc import create_exclusive

__all__ = [
    "ARROW_PART",
    "CRC_KEY",
    "EOS",
    "SCALAR_COLUMNS",
    "SEQ_KEY",
    "ArrowScalarWriter",
    "HParamValue",
    "ScalarBackend",
    "ScalarRows",
    "arrow_parts",
    "batch_crc",
    "empty_scalar_table",
    "scalar_schema",
    "schema_message",
]

_log = logging.getLogger(__name__)

#: Column names of the scalar table, in order.
SCALAR_COLUMNS: Final = ("wall_time", "step", "tag", "value")
#: File name pattern of the Arrow parts (an IPC stream each).
ARROW_PART: Final = "scalars-{:05d}.arrows"
_ARROW_PART_RE: Final = re.compile(r"^scalars-(\d{5,})\.arrows$")
_META_KEY: Final = b"rlstructures.logging"
_META: Final = json.dumps({"format": "rlstructures.scalars", "format_version": 1})
#: Custom metadata keys of each record batch: its number in the file, the CRC of its values.
SEQ_KEY: Final = b"rlstructures.seq"
CRC_KEY: Final = b"rlstructures.crc32"
#: The end-of-stream marker of the Arrow IPC stream format.
EOS: Final = b"\xff\xff\xff\xff\x00\x00\x00\x00"

#: A hyperparameter value after normalisation (JSON-compatible).
HParamValue = bool | int | float | str | None | list[bool | int | float | str | None]


def scalar_schema() -> Any:
    """The Arrow schema of the scalar table (``pyarrow.Schema``)."""
    return pa.schema(
        [
            pa.field("wall_time", pa.float64(), nullable=False),
            pa.field("step", pa.int64(), nullable=False),
            pa.field("tag", pa.string(), nullable=False),
            pa.field("value", pa.float64(), nullable=False),
        ],
        metadata={_META_KEY: _META.encode()},
    )


def schema_message() -> bytes:
    """The first message of every Arrow part: the scalar schema."""
    return bytes(scalar_schema().serialize())


def empty_scalar_table() -> Any:
    """A ``pyarrow.Table`` of the scalar schema with no rows."""
    return scalar_schema().empty_table()


def batch_crc(batch: Any) -> int:
    """CRC-32 of a (validated) scalar batch's values: the same before writing and after reading.

    Covers the row count, the three numeric columns and the tags (their offsets relative to
    the first one, and the UTF-8 bytes they span), so it does not depend on buffer padding.
    """
    crc = zlib.crc32(np.int64(batch.num_rows).tobytes())
    for name in ("wall_time", "step", "value"):
        crc = zlib.crc32(np.ascontiguousarray(batch.column(name)).data, crc)
    tags = batch.column("tag")
    _, offsets_buffer, data = tags.buffers()
    n = len(tags)
    offsets = np.frombuffer(offsets_buffer, np.int32, n + 1, 4 * tags.offset).astype(np.int64)
    crc = zlib.crc32(memoryview(offsets - offsets[0]), crc)
    if data is not None and offsets[-1] > offsets[0]:
        crc = zlib.crc32(memoryview(data)[int(offsets[0]) : int(offsets[-1])], crc)
    return crc


@dataclass(slots=True)
class ScalarRows:
    """Pending scalars, column by column (plain Python values)."""

    wall_time: list[float] = field(default_factory=list)
    step: list[int] = field(default_factory=list)
    tag: list[str] = field(default_factory=list)
    value: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.step)

    def append(self, wall_time: float, step: int, tag: str, value: float) -> None:
        """Add one row."""
        self.wall_time.append(wall_time)
        self.step.append(step)
        self.tag.append(tag)
        self.value.append(value)

    def extend(self, other: ScalarRows) -> None:
        """Add every row of ``other`` after these."""
        self.wall_time.extend(other.wall_time)
        self.step.extend(other.step)
        self.tag.extend(other.tag)
        self.value.extend(other.value)

    def drop_first(self, n: int) -> None:
        """Forget the ``n`` oldest rows."""
        del self.wall_time[:n], self.step[:n], self.tag[:n], self.value[:n]

    def to_arrow(self) -> Any:
        """The rows as a ``pyarrow.RecordBatch`` of ``scalar_schema()``."""
        return pa.RecordBatch.from_arrays(
            [
                pa.array(self.wall_time, pa.float64()),
                pa.array(self.step, pa.int64()),
                pa.array(self.tag, pa.string()),
                pa.array(self.value, pa.float64()),
            ],
            schema=scalar_schema(),
        )


class ScalarBackend(Protocol):
    """What the Logger asks of a storage backend."""

    def write(self, rows: ScalarRows) -> None:
        """Write the rows and hand them to the operating system, all or nothing.

        Raises:
            LogWriteError: nothing of ``rows`` was written (the file is as it was).
        """

    def write_hparams(self, hparams: Mapping[str, HParamValue]) -> None:
        """Record the run's hyperparameters (called at most once)."""

    def close(self) -> None:
        """Release the files (everything was written by ``write``)."""


def _part_index(path: Path) -> int | None:
    match = _ARROW_PART_RE.match(path.name)
    return int(match.group(1)) if match else None


def arrow_parts(logdir: Path) -> list[Path]:
    """The Arrow scalar parts of ``logdir``, in part order."""
    found = [(i, p) for p in logdir.glob("scalars-*.arrows") if (i := _part_index(p)) is not None]
    return [p for _, p in sorted(found)]


def _encode_batch(batch: Any, seq: int) -> bytes:
    """One record batch message, with its number and CRC in its custom metadata."""
    sink = pa.BufferOutputStream()
    writer = pa.ipc.new_stream(sink, batch.schema)
    meta = {SEQ_KEY: str(seq).encode(), CRC_KEY: f"{batch_crc(batch):08x}".encode()}
    writer.write_batch(batch, custom_metadata=meta)
    writer.close()
    data = sink.getvalue()
    schema_size = len(schema_message())
    return bytes(data[schema_size : len(data) - len(EOS)])


class ArrowScalarWriter:
    """Appends scalars to a new ``scalars-NNNNN.arrows`` IPC stream in ``logdir``."""

    def __init__(self, logdir: Path) -> None:
        self._logdir = logdir
        self._open_part()

    def _open_part(self) -> None:
        self._logdir.mkdir(parents=True, exist_ok=True)  # it may have been removed
        parts = arrow_parts(self._logdir)
        index = (_part_index(parts[-1]) or 0) + 1 if parts else 0
        while not create_exclusive(self._logdir / ARROW_PART.format(index)):
            index += 1  # another Logger took it meanwhile
        self.path = self._logdir / ARROW_PART.format(index)
        self._file = ExclusiveAppender(self.path)
        self._seq = 0
        try:
            self._file.append(schema_message(), "the Arrow schema")
        except BaseException:
            self._file.close()
            raise

    def write(self, rows: ScalarRows) -> None:
        """Append the rows as one record batch message, all or nothing."""
        if self._file.replaced():
            _log.warning("%s was removed or replaced while a Logger was writing it; going "
                         "on in a new part.", self.path)
            self._file.close()
            self._open_part()
        self._file.append(_encode_batch(rows.to_arrow(), self._seq), "scalar rows")
        self._seq += 1

    def write_hparams(self, hparams: Mapping[str, HParamValue]) -> None:
        """Nothing: the Logger writes hparams.json itself."""

    def close(self) -> None:
        """Write the end-of-stream marker (when the disk lets it) and close the file."""
        try:
            self._file.append(EOS, "the end-of-stream marker")
        except OSError as exc:  # the stream is valid without it
            _log.warning("%s: no end-of-stream marker written (%s); readers do not need it.",
                         self.path, exc)
        finally:
            self._file.close()
