"""`read_trajectories`: what `TrajectoryWriter` wrote, back as `Trajectories`."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

# pyarrow is a hard dependency of rlstructures-logging, so a module-level import is allowed.
import pyarrow as pa  # noqa: TID253

from rlstructures.dicttensor import (
    DictTensor,
    DictTensorError,
    Spec,
    TemporalDictTensor,
    Trajectories,
)
from rlstructures.logging._format import TRAJECTORIES_DIR
from rlstructures.logging._part_reader import (
    PartData,
    find_parts,
    read_part,
    read_table_file,
    schema_meta,
)
from rlstructures.logging._parts import STAGING_DIR
from rlstructures.logging.errors import CorruptFileError, NoDataError, SchemaMismatchError

__all__ = ["read_trajectories"]

IntArray = npt.NDArray[np.int64]
#: Above this many bytes of padded steps, a T must be damaged (no machine holds 2**50 bytes).
_MAX_BYTES: Final = 2**50


def _column(batches: list[Any], name: str) -> IntArray:
    return np.concatenate(
        [np.asarray(b.column(name), np.int64) for b in batches] or [np.zeros(0, np.int64)]
    )


def _check_specs(parts: list[PartData]) -> tuple[dict[str, Spec], dict[str, Spec]]:
    first = parts[0]
    for part in parts[1:]:
        for kind in ("step_specs", "info_specs"):
            if getattr(part, kind) != getattr(first, kind):
                raise SchemaMismatchError(
                    f"the parts hold different {kind}: {first.meta[kind]} ({first.path}) and "
                    f"{part.meta[kind]} ({part.path}); they come from different writers. Read "
                    "them separately."
                )
    return first.step_specs, first.info_specs


def _info(parts: list[PartData], specs: dict[str, Spec], b: int) -> DictTensor:
    if not specs:
        return DictTensor({}, batch_shape=(b,))
    keys = list(specs)
    batches = [t.select(keys).replace_schema_metadata(None) for p in parts for t in p.trajs]
    if not batches:
        return DictTensor.zeros(specs, (0,))
    return DictTensor.from_arrow(pa.Table.from_batches(batches))


def _fill(out: dict[str, Any], batch: Any, keys: list[str], rows: slice, where: tuple[
        IntArray, IntArray, IntArray, IntArray, int]) -> None:
    """Write the step rows ``rows`` (global row numbers) held by ``batch`` into ``out``."""
    b_of_row, t_of_row, starts, lengths, t = where
    decoded = DictTensor.from_arrow(batch.select(keys).replace_schema_metadata(None))
    b0, b1 = int(b_of_row[rows.start]), int(b_of_row[rows.stop - 1]) + 1
    aligned = starts[b0] == rows.start and starts[b1 - 1] + lengths[b1 - 1] == rows.stop
    full = aligned and bool((lengths[b0:b1] == t).all())
    mask = np.arange(t)[None, :] < lengths[b0:b1, None] if aligned and not full else None
    for key in keys:
        values = decoded[key]
        if full:  # whole sequences, no padding: one contiguous copy
            out[key][b0:b1] = values.reshape((b1 - b0, t, *values.shape[1:]))
        elif mask is not None:  # whole sequences: mask order is (trajectory, t) order
            out[key][b0:b1][mask] = values
        else:
            out[key][b_of_row[rows], t_of_row[rows]] = values


def _steps(parts: list[PartData], specs: dict[str, Spec], ids: IntArray, lengths: IntArray,
           t: int) -> dict[str, Any]:
    keys = list(specs)
    batches = [s for p in parts for s in p.steps if s.num_rows]
    b, n = len(lengths), int(lengths.sum())
    if not keys:
        return {}
    if len(batches) == 1 and n == b * t:  # one batch of full sequences: zero-copy views
        decoded = DictTensor.from_arrow(batches[0].select(keys).replace_schema_metadata(None))
        return {k: decoded[k].reshape((b, t, *specs[k].shape)) for k in keys}
    out = {k: np.zeros((b, t, *s.shape), s.dtype) for k, s in specs.items()}
    b_of_row = np.repeat(np.arange(b, dtype=np.int64), lengths)
    starts = np.cumsum(lengths) - lengths
    t_of_row = np.arange(n, dtype=np.int64) - np.repeat(starts, lengths)
    r0 = 0
    for batch in batches:  # their (trajectory, t) columns were checked part by part
        rows = slice(r0, r0 + batch.num_rows)
        _fill(out, batch, keys, rows, (b_of_row, t_of_row, starts, lengths, t))
        r0 = rows.stop
    return out


def _foreign(path: Path) -> Trajectories:
    """A long-format file that TrajectoryWriter did not write.

    E.g. ``TemporalDictTensor.to_arrow`` rows saved by hand: sequences only, no info.
    """
    contents = read_table_file(path)
    schema, batches = contents.schema, contents.batches
    if schema is None:
        if path.stat().st_size == 0:
            raise NoDataError(f"{path} is empty.")
        raise CorruptFileError(
            f"{path} is neither an Arrow IPC file or stream nor a Parquet file (by its "
            "extension): no Arrow schema could be read from it."
        )
    if schema_meta(schema, path) is not None:
        raise CorruptFileError(
            f"{path} is a steps file of a TrajectoryWriter dataset, but its companion "
            f"{TRAJECTORIES_DIR}/{path.name} (lengths and info keys) is missing next to it; "
            "copy the two together, or read the dataset directory."
        )
    try:
        tdt = TemporalDictTensor.from_arrow(pa.Table.from_batches(batches, schema=schema))
    except DictTensorError as exc:
        raise CorruptFileError(f"{path} is not a long-format trajectory table: {exc}",
                               path=path) from exc
    return Trajectories(DictTensor({}, batch_shape=(len(tdt),)), tdt)


def read_trajectories(path: str | os.PathLike[str]) -> Trajectories:
    """Read what `TrajectoryWriter` wrote back as one `Trajectories`.

    Sequences come in trajectory-id order (the write order), padded to T, the largest T of
    the batches written; ``info`` holds the info keys; sequences of length 0 are kept.
    Arrow files are memory-mapped: when the data is one batch of full-length sequences
    (one write, no rotation) the leaves are read-only views of the file, built in a time
    that does not grow with its size; otherwise every valid step is copied once into
    padded arrays. An Arrow part whose writer died is read up to its last complete write.

    Args:
        path: a dataset directory, one ``part-NNNNN`` file of it (read with its
            companion), or any long-format file of ``TemporalDictTensor.to_arrow`` rows.

    Returns:
        Trajectories with numpy leaves: info ``[B]``, sequences ``[B, T, ...]``.

    Raises:
        NoDataError: nothing to read at ``path``.
        SchemaMismatchError: parts written by different writers (other keys or specs).
        CorruptFileError: a file is damaged or not a trajectory file.
    """
    attempts = 3
    while True:
        try:
            return _read(Path(path))
        except FileNotFoundError:  # a staged Parquet part converted (and removed) meanwhile
            attempts -= 1
            if not attempts or not (Path(path) / STAGING_DIR).is_dir():
                raise


def _read(path: Path) -> Trajectories:
    pairs = find_parts(path)
    if pairs[0][1] is None:
        return _foreign(pairs[0][0])
    parts: list[PartData] = []
    for steps_path, trajs_path in pairs:
        try:
            if trajs_path is None:  # find_parts gives a companion for every part of a dir
                raise CorruptFileError(f"{steps_path} has no companion.", path=steps_path)
            part = read_part(steps_path, trajs_path)
        except CorruptFileError as exc:
            exc.partial = _partial(parts)
            raise
        if part is not None:
            parts.append(part)
    if not parts:
        raise NoDataError(f"{str(path)!r} holds only empty trajectory files.")
    _check_contiguous(parts, whole_dataset=path.is_dir())
    return _assemble(parts, str(path))


def _check_contiguous(parts: list[PartData], whole_dataset: bool) -> None:
    """Trajectory ids are 0, 1, 2, ... in write order: a gap is a missing or damaged part."""
    expected = 0 if whole_dataset else None
    for part in parts:
        ids = _column(part.trajs, "trajectory")
        if not len(ids):
            continue
        first = int(ids[0]) if expected is None else expected
        if not np.array_equal(ids, np.arange(first, first + len(ids))):
            raise CorruptFileError(
                f"{part.path} holds trajectory ids {int(ids[0])}..{int(ids[-1])} where "
                f"{first}..{first + len(ids) - 1} were expected: a part of the dataset is "
                "missing or damaged (ids are 0, 1, 2, ... in write order across the parts). "
                "Read the parts one by one (`read_trajectories(path / 'part-00000.arrow')`) "
                "to get what is left.", path=part.path, partial=_partial(parts[:parts.index(
                    part)]))
        expected = first + len(ids)


def _partial(parts: list[PartData]) -> Trajectories | None:
    """What the parts before a damaged one hold (None when there is none, or it fails)."""
    if not parts:
        return None
    try:
        return _assemble(parts, "the parts before the damaged one")
    except (CorruptFileError, SchemaMismatchError, MemoryError):
        return None


def _assemble(parts: list[PartData], where: str) -> Trajectories:
    """One Trajectories from checked parts: ids increasing, padded to the largest T."""
    step_specs, info_specs = _check_specs(parts)
    trajs = [t for p in parts for t in p.trajs]
    ids, lengths = _column(trajs, "trajectory"), _column(trajs, "length")
    max_lengths = _column(trajs, "max_length")
    if len(ids) > 1 and not bool((np.diff(ids) > 0).all()):
        raise CorruptFileError(
            f"trajectory ids in {where} are not increasing: the parts come from different "
            "writers (or a part was damaged). Read them one by one."
        )
    t = int(max_lengths.max()) if len(ids) else 0
    size = len(ids) * t * sum(s.dtype.itemsize * math.prod(s.shape) for s in step_specs.values())
    if size > _MAX_BYTES:
        raise CorruptFileError(f"{where}: padding {len(ids)} trajectories to T = {t} would "
                               f"take {size} bytes; a length is damaged.")
    try:
        data = _steps(parts, step_specs, ids, lengths, t)
        steps = TemporalDictTensor(DictTensor(data, batch_shape=(len(ids), t)), lengths)
        return Trajectories(_info(parts, info_specs, len(ids)), steps)
    except DictTensorError as exc:
        raise CorruptFileError(f"{where}: the columns do not decode as their specs say "
                               f"({exc}).") from exc
