"""Faults of the machine while logging: a full disk, concurrent writers, files replaced."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Literal

import pandas as pd
import pytest

from rlstructures.logging import Logger, LogWriteError, read_logs

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX rlimits and flock")

Source = Literal["csv", "arrow", "tensorboard"]
SOURCES: tuple[Source, ...] = ("csv", "arrow", "tensorboard")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.getcwd()}


_FILLS_THE_DISK = textwrap.dedent("""
    import resource, signal, sys
    from rlstructures.logging import LogWriteError, Logger

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    limit = int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    logger = Logger(sys.argv[1], flush_secs=3600, max_pending=10**9)
    logger.add_hparams({"lr": 0.1})
    step, failures = 0, 0
    while failures < 3:  # a few failed flushes: rows wait, files stay whole
        for _ in range(37):
            logger.add_scalar("charts/episodic_return", step * 0.5, step)
            step += 1
        try:
            logger.flush()
        except LogWriteError as exc:
            failures += 1
            assert exc.errno == 27, exc  # EFBIG
    print(step, flush=True)
    sys.stdin.readline()  # the test reads the files of the full disk meanwhile
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
    for _ in range(5):
        logger.add_scalar("charts/episodic_return", step * 0.5, step)
        step += 1
    logger.close()  # the waiting rows go first
    print(step, flush=True)
""")


def _steps(logdir: Path, source: Source) -> list[int]:
    steps: list[int] = read_logs(logdir, source=source).column("step").to_pylist()
    return steps


def test_a_full_disk_never_corrupts_a_log_and_loses_nothing_once_freed(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", _FILLS_THE_DISK, str(tmp_path), "20000"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=_env())
    assert child.stdin is not None
    assert child.stdout is not None
    try:
        logged = int(child.stdout.readline() or -1)
        assert logged > 0, child.stderr.read() if child.stderr else ""
        # The disk is full: every file holds whole records, a prefix of what was logged.
        csv = (tmp_path / "scalars.csv").read_bytes()
        assert csv.endswith(b"\n")
        assert len(csv) <= 20000
        assert pd.read_csv(tmp_path / "scalars.csv")["step"].tolist() == _steps(tmp_path, "csv")
        for source in SOURCES:
            steps = _steps(tmp_path, source)
            assert steps == list(range(len(steps))), source
            assert 0 < len(steps) < logged, source
        child.stdin.write("go on\n")
        child.stdin.flush()
        total = int(child.stdout.readline() or -1)
        assert child.wait(timeout=60) == 0
    finally:
        child.kill()
        child.communicate()
    for source in SOURCES:  # once space is back, every row, once, in order
        assert _steps(tmp_path, source) == list(range(total)), source


_FLUSHES_A_LOT = textwrap.dedent("""
    import sys
    from rlstructures.logging import Logger
    logger = Logger(sys.argv[1], backends=("csv",), flush_secs=3600, max_pending=10**9)
    step = 0
    while True:
        for _ in range(100_000):  # a big flush: the write system call takes milliseconds
            logger.add_scalar("live", float(step), step)
            step += 1
        logger.flush()
        print(step, flush=True)
