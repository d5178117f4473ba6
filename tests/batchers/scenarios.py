"""Helpers of the fault tests: Python run in a subprocess, optionally over a private /dev/shm.

``run_python(code)`` runs ``code`` in a fresh interpreter that can import ``tests``;
``run_with_private_shm(code, size)`` runs it in a private mount namespace whose /dev/shm is
a fresh tmpfs of ``size`` (``unshare -m`` then ``mount -t tmpfs``: Linux, as root or with
user namespaces), so a test can fill /dev/shm or measure exactly what is left in it.
Also here: small picklable envs the scenarios build in worker processes.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from rlstructures.batchers.testing import CountingEnv

ROOT = Path(__file__).resolve().parents[2]

# Printed by the scenarios: what /dev/shm holds (names, bytes used), read by the tests.
SHM_REPORT = """
import json, os
def shm_report():
    st = os.statvfs("/dev/shm")
    return {"names": sorted(os.listdir("/dev/shm")),
            "used": (st.f_blocks - st.f_bfree) * st.f_frsize}
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def run_python(code: str, *, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run ``code`` (dedented) with this interpreter, from the repository root."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=_env(),
    )


@functools.cache
def private_shm_unavailable() -> str:
    """Why a private /dev/shm cannot be made here ("" when it can)."""
    if not sys.platform.startswith("linux"):
        return "a private /dev/shm needs Linux mount namespaces"
    if shutil.which("unshare") is None:
        return "the `unshare` command is not installed"
    probe = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", _mount("1m") + " true"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if probe.returncode != 0:
        return f"unshare -m / mount -t tmpfs is not permitted here: {probe.stderr.strip()}"
    return ""


def _mount(size: str) -> str:
    return f"mount -t tmpfs -o size={size},mode=1777 tmpfs /dev/shm &&"


def run_with_private_shm(
    code: str, size: str, *, timeout: float = 90.0
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a private mount namespace over a fresh /dev/shm of ``size``."""
    script = textwrap.dedent(code)
    return subprocess.run(
        [
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            f'{_mount(size)} exec "$0" -c "$1"',
            sys.executable,
            script,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=_env(),
    )


class SlowStartEnv(CountingEnv):
    """A CountingEnv whose construction blocks in worker processes for seed ``slow_seed``.

    It creates the file ``marker`` and then sleeps ``seconds``, so a test knows the owner is
    waiting for its workers to start.
    """

    def __init__(
        self, seed: int, n_envs: int = 2, *, slow_seed: int, marker: str, seconds: float = 60.0
    ) -> None:
        super().__init__(seed, n_envs, auto_reset=True)
        if seed == slow_seed:
            Path(marker).touch()
            time.sleep(seconds)


def wait_for_file(path: str | Path, seconds: float = 30.0) -> bool:
    """Whether ``path`` exists within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return True
        time.sleep(0.02)
    return False


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def descendants(pid: int) -> list[int]:
    """The pids of the live children of ``pid`` (from /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields: list[Any] = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == str(pid) and fields[0] != "Z":
                out.append(int(entry))
    return out
