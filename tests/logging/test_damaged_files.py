"""Damaged files: the readers answer with what was written, or CorruptFileError, never a crash."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from rlstructures.dicttensor import Trajectories
from rlstructures.logging import (
    CorruptFileError,
    Logger,
    TrajectoryWriter,
    read_logs,
    read_trajectories,
)
from tests.logging.data import make_batch


@pytest.mark.slow
def test_random_damage_is_never_a_crash_a_raw_error_or_a_wrong_table(tmp_path: Path) -> None:
    """1500 cases of flipped, overwritten, zeroed, cut, deleted, repeated bytes and lost,
    swapped or copied parts, over CSV and Arrow logs and Arrow, LZ4 and Parquet datasets.
    """
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    done = subprocess.run(
        [sys.executable, "-m", "tests.logging.fuzz_readers", str(tmp_path), "0", "1500"],
        capture_output=True, text=True, env=env, timeout=600)
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    started = [r["start"] for r in lines if "start" in r]
    assert done.returncode == 0, (
        f"the reader process died ({done.returncode}) in case {started[-1] if started else '?'}"
        f":\n{done.stderr[-3000:]}")
    reports = [r for r in lines if "outcome" in r]
    assert len(reports) == 1500
    bad = [r for r in reports if r["outcome"] == "bad"]
    assert not bad, json.dumps(bad[:5], indent=1)
    outcomes = {r["outcome"] for r in reports}
    assert {"ok", "corrupt"} <= outcomes  # the damage was seen, and harmless damage passed


def _log(logdir: Path, n: int = 30) -> None:
    with Logger(logdir, backends=("csv", "arrow"), max_pending=10) as logger:
        for step in range(n):
            logger.add_scalar("x", step / 4, step)


def test_a_flipped_bit_in_an_arrow_log_names_file_and_offset(tmp_path: Path) -> None:
    _log(tmp_path)
    part = tmp_path / "scalars-00000.arrows"
    data = bytearray(part.read_bytes())
    batches = list(pa.ipc.open_stream(bytes(data)))
    assert [b.num_rows for b in batches] == [10, 10, 10]
    at = len(data) - 8 - 20  # inside the values of the last batch (before end-of-stream)
    data[at] ^= 0x10
    part.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match=r"scalars-00000.arrows is damaged at byte \d+: "
                       "a batch whose CRC-32 does not match") as info:
        read_logs(tmp_path, source="arrow")
    assert info.value.path == part
    assert isinstance(info.value.offset, int)
    assert info.value.offset < at
    partial: pa.Table = info.value.partial
    assert partial.column("step").to_pylist() == list(range(20))


def test_a_repeated_arrow_batch_is_damage(tmp_path: Path) -> None:
    _log(tmp_path)
    part = tmp_path / "scalars-00000.arrows"
    data = part.read_bytes()
    schema_end = len(pa.ipc.open_stream(data).schema.serialize())
    body = data[schema_end:-8]
    first = body[: len(body) // 3]  # the three batches have the same size
    part.write_bytes(data[:schema_end] + first + body + data[-8:])
    with pytest.raises(CorruptFileError, match="lost or repeated"):
        read_logs(tmp_path, source="arrow")


def test_a_damaged_csv_line_names_the_line_and_keeps_the_rows_before(tmp_path: Path) -> None:
    _log(tmp_path)
    csv = tmp_path / "scalars.csv"
    lines = csv.read_bytes().split(b"\n")
    lines[8] = lines[8].replace(b",x,", b",x,y,")  # five fields
    csv.write_bytes(b"\n".join(lines))
    with pytest.raises(CorruptFileError, match=r"damaged at line 9 \(byte \d+\)") as info:
        read_logs(tmp_path, source="csv")
    assert info.value.offset == len(b"\n".join(lines[:8])) + 1
    partial: pa.Table = info.value.partial
    assert partial.column("step").to_pylist() == list(range(7))
    lines[8] = b"\xff\xfe" + lines[8]  # not UTF-8
    csv.write_bytes(b"\n".join(lines))
    with pytest.raises(CorruptFileError, match="line 9"):
        read_logs(tmp_path, source="csv")


def _dataset(path: Path, fmt: str = "arrow") -> list[Trajectories]:
    writes = [make_batch(3, 4, lengths=[4, s % 5, 2], seed=s) for s in range(6)]
    with TrajectoryWriter(path, fmt, max_file_bytes=3000) as writer:  # type: ignore[arg-type]
        for write in writes:
            writer.write(write)
    assert len(list(path.glob("part-*"))) >= 3
    return writes


@pytest.mark.parametrize("fmt", ["arrow", "parquet"])
def test_a_lost_part_is_damage_and_the_parts_before_it_are_kept(tmp_path: Path, fmt: str) -> None:
    writes = _dataset(tmp_path, fmt)
    first = read_trajectories(sorted(tmp_path.glob("part-*"))[0])
    for lost in sorted(tmp_path.glob("part-*"))[1:2]:
        lost.unlink()
    with pytest.raises(CorruptFileError, match="a part of the dataset is missing") as info:
        read_trajectories(tmp_path)
    partial: Trajectories = info.value.partial
    assert partial.equal(first)
    assert len(first) < 3 * len(writes)


def test_a_flipped_bit_in_the_per_trajectory_table_is_damage(tmp_path: Path) -> None:
    _dataset(tmp_path)
    companion = tmp_path / "_trajectories" / "part-00000.arrow"
    data = bytearray(companion.read_bytes())
    table = pa.ipc.open_file(bytes(data)).read_all()
    seeds = table.column("env_info/seed").to_pylist()
    at = bytes(data).find((seeds[0]).to_bytes(8, "little") + (seeds[1]).to_bytes(8, "little"))
    assert at > 0
    data[at] ^= 0x04  # env_info/seed 0 -> 4: plausible, and silently wrong before
    companion.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match="does not match its CRC-32"):
        read_trajectories(tmp_path)


def test_damaged_specs_are_damage_not_a_raw_error(tmp_path: Path) -> None:
    _dataset(tmp_path)
    for old, new, message in [(b'"float32"', b'"float16"', "metadata says float16"),
                              (b'"int64"', b'"int74"', "damaged specs"),
                              (b'"shape": [3, 2]', b'"shape": [3, 9]', r"float32\[3, 9\]")]:
        case = tmp_path.parent / f"case{old[:4]!r}"
        shutil.copytree(tmp_path, case, dirs_exist_ok=True)
        for damaged in (case / "part-00000.arrow", case / "_trajectories" / "part-00000.arrow"):
            data = damaged.read_bytes()
            assert old in data
            damaged.write_bytes(data.replace(old, new, 1))  # both: the same metadata
        with pytest.raises(CorruptFileError, match=message):
            read_trajectories(case)


def test_a_device_or_fifo_in_place_of_a_file_is_damage_not_a_hang(tmp_path: Path) -> None:
    _log(tmp_path / "logs")
    part = tmp_path / "logs" / "scalars-00001.arrows"
    part.symlink_to("/dev/zero")  # read to the end: forever
    with pytest.raises(CorruptFileError, match="not a regular file"):
        read_logs(tmp_path / "logs", source="arrow")
    _dataset(tmp_path / "data")
    steps = tmp_path / "data" / "part-00001.arrow"
    steps.unlink()
    os.mkfifo(steps)  # opening it for reading blocks until a writer comes
    with pytest.raises(CorruptFileError, match="not a regular file"):
        read_trajectories(tmp_path / "data")


def test_a_symlink_loop_or_a_directory_in_place_of_a_file_is_damage(tmp_path: Path) -> None:
    """A symlink loop was a raw OSError (ELOOP); a directory was called "a device, a FIFO"."""
    _log(tmp_path / "logs")
    loop = tmp_path / "logs" / "scalars-00001.arrows"
    loop.symlink_to(loop)
    with pytest.raises(CorruptFileError, match="cannot be opened: Too many levels"):
        read_logs(tmp_path / "logs", source="arrow")
    _dataset(tmp_path / "data")
    steps = tmp_path / "data" / "part-00001.arrow"
    steps.unlink()
    steps.mkdir()
    with pytest.raises(CorruptFileError, match="is a directory"):
        read_trajectories(tmp_path / "data")