""")


@pytest.mark.slow
def test_a_second_logger_never_cuts_a_live_writers_csv(tmp_path: Path) -> None:
    """Loggers opened (and flushed) while another process appends big flushes to the CSV."""
    child = subprocess.Popen([sys.executable, "-c", _FLUSHES_A_LOT, str(tmp_path)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=_env())
    assert child.stdout is not None
    flushed, opened, pending = 0, 0, ""
    try:
        while not (tmp_path / "scalars.csv").exists():
            time.sleep(0.01)
        os.set_blocking(child.stdout.fileno(), False)
        while flushed < 400_000:  # open Loggers (that also write a row) all along
            with Logger(tmp_path, backends=("csv",)) as other:
                other.add_scalar("other", float(opened), opened)
            opened += 1
            # a non-blocking read may end mid-line: parse complete lines only
            try:
                pending += os.read(child.stdout.fileno(), 1 << 16).decode()
            except BlockingIOError:  # nothing new
                pass
            *complete, pending = pending.split("\n")
            flushed = int(complete[-1]) if complete else flushed
            assert child.poll() is None, child.stderr.read() if child.stderr else ""
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate()
    frame = pd.read_csv(tmp_path / "scalars.csv")
    live = frame[frame["tag"] == "live"]["step"].tolist()
    assert len(live) >= flushed
    assert live == list(range(len(live)))  # nothing of the live run lost or cut
    assert frame[frame["tag"] == "other"]["step"].tolist() == list(range(opened))


def test_files_removed_under_a_logger_are_recreated(tmp_path: Path) -> None:
    with Logger(tmp_path, flush_secs=3600) as logger:
        logger.add_scalar("x", 0.0, 0)
        logger.flush()
        for path in tmp_path.iterdir():
            path.unlink()  # a cleanup job, or `rm -rf run/*`, under a running Logger
        logger.add_scalar("x", 1.0, 1)
        logger.flush()
        (tmp_path / "scalars.csv").rename(tmp_path / "old.csv")
        (tmp_path / "scalars.csv").write_text("wall_time,step,tag,value\n")  # replaced
        logger.add_scalar("x", 2.0, 2)
    for source in SOURCES:  # what was written after the removal is where readers look
        assert _steps(tmp_path, source)[-1] == 2, source
    assert _steps(tmp_path, "csv") == [2]
    assert _steps(tmp_path, "arrow") == [1, 2]


def test_a_log_directory_removed_under_a_logger_is_recreated(tmp_path: Path) -> None:
    import shutil

    logdir = tmp_path / "run"
    with Logger(logdir, flush_secs=3600) as logger:
        logger.add_scalar("x", 0.0, 0)
        logger.flush()
        shutil.rmtree(logdir)  # `rm -rf run` under a running Logger
        logger.add_scalar("x", 1.0, 1)
    for source in SOURCES:
        assert _steps(logdir, source) == [1], source


def test_a_flush_interrupted_by_keyboardinterrupt_loses_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write
    calls = {"n": 0}

    def interrupted(fd: int, data: bytes | memoryview) -> int:
        calls["n"] += 1
        if calls["n"] == 1:  # half of the first write goes out, then Ctrl-C
            real_write(fd, memoryview(data)[: len(data) // 2])
            raise KeyboardInterrupt
        return real_write(fd, data)

    with Logger(tmp_path, backends=("csv", "arrow"), flush_secs=3600) as logger:
        for step in range(100):
            logger.add_scalar("x", float(step), step)
        monkeypatch.setattr(os, "write", interrupted)
        with pytest.raises(KeyboardInterrupt):
            logger.flush()
        assert read_logs(tmp_path, source="csv").num_rows == 0  # the half line was undone
        monkeypatch.undo()
        logger.add_scalar("x", 100.0, 100)
    for source in ("csv", "arrow"):
        assert read_logs(tmp_path, source=source).column("step").to_pylist() == list(range(101))


def test_log_write_error_is_an_os_error() -> None:
    assert issubclass(LogWriteError, OSError)


_FILLS_THE_DISK_WITH_TRAJECTORIES = textwrap.dedent("""
    import resource, signal, sys
    from rlstructures.logging import LogWriteError, TrajectoryWriter
    from tests.logging.data import make_batch

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    limit = int(sys.argv[3])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    writer = TrajectoryWriter(sys.argv[1], sys.argv[2], max_file_bytes=int(sys.argv[4]))
    written, seed, failures = [], 0, 0
    while failures < 3 and seed < 1000:
        try:
            writer.write(make_batch(4, 6, lengths=[6, seed % 7, 0, 3], seed=seed))
            written.append(seed)
        except LogWriteError as exc:
            failures += 1
            assert exc.errno == 27, exc  # EFBIG
        seed += 1
    print(" ".join(map(str, written)), flush=True)
    sys.stdin.readline()
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
    for _ in range(3):
        writer.write(make_batch(4, 6, lengths=[6, seed % 7, 0, 3], seed=seed))
        written.append(seed)
        seed += 1
    writer.close()
    print(" ".join(map(str, written)), flush=True)
