"""The trajectory file format: names, schema metadata and the checks on keys and specs."""

from __future__ import annotations

import functools
import importlib.metadata
import zlib
from collections.abc import Mapping
from typing import Any, Final, Literal

import numpy as np

from rlstructures.dicttensor import Spec
from rlstructures.logging.errors import SchemaMismatchError

__all__ = [
    "CRC_KEY",
    "EXTENSIONS",
    "SEQ_KEY",
    "arrow_type",
    "batch_custom_metadata",
    "companion_crc",
    "values_crc",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "METADATA_KEY",
    "STEP_COLUMNS",
    "TRAJECTORIES_DIR",
    "TRAJECTORY_COLUMNS",
    "Format",
    "check_parquet_storable",
    "check_reserved",
    "check_same_specs",
    "part_name",
    "specs_from_json",
    "specs_to_json",
    "writer_version",
]

Format = Literal["arrow", "parquet"]
FORMAT_NAME: Final = "rlstructures.trajectories"
FORMAT_VERSION: Final = 1
#: Schema metadata key of both tables; its value is a JSON object (see README).
METADATA_KEY: Final = b"rlstructures.trajectories"
EXTENSIONS: Final[dict[str, str]] = {"arrow": ".arrow", "parquet": ".parquet"}
#: Index columns of the steps table, then the step keys.
STEP_COLUMNS: Final = ("trajectory", "t")
#: Index columns of the per-trajectory table, then the info keys.
TRAJECTORY_COLUMNS: Final = ("trajectory", "length", "max_length")
#: Sub-directory of the per-trajectory table (``_``: skipped by dataset readers).
TRAJECTORIES_DIR: Final = "_trajectories"
#: Custom metadata of each record batch of an Arrow part: the write's number in the part
#: (both tables), and a CRC-32 of the per-trajectory table's values (lengths and info).
SEQ_KEY: Final = b"rlstructures.seq"
CRC_KEY: Final = b"rlstructures.crc32"
#: The numpy dtypes a trajectory file may hold (what DictTensor stores).
_DTYPES: Final = frozenset(
    ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
     "float16", "float32", "float64"])


@functools.lru_cache(maxsize=1024)
def arrow_type(spec: Spec) -> Any:
    """The Arrow type of a column of rows of ``spec`` (as DictTensor.to_arrow writes it)."""
    import pyarrow as pa

    value = pa.from_numpy_dtype(spec.dtype)
    if len(spec.shape) == 1:
        return pa.list_(value, spec.shape[0])
    if spec.shape:
        return pa.fixed_shape_tensor(value, list(spec.shape))
    return value


def values_crc(columns: list[Any]) -> int:
    """CRC-32 of a table's columns as numpy arrays (bools as 0/1 bytes), in order."""
    crc = zlib.crc32(np.int64(len(columns[0]) if columns else 0).tobytes())
    for values in columns:
        array = np.asarray(values)
        if array.dtype == np.bool_:
            array = array != 0  # one byte 0 or 1 per value, whatever the input's bytes
        crc = zlib.crc32(np.ascontiguousarray(array).data, crc)
    return crc


def _column_values(column: Any) -> Any:
    """The flat numpy values of a (validated, null-free) column of fixed-width rows."""
    import pyarrow as pa

    if isinstance(column.type, pa.BaseExtensionType):
        column = column.storage
    while isinstance(column.type, pa.FixedSizeListType):
        column = column.flatten()
    return column.to_numpy(zero_copy_only=False)


def companion_crc(batch: Any) -> int:
    """`values_crc` of a per-trajectory batch read back (what the writer computed)."""
    return values_crc([_column_values(column) for column in batch.columns])


def batch_custom_metadata(seq: int, crc: int | None = None) -> dict[bytes, bytes]:
    """The custom metadata of one record batch of a part."""
    meta = {SEQ_KEY: str(seq).encode()}
    if crc is not None:
        meta[CRC_KEY] = f"{crc:08x}".encode()
    return meta


def part_name(index: int, fmt: str) -> str:
    """File name of part ``index``: ``part-00000.arrow``."""
    return f"part-{index:05d}{EXTENSIONS[fmt]}"


def specs_to_json(specs: Mapping[str, Spec]) -> dict[str, dict[str, Any]]:
    """``{key: {"shape": [...], "dtype": "float32"}}``."""
    return {k: {"shape": list(s.shape), "dtype": s.dtype.name} for k, s in specs.items()}


def specs_from_json(raw: object) -> dict[str, Spec]:
    """Inverse of `specs_to_json`; ValueError for anything `specs_to_json` cannot produce."""
    if not isinstance(raw, dict):
        raise ValueError(f"specs are a {type(raw).__name__}, not a JSON object")
    out: dict[str, Spec] = {}
    for key, value in raw.items():
        if not isinstance(value, dict) or set(value) != {"shape", "dtype"}:
            raise ValueError(f"the spec of {key!r} is {value!r}")
        shape, dtype = value["shape"], value["dtype"]
        if (not isinstance(shape, list) or len(shape) > 32
                or not all(type(d) is int and 0 <= d < 2**31 for d in shape)):
            raise ValueError(f"the shape of {key!r} is {shape!r}")
        if dtype not in _DTYPES:
            raise ValueError(f"the dtype of {key!r} is {dtype!r}")
        out[key] = Spec(tuple(shape), dtype)
    return out


@functools.cache
def writer_version() -> str:
    """``rlstructures-logging`` version, for the schema metadata."""
    try:
        return importlib.metadata.version("rlstructures-logging")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - source checkout
        return "unknown"


def _describe(specs: Mapping[str, Spec]) -> str:
    return ", ".join(f"{k!r}: {s.dtype.name}{list(s.shape)}" for k, s in specs.items())


def check_same_specs(kind: str, expected: dict[str, Spec], got: dict[str, Spec]) -> None:
    """SchemaMismatchError naming the missing, extra or differing keys."""
    missing = [k for k in expected if k not in got]
    extra = [k for k in got if k not in expected]
    if missing or extra:
        raise SchemaMismatchError(
            f"these Trajectories have other {kind} keys than the file: missing {missing}, "
            f"extra {extra} (the file has {_describe(expected)}). Every write to one "
            "TrajectoryWriter must hold the same keys; use another writer (another path) "
            "for data with other keys."
        )
    for key, spec in expected.items():
        if got[key] != spec:
            raise SchemaMismatchError(
                f"{kind} key {key!r} is {got[key].dtype.name}{list(got[key].shape)} per row "
                f"in these Trajectories, but {spec.dtype.name}{list(spec.shape)} in the "
                "file. Cast it first, e.g. `x.astype(np.float32)`, or write to another path."
            )


def check_reserved(kind: str, keys: list[str], reserved: tuple[str, ...]) -> None:
    """SchemaMismatchError if a key is an index column name."""
    clash = [k for k in keys if k in reserved]
    if clash:
        raise SchemaMismatchError(
            f"{kind} keys {clash} are reserved for the index columns {list(reserved)} of "
            "the trajectory files; rename them (e.g. with a 'env_info/' prefix)."
        )


def check_parquet_storable(specs: Mapping[str, Spec]) -> None:
    """SchemaMismatchError for zero-size rows, which pyarrow cannot read back from Parquet."""
    empty = {k: s.shape for k, s in specs.items() if s.shape and 0 in s.shape}
    if empty:
        raise SchemaMismatchError(
            f"keys {empty} have zero-size rows (a 0 in the per-row shape), which pyarrow "
            "cannot read back from Parquet. Use format='arrow', or drop those keys."
        )
