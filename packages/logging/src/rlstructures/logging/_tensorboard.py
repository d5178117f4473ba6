"""TensorBoard backend of the Logger, built on the ``tensorboard`` package only.

No torch and no TensorFlow: tensorboard's protocol buffers and its record checksum
(``masked_crc32c``), in the TFRecord framing that its readers expect. The events of a flush
are framed in memory and appended with one all-or-nothing write, in the calling thread (no
background thread: nothing to lose at a kill between flushes, nothing to hang on in a
forked child), so a full disk leaves the file ending with a whole record.

Event files go straight into the log directory (one run, as ``torch.utils.tensorboard``
would write them); the hyperparameters are one ``hparams`` plugin summary in the same file,
so TensorBoard's HParams tab pairs them with the run's scalars.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import struct
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Final

# pyarrow is a hard dependency of rlstructures-logging, so a module-level import is allowed.
import pyarrow as pa  # noqa: TID253

from rlstructures.logging._appendfile import ExclusiveAppender
from rlstructures.logging._ipc import create_exclusive
from rlstructures.logging._scalars import HParamValue, ScalarRows, scalar_schema
from rlstructures.logging.errors import MissingDependencyError

__all__ = ["TensorboardWriter", "has_event_files", "import_tensorboard", "read_tb_scalars"]

_log = logging.getLogger(__name__)

_INSTALL: Final = "pip install 'rlstructures-logging[tensorboard]'"
# Warnings that tensorboard or protobuf may emit while being imported without TensorFlow.
_IMPORT_NOISE: Final = r"(tensorboard|google\.protobuf|pkg_resources)(\..*)?$"


def import_tensorboard(feature: str) -> SimpleNamespace:
    """The tensorboard modules this package uses, or MissingDependencyError naming the extra."""
    try:
        with warnings.catch_warnings():
            for category in (DeprecationWarning, UserWarning, FutureWarning):
                warnings.filterwarnings("ignore", category=category, module=_IMPORT_NOISE)
            from tensorboard.backend.event_processing import event_accumulator
            from tensorboard.compat.proto import event_pb2, summary_pb2
            from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c
            from tensorboard.plugins.hparams import summary_v2
    except ImportError as exc:
        raise MissingDependencyError(
            f"{feature} needs the tensorboard package, which is not installed. Install it "
            f"with: {_INSTALL} (or leave 'tensorboard' out of the Logger's backends)."
        ) from exc
    return SimpleNamespace(
        event_pb2=event_pb2,
        summary_pb2=summary_pb2,
        hparams_summary=summary_v2,
        masked_crc32c=masked_crc32c,
        EventAccumulator=event_accumulator.EventAccumulator,
    )


def _tb_hparam(value: HParamValue) -> bool | float | str:
    """What the hparams plugin can hold: bool, number or string (others as JSON text).

    Numbers are float64 there: an int beyond its range is written as text.
    """
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**1023:
        return str(value)
    if isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value)


def _event_file(logdir: Path) -> Path:
    """A new event file, named as tensorboard's own writer names them."""
    logdir.mkdir(parents=True, exist_ok=True)  # it may have been removed under the Logger
    host, pid = socket.gethostname(), os.getpid()
    for uid in range(10_000):
        path = logdir / f"events.out.tfevents.{int(time.time()):010d}.{host}.{pid}.{uid}"
        if create_exclusive(path):
            return path
    raise FileExistsError(f"no free event file name in {logdir}")  # pragma: no cover


class TensorboardWriter:
    """Scalars and hyperparameters as a TensorBoard event file in ``logdir``."""

    def __init__(self, logdir: Path) -> None:
        self._tb = import_tensorboard("Logger(backends=('tensorboard', ...))")
        self._logdir = logdir
        self._open_file()

    def _open_file(self) -> None:
        self.path = _event_file(self._logdir)
        self._file = ExclusiveAppender(self.path)
        first = self._tb.event_pb2.Event(
            wall_time=time.time(), file_version="brain.Event:2",
            source_metadata=self._tb.event_pb2.SourceMetadata(writer="rlstructures.logging"),
        )
        try:
            self._file.append(self._records([first]), "the event file header")
        except BaseException:
            self._file.close()
            raise

    def _records(self, events: list[Any]) -> bytes:
        """TFRecord framing: length, its masked CRC-32C, the event, its masked CRC-32C."""
        crc = self._tb.masked_crc32c
        out = []
        for event in events:
            data = event.SerializeToString()
            header = struct.pack("<Q", len(data))
            out += [header, struct.pack("<I", crc(header)), data, struct.pack("<I", crc(data))]
        return b"".join(out)

    def _append(self, events: list[Any], what: str) -> None:
        if self._file.replaced():
            _log.warning("%s was removed or replaced while a Logger was writing it; going on "
                         "in a new event file.", self.path)
            self._file.close()
            self._open_file()
        self._file.append(self._records(events), what)

    def write(self, rows: ScalarRows) -> None:
        """One event per row, a ``simple_value`` scalar summary; all or nothing."""
        event_cls, summary_cls = self._tb.event_pb2.Event, self._tb.summary_pb2.Summary
        events = [
            event_cls(wall_time=w, step=s,
                      summary=summary_cls(value=[summary_cls.Value(tag=t, simple_value=v)]))
            for w, s, t, v in zip(rows.wall_time, rows.step, rows.tag, rows.value, strict=True)
        ]
        self._append(events, "scalar events")

    def write_hparams(self, hparams: Mapping[str, HParamValue]) -> None:
        """One ``hparams`` session-start summary (step 0) into this run's event file."""
        now = time.time()
        values = {k: _tb_hparam(v) for k, v in hparams.items()}
        summary = self._tb.hparams_summary.hparams_pb(values, start_time_secs=now)
        self._append([self._tb.event_pb2.Event(wall_time=now, step=0, summary=summary)],
                     "the hyperparameters")

    def close(self) -> None:
        """Close the file (every event was written by ``write``)."""
        self._file.close()


def has_event_files(logdir: Path) -> bool:
    """True when ``logdir`` directly holds TensorBoard event files."""
    return any(logdir.glob("*tfevents*"))


def read_tb_scalars(logdir: Path) -> Any:
    """The scalars of the event files directly in ``logdir``, sorted by wall time.

    Returns a Table of the scalar schema; needs the ``tensorboard`` extra.
    """
    tb = import_tensorboard("read_logs(source='tensorboard')")
    acc = tb.EventAccumulator(str(logdir), size_guidance={"scalars": 0})
    acc.Reload()
    rows = ScalarRows()
    for tag in acc.Tags().get("scalars", []):
        for event in acc.Scalars(tag):
            rows.append(float(event.wall_time), int(event.step), tag, float(event.value))
    table = pa.Table.from_batches([rows.to_arrow()], schema=scalar_schema())
    return table.sort_by([("wall_time", "ascending")])