""")


@pytest.mark.parametrize("fmt", ["arrow", "parquet"])
def test_a_full_disk_never_corrupts_trajectories(tmp_path: Path, fmt: str) -> None:
    """Each failed write abandons its part (cut back), the next starts a new one."""
    from rlstructures.dicttensor import Trajectories
    from rlstructures.logging import read_trajectories
    from tests.logging.data import make_batch

    def expected(seeds: list[int]) -> Trajectories:
        return Trajectories.cat([make_batch(4, 6, lengths=[6, s % 7, 0, 3], seed=s)
                                 for s in seeds])

    args = [str(tmp_path / "data"), fmt, "12000", str(2**30)]
    child = subprocess.Popen([sys.executable, "-c", _FILLS_THE_DISK_WITH_TRAJECTORIES, *args],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=_env())
    assert child.stdin is not None
    assert child.stdout is not None
    try:
        line = child.stdout.readline()
        assert line, child.stderr.read() if child.stderr else ""
        seeds = [int(s) for s in line.split()]
        assert 0 < len(seeds) < 900
        back = read_trajectories(tmp_path / "data")  # the disk is full: every write so far
        assert back.equal(expected(seeds))
        child.stdin.write("go on\n")
        child.stdin.flush()
        seeds = [int(s) for s in child.stdout.readline().split()]
        assert child.wait(timeout=60) == 0
    finally:
        child.kill()
        _, err = child.communicate()
    assert read_trajectories(tmp_path / "data").equal(expected(seeds)), err
    if fmt == "parquet":  # every part converted, readable by other tools
        import pandas as pd

        assert not list((tmp_path / "data" / "_staging").glob("**/part-*"))
        steps = pd.read_parquet(tmp_path / "data")
        assert len(steps) == int(expected(seeds).lengths.sum())


def test_a_close_from_another_thread_waits_for_the_write_in_progress(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """close() racing a write in another thread: the write completes, then the footers."""
    import threading

    from rlstructures.logging import TrajectoryWriter, WriterClosedError, read_trajectories
    from rlstructures.logging._parts import ArrowPart
    from tests.logging.data import make_batch

    inside, go = threading.Event(), threading.Event()
    write = ArrowPart.write

    def paused_write(self: ArrowPart, *args: object) -> None:
        inside.set()
        go.wait(10)
        write(self, *args)  # type: ignore[arg-type]

    writer = TrajectoryWriter(tmp_path / "data")
    writer.write(make_batch(3, 4, seed=0))
    monkeypatch.setattr(ArrowPart, "write", paused_write)
    errors: list[BaseException] = []

    def second_write() -> None:
        try:
            writer.write(make_batch(3, 4, seed=1))
        except BaseException as exc:  # the assertion below shows it
            errors.append(exc)

    writing = threading.Thread(target=second_write)
    writing.start()
    assert inside.wait(10)
    closing = threading.Thread(target=writer.close)
    closing.start()
    closing.join(0.5)  # without the lock, close() finishes the part under the paused write
    go.set()
    writing.join(10)
    closing.join(10)
    assert not errors, errors
    from rlstructures.dicttensor import Trajectories

    expected = Trajectories.cat([make_batch(3, 4, seed=0), make_batch(3, 4, seed=1)])
    assert read_trajectories(tmp_path / "data").equal(expected)
    with pytest.raises(WriterClosedError):
        writer.write(make_batch(3, 4, seed=2))


def test_a_part_that_cannot_be_opened_leaves_nothing_and_the_next_write_works(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Out of file descriptors when a part is created: a LogWriteError, then a retry works."""
    import errno

    import pyarrow as pa

    from rlstructures.dicttensor import Trajectories
    from rlstructures.logging import TrajectoryWriter, read_trajectories
    from tests.logging.data import make_batch

    real = pa.OSFile
    failures = [1]

    def no_descriptor_left(path: str, mode: str = "r") -> object:
        if "_trajectories" in path and failures:  # the second file of the part
            failures.pop()
            raise OSError(errno.EMFILE, "Too many open files")
        return real(path, mode)

    monkeypatch.setattr(pa, "OSFile", no_descriptor_left)
    with TrajectoryWriter(tmp_path / "data") as writer:
        with pytest.raises(LogWriteError, match="ulimit -n") as info:
            writer.write(make_batch(2, 3, seed=0))
        assert info.value.errno == errno.EMFILE
        assert not list((tmp_path / "data").rglob("part-*"))  # no empty part left
        writer.write(make_batch(2, 3, seed=1))
        writer.write(make_batch(2, 3, seed=2))
    expected = Trajectories.cat([make_batch(2, 3, seed=1), make_batch(2, 3, seed=2)])
    assert read_trajectories(tmp_path / "data").equal(expected)


