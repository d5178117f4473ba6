"""Finding the parts of a trajectory dataset and reading each one, checked.

Everything a part says about itself is checked before it is trusted: the schema metadata
(its JSON, the specs in it) against the columns' Arrow types, the per-trajectory table
against its CRC-32 and write numbers, its lengths against ``max_length`` and the step rows
present. What a crashed writer leaves (an unfinished Arrow part) is read up to its last
complete write; anything else that does not add up is a `CorruptFileError` naming the file.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

# pyarrow is a hard dependency of rlstructures-logging, so a module-level import is allowed.
import pyarrow as pa  # noqa: TID253

from rlstructures.dicttensor import Spec
from rlstructures.logging._format import (
    CRC_KEY,
    FORMAT_NAME,
    FORMAT_VERSION,
    METADATA_KEY,
    SEQ_KEY,
    STEP_COLUMNS,
    TRAJECTORIES_DIR,
    TRAJECTORY_COLUMNS,
    arrow_type,
    companion_crc,
    specs_from_json,
)
from rlstructures.logging._ipc import READ_ERRORS, IpcContents, check_regular, read_ipc
from rlstructures.logging._parts import STAGING_DIR
from rlstructures.logging.errors import CorruptFileError, NoDataError

__all__ = ["PartData", "find_parts", "read_part", "read_table_file", "schema_meta"]

_log = logging.getLogger(__name__)

_PART_RE: Final = re.compile(r"^part-(\d{5,})\.(arrow|parquet)$")


@dataclass(frozen=True)
class PartData:
    """What was read of one part: its metadata and specs, step and per-trajectory batches."""

    meta: dict[str, Any]
    step_specs: dict[str, Spec]
    info_specs: dict[str, Spec]
    steps: list[Any]  # pyarrow.RecordBatch, in file order
    trajs: list[Any]
    path: Path


def read_table_file(path: Path) -> IpcContents:
    """One Arrow or Parquet file, read and validated (Arrow memory-mapped).

    Raises:
        CorruptFileError: the file is damaged (or not Arrow / Parquet).
    """
    if path.suffix != ".parquet":
        return read_ipc(path)
    import pyarrow.parquet as pq

    check_regular(path)
    batches: list[Any] = []
    try:
        parquet = pq.ParquetFile(str(path), memory_map=True, page_checksum_verification=True)
        schema = parquet.schema_arrow
        for group in range(parquet.num_row_groups):
            table = parquet.read_row_group(group)
            table.validate(full=True)
            batches.extend(table.combine_chunks().to_batches())
    except READ_ERRORS as exc:
        raise CorruptFileError(
            f"{path} cannot be read as Parquet ({type(exc).__name__}: {exc}).", path=path,
            partial=batches) from exc
    return IpcContents(schema, batches, [None] * len(batches), True)


def schema_meta(schema: Any, path: Path) -> dict[str, Any] | None:
    """The ``rlstructures.trajectories`` metadata of a schema, checked; None if it has none."""
    raw = (schema.metadata or {}).get(METADATA_KEY) if schema is not None else None
    if raw is None:
        return None
    try:
        meta: object = json.loads(raw)
    except ValueError as exc:  # UnicodeDecodeError included
        raise CorruptFileError(f"{path}: its schema metadata is not valid JSON ({exc}).",
                               path=path) from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        return None
    version = meta.get("format_version")
    if type(version) is not int or version > FORMAT_VERSION:
        raise CorruptFileError(
            f"{path} uses trajectory format version {version!r}; this rlstructures-logging "
            f"reads versions up to {FORMAT_VERSION}. Upgrade rlstructures-logging.",
            path=path)
    return meta


def _check_columns(schema: Any, index: tuple[str, ...], specs: dict[str, Spec],
                   path: Path) -> None:
    expected = [*index, *specs]
    if schema.names != expected:
        raise CorruptFileError(f"{path} holds the columns {schema.names}, but its metadata "
                               f"says {expected}.", path=path)
    for name in index:
        if schema.field(name).type != pa.int64():
            raise CorruptFileError(f"{path}: column {name!r} is {schema.field(name).type}, "
                                   "not int64.", path=path)
    for key, spec in specs.items():
        if schema.field(key).type != arrow_type(spec):
            raise CorruptFileError(
                f"{path}: column {key!r} is {schema.field(key).type}, but its metadata says "
                f"{spec.dtype.name}{list(spec.shape)} per row.", path=path)


def _specs(meta: dict[str, Any], path: Path) -> tuple[dict[str, Spec], dict[str, Spec]]:
    try:
        return specs_from_json(meta.get("step_specs")), specs_from_json(meta.get("info_specs"))
    except ValueError as exc:
        raise CorruptFileError(f"{path}: damaged specs in its schema metadata ({exc}).",
                               path=path) from exc


def _check_companion(contents: IpcContents, path: Path) -> None:
    """Write numbers, CRC-32, lengths within [0, max_length], one max_length per write."""
    for seq, (batch, meta) in enumerate(zip(contents.batches, contents.metadata,
                                            strict=True)):
        if meta is not None and CRC_KEY in meta:
            if meta.get(SEQ_KEY) != str(seq).encode():
                raise CorruptFileError(
                    f"{path}: record batch {seq} says it is write {meta.get(SEQ_KEY)!r} (a "
                    "write lost or repeated).", path=path)
            if meta[CRC_KEY] != f"{companion_crc(batch):08x}".encode():
                raise CorruptFileError(
                    f"{path}: record batch {seq} does not match its CRC-32 (flipped bits).",
                    path=path)
        lengths = np.asarray(batch.column("length"))
        max_lengths = np.asarray(batch.column("max_length"))
        if len(lengths) and (
                (lengths < 0).any() or (lengths > max_lengths).any()
                or (meta is not None and (max_lengths != max_lengths[0]).any())):
            raise CorruptFileError(
                f"{path}: record batch {seq} holds a length outside [0, max_length] or "
                "several max_length values.", path=path)


def _steps_per_write(contents: IpcContents, trajs: IpcContents, path: Path) -> None:
    """In an Arrow part, the i-th steps batch holds the steps of the i-th write."""
    if not any(m is not None and SEQ_KEY in m for m in contents.metadata):
        return  # a Parquet part, or written by a version without write numbers
    for seq, (batch, meta, companion) in enumerate(zip(
            contents.batches, contents.metadata, trajs.batches, strict=False)):
        if meta is None or meta.get(SEQ_KEY) != str(seq).encode():
            raise CorruptFileError(f"{path}: record batch {seq} is not write {seq}.", path=path)
        needed = int(np.asarray(companion.column("length")).sum())
        if batch.num_rows != needed:
            raise CorruptFileError(
                f"{path}: write {seq} holds {batch.num_rows} step rows, but its trajectories "
                f"have {needed} steps.", path=path)


def _cut(batches: list[Any], n_rows: int) -> list[Any]:
    """The first ``n_rows`` rows of ``batches`` (zero-copy slices)."""
    out: list[Any] = []
    for batch in batches:
        if n_rows <= 0:
            break
        out.append(batch if batch.num_rows <= n_rows else batch.slice(0, n_rows))
        n_rows -= batch.num_rows
    return out


def read_part(steps_path: Path, trajs_path: Path) -> PartData | None:
    """One part, checked; None for a part created by a writer that died before writing.

    Raises:
        CorruptFileError: anything that does not add up.
    """
    if not trajs_path.is_file():
        steps = read_table_file(steps_path)
        if not any(b.num_rows for b in steps.batches):
            return None  # an empty part: nothing was lost
        raise CorruptFileError(
            f"{steps_path} has no per-trajectory companion {trajs_path}; both files of a "
            "part are needed (it holds the lengths and the info keys).", path=steps_path)
    steps, trajs = read_table_file(steps_path), read_table_file(trajs_path)
    if steps.schema is None or trajs.schema is None:
        if not steps.finished and not trajs.finished:  # unfinished: no complete write
            if trajs.batches:
                _log.warning("%s: no complete steps; its trajectories are dropped.",
                             steps_path)
            return None
        bad = steps_path if steps.schema is None else trajs_path
        raise CorruptFileError(f"{bad} holds no Arrow schema, but the other file of its part "
                               "does.", path=bad)
    meta = schema_meta(trajs.schema, trajs_path)
    steps_meta = schema_meta(steps.schema, steps_path)
    if meta is None or steps_meta is None:
        raise CorruptFileError(
            f"{steps_path} / {trajs_path} lack the {METADATA_KEY.decode()!r} schema metadata "
            "that TrajectoryWriter writes.", path=steps_path if steps_meta is None else
            trajs_path)
    same = {k: v for k, v in meta.items() if k != "table"} == {
        k: v for k, v in steps_meta.items() if k != "table"}
    if not same or meta.get("table") != "trajectories" or steps_meta.get("table") != "steps":
        raise CorruptFileError(f"{steps_path} and {trajs_path} carry different schema "
                               "metadata: they are not the two files of one part.",
                               path=steps_path)
    step_specs, info_specs = _specs(meta, trajs_path)
    _check_columns(steps.schema, STEP_COLUMNS, step_specs, steps_path)
    _check_columns(trajs.schema, TRAJECTORY_COLUMNS, info_specs, trajs_path)
    _check_companion(trajs, trajs_path)
    _steps_per_write(steps, trajs, steps_path)
    trajs_batches, steps_batches = trajs.batches, steps.batches
    lengths = np.concatenate(
        [np.asarray(b.column("length")) for b in trajs_batches] or [np.zeros(0, np.int64)])
    available = sum(b.num_rows for b in steps_batches)
    needed = int(lengths.sum())
    if available != needed:
        if (steps.finished and trajs.finished) or (available < needed and trajs.finished):
            raise CorruptFileError(
                f"{steps_path} holds {available} step rows but {trajs_path} lists "
                f"trajectories of {needed} steps in all; the two files do not belong "
                "together.", path=steps_path)
        # An unfinished part: keep the trajectories whose steps all made it to disk.
        keep = int(np.searchsorted(np.cumsum(lengths), available, side="right"))
        trajs_batches = _cut(trajs_batches, keep)
        steps_batches = _cut(steps_batches, int(lengths[:keep].sum()))
        lengths = lengths[:keep]
    ids = np.concatenate(
        [np.asarray(b.column("trajectory")) for b in trajs_batches] or [np.zeros(0, np.int64)])
    _check_step_index(steps_batches, ids, lengths, steps_path)
    return PartData(meta, step_specs, info_specs, steps_batches, trajs_batches, steps_path)


def _check_step_index(batches: list[Any], ids: Any, lengths: Any, path: Path) -> None:
    """The steps are the rows (id, 0..length-1) of each trajectory, in the companion's order."""
    expected_ids = np.repeat(ids, lengths)
    starts = np.cumsum(lengths) - lengths
    expected_t = np.arange(len(expected_ids), dtype=np.int64) - np.repeat(starts, lengths)
    row = 0
    for number, batch in enumerate(batches):
        rows = slice(row, row + batch.num_rows)
        if not (np.array_equal(np.asarray(batch.column("trajectory")), expected_ids[rows])
                and np.array_equal(np.asarray(batch.column("t")), expected_t[rows])):
            raise CorruptFileError(
                f"{path}: the step rows {rows.start}..{rows.stop - 1} (record batch {number}) "
                "are not the rows (trajectory, t = 0..length-1) that its companion lists.",
                path=path)
        row = rows.stop


