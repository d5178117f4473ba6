"""CSV backend of the Logger: ``scalars.csv``, one ``wall_time,step,tag,value`` row per value.

Crash safety: rows wait in memory until a flush, which appends them as whole lines with
``os.write`` on a file opened with ``O_APPEND`` (no Python-level buffer that could reach the
disk cut in the middle of a line). A process killed between flushes leaves only complete
lines. A kill *during* the ``write`` system call of a large flush could, rarely, leave a
partial last line: readers here ignore it, and the next Logger on the same directory cuts it
before appending.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

# pyarrow is a hard dependency of rlstructures-logging, so a module-level import is allowed.
import pyarrow as pa  # noqa: TID253
import pyarrow.csv  # noqa: TID253

from rlstructures.logging._scalars import (
    SCALAR_COLUMNS,
    HParamValue,
    ScalarRows,
    empty_scalar_table,
    scalar_schema,
)
from rlstructures.logging.errors import CorruptFileError

__all__ = ["CSV_HEADER", "CSV_NAME", "CsvScalarWriter", "format_rows", "read_csv_scalars"]

_log = logging.getLogger(__name__)

CSV_NAME: Final = "scalars.csv"
CSV_HEADER: Final = ",".join(SCALAR_COLUMNS) + "\n"
_NEEDS_QUOTES: Final = frozenset(',"')
_TAIL_CHUNK: Final = 1 << 16


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


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _complete_size(path: Path) -> int:
    """Size of ``path`` up to and including its last newline."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        end = size
        while end > 0:
            start = max(0, end - _TAIL_CHUNK)
            fh.seek(start)
            cut = fh.read(end - start).rfind(b"\n")
            if cut >= 0:
                return start + cut + 1
            end = start
    return 0


def _check_header(path: Path) -> None:
    with open(path, "rb") as fh:
        first = fh.readline()
    if first != CSV_HEADER.encode():
        raise CorruptFileError(
            f"{path} exists but starts with {first[:80]!r}, not the header {CSV_HEADER!r} "
            "that Logger writes. Use another log directory, or move that file away."
        )


class CsvScalarWriter:
    """Appends scalars to ``logdir/scalars.csv`` (created with its header if missing)."""

    def __init__(self, logdir: Path) -> None:
        self.path = logdir / CSV_NAME
        if self.path.exists() and os.path.getsize(self.path) > 0:
            complete = _complete_size(self.path)
            if complete < os.path.getsize(self.path):
                _log.warning(
                    "%s: cut %d bytes of an incomplete last line left by a process that died "
                    "while writing it.", self.path, os.path.getsize(self.path) - complete,
                )
                os.truncate(self.path, complete)
            if complete:
                _check_header(self.path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if os.fstat(self._fd).st_size == 0:
            _write_all(self._fd, CSV_HEADER.encode())

    def write(self, rows: ScalarRows) -> None:
        """Append the rows as whole lines, in one system call."""
        _write_all(self._fd, format_rows(rows))

    def write_hparams(self, hparams: Mapping[str, HParamValue]) -> None:
        """Nothing: the Logger writes hparams.json itself."""

    def flush(self) -> None:
        """Nothing to do: ``write`` already hands every line to the operating system."""

    def close(self) -> None:
        """Close the file."""
        os.close(self._fd)


def read_csv_scalars(path: Path) -> Any:
    """``scalars.csv`` as a ``pyarrow.Table`` of the scalar schema.

    A partial last line (left by a process killed while writing it) is ignored.

    Raises:
        CorruptFileError: the header is not ``wall_time,step,tag,value`` or a line does not
            parse.
    """
    data = path.read_bytes()
    data = data[: data.rfind(b"\n") + 1]
    if not data:
        return empty_scalar_table()
    if not data.startswith(CSV_HEADER.encode()):
        raise CorruptFileError(
            f"{path} does not start with the header {CSV_HEADER!r} that Logger writes."
        )
    schema = scalar_schema()
    convert = pa.csv.ConvertOptions(
        column_types=dict(zip(schema.names, schema.types, strict=True)),
        null_values=[],
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    try:
        table = pa.csv.read_csv(pa.py_buffer(data), convert_options=convert)
    except pa.ArrowInvalid as exc:
        raise CorruptFileError(f"{path} is not a valid scalars CSV: {exc}") from exc
    return table.cast(schema)