@pytest.mark.timeout(30)
def test_a_signal_handler_may_log_flush_and_close_while_a_flush_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A handler (SIGTERM: "flush the logs and exit") runs in the thread it interrupts.

    Landing inside a flush, its add_scalar / flush deadlocked on the Logger's lock, and its
    close() waited 10 s, then closed the files under the flush: rows lost, a raw ValueError.
    Here the "signal" lands deterministically: from inside the CSV backend's write.
    """
    from rlstructures.logging._csv import CsvScalarWriter

    logger = Logger(tmp_path, backends=("csv", "arrow"), max_pending=3)
    write = CsvScalarWriter.write
    landed: list[bool] = []

    def interrupted_write(self: CsvScalarWriter, rows: object) -> None:
        if not landed:
            landed.append(True)
            logger.add_scalar("handler/last", 9.0, 99)  # what a SIGTERM handler does
            logger.flush()
            logger.close()
            assert not logger.closed  # deferred: the flush in progress ends first
        write(self, rows)  # type: ignore[arg-type]

    monkeypatch.setattr(CsvScalarWriter, "write", interrupted_write)
    for step in range(3):  # the third row flushes
        logger.add_scalar("main/x", float(step), step)
    assert landed
    assert logger.closed
    for source in SOURCES[:2]:
        table = read_logs(tmp_path, source=source)
        assert table.column("tag").to_pylist() == ["main/x"] * 3 + ["handler/last"]
        assert table.column("step").to_pylist() == [0, 1, 2, 99]


@pytest.mark.timeout(30)
def test_a_signal_handler_closing_a_trajectory_writer_mid_write_waits_for_the_write(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rlstructures.dicttensor import Trajectories
    from rlstructures.logging import LoggingError, TrajectoryWriter, read_trajectories
    from rlstructures.logging._parts import ArrowPart
    from tests.logging.data import make_batch

    writer = TrajectoryWriter(tmp_path / "data")
    write = ArrowPart.write
    raised: list[BaseException] = []

    def interrupted_write(self: ArrowPart, *args: object) -> None:
        try:
            writer.write(make_batch(2, 3, seed=9))  # refused: it would cut into this one
        except LoggingError as exc:
            raised.append(exc)
        writer.close()  # deferred to the end of this write
        write(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(ArrowPart, "write", interrupted_write)
    writer.write(make_batch(2, 3, seed=0))
    assert "closed" in repr(writer)
    assert "signal handler" in str(raised[0])
    assert read_trajectories(tmp_path / "data").equal(Trajectories.cat([make_batch(2, 3, seed=0)]))
