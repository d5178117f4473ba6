"""The scalar table shared by every Logger backend, and its Arrow IPC stream backend.

Scalars are one long table, ``wall_time, step, tag, value``: one row per logged value, so a
new tag never changes the layout of what is already on disk.

The Arrow backend appends one record batch per flush to ``scalars-NNNNN.arrows``, an Arrow
IPC *stream* (no footer): a process killed at any point leaves a file that is readable up to
its last complete batch. Each Logger opens a new part, so nothing is ever rewritten.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

# pyarrow is a hard dependency of rlstructures-logging, so a module-level import is allowed.
import pyarrow as pa  # noqa: TID253
import pyarrow.ipc  # noqa: TID253

from rlstructures.logging._ipc import create_exclusive, read_stream_batches
from rlstructures.logging.errors import CorruptFileError

__all__ = [
    "ARROW_PART",
    "SCALAR_COLUMNS",
    "ArrowScalarWriter",
    "HParamValue",
    "ScalarBackend",
    "ScalarRows",
    "empty_scalar_table",
    "read_arrow_scalars",
    "scalar_schema",
]

#: Column names of the scalar table, in order.
SCALAR_COLUMNS: Final = ("wall_time", "step", "tag", "value")
#: File name pattern of the Arrow parts (an IPC stream each).
ARROW_PART: Final = "scalars-{:05d}.arrows"
_ARROW_PART_RE: Final = re.compile(r"^scalars-(\d{5,})\.arrows$")
_META_KEY: Final = b"rlstructures.logging"
_META: Final = json.dumps({"format": "rlstructures.scalars", "format_version": 1})

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


def empty_scalar_table() -> Any:
    """A ``pyarrow.Table`` of the scalar schema with no rows."""
    return scalar_schema().empty_table()


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

    def clear(self) -> None:
        """Drop every row."""
        self.wall_time.clear()
        self.step.clear()
        self.tag.clear()
        self.value.clear()

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
        """Hand over rows (the backend may buffer them until ``flush``)."""

    def write_hparams(self, hparams: Mapping[str, HParamValue]) -> None:
        """Record the run's hyperparameters (called at most once)."""

    def flush(self) -> None:
        """Push everything written so far to the operating system."""

    def close(self) -> None:
        """Flush and release the files."""


def _part_index(path: Path) -> int | None:
    match = _ARROW_PART_RE.match(path.name)
    return int(match.group(1)) if match else None


def arrow_parts(logdir: Path) -> list[Path]:
    """The Arrow scalar parts of ``logdir``, in part order."""
    found = [(i, p) for p in logdir.glob("scalars-*.arrows") if (i := _part_index(p)) is not None]
    return [p for _, p in sorted(found)]


class ArrowScalarWriter:
    """Appends scalars to a new ``scalars-NNNNN.arrows`` IPC stream in ``logdir``."""

    def __init__(self, logdir: Path) -> None:
        parts = arrow_parts(logdir)
        index = (_part_index(parts[-1]) or 0) + 1 if parts else 0
        while not create_exclusive(logdir / ARROW_PART.format(index)):
            index += 1  # another Logger took it meanwhile
        self.path = logdir / ARROW_PART.format(index)
        self._sink = pa.OSFile(str(self.path), "ab")  # the empty file just made: no O_TRUNC
        self._writer = pa.ipc.new_stream(self._sink, scalar_schema())
        # An empty batch makes the file a valid stream (schema included) from the start.
        self._writer.write_batch(ScalarRows().to_arrow())
        self._sink.flush()

    def write(self, rows: ScalarRows) -> None:
        """Append the rows as one record batch."""
        self._writer.write_batch(rows.to_arrow())

    def write_hparams(self, hparams: Mapping[str, HParamValue]) -> None:
        """Nothing: the Logger writes hparams.json itself."""

    def flush(self) -> None:
        """Push the written batches to the operating system."""
        self._sink.flush()

    def close(self) -> None:
        """Write the end-of-stream marker and close the file."""
        self._writer.close()
        self._sink.close()


def read_arrow_scalars(logdir: Path) -> Any:
    """Every Arrow part of ``logdir`` as one ``pyarrow.Table``; None when there is none.

    Raises:
        CorruptFileError: a part holds another schema than the scalar table.
    """
    parts = arrow_parts(logdir)
    if not parts:
        return None
    expected = scalar_schema()
    batches: list[Any] = []
    for path in parts:
        schema, found = read_stream_batches(path)
        if schema is None:
            continue
        if schema.names != expected.names or schema.types != expected.types:
            raise CorruptFileError(
                f"{path} holds columns {schema.names} of types {schema.types}, not the scalar "
                f"table {expected.names} ({expected.types}) that Logger writes. Move it out "
                "of the log directory."
            )
        batches.extend(b.replace_schema_metadata(expected.metadata) for b in found)
    return pa.Table.from_batches(batches, schema=expected)
