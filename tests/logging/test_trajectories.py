"""TrajectoryWriter / read_trajectories: round trips, schema errors, layout and metadata."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlstructures.dicttensor import DictTensor, Spec, TemporalDictTensor, Trajectories
from rlstructures.logging import (
    CorruptFileError,
    DatasetExistsError,
    NoDataError,
    SchemaMismatchError,
    TrajectoryWriter,
    WriterClosedError,
    read_trajectories,
)
from tests.logging.data import make_batch
from tests.logging.strategies import schemas, trajectories

FORMATS = ["arrow", "parquet"]


def expected_cat(parts: list[Trajectories], step_specs: dict[str, Spec],
                 info_specs: dict[str, Spec]) -> Trajectories:
    """What reading back several writes gives: their concatenation (T = the largest T of
    the writes that held sequences)."""
    nonempty = [p for p in parts if len(p)]
    if nonempty:
        return Trajectories.cat(nonempty)
    steps = TemporalDictTensor(DictTensor.zeros(step_specs, (0, 0)), np.zeros(0, np.int64))
    return Trajectories(DictTensor.zeros(info_specs, (0,)), steps)


# ------------------------------------------------------------------ round trips
@settings(max_examples=100)
@given(
    schema=schemas(),
    data=st.data(),
    fmt=st.sampled_from(FORMATS),
    max_bytes=st.sampled_from([None, 1, 3000]),
)
def test_round_trip_several_writes_with_rotation(
    schema: tuple[dict[str, Spec], dict[str, Spec]], data: st.DataObject, fmt: str,
    max_bytes: int | None,
) -> None:
    step_specs, info_specs = schema
    parts = data.draw(st.lists(
        trajectories(step_specs=step_specs, info_specs=info_specs), min_size=1, max_size=4))
    zero_size_rows = any(0 in s.shape for s in [*step_specs.values(), *info_specs.values()])
    with tempfile.TemporaryDirectory() as tmp:
        if fmt == "parquet" and zero_size_rows:
            with pytest.raises(SchemaMismatchError, match="zero-size rows"):
                TrajectoryWriter(tmp, "parquet").write(parts[0])
            return
        with TrajectoryWriter(tmp, fmt, max_file_bytes=max_bytes) as writer:  # type: ignore[arg-type]
            for part in parts:
                writer.write(part)
        assert writer.n_trajectories == sum(len(p) for p in parts)
        back = read_trajectories(tmp)
        assert back.equal(expected_cat(parts, step_specs, info_specs))
        n_files = len(list(Path(tmp).glob("part-*")))
        if max_bytes == 1 and fmt == "arrow":
            assert n_files == len(parts)  # every write filled its file: one part each
            for i, part in enumerate(parts):  # one file reads back as its own write
                single = read_trajectories(Path(tmp, f"part-{i:05d}.arrow"))
                assert single.equal(expected_cat([part], step_specs, info_specs))
        if max_bytes is None:
            assert n_files == 1


@pytest.mark.parametrize("fmt", FORMATS)
def test_zero_length_sequences_keep_their_info(tmp_path: Path, fmt: str) -> None:
    batch = make_batch(4, 3, lengths=[0, 3, 0, 1])
    with TrajectoryWriter(tmp_path, fmt) as writer:  # type: ignore[arg-type]
        writer.write(batch)
        writer.write(make_batch(2, 5, lengths=[0, 0], seed=1))
    back = read_trajectories(tmp_path)
    assert back.lengths.tolist() == [0, 3, 0, 1, 0, 0]
    assert back.trajectories.batch_shape == (6, 5)
    assert back.info["env_info/seed"].tolist() == [0, 1, 2, 3, 1, 2]
    assert back.equal(Trajectories.cat([batch, make_batch(2, 5, lengths=[0, 0], seed=1)]))
    trajs = pq.read_table(tmp_path / "_trajectories") if fmt == "parquet" else None
    if trajs is not None:
        assert trajs.column("trajectory").to_pylist() == list(range(6))
        assert trajs.column("length").to_pylist() == [0, 3, 0, 1, 0, 0]


def test_bare_temporal_dict_tensor_and_no_keys(tmp_path: Path) -> None:
    tdt = TemporalDictTensor(DictTensor({}, batch_shape=(3, 4)), np.array([4, 0, 2]))
    with TrajectoryWriter(tmp_path / "a") as writer:
        writer.write(tdt)
    back = read_trajectories(tmp_path / "a")
    assert back.trajectories.equal(tdt)
    assert list(back.info.keys()) == []
    assert len(back) == 3


def test_torch_trajectories_are_written_from_host_memory(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    batch = make_batch(3, 4, lengths=[4, 2, 0])
    with TrajectoryWriter(tmp_path) as writer:
        writer.write(batch.torch())
    assert read_trajectories(tmp_path).equal(batch)


# ------------------------------------------------------------------ memory mapping
def _mapped_ranges(path: Path) -> list[tuple[int, int]]:
    real = os.path.realpath(path)
    ranges = []
    with open("/proc/self/maps", encoding="utf-8") as fh:
        for line in fh:
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and fields[5].strip() == real:
                lo, hi = (int(x, 16) for x in fields[0].split("-"))
                ranges.append((lo, hi))
    return ranges


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_one_write_of_full_sequences_is_memory_mapped_zero_copy(tmp_path: Path) -> None:
    batch = make_batch(8, 16)  # every sequence full
    with TrajectoryWriter(tmp_path) as writer:
        writer.write(batch)
    back = read_trajectories(tmp_path)
    assert back.equal(batch)
    ranges = _mapped_ranges(tmp_path / "part-00000.arrow")
    assert ranges, "the steps file is not memory-mapped"
    for key in ("observation/frame", "action/action", "reward"):  # numeric: no copy
        leaf = back.trajectories[key]
        address = leaf.__array_interface__["data"][0]
        assert any(lo <= address < hi for lo, hi in ranges), key
        assert not leaf.flags.writeable
    info_ranges = _mapped_ranges(tmp_path / "_trajectories" / "part-00000.arrow")
    address = back.info["agent_info/epsilon"].__array_interface__["data"][0]
    assert any(lo <= address < hi for lo, hi in info_ranges)


def test_variable_lengths_are_copied_into_writable_padded_arrays(tmp_path: Path) -> None:
    batch = make_batch(3, 4, lengths=[4, 1, 3])
    with TrajectoryWriter(tmp_path) as writer:
        writer.write(batch)
    back = read_trajectories(tmp_path)
    assert back.equal(batch)
    assert back.trajectories["reward"].flags.writeable
    assert back.trajectories["reward"][1, 1:].tolist() == [0.0, 0.0, 0.0]  # zero padding


# ------------------------------------------------------------------ schema errors
@pytest.mark.parametrize("fmt", FORMATS)
def test_schema_mismatch_is_an_error_and_the_files_stay_valid(tmp_path: Path, fmt: str) -> None:
    good = [make_batch(2, 3, seed=0), make_batch(3, 2, lengths=[1, 0, 2], seed=1)]
    bad_steps = make_batch(2, 3)
    bad_steps.trajectories["extra"] = np.zeros((2, 3))
    wrong_dtype = make_batch(2, 3)
    wrong_dtype.trajectories["reward"] = np.zeros((2, 3), np.float64)
    wrong_shape = make_batch(2, 3)
    wrong_shape.trajectories["observation/frame"] = np.zeros((2, 3, 2, 3), np.float32)
    missing = Trajectories(good[0].info, good[0].trajectories.exclude(["done"]))
    bad_info = Trajectories(good[0].info.exclude(["env_info/seed"]), good[0].trajectories)
    cases: list[tuple[Trajectories, str]] = [
        (bad_steps, r"extra \['extra'\]"),
        (missing, r"missing \['done'\]"),
        (wrong_dtype, r"'reward' is float64\[\] per row .* but float32\[\] in the file"),
        (wrong_shape, r"'observation/frame' is float32\[2, 3\] .* float32\[3, 2\]"),
        (bad_info, r"other info keys .* missing \['env_info/seed'\]"),
    ]
    with TrajectoryWriter(tmp_path, fmt) as writer:  # type: ignore[arg-type]
        writer.write(good[0])
        for batch, message in cases:
            with pytest.raises(SchemaMismatchError, match=message):
                writer.write(batch)
            with pytest.raises(ValueError, match="file"):  # the builtin it refines
                writer.write(batch)
        writer.write(good[1])
        assert writer.n_trajectories == 5
    assert read_trajectories(tmp_path).equal(Trajectories.cat(good))


def test_reserved_and_unstorable_keys(tmp_path: Path) -> None:
    batch = make_batch(2, 2)
    info_clash = Trajectories(batch.info | DictTensor({"length": np.zeros(2)}), batch.trajectories)
    with TrajectoryWriter(tmp_path / "a") as writer:
        with pytest.raises(SchemaMismatchError, match=r"\['length'\] are reserved"):
            writer.write(info_clash)
        steps = TemporalDictTensor({"t": np.zeros((2, 2))})
        with pytest.raises(SchemaMismatchError, match=r"\['t'\] are reserved"):
            writer.write(steps)
        complex_steps = TemporalDictTensor({"z": np.zeros((2, 2), np.complex64)})
        with pytest.raises(SchemaMismatchError, match="complex64"):
            writer.write(complex_steps)
        assert not (tmp_path / "a" / "_trajectories").exists()  # nothing was written
        writer.write(batch)  # the first valid write fixes the schema
    assert read_trajectories(tmp_path / "a").equal(batch)


def test_writer_arguments_and_lifecycle(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'arrow' or 'parquet'"):
        TrajectoryWriter(tmp_path / "x", "csv")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_file_bytes"):
        TrajectoryWriter(tmp_path / "x", max_file_bytes=0)
    with pytest.raises(TypeError, match="JSON-serialisable"):
        TrajectoryWriter(tmp_path / "x", metadata={"array": np.zeros(2)})
    with pytest.raises(TypeError, match="Trajectories"):
        TrajectoryWriter(tmp_path / "x").write(make_batch(1, 1).info)  # type: ignore[arg-type]
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        TrajectoryWriter(tmp_path / "file")
    writer = TrajectoryWriter(tmp_path / "d")
    writer.write(make_batch(1, 2))
    writer.close()
    writer.close()  # idempotent
    with pytest.raises(WriterClosedError, match="after close"):
        writer.write(make_batch(1, 2))
    with pytest.raises(DatasetExistsError, match="never appends"):
        TrajectoryWriter(tmp_path / "d")
    with pytest.raises(FileExistsError):  # the builtin it refines
        TrajectoryWriter(tmp_path / "d", "parquet")


def test_read_errors(tmp_path: Path) -> None:
    with pytest.raises(NoDataError, match="does not exist"):
        read_trajectories(tmp_path / "missing")
    with pytest.raises(FileNotFoundError):
        read_trajectories(tmp_path / "missing")
    with pytest.raises(NoDataError, match="holds no trajectory files"):
        read_trajectories(tmp_path)
    with TrajectoryWriter(tmp_path / "d") as writer:
        writer.write(make_batch(2, 2))
    (tmp_path / "d" / "_trajectories" / "part-00000.arrow").unlink()
    with pytest.raises(CorruptFileError, match="companion"):
        read_trajectories(tmp_path / "d")
    (tmp_path / "junk.arrow").write_bytes(b"not arrow at all")
    with pytest.raises(CorruptFileError):
        read_trajectories(tmp_path / "junk.arrow")


def test_parts_of_different_writers_are_refused(tmp_path: Path) -> None:
    for name, batch in (("a", make_batch(2, 2)), ("b", make_batch(2, 2))):
        with TrajectoryWriter(tmp_path / name) as writer:
            writer.write(batch)
    shutil.copy(tmp_path / "b/part-00000.arrow", tmp_path / "a/part-00001.arrow")
    shutil.copy(tmp_path / "b/_trajectories/part-00000.arrow",
                tmp_path / "a/_trajectories/part-00001.arrow")
    with pytest.raises(CorruptFileError, match=r"holds trajectory ids 0\.\.1 where 2\.\.3 were"):
        read_trajectories(tmp_path / "a")


# ------------------------------------------------------------------ layout and metadata
@pytest.mark.parametrize("fmt", FORMATS)
def test_schema_metadata_holds_version_specs_and_user_metadata(tmp_path: Path, fmt: str) -> None:
    user = {"env_id": "CartPole-v1", "seeds": [0, 1], "hparams": {"lr": 3e-4}}
    with TrajectoryWriter(tmp_path, fmt, metadata=user) as writer:  # type: ignore[arg-type]
        writer.write(make_batch(2, 3))
    ext = ".arrow" if fmt == "arrow" else ".parquet"
    for table, folder in (("steps", tmp_path), ("trajectories", tmp_path / "_trajectories")):
        path = folder / f"part-00000{ext}"
        schema = (pq.read_schema(path) if fmt == "parquet"
                  else pa.ipc.open_file(path).schema)
        meta = json.loads(schema.metadata[b"rlstructures.trajectories"])
        assert meta["format"] == "rlstructures.trajectories"
        assert meta["format_version"] == 1
        assert meta["table"] == table
        assert meta["metadata"] == user
        assert meta["step_specs"]["observation/frame"] == {"shape": [3, 2], "dtype": "float32"}
        assert meta["step_specs"]["done"] == {"shape": [], "dtype": "bool"}
        assert meta["info_specs"]["env_info/seed"] == {"shape": [], "dtype": "int64"}
    steps_file = tmp_path / f"part-00000{ext}"
    steps_names = (pq.read_schema(steps_file) if fmt == "parquet"
                   else pa.ipc.open_file(steps_file).schema).names
    assert steps_names[:2] == ["trajectory", "t"]


def test_global_trajectory_ids_across_writes_and_files(tmp_path: Path) -> None:
    with TrajectoryWriter(tmp_path, max_file_bytes=1) as writer:
        writer.write(make_batch(2, 2, lengths=[2, 1]))
        writer.write(make_batch(3, 1, lengths=[1, 0, 1]))
    assert [p.name for p in writer.files] == ["part-00000.arrow"] * 2 + ["part-00001.arrow"] * 2
    steps = pa.concat_tables(
        pa.ipc.open_file(p).read_all() for p in sorted(tmp_path.glob("part-*")))
    assert steps.column("trajectory").to_pylist() == [0, 0, 1, 2, 4]
    assert steps.column("t").to_pylist() == [0, 1, 0, 0, 0]
    trajs = pa.concat_tables(
        pa.ipc.open_file(p).read_all() for p in sorted((tmp_path / "_trajectories").iterdir()))
    assert trajs.column("trajectory").to_pylist() == [0, 1, 2, 3, 4]
    assert trajs.column("max_length").to_pylist() == [2, 2, 1, 1, 1]


def test_a_long_format_file_written_by_hand_is_read(tmp_path: Path) -> None:
    tdt = make_batch(3, 4, lengths=[4, 0, 2]).trajectories
    rb = tdt.to_arrow()
    with pa.OSFile(str(tmp_path / "mine.arrow"), "wb") as sink, pa.ipc.new_file(
            sink, rb.schema) as w:
        w.write_batch(rb)
    back = read_trajectories(tmp_path / "mine.arrow")
    assert back.trajectories.equal(tdt)
    assert list(back.info.keys()) == []


# ------------------------------------------------------------------ crashes
def _prefix_of(back: Trajectories, writes: list[Trajectories]) -> int:
    """How many of ``writes`` ``back`` holds (it must be exactly a prefix of them)."""
    for m in range(len(writes), 0, -1):
        if back.equal(Trajectories.cat(writes[:m])):
            return m
    raise AssertionError("what was read back is not a prefix of what was written")


def test_unfinished_arrow_part_is_read_up_to_its_last_complete_write(tmp_path: Path) -> None:
    writes = [make_batch(3, 4, lengths=[4, 2, 0], seed=s) for s in range(3)]
    writer = TrajectoryWriter(tmp_path / "live")
    for w in writes:
        writer.write(w)
    # While the writer is open the files have no footer: what a crash would leave.
    assert read_trajectories(tmp_path / "live").equal(Trajectories.cat(writes))
    steps_file = tmp_path / "live" / "part-00000.arrow"
    size = steps_file.stat().st_size
    seen = set()
    for cut in [*range(0, size, 97), size]:  # a kill in the middle of any write
        copy = tmp_path / f"cut{cut}"
        shutil.copytree(tmp_path / "live", copy)
        os.truncate(copy / "part-00000.arrow", cut)
        try:
            back = read_trajectories(copy)
        except NoDataError:
            seen.add(0)
            continue
        seen.add(_prefix_of(back, writes) if len(back) else 0)
    writer.close()
    assert seen == {0, 1, 2, 3}


def test_an_unclosed_parquet_writer_is_read_from_its_staged_parts(tmp_path: Path) -> None:
    writer = TrajectoryWriter(tmp_path, "parquet")
    writer.write(make_batch(2, 2))
    assert not list(tmp_path.glob("*.parquet"))  # staged as Arrow until the part is closed
    assert read_trajectories(tmp_path).equal(make_batch(2, 2))
    writer.close()
    assert [p.name for p in tmp_path.glob("*.parquet")] == ["part-00000.parquet"]
    assert not list((tmp_path / "_staging").glob("**/*.arrow"))
    assert read_trajectories(tmp_path).equal(make_batch(2, 2))


def test_an_unclosed_writer_is_finished_when_collected(tmp_path: Path) -> None:
    writer = TrajectoryWriter(tmp_path)
    writer.write(make_batch(2, 2))
    del writer
    pa.ipc.open_file(tmp_path / "part-00000.arrow")  # has its footer


def test_repr(tmp_path: Path) -> None:
    writer = TrajectoryWriter(tmp_path)
    assert "0 trajectories, open" in repr(writer)
    writer.close()
    assert "closed" in repr(writer)


def test_big_endian_leaves_are_stored_in_native_order(tmp_path: Path) -> None:
    """They gave specs and CRC-32s of swapped bytes: the dataset read back as damaged."""
    native = make_batch(3, 4, lengths=[4, 2, 0], seed=5)

    def swapped(leaves: Any) -> dict[str, Any]:
        return {k: v.astype(v.dtype.newbyteorder(">")) for k, v in leaves.items()}

    steps, info = native.trajectories, native.info
    big = Trajectories(DictTensor(swapped(info), batch_shape=info.batch_shape),
                       TemporalDictTensor(swapped(steps), lengths=steps.lengths))
    with TrajectoryWriter(tmp_path / "data") as writer:
        writer.write(big)
        writer.write(native)  # the same specs
    assert read_trajectories(tmp_path / "data").equal(Trajectories.cat([native, native]))
