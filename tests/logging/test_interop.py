"""pandas, polars and DuckDB read what the package writes, without rlstructures."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset
import pyarrow.ipc
import pytest

from rlstructures.dicttensor import Trajectories
from rlstructures.logging import Logger, TrajectoryWriter, read_logs
from tests.logging.data import make_batch

WRITES = [make_batch(4, 6, lengths=[6, 2, 0, 5], seed=0), make_batch(3, 3, seed=1)]


def returns_by_numpy(writes: list[Trajectories]) -> dict[int, float]:
    """Sum of rewards over the valid steps of each trajectory (global ids in write order)."""
    out: dict[int, float] = {}
    for batch in writes:
        rewards = batch.trajectories["reward"].astype(np.float64)
        for b, length in enumerate(batch.lengths.tolist()):
            out[len(out)] = float(rewards[b, :length].sum())
    return out


@pytest.fixture(params=["arrow", "parquet"])
def dataset(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    fmt: str = request.param
    with TrajectoryWriter(tmp_path / "data", fmt, max_file_bytes=1) as writer:  # type: ignore[arg-type]
        for batch in WRITES:
            writer.write(batch)
    return tmp_path / "data", fmt


def test_duckdb_computes_per_trajectory_returns_with_one_group_by(
        dataset: tuple[Path, str]) -> None:
    path, fmt = dataset
    con = duckdb.connect()
    if fmt == "parquet":
        steps = f"read_parquet('{path}/*.parquet')"
        trajs = f"read_parquet('{path}/_trajectories/*.parquet')"
    else:  # DuckDB scans Arrow IPC files through a pyarrow dataset
        steps_ds = pa.dataset.dataset(path, format="arrow")  # skips _trajectories/
        trajs_ds = pa.dataset.dataset(path / "_trajectories", format="arrow")
        con.register("steps_ds", steps_ds)
        con.register("trajs_ds", trajs_ds)
        steps, trajs = "steps_ds", "trajs_ds"
    rows = con.execute(
        f'SELECT trajectory, SUM(reward::DOUBLE) FROM {steps} GROUP BY trajectory '
        "ORDER BY trajectory").fetchall()
    expected = returns_by_numpy(WRITES)
    assert dict(rows) == pytest.approx({i: r for i, r in expected.items() if i != 2})
    # Zero-length trajectories exist only in the per-trajectory table; join to keep them.
    joined = con.execute(
        f'SELECT t.trajectory, t."env_info/seed", COALESCE(SUM(s.reward::DOUBLE), 0) '
        f"FROM {trajs} t LEFT JOIN {steps} s USING (trajectory) "
        "GROUP BY ALL ORDER BY t.trajectory").fetchall()
    assert [r[0] for r in joined] == list(range(7))
    assert [r[1] for r in joined] == [0, 1, 2, 3, 1, 2, 3]
    assert [r[2] for r in joined] == pytest.approx(list(expected.values()))
    frames = con.execute(f'SELECT "observation/frame" FROM {steps} LIMIT 1').fetchall()
    first = WRITES[0].trajectories["observation/frame"][0, 0]
    assert np.allclose(np.asarray(frames[0][0], np.float32).reshape(3, 2), first)


def test_pandas_reads_the_trajectory_files(dataset: tuple[Path, str]) -> None:
    path, fmt = dataset
    if fmt == "parquet":
        steps = pd.read_parquet(path)  # the directory is the steps table
        trajs = pd.read_parquet(path / "_trajectories")
    else:
        steps = pd.concat([pd.read_feather(p) for p in sorted(path.glob("part-*"))])
        trajs = pd.concat([pd.read_feather(p) for p in sorted((path / "_trajectories").iterdir())])
    assert list(steps.columns[:3]) == ["trajectory", "t", "observation/frame"]
    assert len(steps) == 6 + 2 + 0 + 5 + 9
    assert trajs["length"].tolist() == [6, 2, 0, 5, 3, 3, 3]
    by_traj = steps.groupby("trajectory")["reward"].sum()
    expected = returns_by_numpy(WRITES)
    assert by_traj.to_dict() == pytest.approx({k: v for k, v in expected.items() if k != 2})


def test_polars_reads_the_trajectory_files(dataset: tuple[Path, str]) -> None:
    path, fmt = dataset
    pattern = str(path / f"*.{fmt}")
    steps = pl.scan_parquet(pattern) if fmt == "parquet" else pl.scan_ipc(pattern)
    out = (steps.group_by("trajectory").agg(pl.col("t").max().alias("last"))
           .sort("trajectory").collect())
    assert out["trajectory"].to_list() == [0, 1, 3, 4, 5, 6]
    assert out["last"].to_list() == [5, 1, 4, 2, 2, 2]


def test_pandas_polars_and_duckdb_read_the_scalar_logs(tmp_path: Path) -> None:
    with Logger(tmp_path, backends=("csv", "arrow"), max_pending=3) as logger:
        for step in range(10):
            logger.add_scalars({"charts/episodic_return": float(step), "losses/pg": -1.0}, step)
    frame = pd.read_csv(tmp_path / "scalars.csv")
    assert list(frame.columns) == ["wall_time", "step", "tag", "value"]
    assert frame[frame.tag == "charts/episodic_return"]["value"].tolist() == list(range(10))
    assert pl.read_csv(tmp_path / "scalars.csv").height == 20
    arrow_frame = pl.read_ipc_stream(tmp_path / "scalars-00000.arrows")
    assert arrow_frame.filter(pl.col("tag") == "losses/pg").height == 10
    stream = pa.ipc.open_stream(tmp_path / "scalars-00000.arrows").read_pandas()
    assert len(stream) == 20
    logs = read_logs(tmp_path)
    assert logs.to_pandas().equals(stream)
    con = duckdb.connect()
    con.register("logs", logs)
    rows = con.execute(
        "SELECT tag, max(value), count(*) FROM logs GROUP BY tag ORDER BY tag").fetchall()
    assert rows == [("charts/episodic_return", 9.0, 10), ("losses/pg", -1.0, 10)]
    assert con.execute(
        f"SELECT count(*) FROM read_csv('{tmp_path}/scalars.csv')").fetchall() == [(20,)]