def _indexed(folder: Path) -> dict[int, Path]:
    found: dict[int, Path] = {}
    for path in folder.glob("part-*") if folder.is_dir() else []:
        match = _PART_RE.match(path.name)
        if match:
            index = int(match.group(1))
            if index in found:
                raise CorruptFileError(f"{folder} holds two parts numbered {index}: "
                                       f"{found[index].name} and {path.name}.", path=path)
            found[index] = path
    return found


def find_parts(path: Path) -> list[tuple[Path, Path | None]]:
    """``(steps file, per-trajectory file or None)`` pairs to read, in part order.

    A directory: its parts, and the parts of a Parquet dataset still staged as Arrow in
    ``_staging/`` (where a part is both, the finished Parquet one). A file: that part with
    its companion, or a long-format file of other origin (companion None).
    """
    if path.is_file():
        if _PART_RE.match(path.name):
            root = path.parent.parent if path.parent.name == TRAJECTORIES_DIR else path.parent
            companion = root / TRAJECTORIES_DIR / path.name
            if companion.is_file() or path.parent.name == TRAJECTORIES_DIR:
                return [(root / path.name, companion)]
        return [(path, None)]  # a long-format file without companion
    if not path.is_dir():
        raise NoDataError(f"{str(path)!r} does not exist.")
    if path.name in (TRAJECTORIES_DIR, STAGING_DIR):
        path = path.parent  # the user pointed at a folder inside the dataset
    parts = {i: (p, path / TRAJECTORIES_DIR / p.name) for i, p in _indexed(path).items()}
    staging = path / STAGING_DIR
    for i, p in _indexed(staging).items():
        parts.setdefault(i, (p, staging / TRAJECTORIES_DIR / p.name))
    if not parts:
        raise NoDataError(
            f"{str(path)!r} holds no trajectory files (expected part-00000.arrow or "
            ".parquet and _trajectories/, as written by TrajectoryWriter)."
        )
    return [parts[i] for i in sorted(parts)]
