"""`TrajectoryWriter`: streams batches of `Trajectories` to Arrow IPC or Parquet files.

Layout of a dataset directory (one *part* per file rotation)::

    path/part-00000.arrow                one row per valid step: trajectory, t, step keys
    path/_trajectories/part-00000.arrow  one row per trajectory: trajectory, length,
                                         max_length, then the info keys

The directory is the steps table for every reader that takes a directory (pyarrow datasets,
``pandas.read_parquet``: they skip names starting with ``_``), or a ``path/*.parquet`` glob.

``trajectory`` is a global id, 0, 1, 2, ... in write order across writes and parts. The
per-trajectory table keeps sequences of length 0 (which have no step row) and the info
values once per sequence (join on ``trajectory`` to repeat them per step).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import weakref
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, SupportsIndex

import numpy as np

# pyarrow is a hard dependency of rlstructures-logging, so a module-level import is allowed.
import pyarrow as pa  # noqa: TID253
import pyarrow.ipc  # noqa: TID253

from rlstructures.dicttensor import DictTensorError, Spec, TemporalDictTensor, Trajectories
from rlstructures.logging._format import (
    EXTENSIONS,
    FORMAT_NAME,
    FORMAT_VERSION,
    METADATA_KEY,
    STEP_COLUMNS,
    TRAJECTORIES_DIR,
    TRAJECTORY_COLUMNS,
    Format,
    check_parquet_storable,
    check_reserved,
    check_same_specs,
    specs_to_json,
    values_crc,
    writer_version,
)
from rlstructures.logging._parts import STAGING_DIR, ArrowPart, convert_to_parquet, open_part
from rlstructures.logging._process import Sections, not_picklable
from rlstructures.logging.errors import (
    DatasetExistsError,
    LoggingError,
    LogWriteError,
    SchemaMismatchError,
    WriterClosedError,
)

if TYPE_CHECKING:
    from typing import Self

__all__ = ["TrajectoryWriter"]

_log = logging.getLogger(__name__)


class _State(Sections):
    """Open part and its bookkeeping, closed by `TrajectoryWriter.close` or at collection.

    It holds what finishing a part needs (root, format, compression), since the finalizer
    runs without the writer.
    """

    __slots__ = ("closed", "compression", "files", "fmt", "n_parts", "part", "root", "staged")

    def __init__(self, root: Path, fmt: Format, compression: str | None) -> None:
        super().__init__()
        self.root, self.fmt, self.compression = root, fmt, compression
        self.part: ArrowPart | None = None
        self.n_parts = 0
        self.files: list[Path] = []
        self.staged: list[tuple[int, ArrowPart]] = []  # parquet: closed, not yet converted
        self.closed = False

    @property
    def part_root(self) -> Path:
        """Where parts are written: the dataset, or its staging folder for Parquet."""
        return self.root / STAGING_DIR if self.fmt == "parquet" else self.root

    def open_part(self, schemas: tuple[Any, Any]) -> ArrowPart:
        compression = self.compression if self.fmt == "arrow" else None
        part = open_part(self.part_root, self.n_parts, schemas, compression)
        self.part = part
        self.files.extend([part.steps_path, part.trajs_path])
        self.n_parts += 1
        return part

    def close_part(self) -> None:
        """Finish the open part; a Parquet one is converted (or kept staged on failure)."""
        part, self.part = self.part, None
        if part is None:
            return
        part.close()
        if self.fmt == "parquet":
            self.staged.append((self.n_parts - 1, part))
            try:
                self.convert_staged()
            except LogWriteError as exc:
                _log.warning("%s; retried at close().", exc)

    def convert_staged(self) -> None:
        """Convert every staged part to Parquet, in order; stop at the first failure."""
        while self.staged:
            index, part = self.staged[0]
            if part.n_writes == 0:  # abandoned at its first write: nothing to keep
                part.steps_path.unlink(missing_ok=True)
                part.trajs_path.unlink(missing_ok=True)
                self.files = [f for f in self.files
                              if f not in (part.steps_path, part.trajs_path)]
            else:
                new = convert_to_parquet(part, self.root, index, self.compression)
                self.files = [new[0] if f == part.steps_path else new[1]
                              if f == part.trajs_path else f for f in self.files]
            self.staged.pop(0)

    def close(self) -> None:
        if not self.in_owner():
            return  # a forked child: the open part (and its footer) is the parent's
        # Under the lock: a write in another thread finishes before the footers go on; one
        # that a signal handler of this thread interrupted, too (the close is deferred).
        self.run_or_defer(self._close_now)

    def _close_now(self) -> None:
        self.closed = True
        self.close_part()
        self.convert_staged()
        staging = self.root / STAGING_DIR
        for folder in (staging / TRAJECTORIES_DIR, staging):  # empty once all converted
            try:
                folder.rmdir()
            except OSError:
                pass


def _native_byte_order(src: Trajectories) -> Trajectories:
    """``src`` with every leaf in the machine's byte order (big-endian ones converted).

    Arrow stores native values; a big-endian leaf kept as is would give specs and a CRC-32
    of swapped bytes, and the file would read back as damaged.
    """
    steps, info = src.trajectories, src.info
    if all(v.dtype.isnative for v in (*steps.values(), *info.values())):
        return src
    from rlstructures.dicttensor import DictTensor

    def native(leaves: Any) -> dict[str, Any]:
        return {k: v if v.dtype.isnative else v.astype(v.dtype.newbyteorder("="))
                for k, v in leaves.items()}

    return Trajectories(DictTensor(native(info), batch_shape=info.batch_shape),
                        TemporalDictTensor(native(steps), lengths=steps.lengths))


class TrajectoryWriter:
    """Streams batches of `Trajectories` to a dataset directory of Arrow IPC or Parquet files.

    Each ``write`` appends the valid steps of every sequence to ``path/part-NNNNN`` (the
    long format of ``TemporalDictTensor.to_arrow``: ``trajectory``, ``t``, then the step
    keys) and one row per sequence to ``path/_trajectories/part-NNNNN`` (``trajectory``,
    ``length``, ``max_length`` = T of its batch, then the info keys under their own
    names). Trajectory ids are global:
    0, 1, 2, ... across writes and files. The first write fixes the keys and per-row specs;
    later writes must match them. After a write that brings the current steps file to
    ``max_file_bytes`` or more, the next write starts new files (``part-00001``, ...).

    Arrow files are IPC *files* (Feather v2): pandas ``read_feather``, polars ``read_ipc``
    and ``pyarrow.dataset`` read them, and ``read_trajectories`` memory-maps them. An Arrow
    part whose writer died is still read up to its last complete write by
    ``read_trajectories``. A Parquet part is staged as Arrow in ``path/_staging/`` and
    converted (atomically) when it rotates and at ``close()``. A write is all or nothing:
    on a full disk both files are cut back to the last complete write and the next write
    starts a new part.

    A writer belongs to the process that created it: in a child made by ``fork`` it refuses
    to write and does nothing at exit; it cannot be pickled. It may be shared by threads:
    ``write`` and ``close`` take a lock, so a ``close()`` from another thread waits for the
    write in progress, and later writes raise `WriterClosedError`.

    Args:
        path: the dataset directory (created; must not already hold parts).
        format: ``"arrow"`` (default, memory-mappable, crash tolerant) or ``"parquet"``.
        metadata: JSON-serialisable facts stored with the schema of every file, e.g.
            ``{"env_id": "CartPole-v1", "seeds": [0, 1], "hparams": {...}}``.
        max_file_bytes: rotate to a new part once the steps file reaches this size; None
            never rotates. A file exceeds it by at most one write.
        compression: None (default: uncompressed, so Arrow files map without copies), or a
            codec: ``"lz4"``/``"zstd"`` for Arrow, ``"snappy"``/``"zstd"``/... for Parquet.

    Raises:
        DatasetExistsError: ``path`` already holds trajectory parts.
        TypeError: ``metadata`` is not JSON-serialisable.

    Example:
        >>> import tempfile, numpy as np
        >>> from rlstructures.dicttensor import DictTensor, TemporalDictTensor, Trajectories
        >>> steps = TemporalDictTensor({"reward": np.ones((2, 3), np.float32)},
        ...                            lengths=np.array([3, 1]))
        >>> batch = Trajectories(DictTensor({"env_info/seed": np.array([7, 8])}), steps)
        >>> path = tempfile.mkdtemp()
        >>> with TrajectoryWriter(path, metadata={"env_id": "CartPole-v1"}) as writer:
        ...     writer.write(batch)
        ...     writer.write(batch)
        >>> from rlstructures.logging import read_trajectories
        >>> back = read_trajectories(path)
        >>> len(back), back.lengths.tolist()
        (4, [3, 1, 3, 1])
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        format: Format = "arrow",
        *,
        metadata: Mapping[str, Any] | None = None,
        max_file_bytes: int | None = 512 * 2**20,
        compression: str | None = None,
    ) -> None:
        if format not in EXTENSIONS:
            raise ValueError(f"format must be 'arrow' or 'parquet', got {format!r}.")
        if max_file_bytes is not None and max_file_bytes < 1:
            raise ValueError(f"max_file_bytes must be >= 1 or None, got {max_file_bytes}.")
        if format == "arrow" and compression not in (None, "lz4", "zstd"):
            raise ValueError(
                f"Arrow IPC compression must be None, 'lz4' or 'zstd', got {compression!r}."
            )
        user = dict(metadata or {})
        try:
            json.dumps(user)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"metadata must be JSON-serialisable (str keys; str, numbers, bools, None, "
                f"lists, dicts), but {exc}. Convert values first, e.g. `str(x)` or `x.tolist()`."
            ) from exc
        self._path = Path(path)
        if self._path.exists() and not self._path.is_dir():
            raise NotADirectoryError(
                f"TrajectoryWriter path {str(self._path)!r} is a file; it must be a directory "
                "(the writer creates part-NNNNN files and a _trajectories/ folder in it)."
            )
        for sub in (self._path, self._path / TRAJECTORIES_DIR, self._path / STAGING_DIR,
                    self._path / STAGING_DIR / TRAJECTORIES_DIR):
            existing = sorted(sub.glob("part-*")) if sub.is_dir() else []
            if existing:
                raise DatasetExistsError(
                    f"{str(self._path)!r} already holds trajectory files ({existing[0]}, ...); "
                    "a TrajectoryWriter never appends to or overwrites a dataset. Choose a new "
                    "path, or delete the old files."
                )
        self._format: Format = format
        self._user = user
        self._max_bytes = max_file_bytes
        self._compression = compression
        self._schemas: tuple[Any, Any] | None = None
        self._step_specs: dict[str, Spec] = {}
        self._info_specs: dict[str, Spec] = {}
        self._next_id = 0
        self._state = _State(self._path, format, compression)
        self._finalizer = weakref.finalize(self, _State.close, self._state)

    @property
    def path(self) -> Path:
        """The dataset directory."""
        return self._path

    @property
    def files(self) -> list[Path]:
        """Every file written so far (steps and trajectories of each part).

        For Parquet, a part not yet converted is listed by its staged Arrow files.
        """
        return list(self._state.files)

    @property
    def n_trajectories(self) -> int:
        """Number of sequences written so far (the next global trajectory id)."""
        return self._next_id

    def write(self, trajectories: Trajectories | TemporalDictTensor) -> None:
        """Append a batch of sequences (numpy or torch; torch leaves are copied to host).

        Args:
            trajectories: `Trajectories` (info ``[B]``, sequences ``[B, T, ...]`` with
                ``lengths [B]``), or a bare `TemporalDictTensor` (no info keys).

        Raises:
            SchemaMismatchError: keys, per-row shapes or dtypes differ from the first write,
                or a key uses a reserved column name. Nothing is written; the writer and
                its files stay valid.
            WriterClosedError: after ``close()``.
            LogWriteError: the disk is full (or another write error); nothing of this write
                is in the files, everything written before reads back, and the next write
                starts a new part.
        """
        state = self._state
        if state.forked:  # before the lock: a thread of the parent may have held it at fork
            self._raise_forked()
        with state.lock:
            if not state.in_owner():
                self._raise_forked()
            if state.closed:
                raise WriterClosedError(
                    f"TrajectoryWriter.write() after close() (path {str(self._path)!r}); "
                    "open a new writer on a new path."
                )
            if state.depth:
                raise LoggingError(
                    "TrajectoryWriter.write() from a signal handler that interrupted a write "
                    f"of this writer in the same thread (path {str(self._path)!r}); write from "
                    "the training code (close() is allowed there: it runs when that write ends)."
                )
            state.run(functools.partial(self._write, trajectories))

    def _raise_forked(self) -> None:
        raise WriterClosedError(
            f"TrajectoryWriter.write() in process {os.getpid()}, a child forked from process "
            f"{self._state.pid} that created this writer (path {str(self._path)!r}): its open "
            "files belong to the parent. Create a new TrajectoryWriter in the child, on its "
            "own path."
        )

    def _write(self, trajectories: Trajectories | TemporalDictTensor) -> None:
        if isinstance(trajectories, TemporalDictTensor):
            from rlstructures.dicttensor import DictTensor

            trajectories = Trajectories(DictTensor({}, batch_shape=len(trajectories)),
                                        trajectories)
        if not isinstance(trajectories, Trajectories):
            raise TypeError(
                "TrajectoryWriter.write takes Trajectories (or a TemporalDictTensor), got "
                f"{type(trajectories).__name__}."
            )
        src = _native_byte_order(trajectories.numpy())
        step_specs, info_specs = src.trajectories.specs(), src.info.specs()
        if self._schemas is None:
            check_reserved("step", list(step_specs), STEP_COLUMNS)
            check_reserved("info", list(info_specs), TRAJECTORY_COLUMNS)
            if self._format == "parquet":
                check_parquet_storable(step_specs)
                check_parquet_storable(info_specs)
        else:
            check_same_specs("step", self._step_specs, step_specs)
            check_same_specs("info", self._info_specs, info_specs)
        steps, trajs, trajs_crc = self._encode(src, step_specs, info_specs)
        state = self._state
        if state.part is not None and (state.part.abandoned or state.part.replaced()):
            if not state.part.abandoned:
                _log.warning("%s was removed or replaced while a TrajectoryWriter was "
                             "writing it; going on in a new part.", state.part.steps_path)
            state.close_part()
        part = state.part or state.open_part((steps.schema, trajs.schema))
        try:
            part.write(steps, trajs, trajs_crc)  # all or nothing
        finally:
            if part.abandoned:
                state.close_part()
        self._next_id += len(src)
        if self._max_bytes is not None and part.steps_bytes() >= self._max_bytes:
            _log.info("%s reached %d bytes; next write starts a new part.",
                      part.steps_path, part.steps_bytes())
            state.close_part()

    def _encode(self, src: Trajectories, step_specs: dict[str, Spec],
                info_specs: dict[str, Spec]) -> tuple[Any, Any, int]:
        """The two record batches of one write, and the per-trajectory one's CRC-32.

        The schemas are fixed by the first write.
        """
        b, t = src.trajectories.batch_shape
        try:
            long = src.trajectories.to_arrow()
            info = src.info.to_arrow()
        except DictTensorError as exc:
            raise SchemaMismatchError(f"cannot store these Trajectories: {exc}") from exc
        schemas = self._schemas
        if schemas is None:
            self._step_specs, self._info_specs = step_specs, info_specs
        step_keys, info_keys = list(self._step_specs), list(self._info_specs)
        traj = np.asarray(long.column("trajectory")) + self._next_id
        step_arrays = [pa.array(traj), long.column("t"), *(long.column(k) for k in step_keys)]
        ids = np.arange(self._next_id, self._next_id + b, dtype=np.int64)
        lengths = np.asarray(src.lengths, dtype=np.int64)
        max_lengths = np.full(b, t, np.int64)
        traj_arrays = [pa.array(ids), pa.array(lengths), pa.array(max_lengths),
                       *(info.column(k) for k in info_keys)]
        crc = values_crc([ids, lengths, max_lengths, *(src.info[k] for k in info_keys)])
        if schemas is None:
            meta = {
                "format": FORMAT_NAME,
                "format_version": FORMAT_VERSION,
                "writer": f"rlstructures-logging {writer_version()}",
                "step_specs": specs_to_json(self._step_specs),
                "info_specs": specs_to_json(self._info_specs),
                "metadata": self._user,
            }
            schemas = (
                self._schema(STEP_COLUMNS + tuple(step_keys), step_arrays, meta, "steps"),
                self._schema(TRAJECTORY_COLUMNS + tuple(info_keys), traj_arrays, meta,
                             "trajectories"),
            )
            self._schemas = schemas
        return (pa.RecordBatch.from_arrays(step_arrays, schema=schemas[0]),
                pa.RecordBatch.from_arrays(traj_arrays, schema=schemas[1]), crc)

    @staticmethod
    def _schema(names: tuple[str, ...], arrays: list[Any], meta: dict[str, Any],
                table: str) -> Any:
        fields = [pa.field(n, a.type, nullable=False) for n, a in zip(names, arrays, strict=True)]
        text = json.dumps({**meta, "table": table})
        return pa.schema(fields, metadata={METADATA_KEY: text.encode()})

    def close(self) -> None:
        """Finish the open files (footers; Parquet: convert the staged parts).

        Calling it again does nothing.

        Raises:
            LogWriteError: a staged Parquet part could not be converted (disk full); it stays
                in ``_staging/``, where `read_trajectories` reads it.
        """
        self._finalizer()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __reduce_ex__(self, protocol: SupportsIndex) -> Any:
        raise not_picklable(
            "TrajectoryWriter",
            "Create the writer in the process that writes, each process on its own path.",
        )

    def __repr__(self) -> str:
        state = "closed" if self._state.closed else "open"
        return (f"TrajectoryWriter({str(self._path)!r}, format={self._format!r}, "
                f"{self._next_id} trajectories, {state})")
