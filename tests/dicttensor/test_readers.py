"""pandas, polars and DuckDB read ``TemporalDictTensor.to_arrow()`` directly (test extras)."""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlstructures.dicttensor import Spec, TemporalDictTensor
from tests.strategies import temporal_dict_tensors

STEP_SPEC = {
    "obs": Spec((3,), "float32"),
    "reward": Spec((), "float32"),
    "action": Spec((), "int64"),
    "done": Spec((), "bool"),
    "frame": Spec((2, 2), "uint8"),
}


def expected_rows(tdt: TemporalDictTensor, key: str) -> npt.NDArray[Any]:
    """The valid steps of ``key``, in long-format order (by sequence, then step)."""
    return np.asarray(tdt[key][tdt.mask()])


@pytest.fixture
def tdt() -> TemporalDictTensor:
    rng = np.random.default_rng(0)
    b, t = 3, 4
    return TemporalDictTensor(
        {
            "obs": rng.normal(size=(b, t, 3)).astype(np.float32),
            "reward": rng.normal(size=(b, t)).astype(np.float32),
            "action": rng.integers(0, 5, size=(b, t)),
            "done": rng.random((b, t)) < 0.5,
            "frame": rng.integers(0, 255, size=(b, t, 2, 2)).astype(np.uint8),
        },
        lengths=[4, 0, 2],
    )


def test_pandas_reads_the_long_format(tdt: TemporalDictTensor) -> None:
    df = tdt.to_arrow().to_pandas()
    assert list(df.columns) == ["trajectory", "t", *tdt.keys()]
    assert len(df) == 6
    assert df.groupby("trajectory").size().to_dict() == {0: 4, 2: 2}
    np.testing.assert_array_equal(df["reward"].to_numpy(), expected_rows(tdt, "reward"))
    np.testing.assert_array_equal(df["done"].to_numpy(), expected_rows(tdt, "done"))
    np.testing.assert_array_equal(np.stack(df["obs"].to_list()), expected_rows(tdt, "obs"))
    frames = np.stack(df["frame"].to_list()).reshape(-1, 2, 2)
    np.testing.assert_array_equal(frames, expected_rows(tdt, "frame"))
    assert df["action"].dtype == np.int64


def test_polars_reads_the_long_format_and_gives_it_back(tdt: TemporalDictTensor) -> None:
    df = pl.from_arrow(tdt.to_arrow())
    assert isinstance(df, pl.DataFrame)
    assert df.columns == ["trajectory", "t", *tdt.keys()]
    counts = df.group_by("trajectory").len().sort("trajectory")
    assert counts.rows() == [(0, 4), (2, 2)]
    assert df.schema["obs"] == pl.Array(pl.Float32, 3)
    np.testing.assert_array_equal(df["obs"].to_numpy(), expected_rows(tdt, "obs"))
    np.testing.assert_array_equal(df["action"].to_numpy(), expected_rows(tdt, "action"))
    back = TemporalDictTensor.from_arrow(df)  # the Arrow C stream interface
    assert back.shorten().equal(tdt.shorten())
    late = df.filter(pl.col("t") < 1)  # a prefix of steps is still a valid table
    assert TemporalDictTensor.from_arrow(late).lengths.tolist() == [1, 0, 1]


def test_duckdb_queries_the_long_format(tdt: TemporalDictTensor) -> None:
    steps = tdt.to_arrow()
    con = duckdb.connect()
    con.register("steps", steps)
    rows = con.sql(
        "SELECT trajectory, count(*), sum(reward), max(t) FROM steps GROUP BY trajectory "
        "ORDER BY trajectory"
    ).fetchall()
    assert [(r[0], r[1], r[3]) for r in rows] == [(0, 4, 3), (2, 2, 1)]
    sums = {0: tdt["reward"][0, :4].sum(), 2: tdt["reward"][2, :2].sum()}
    for traj, _, total, _ in rows:
        assert total == pytest.approx(float(sums[traj]), rel=1e-5)
    obs = con.sql("SELECT obs FROM steps ORDER BY trajectory, t").fetchall()
    np.testing.assert_allclose(np.array([r[0] for r in obs]), expected_rows(tdt, "obs"))
    first = con.sql("SELECT * FROM steps WHERE trajectory = 0")
    back = TemporalDictTensor.from_arrow(first)  # fixed_shape_tensor comes back flat
    assert back.lengths.tolist() == [4]
    np.testing.assert_array_equal(back["obs"][0], tdt["obs"][0])
    np.testing.assert_array_equal(back["frame"][0], tdt["frame"][0].reshape(4, 4))


@settings(max_examples=20)
@given(temporal_dict_tensors(spec=st.just(STEP_SPEC)))
def test_every_reader_counts_the_valid_steps(tdt: TemporalDictTensor) -> None:
    rb = tdt.to_arrow()
    expected = {b: int(n) for b, n in enumerate(tdt.lengths) if n}
    assert rb.to_pandas().groupby("trajectory").size().to_dict() == expected
    assert dict(pl.from_arrow(rb).group_by("trajectory").len().rows()) == expected  # type: ignore[union-attr]
    table = pa.Table.from_batches([rb])
    con = duckdb.connect()
    con.register("steps", table)
    got = con.sql("SELECT trajectory, count(*) FROM steps GROUP BY trajectory").fetchall()
    assert dict(got) == expected
    np.testing.assert_array_equal(
        np.stack(rb.to_pandas()["obs"].to_list()).reshape(-1, 3) if len(rb) else np.zeros((0, 3)),
        expected_rows(tdt, "obs"),
    )
    order = pd.DataFrame({"b": rb.column("trajectory"), "t": rb.column("t")})
    assert order.equals(order.sort_values(["b", "t"]))  # by sequence, then step
