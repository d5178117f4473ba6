"""A local Ray for the tests, on loopback addresses only, leaving nothing behind.

Ray's environment: ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` makes it bind to 127.0.0.1
instead of the machine's interface address, ``RAY_AUTH_MODE=disabled`` and
``RAY_USAGE_STATS_ENABLED=0`` turn off token authentication and usage reports, and
``RAY_TMPDIR`` puts its whole temp directory (sessions, sockets, logs, spilled objects and
the ``ray_current_cluster`` address file) inside the test's tmp area.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.batchers.procs import command_line, live_processes

RAY_ENV: Mapping[str, str] = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
}
LOOPBACK = "127.0.0.1"
ACTOR_TITLE = b"ray::CollectorActor"  # the process title of a RayBatcher actor


# Ray's longest socket path below RAY_TMPDIR: "/ray/session_<date>_<time>_<us>_<pid>" and
# "/sockets/plasma_store", against the 107 bytes of an AF_UNIX path
_SOCKET_TAIL = len("/ray/session_2026-12-02_05-50-36_902936_4194304/sockets/plasma_store")


@contextmanager
def short_tmp(factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A new directory for ``RAY_TMPDIR``: in pytest's tmp area when its path is short
    enough for Ray's sockets, else in the system's temp directory (removed afterwards)."""
    candidate = factory.getbasetemp() / "r"
    if len(str(candidate)) + 4 + _SOCKET_TAIL <= 107:
        yield factory.mktemp("r")
        return
    tmp = Path(tempfile.mkdtemp(prefix="rls-ray-"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def ray_environment(tmp: Path) -> Iterator[dict[str, str]]:
    """``os.environ`` with Ray's test settings and ``RAY_TMPDIR=tmp`` for the block."""
    env = {**RAY_ENV, "RAY_TMPDIR": str(tmp)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def processes_mentioning(text: bytes) -> list[int]:
    """Pids of the live processes whose command line contains ``text`` (zombies excluded)."""
    me = os.getpid()
    return [p for p in live_processes() if p != me and text in (command_line(p) or b"")]


def descendants(pid: int) -> set[int]:
    """Live processes below ``pid`` (children, their children, ...), zombies excluded."""
    parent = live_processes()
    out: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier} - out
        out |= frontier
    return out


def actor_pids() -> list[int]:
    """Pids of the live RayBatcher actor processes on this machine."""
    return [p for p in processes_mentioning(ACTOR_TITLE) if _title_starts(p, ACTOR_TITLE)]


def _title_starts(pid: int, prefix: bytes) -> bool:
    return (command_line(pid) or b"").startswith(prefix)


def assert_loopback(ray: Any) -> None:
    """Every node of the connected cluster, and its GCS, are on 127.0.0.1."""
    nodes = ray.nodes()
    assert nodes, "ray.nodes() is empty"
    addresses = {n["NodeManagerAddress"] for n in nodes}
    assert addresses == {LOOPBACK}, f"Ray nodes on {addresses}, expected only {LOOPBACK}"
    gcs = str(ray.get_runtime_context().gcs_address)
    assert gcs.startswith(f"{LOOPBACK}:"), f"Ray's GCS is at {gcs}, expected {LOOPBACK}"


def wait_until_gone(text: bytes, seconds: float = 15.0) -> list[int]:
    """Wait for every process mentioning ``text`` to end; the pids still alive after."""
    deadline = time.monotonic() + seconds
    alive = processes_mentioning(text)
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = processes_mentioning(text)
    return alive


@contextmanager
def local_ray(tmp: Path) -> Iterator[Any]:
    """A local Ray (2 CPUs, no dashboard, a 100 MB object store) for the block: ``ray``.

    Afterwards, no process mentions ``tmp`` and ``/tmp/ray`` was not created.
    """
    os.environ.update(RAY_ENV)  # read when ray is imported (set by conftest already)
    import ray
    from ray._private import ray_constants

    assert not ray_constants.ENABLE_RAY_CLUSTER, (
        "ray was imported before RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 was set: it would bind "
        "to the machine's address (tests/batchers/conftest.py sets it at import)"
    )
    assert not ray.is_initialized(), "Ray is initialized already in this process"
    default_dir = Path("/tmp/ray")
    existed = default_dir.exists()
    before = descendants(os.getpid())
    with ray_environment(tmp):
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            object_store_memory=100 * 2**20,
            log_to_driver=False,
        )
        try:
            assert_loopback(ray)
            yield ray
        finally:
            # Ray's daemons and the raylet's workers (not multiprocessing's helpers, which
            # tests started meanwhile and which live as long as this interpreter)
            started = {
                p
                for p in descendants(os.getpid()) - before
                if b"multiprocessing" not in (command_line(p) or b"")
            }
            ray.shutdown()
    deadline = time.monotonic() + 15.0
    while (left := started & descendants(1)) and time.monotonic() < deadline:
        time.sleep(0.1)
    left |= set(wait_until_gone(str(tmp).encode(), max(0.0, deadline - time.monotonic())))
    assert not left, f"Ray processes {sorted(left)} still run after ray.shutdown()"
    assert existed or not default_dir.exists(), "Ray created /tmp/ray outside the test's tmp"
