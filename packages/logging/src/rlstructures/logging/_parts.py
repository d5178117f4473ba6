"""The files of one trajectory part: an Arrow IPC steps file and its per-trajectory companion.

A write appends one record batch to each (steps first). It is all or nothing: when either
append fails (disk full, ``RLIMIT_FSIZE``, an interrupt), both files are cut back to their
size after the last complete write and the part is *abandoned*: left without a footer,
which `read_trajectories` reads as an unfinished part (up to that last write), and never
written again; the next write starts a new part. A pyarrow writer that failed mid-batch is
never used again, so nothing after the damage can read back wrong.

Parquet datasets are written through the same Arrow parts, staged in ``_staging/``: a staged
part is converted to ``part-NNNNN.parquet`` (and its companion) when it rotates and at
``close()``, written under a temporary name and renamed into place, so a Parquet file in the
dataset is always complete, and a crash or a full disk never loses a write that returned.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path
from typing import Any, Final

# pyarrow is a hard dependency of rlstructures-logging, so a module-level import is allowed.
import pyarrow as pa  # noqa: TID253
import pyarrow.ipc  # noqa: TID253

from rlstructures.logging._appendfile import undo_append
from rlstructures.logging._format import (
    TRAJECTORIES_DIR,
    batch_custom_metadata,
    part_name,
)
from rlstructures.logging._ipc import create_exclusive
from rlstructures.logging.errors import DatasetExistsError, LoggingError, LogWriteError

__all__ = ["STAGING_DIR", "ArrowPart", "convert_to_parquet", "open_part"]

_log = logging.getLogger(__name__)

#: Where a Parquet dataset's parts are written as Arrow before their conversion.
STAGING_DIR: Final = "_staging"


class ArrowPart:
    """The two open IPC files of one part; ``write`` is all or nothing."""

    def __init__(self, steps: Path, trajs: Path, schemas: tuple[Any, Any],
                 compression: str | None) -> None:
        self.steps_path, self.trajs_path = steps, trajs
        # "ab" on the empty files made by create_exclusive: no O_TRUNC, which ext4 answers with
        # a synchronous flush at close (its replace-via-truncate heuristic).
        self._files: list[Any] = []
        try:
            for path in (steps, trajs):
                self._files.append(pa.OSFile(str(path), "ab"))
            self._ids = [_file_id(f) for f in self._files]
            options = pa.ipc.IpcWriteOptions(compression=compression)
            self._writers = [pa.ipc.new_file(f, s, options=options)
                             for f, s in zip(self._files, schemas, strict=True)]
        except BaseException:
            for sink in self._files:
                sink.close()
            raise
        self._good = [0, 0]  # sizes after the last complete write
        self.abandoned = False
        self.n_writes = 0

    def replaced(self) -> bool:
        """True when a path no longer names its open file (deleted, renamed or replaced)."""
        for path, ident in zip((self.steps_path, self.trajs_path), self._ids, strict=True):
            try:
                st = os.stat(path)
            except OSError:
                return True
            if (st.st_dev, st.st_ino) != ident:
                return True
        return False

    def write(self, steps: Any, trajs: Any, trajs_crc: int) -> None:
        """Append one write to both files; on failure cut both back and abandon the part.

        Raises:
            LogWriteError: the write failed; nothing of it is in the files.
        """
        seq = self.n_writes
        trajs_meta = batch_custom_metadata(seq, trajs_crc)
        try:
            # Steps first: a reader recovering an unfinished part trusts the companion and
            # drops step rows of trajectories it does not list.
            self._writers[0].write_batch(steps, custom_metadata=batch_custom_metadata(seq))
            self._writers[1].write_batch(trajs, custom_metadata=trajs_meta)
        except BaseException as exc:
            broken = self._abandon(exc)
            if broken is not None:
                raise broken from exc
            if isinstance(exc, OSError):
                raise LogWriteError(
                    exc.errno or errno.EIO,
                    f"writing trajectories to {self.steps_path} failed ({exc}); both files of "
                    "the part were cut back to their last complete write, which (with every "
                    "write before) reads back. The next write starts a new part; free some "
                    "disk space first.",
                ) from exc
            raise
        self._good = [int(f.tell()) for f in self._files]
        self.n_writes += 1

    def _abandon(self, exc: BaseException) -> LogWriteError | None:
        """Cut both files back, close the sinks (the pyarrow writers are never used again)."""
        self.abandoned = True
        broken = None
        for sink, path, size in zip(self._files, (self.steps_path, self.trajs_path),
                                    self._good, strict=True):
            try:
                broken = broken or undo_append(sink.fileno(), size, path, exc)
            finally:
                try:
                    sink.close()
                except OSError:
                    pass  # what it failed to flush is what was just cut
        return broken

    def steps_bytes(self) -> int:
        """Size of the steps file after the last complete write."""
        return self._good[0]

    def close(self) -> None:
        """Write both footers (nothing for an abandoned part) and close the files."""
        if self.abandoned:
            return
        try:
            for writer in self._writers:
                writer.close()
        except BaseException as exc:
            self._abandon(exc)  # an unfinished part, read up to its last write
            if isinstance(exc, OSError):
                _log.warning("%s: its footer could not be written (%s); it stays readable "
                             "by read_trajectories as an unfinished part.", self.steps_path,
                             exc)
                return
            raise
        for sink in self._files:
            sink.close()


def _file_id(sink: Any) -> tuple[int, int]:
    st = os.fstat(sink.fileno())
    return st.st_dev, st.st_ino


def open_part(root: Path, index: int, schemas: tuple[Any, Any],
              compression: str | None) -> ArrowPart:
    """Create part ``index`` (companion first) in ``root`` and open it."""
    name = part_name(index, "arrow")
    paths = (root / name, root / TRAJECTORIES_DIR / name)
    # The companion first: readers list parts by their steps file, which therefore never
    # exists without its companion, even if the process dies right here.
    created: list[Path] = []
    try:
        for p in reversed(paths):
            p.parent.mkdir(parents=True, exist_ok=True)
            if not create_exclusive(p):
                raise DatasetExistsError(
                    f"{p} appeared while writing: another TrajectoryWriter is writing to "
                    f"{str(root)!r}. Give each writer its own path."
                )
            created.append(p)
        return ArrowPart(paths[0], paths[1], schemas, compression)
    except BaseException as exc:
        # Nothing half-made stays (the steps file first: never a steps file without its
        # companion), so the next write can create this part again.
        for p in reversed(created):
            p.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, LoggingError):
            raise LogWriteError(
                exc.errno or errno.EIO,
                f"creating the trajectory part {paths[0]} failed ({exc}); nothing was written "
                "and the files written before read back. Free what is exhausted (disk space, "
                "open files: `ulimit -n`); the next write retries.",
            ) from exc
        raise


def convert_to_parquet(part: ArrowPart, root: Path, index: int,
                       compression: str | None) -> list[Path]:
    """Write a closed staged part as ``root/part-NNNNN.parquet`` and companion; delete it.

    Each file is written under a hidden temporary name and renamed into place (companion
    first), so readers only ever see whole Parquet files. Returns the two new paths.

    Raises:
        LogWriteError: the conversion failed; the staged part is kept (read_trajectories
            reads it) and no partial Parquet file is left.
    """
    import pyarrow.parquet as pq

    from rlstructures.logging._ipc import read_ipc

    name = part_name(index, "parquet")
    targets = (root / TRAJECTORIES_DIR / name, root / name)
    sources = (part.trajs_path, part.steps_path)
    temps = [t.with_name(f".{t.name}.tmp") for t in targets]
    try:
        for source, temp in zip(sources, temps, strict=True):
            temp.parent.mkdir(parents=True, exist_ok=True)
            contents = read_ipc(source)
            table = pa.Table.from_batches(contents.batches, schema=contents.schema)
            pq.write_table(table, temp, compression=compression or "none",
                           write_page_checksum=True)
        for temp, target in zip(temps, targets, strict=True):
            os.replace(temp, target)
    except OSError as exc:
        for temp in temps:
            temp.unlink(missing_ok=True)
        raise LogWriteError(
            exc.errno or errno.EIO,
            f"converting {part.steps_path} to Parquet failed ({exc}); it stays in "
            f"{STAGING_DIR}/, where read_trajectories reads it. Free some disk space.",
        ) from exc
    for source in sources:
        source.unlink(missing_ok=True)
    return [targets[1], targets[0]]
