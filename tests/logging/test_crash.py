"""Crash safety: a writer killed with SIGKILL, and files cut at every possible byte."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rlstructures.dicttensor import Trajectories
from rlstructures.logging import Logger, read_logs, read_trajectories
from tests.logging.data import make_batch

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")

_LOGGER_CHILD = textwrap.dedent("""
    import sys
    from rlstructures.logging import Logger
    logger = Logger(sys.argv[1], flush_secs=3600, max_pending=10**9)
    logger.add_hparams({"lr": 0.1})
    step = 0
    while True:
        for _ in range(50):
            logger.add_scalar("charts/episodic_return", step * 0.5, step)
            step += 1
        logger.flush()
        print(step, flush=True)
""")

_WRITER_CHILD = textwrap.dedent("""
    import sys
    from tests.logging.data import make_batch
    from rlstructures.logging import TrajectoryWriter
    writer = TrajectoryWriter(sys.argv[1], max_file_bytes=int(sys.argv[2]))
    seed = 0
    while True:
        writer.write(make_batch(4, 6, lengths=[6, seed % 7, 0, 3], seed=seed))
        seed += 1
        print(seed, flush=True)
""")


def _run_and_kill(code: str, args: list[str], at_least: int) -> int:
    """Run ``code`` until it reports ``at_least`` on stdout, SIGKILL it; the last report."""
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    child = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    assert child.stdout is not None
    last, deadline = 0, time.monotonic() + 60
    try:
        while last < at_least and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            last = int(line)
    finally:
        child.send_signal(signal.SIGKILL)
        _, err = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, err
    assert last >= at_least, f"the child reported only {last}; stderr:\n{err}"
    return last


def test_logger_killed_mid_run_leaves_complete_csv_lines_and_readable_arrow(
        tmp_path: Path) -> None:
    flushed = _run_and_kill(_LOGGER_CHILD, [str(tmp_path)], at_least=3000)
    data = (tmp_path / "scalars.csv").read_bytes()
    assert data.endswith(b"\n")
    lines = data.decode().splitlines()
    assert lines[0] == "wall_time,step,tag,value"
    assert all(len(line.split(",")) == 4 for line in lines[1:])
    frame = pd.read_csv(tmp_path / "scalars.csv")
    assert len(frame) >= flushed
    assert frame["step"].tolist() == list(range(len(frame)))  # a prefix, nothing lost inside
    arrow = read_logs(tmp_path, source="arrow")
    assert arrow.num_rows >= flushed
    assert arrow.column("step").to_pylist() == list(range(arrow.num_rows))
    assert arrow.column("value").to_pylist() == [s * 0.5 for s in range(arrow.num_rows)]
    tensorboard = read_logs(tmp_path, source="tensorboard")
    assert tensorboard.num_rows >= flushed
    # The next Logger on the directory continues the run.
    with Logger(tmp_path, backends=("csv", "arrow")) as logger:
        logger.add_scalar("charts/episodic_return", -1.0, 10**9)
    assert read_logs(tmp_path, source="csv").column("step").to_pylist()[-1] == 10**9


@pytest.mark.parametrize("max_file_bytes", [4000, 2**30])
def test_trajectory_writer_killed_mid_run_leaves_its_writes_readable(
        tmp_path: Path, max_file_bytes: int) -> None:
    written = _run_and_kill(_WRITER_CHILD, [str(tmp_path), str(max_file_bytes)], at_least=40)
    back = read_trajectories(tmp_path)
    n_writes = len(back) // 4
    assert len(back) == 4 * n_writes
    assert n_writes >= written
    expected = [make_batch(4, 6, lengths=[6, s % 7, 0, 3], seed=s) for s in range(n_writes)]
    for i, write in enumerate(expected):  # write by write, to name the first difference
        got = back[4 * i : 4 * i + 4]
        assert got.info.equal(write.info), f"info of write {i}"
        assert got.trajectories.shorten().equal(write.trajectories.shorten()), f"write {i}"
    assert back.equal(Trajectories.cat(expected))


def test_arrow_scalars_cut_at_any_byte_read_as_a_prefix(tmp_path: Path) -> None:
    with Logger(tmp_path / "run", backends=("arrow",), max_pending=7) as logger:
        for step in range(60):
            logger.add_scalar("x", float(step), step)
    part = tmp_path / "run" / "scalars-00000.arrows"
    size = part.stat().st_size
    counts = set()
    for cut in [*range(0, size, 3), size]:  # every batch is longer than 3 bytes
        os.makedirs(tmp_path / "cut", exist_ok=True)
        shutil.copyfile(part, tmp_path / "cut" / part.name)
        os.truncate(tmp_path / "cut" / part.name, cut)
        steps = read_logs(tmp_path / "cut", source="arrow").column("step").to_pylist()
        assert steps == list(range(len(steps)))
        counts.add(len(steps))
    assert counts == {0, *range(7, 57, 7), 60}  # every flushed batch, nothing partial


def test_csv_cut_at_any_byte_reads_complete_lines_and_is_repaired(tmp_path: Path) -> None:
    with Logger(tmp_path / "run", backends=("csv",), max_pending=5) as logger:
        for step in range(20):
            logger.add_scalar("charts/x", step / 3, step)
    csv = (tmp_path / "run" / "scalars.csv").read_bytes()
    for cut in np.linspace(len("wall_time,step,tag,value\n"), len(csv), 40).astype(int):
        run = tmp_path / f"cut{cut}"
        run.mkdir()
        (run / "scalars.csv").write_bytes(csv[:cut])
        before = read_logs(run).column("step").to_pylist()
        assert before == list(range(csv[:cut].count(b"\n") - 1))
        with Logger(run, backends=("csv",)) as logger:  # cuts the partial line, appends
            logger.add_scalar("charts/x", 0.0, 99)
        assert read_logs(run).column("step").to_pylist() == [*before, 99]
        assert pd.read_csv(run / "scalars.csv")["step"].tolist() == [*before, 99]
