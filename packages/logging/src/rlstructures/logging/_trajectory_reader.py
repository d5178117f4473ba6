"""`read_trajectories`: what `TrajectoryWriter` wrote, back as `Trajectories`."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
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
from rlstructures.logging._format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    METADATA_KEY,
    TRAJECTORIES_DIR,
    specs_from_json,
)
from rlstructures.logging._ipc import read_ipc
from rlstructures.logging.errors import CorruptFileError, NoDataError, SchemaMismatchError

__all__ = ["read_trajectories"]

_PART_RE: Final = re.compile(r"^part-(\d{5,})\.(arrow|parquet)$")
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class _Part:
    """What was read of one part: its metadata, step batches and per-trajectory table."""

    meta: dict[str, Any]
    steps: list[Any]  # pyarrow.RecordBatch, in file order
    trajs: list[Any]  # pyarrow.RecordBatch


def _read_batches(path: Path) -> tuple[Any, list[Any], bool]:
    """``(schema, batches, finished)`` of one Arrow or Parquet file (memory-mapped)."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.ParquetFile(str(path), memory_map=True).read()
        except (pa.ArrowInvalid, OSError) as exc:
            raise CorruptFileError(
                f"{path} cannot be read as Parquet ({exc}). A Parquet file is readable only "
                "once its writer is closed, so a crashed TrajectoryWriter leaves its last "
                "Parquet part unreadable: delete it to read the others, and prefer "
                "format='arrow' where crashes are likely."
            ) from exc
        return table.schema, table.to_batches(), True
    try:
        return read_ipc(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise CorruptFileError(f"{path} is not an Arrow IPC file or stream ({exc}).") from exc


def _meta(schema: Any, path: Path) -> dict[str, Any] | None:
    raw = (schema.metadata or {}).get(METADATA_KEY) if schema is not None else None
    if raw is None:
        return None
    try:
        meta: object = json.loads(raw)
    except ValueError as exc:
        raise CorruptFileError(f"{path}: its schema metadata is not valid JSON ({exc}).") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        return None
    version = meta.get("format_version", 0)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CorruptFileError(
            f"{path} uses trajectory format version {version!r}; this rlstructures-logging "
            f"reads versions up to {FORMAT_VERSION}. Upgrade rlstructures-logging."
        )
    return meta


def _find_parts(path: Path) -> list[tuple[Path, Path | None]]:
    """``(steps file, per-trajectory file or None)`` pairs to read, in part order."""
    if path.is_file():
        if _PART_RE.match(path.name):
            root = path.parent.parent if path.parent.name == TRAJECTORIES_DIR else path.parent
            companion = root / TRAJECTORIES_DIR / path.name
            if companion.is_file() or path.parent.name == TRAJECTORIES_DIR:
                return [(root / path.name, companion)]
        return [(path, None)]  # a long-format file without companion
    if not path.is_dir():
        raise NoDataError(f"{str(path)!r} does not exist.")
    if path.name == TRAJECTORIES_DIR:
        path = path.parent  # the user pointed at the per-trajectory folder
    found = sorted(
        (int(m.group(1)), p) for p in path.glob("part-*") if (m := _PART_RE.match(p.name))
    )
    if not found:
        raise NoDataError(
            f"{str(path)!r} holds no trajectory files (expected part-00000.arrow or "
            ".parquet and _trajectories/, as written by TrajectoryWriter)."
        )
    return [(p, path / TRAJECTORIES_DIR / p.name) for _, p in found]


def _cut(batches: list[Any], n_rows: int) -> list[Any]:
    """The first ``n_rows`` rows of ``batches`` (zero-copy slices)."""
    out: list[Any] = []
    for batch in batches:
        if n_rows <= 0:
            break
        out.append(batch if batch.num_rows <= n_rows else batch.slice(0, n_rows))
        n_rows -= batch.num_rows
    return out


def _read_part(steps_path: Path, trajs_path: Path) -> _Part | None:
    if not trajs_path.is_file():
        if steps_path.suffix == ".arrow" and not any(
                b.num_rows for b in _read_batches(steps_path)[1]):
            return None  # an empty part: nothing was lost
        raise CorruptFileError(
            f"{steps_path} has no per-trajectory companion {trajs_path}; both files of a "
            "part are needed (it holds the lengths and the info keys)."
        )
    steps_schema, steps, steps_done = _read_batches(steps_path)
    trajs_schema, trajs, trajs_done = _read_batches(trajs_path)
    if steps_schema is None or trajs_schema is None:
        return None  # created, then the writer died before its first write
    meta = _meta(trajs_schema, trajs_path)
    if meta is None or _meta(steps_schema, steps_path) is None:
        raise CorruptFileError(
            f"{steps_path} / {trajs_path} lack the {METADATA_KEY.decode()!r} schema metadata "
            "that TrajectoryWriter writes."
        )
    lengths = np.concatenate(
        [np.asarray(b.column("length"), np.int64) for b in trajs] or [np.zeros(0, np.int64)]
    )
    available = sum(b.num_rows for b in steps)
    needed = int(lengths.sum())
    if available != needed:
        if steps_done and trajs_done:
            raise CorruptFileError(
                f"{steps_path} holds {available} step rows but {trajs_path} lists "
                f"trajectories of {needed} steps in all; the two files do not belong together."
            )
        # An unfinished part: keep the trajectories whose steps all made it to disk.
        keep = int(np.searchsorted(np.cumsum(lengths), available, side="right"))
        trajs = _cut(trajs, keep)
        steps = _cut(steps, int(lengths[:keep].sum()))
    return _Part(meta, steps, trajs)


def _column(batches: list[Any], name: str) -> IntArray:
    return np.concatenate(
        [np.asarray(b.column(name), np.int64) for b in batches] or [np.zeros(0, np.int64)]
    )


def _check_specs(parts: list[_Part]) -> tuple[dict[str, Spec], dict[str, Spec]]:
    first = parts[0].meta
    for part in parts[1:]:
        for kind in ("step_specs", "info_specs"):
            if part.meta[kind] != first[kind]:
                raise SchemaMismatchError(
                    f"the parts hold different {kind}: {first[kind]} and {part.meta[kind]}; "
                    "they come from different writers. Read them separately."
                )
    return specs_from_json(first["step_specs"]), specs_from_json(first["info_specs"])


def _info(parts: list[_Part], specs: dict[str, Spec], b: int) -> DictTensor:
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


def _steps(parts: list[_Part], specs: dict[str, Spec], ids: IntArray, lengths: IntArray,
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
    for batch in batches:
        rows = slice(r0, r0 + batch.num_rows)
        if not (np.array_equal(np.asarray(batch.column("trajectory")), ids[b_of_row[rows]])
                and np.array_equal(np.asarray(batch.column("t")), t_of_row[rows])):
            raise CorruptFileError(
                f"step rows {rows.start}..{rows.stop - 1} are not in (trajectory, t) order "
                "with t = 0..length-1 as TrajectoryWriter writes them."
            )
        _fill(out, batch, keys, rows, (b_of_row, t_of_row, starts, lengths, t))
        r0 = rows.stop
    return out


def _foreign(path: Path) -> Trajectories:
    """A long-format file that TrajectoryWriter did not write.

    E.g. ``TemporalDictTensor.to_arrow`` rows saved by hand: sequences only, no info.
    """
    schema, batches, _ = _read_batches(path)
    if schema is None:
        if path.stat().st_size == 0:
            raise NoDataError(f"{path} is empty.")
        raise CorruptFileError(
            f"{path} is neither an Arrow IPC file or stream nor a Parquet file (by its "
            "extension): no Arrow schema could be read from it."
        )
    if _meta(schema, path) is not None:
        raise CorruptFileError(
            f"{path} is a steps file of a TrajectoryWriter dataset, but its companion "
            f"{TRAJECTORIES_DIR}/{path.name} (lengths and info keys) is missing next to it; "
            "copy the two together, or read the dataset directory."
        )
    try:
        tdt = TemporalDictTensor.from_arrow(pa.Table.from_batches(batches, schema=schema))
    except DictTensorError as exc:
        raise CorruptFileError(f"{path} is not a long-format trajectory table: {exc}") from exc
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
    pairs = _find_parts(Path(path))
    if pairs[0][1] is None:
        return _foreign(pairs[0][0])
    parts = [p for s, t in pairs if t is not None and (p := _read_part(s, t)) is not None]
    if not parts:
        raise NoDataError(f"{str(path)!r} holds only empty trajectory files.")
    step_specs, info_specs = _check_specs(parts)
    trajs = [t for p in parts for t in p.trajs]
    ids, lengths = _column(trajs, "trajectory"), _column(trajs, "length")
    max_lengths = _column(trajs, "max_length")
    if len(ids) > 1 and not bool((np.diff(ids) > 0).all()):
        raise CorruptFileError(
            f"trajectory ids in {str(path)!r} are not increasing: the parts come from "
            "different writers. Read them one by one."
        )
    if bool((lengths > max_lengths).any()) or bool((lengths < 0).any()):
        raise CorruptFileError(f"{str(path)!r}: a trajectory length is outside [0, max_length].")
    t = int(max_lengths.max()) if len(ids) else 0
    data = _steps(parts, step_specs, ids, lengths, t)
    steps = TemporalDictTensor(DictTensor(data, batch_shape=(len(ids), t)), lengths)
    return Trajectories(_info(parts, info_specs, len(ids)), steps)
