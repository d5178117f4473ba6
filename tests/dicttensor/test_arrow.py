"""Arrow conversion: encoding, zero copy, exact round trips for every dtype and shape."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rlstructures.dicttensor import (
    DictTensor,
    KeyMismatchError,
    Spec,
    SpecMismatchError,
    TemporalDictTensor,
)
from tests.strategies import (
    ARROW_DTYPES,
    arrow_dtypes,
    batch_shapes,
    dict_tensors,
    feature_shapes,
    specs,
    temporal_dict_tensors,
)

METADATA_KEY = b"rlstructures"


def buffer_address(column: Any) -> int:
    """Address of the values buffer of a primitive, list or tensor Arrow column."""
    arr = column.storage if isinstance(column.type, pa.BaseExtensionType) else column
    while isinstance(arr.type, pa.FixedSizeListType):
        arr = arr.values
    return int(arr.buffers()[1].address)


def data_address(arr: np.ndarray[Any, Any]) -> int:
    return int(arr.__array_interface__["data"][0])


def assert_exact(actual: DictTensor, expected: DictTensor) -> None:
    assert actual.batch_shape == expected.batch_shape
    assert actual.specs() == expected.specs()
    assert list(actual.keys()) == list(expected.keys())
    assert actual.equal(expected)


# ---------------------------------------------------------------------- DictTensor
@given(
    dict_tensors(batch_shape=batch_shapes(), dtypes=arrow_dtypes(), max_row_dims=3),
)
def test_dict_tensor_round_trips_exactly(dt: DictTensor) -> None:
    rb = dt.to_arrow()
    assert isinstance(rb, pa.RecordBatch)
    assert rb.num_rows == int(np.prod(dt.batch_shape))
    assert rb.schema.names == list(dt.keys())
    assert_exact(DictTensor.from_arrow(rb), dt)
    assert_exact(DictTensor.from_arrow(pa.Table.from_batches([rb])), dt)


@pytest.mark.parametrize("dtype", ARROW_DTYPES, ids=str)
@pytest.mark.parametrize("row", [(), (3,), (2, 0), (2, 1, 3)], ids=str)
@pytest.mark.parametrize("batch", [0, 5])
def test_every_arrow_dtype_and_row_rank_round_trips(
    dtype: np.dtype[Any], row: tuple[int, ...], batch: int
) -> None:
    values = np.arange(batch * int(np.prod(row))).reshape((batch, *row)) % 7
    dt = DictTensor({"x": values.astype(dtype)})
    assert_exact(DictTensor.from_arrow(dt.to_arrow()), dt)
    tdt = TemporalDictTensor({"x": values.astype(dtype)[None]}, lengths=[batch // 2])
    back = TemporalDictTensor.from_arrow(tdt.to_arrow())
    assert back.specs() == tdt.specs()
    assert back.equal(tdt)


@given(st.data(), arrow_dtypes(), feature_shapes(max_dims=3))
def test_column_encoding_by_row_shape(
    data: st.DataObject, dtype: np.dtype[Any], row: tuple[int, ...]
) -> None:
    dt = data.draw(dict_tensors(spec={"x": Spec(row, dtype)}))
    column_type = dt.to_arrow().schema.field("x").type
    value_type = pa.from_numpy_dtype(dtype)
    if not row:
        assert column_type == value_type
    elif len(row) == 1:
        assert column_type == pa.list_(value_type, row[0])
    else:
        assert column_type == pa.fixed_shape_tensor(value_type, list(row))
        assert column_type.storage_type == pa.list_(value_type, int(np.prod(row)))


@given(dict_tensors(dtypes=st.sampled_from([np.dtype(np.float32), np.dtype(np.int64)]),
                    max_row_dims=3))
def test_numeric_columns_are_zero_copy_both_ways(dt: DictTensor) -> None:
    rb = dt.to_arrow()
    for key, leaf in dt.items():
        if leaf.size:
            assert buffer_address(rb.column(key)) == data_address(leaf)
    back = DictTensor.from_arrow(rb)
    for key, leaf in back.items():
        assert not leaf.flags.writeable
        if leaf.size:
            assert data_address(leaf) == buffer_address(rb.column(key))


def test_bool_is_copied_but_exact_and_metadata_holds_the_batch_shape() -> None:
    dt = DictTensor({"done": np.array([[True, False], [False, True]])}, batch_shape=(2, 2))
    rb = dt.to_arrow()
    assert rb.schema.field("done").type == pa.bool_()
    assert json.loads(rb.schema.metadata[METADATA_KEY]) == {
        "format": 1, "kind": "DictTensor", "batch_shape": [2, 2],
    }
    assert_exact(DictTensor.from_arrow(rb), dt)


def test_from_arrow_without_metadata_or_with_other_row_counts_is_one_batch_dim() -> None:
    dt = DictTensor({"x": np.arange(6.0).reshape(2, 3)}, batch_shape=(2, 3))
    rb = dt.to_arrow()
    plain = DictTensor.from_arrow(rb.replace_schema_metadata(None))
    assert plain.batch_shape == (6,)
    np.testing.assert_array_equal(plain["x"], np.arange(6.0))
    assert DictTensor.from_arrow(rb.slice(1, 3)).batch_shape == (3,)
    bad = rb.replace_schema_metadata({METADATA_KEY: b"not json"})
    assert DictTensor.from_arrow(bad).batch_shape == (6,)


def test_sliced_and_chunked_list_columns_are_read_at_their_offset() -> None:
    dt = DictTensor({"v": np.arange(20, dtype=np.int16).reshape(5, 2, 2),
                     "w": np.arange(10, dtype=np.float32).reshape(5, 2),
                     "b": np.array([True, False, True, True, False])})
    rb = dt.to_arrow()
    assert DictTensor.from_arrow(rb.slice(2, 2)).equal(dt[2:4])
    table = pa.Table.from_batches([rb.slice(0, 2), rb.slice(2, 3)])
    assert DictTensor.from_arrow(table).equal(dt)


def test_foreign_tables_of_numeric_and_nested_list_columns() -> None:
    table = pa.table({
        "a": pa.array([1, 2, 3], pa.int32()),
        "m": pa.FixedSizeListArray.from_arrays(
            pa.FixedSizeListArray.from_arrays(pa.array(np.arange(12.0)), 2), 2
        ),
    })
    dt = DictTensor.from_arrow(table)
    assert dt.specs() == {"a": Spec((), "int32"), "m": Spec((2, 2), "float64")}
    np.testing.assert_array_equal(dt["m"][2], [[8.0, 9.0], [10.0, 11.0]])


def test_torch_and_multi_dim_and_single_row_dict_tensors() -> None:
    dt = DictTensor({"x": np.arange(24, dtype=np.float32).reshape(2, 3, 4)}, batch_shape=(2, 3))
    assert DictTensor.from_arrow(dt.torch().to_arrow()).equal(dt)
    row = dt[1, 2]
    assert row.batch_shape == ()
    assert DictTensor.from_arrow(row.to_arrow()).equal(row)
    empty = DictTensor({}, batch_shape=(5,))
    assert DictTensor.from_arrow(empty.to_arrow()).batch_shape == (5,)
    noncontig = DictTensor({"x": np.arange(12.0).reshape(3, 4)[:, ::2]})
    assert DictTensor.from_arrow(noncontig.to_arrow()).equal(noncontig)


# ---------------------------------------------------------------------- TemporalDictTensor
@given(temporal_dict_tensors(spec=specs(dtypes=arrow_dtypes())))
def test_temporal_long_format_agrees_with_a_per_sequence_loop(tdt: TemporalDictTensor) -> None:
    rb = tdt.to_arrow()
    assert rb.schema.names == ["trajectory", "t", *tdt.keys()]
    assert rb.schema.field("trajectory").type == pa.int64()
    assert rb.schema.field("t").type == pa.int64()
    assert rb.num_rows == int(tdt.lengths.sum())
    assert json.loads(rb.schema.metadata[METADATA_KEY]) == {
        "format": 1, "kind": "TemporalDictTensor", "B": len(tdt), "T": tdt.max_length,
    }
    expected_traj = [b for b in range(len(tdt)) for _ in range(tdt.lengths[b])]
    expected_t = [t for b in range(len(tdt)) for t in range(tdt.lengths[b])]
    assert rb.column("trajectory").to_pylist() == expected_traj
    assert rb.column("t").to_pylist() == expected_t
    rows = DictTensor.from_arrow(rb.select(list(tdt.keys())))
    for i, (b, t) in enumerate(zip(expected_traj, expected_t, strict=True)):
        for key, leaf in tdt.items():
            np.testing.assert_array_equal(rows[key][i], leaf[b, t])


@given(temporal_dict_tensors(spec=specs(dtypes=arrow_dtypes(), max_row_dims=3)))
def test_temporal_round_trips_exactly(tdt: TemporalDictTensor) -> None:
    back = TemporalDictTensor.from_arrow(tdt.to_arrow())
    assert back.batch_shape == tdt.batch_shape
    assert back.specs() == tdt.specs()
    np.testing.assert_array_equal(back.lengths, tdt.lengths)
    assert back.equal(tdt)
    assert back.lengths.dtype == np.int64


@given(st.data(), temporal_dict_tensors())
def test_temporal_from_arrow_accepts_any_row_order(
    data: st.DataObject, tdt: TemporalDictTensor
) -> None:
    rb = tdt.to_arrow()
    order = data.draw(st.permutations(list(range(rb.num_rows))))
    shuffled = rb.take(pa.array(order, pa.int64()))
    assert TemporalDictTensor.from_arrow(shuffled).equal(tdt)


def test_temporal_from_arrow_without_metadata_infers_b_and_t() -> None:
    tdt = TemporalDictTensor({"x": np.arange(12.0).reshape(3, 4)}, [2, 0, 3])
    plain = tdt.to_arrow().replace_schema_metadata(None)
    back = TemporalDictTensor.from_arrow(plain)
    assert back.batch_shape == (3, 3)  # T from the longest sequence
    assert back.lengths.tolist() == [2, 0, 3]
    assert back.shorten().equal(tdt.shorten())


def test_full_sequences_are_read_back_without_copies() -> None:
    tdt = TemporalDictTensor({"x": np.arange(12, dtype=np.float32).reshape(3, 4)})
    rb = tdt.to_arrow()
    assert buffer_address(rb.column("x")) == data_address(tdt["x"])
    back = TemporalDictTensor.from_arrow(rb)
    assert data_address(back["x"]) == buffer_address(rb.column("x"))
    assert not back["x"].flags.writeable


# ---------------------------------------------------------------------- errors
def test_unsupported_arrow_data_is_a_clear_error() -> None:
    with pytest.raises(SpecMismatchError, match=r"column 's' has Arrow type string"):
        DictTensor.from_arrow(pa.table({"s": ["a", "b"]}))
    with pytest.raises(SpecMismatchError, match=r"column 'n' holds 1 null"):
        DictTensor.from_arrow(pa.table({"n": pa.array([1.0, None])}))
    with pytest.raises(KeyMismatchError, match=r"duplicate column names \['x'\]"):
        DictTensor.from_arrow(pa.RecordBatch.from_arrays([pa.array([1]), pa.array([2])],
                                                         names=["x", "x"]))
    with pytest.raises(TypeError, match=r"RecordBatch, Table or RecordBatchReader.*got dict"):
        DictTensor.from_arrow({"x": [1]})
    with pytest.raises(SpecMismatchError, match="key 'o' has dtype object"):
        DictTensor({"o": np.array([None, 1], dtype=object)}).to_arrow()


def test_long_format_errors_name_the_problem() -> None:
    tdt = TemporalDictTensor({"x": np.zeros((2, 3))}, [3, 1])
    rb = tdt.to_arrow()
    with pytest.raises(KeyMismatchError, match="lacks the 't' column"):
        TemporalDictTensor.from_arrow(rb.drop_columns(["t"]))
    with pytest.raises(SpecMismatchError, match="no gaps, no duplicates"):
        TemporalDictTensor.from_arrow(rb.slice(1))  # sequence 0 loses step 0
    bad = rb.set_column(0, "trajectory", pa.array([0, 0, 5, 1], pa.int64()))
    with pytest.raises(SpecMismatchError, match=r"'trajectory' values must lie in \[0, B=2\)"):
        TemporalDictTensor.from_arrow(bad)
    with pytest.raises(SpecMismatchError, match="column 't' must hold one integer per row"):
        TemporalDictTensor.from_arrow(rb.set_column(1, "t", pa.array([0.0, 1.0, 2.0, 0.0])))
    with pytest.raises(KeyMismatchError, match="key 't' is reserved"):
        TemporalDictTensor({"t": np.zeros((1, 1))}).to_arrow()


# ---------------------------------------------------------------------- key names
_SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)


@given(
    head=st.text(max_size=4),
    surrogate=_SURROGATES,
    tail=st.text(max_size=4),
    temporal=st.booleans(),
)
def test_a_key_with_a_lone_surrogate_is_a_key_mismatch_error(
    head: str, surrogate: str, tail: str, temporal: bool
) -> None:
    """Arrow names are UTF-8: a lone surrogate (os.fsdecode of bad bytes) has no encoding."""
    key = head + surrogate + tail
    leaves = {"ok": np.zeros((2, 3)), key: np.ones((2, 3))}
    data = TemporalDictTensor(leaves) if temporal else DictTensor(leaves)
    with pytest.raises(KeyMismatchError) as info:
        data.to_arrow()
    message = str(info.value)
    assert f"key {key!r} cannot be an Arrow column name" in message
    assert f"{surrogate!r} at position {len(head)}" in message
    assert not isinstance(info.value, UnicodeError)


@given(st.text(min_size=1, max_size=8).filter(lambda k: k not in ("trajectory", "t")))
def test_any_utf8_key_round_trips(key: str) -> None:
    """Every key without a lone surrogate is a valid column name (st.text draws none)."""
    dt = DictTensor({key: np.arange(3)})
    assert DictTensor.from_arrow(dt.to_arrow()).equal(dt)
    tdt = TemporalDictTensor({key: np.arange(6).reshape(2, 3)}, [3, 1])
    assert TemporalDictTensor.from_arrow(tdt.to_arrow()).equal(tdt)
