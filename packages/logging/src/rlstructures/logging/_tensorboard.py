"""TensorBoard backend of the Logger, built on the ``tensorboard`` package only.

No torch and no TensorFlow: tensorboard's own event-file writer and protocol buffers.

Event files go straight into the log directory (one run, as ``torch.utils.tensorboard``
would write them); the hyperparameters are one ``hparams`` plugin summary in the same file,
so TensorBoard's HParams tab pairs them with the run's scalars.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Final

# pyarrow is a hard dependency of rlstructures-logging, so a module-level import is allowed.
import pyarrow as pa  # noqa: TID253

from rlstructures.logging._scalars import HParamValue, ScalarRows, scalar_schema
from rlstructures.logging.errors import MissingDependencyError

__all__ = ["TensorboardWriter", "has_event_files", "import_tensorboard", "read_tb_scalars"]

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
            from tensorboard.plugins.hparams import summary_v2
            from tensorboard.summary.writer import event_file_writer
    except ImportError as exc:
        raise MissingDependencyError(
            f"{feature} needs the tensorboard package, which is not installed. Install it "
            f"with: {_INSTALL} (or leave 'tensorboard' out of the Logger's backends)."
        ) from exc
    return SimpleNamespace(
        event_pb2=event_pb2,
        summary_pb2=summary_pb2,
        hparams_summary=summary_v2,
        EventFileWriter=event_file_writer.EventFileWriter,
        EventAccumulator=event_accumulator.EventAccumulator,
    )


def _tb_hparam(value: HParamValue) -> bool | float | str:
    """What the hparams plugin can hold: bool, number or string (others as JSON text)."""
    if isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value)


class TensorboardWriter:
    """Scalars and hyperparameters as TensorBoard event files in ``logdir``."""

    def __init__(self, logdir: Path) -> None:
        self._tb = import_tensorboard("Logger(backends=('tensorboard', ...))")
        # flush_secs: the background thread's own flushes; Logger.flush() also flushes.
        self._writer = self._tb.EventFileWriter(str(logdir), max_queue_size=1024, flush_secs=30)

    def write(self, rows: ScalarRows) -> None:
        """One event per row, a ``simple_value`` scalar summary."""
        event_cls, summary_cls = self._tb.event_pb2.Event, self._tb.summary_pb2.Summary
        for w, s, t, v in zip(rows.wall_time, rows.step, rows.tag, rows.value, strict=True):
            summary = summary_cls(value=[summary_cls.Value(tag=t, simple_value=v)])
            self._writer.add_event(event_cls(wall_time=w, step=s, summary=summary))

    def write_hparams(self, hparams: Mapping[str, HParamValue]) -> None:
        """One ``hparams`` session-start summary (step 0) into this run's event file."""
        now = time.time()
        values = {k: _tb_hparam(v) for k, v in hparams.items()}
        summary = self._tb.hparams_summary.hparams_pb(values, start_time_secs=now)
        self._writer.add_event(self._tb.event_pb2.Event(wall_time=now, step=0, summary=summary))
        self._writer.flush()

    def flush(self) -> None:
        """Wait for the queued events to reach the file and flush it."""
        self._writer.flush()

    def close(self) -> None:
        """Flush, stop the writer thread and close the file."""
        self._writer.close()


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
