"""Fork safety: a forked child never writes, flushes or finishes its parent's files."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.ipc
import pytest

from rlstructures.dicttensor import Trajectories
from rlstructures.logging import Logger, TrajectoryWriter, read_logs, read_trajectories
from tests.logging.data import make_batch

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

_FORKING_PARENT = textwrap.dedent("""
    import gc, os, sys
    from rlstructures.logging import Logger, TrajectoryWriter, WriterClosedError
    from tests.logging.data import make_batch

    logger = Logger(sys.argv[1], flush_secs=3600, max_pending=10**9)
    writer = TrajectoryWriter(sys.argv[2])
    for step in range(10):
        logger.add_scalar("x", step, step)
    logger.flush()
    for step in range(10, 15):  # still pending when the child is forked
        logger.add_scalar("x", step, step)
    writer.write(make_batch(2, 3, seed=0))
    pid = os.fork()
    if pid == 0:
        refused = 0
        for call in (lambda: logger.add_scalar("x", 99, 99), logger.flush,
                     lambda: writer.write(make_batch(2, 3, seed=1))):
            try:
                call()
            except WriterClosedError as exc:
                refused += "forked from process" in str(exc)
        logger.close()  # does nothing in the child
        writer.close()
        if sys.argv[3] == "collect":
            del logger, writer
            gc.collect()
        sys.exit(0 if refused == 3 else 3)  # a normal exit: atexit and finalizers run
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, status
    for step in range(15, 20):
        logger.add_scalar("x", step, step)
    writer.write(make_batch(2, 3, seed=2))
    if sys.argv[3] != "collect":
        logger.close()
        writer.close()
""")


@pytest.mark.parametrize("ending", ["close", "collect"])
def test_a_forked_child_leaves_the_parents_files_alone(tmp_path: Path, ending: str) -> None:
    logs, data = tmp_path / "logs", tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    done = subprocess.run([sys.executable, "-c", _FORKING_PARENT, str(logs), str(data), ending],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    sources: tuple[Literal["csv", "arrow", "tensorboard"], ...] = ("csv", "arrow", "tensorboard")
    for source in sources:
        steps = read_logs(logs, source=source).column("step").to_pylist()
        assert steps == list(range(20)), source  # each row once: none from the child
    part = data / "part-00000.arrow"
    assert pa.ipc.open_file(part).num_record_batches == 2  # the parent's footer, intact
    back = read_trajectories(data)
    assert back.equal(Trajectories.cat([make_batch(2, 3, seed=0), make_batch(2, 3, seed=2)]))


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_sending_a_logger_or_writer_to_another_process_is_refused(
        tmp_path: Path, method: str) -> None:
    context: Any = multiprocessing.get_context(method)
    with Logger(tmp_path / "logs", backends=("csv",)) as logger, \
            TrajectoryWriter(tmp_path / "data") as writer:
        for owned in (logger, writer):
            process = context.Process(target=print, args=(owned,))
            with pytest.raises(TypeError, match="cannot be pickled"):
                process.start()


_FORK_WHILE_A_THREAD_LOGS = textwrap.dedent("""
    import os, sys, threading
    from rlstructures.logging import Logger, TrajectoryWriter, WriterClosedError
    from tests.logging.data import make_batch

    logger = Logger(sys.argv[1], backends=("csv",))
    writer = TrajectoryWriter(sys.argv[2])
    held, release = threading.Event(), threading.Event()

    def hold() -> None:  # a thread in the middle of a call when the process forks
        with logger._state.lock, writer._state.lock:
            held.set()
            release.wait()

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait()
    pid = os.fork()
    if pid == 0:
        refused = 0
        for call in (lambda: logger.add_scalar("x", 1.0, 1), logger.flush,
                     lambda: writer.write(make_batch(2, 2))):
            try:
                call()
            except WriterClosedError:
                refused += 1
        os._exit(0 if refused == 3 else 3)
    _, status = os.waitpid(pid, 0)
    release.set()
    thread.join()
    logger.close()
    writer.close()
    sys.exit(os.waitstatus_to_exitcode(status))
""")


def test_a_child_forked_while_a_thread_logs_does_not_hang(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    done = subprocess.run([sys.executable, "-c", _FORK_WHILE_A_THREAD_LOGS,
                           str(tmp_path / "logs"), str(tmp_path / "data")],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
