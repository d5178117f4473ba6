"""Shared memory under pressure: a full /dev/shm, and owners SIGKILLed at the worst moments.

The scenarios run in subprocesses; where this machine lets a test mount a private tmpfs on
/dev/shm (``unshare -m``, Linux as root) they run over one, so that "nothing is left" is
checked in bytes, not only as names.
"""

from __future__ import annotations

import errno
import functools
import json
import os
from typing import Any

import numpy as np
import pytest

from rlstructures.batchers import MultiProcessBatcher, SharedMemoryError
from rlstructures.batchers.testing import CountingAgent, CountingEnv
from tests.batchers.scenarios import (
    SHM_REPORT,
    private_shm_unavailable,
    run_python,
    run_with_private_shm,
)

pytestmark = pytest.mark.timeout(120)
needs_private_shm = pytest.mark.skipif(
    bool(private_shm_unavailable()), reason=private_shm_unavailable() or "available"
)
ENV = functools.partial(CountingEnv, n_envs=2, auto_reset=True)

# One env step of CountingAgent x CountingEnv takes 62 bytes of buffer; with 4 envs,
# 70,000 steps are ~17 MB: more than an 8 MB /dev/shm holds.
FILL = """
import functools, json, sys
from rlstructures.batchers import MultiProcessBatcher, SharedMemoryError
from rlstructures.batchers.testing import CountingAgent, CountingEnv
""" + SHM_REPORT + """
if __name__ == "__main__":
    env = functools.partial(CountingEnv, n_envs=2, auto_reset=True)
    report = {"before": shm_report()}
    with MultiProcessBatcher(CountingAgent, env, n_timesteps=10_000, seeds=[0, 1]) as small:
        small.reset()
        try:
            MultiProcessBatcher(CountingAgent, env, n_timesteps=70_000, seeds=[0, 1])
        except SharedMemoryError as exc:
            report["error"] = str(exc)
        report["during"] = shm_report()
        small.execute()  # the first batcher still works
        tr, _ = small.get()
        report["lengths"] = tr.lengths.tolist()
    report["after"] = shm_report()
    print(json.dumps(report))
"""


@needs_private_shm
def test_a_buffer_larger_than_free_dev_shm_is_a_clear_error_not_a_sigbus() -> None:
    done = run_with_private_shm(FILL, "8m")
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stderr}"
    report = json.loads(done.stdout.splitlines()[-1])
    message = report["error"]
    assert "MiB of shared memory" in message
    assert "/dev/shm has" in message
    assert "n_timesteps" in message
    assert "--shm-size" in message
    assert report["lengths"] == [10_000] * 4
    assert report["before"] == report["after"] == {"names": [], "used": 0}
    assert report["during"]["names"] == []  # no name at any time: nothing to leak


def _fail_fallocate(size_over: int) -> Any:
    real = os.posix_fallocate

    def fallocate(fd: int, offset: int, length: int) -> None:
        if length > size_over:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd, offset, length)

    return fallocate


@pytest.mark.skipif(not hasattr(os, "posix_fallocate"), reason="no posix_fallocate here")
def test_an_allocation_failure_is_a_clear_error_and_releases_everything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "posix_fallocate", _fail_fallocate(0))
    with pytest.raises(SharedMemoryError, match=r"n_timesteps.*--shm-size") as info:
        MultiProcessBatcher(CountingAgent, ENV, n_timesteps=5, seeds=[0, 1])
    assert isinstance(info.value, OSError)
    assert info.value.errno == errno.ENOSPC
    # the autouse fixture checks that no segment and no process is left


@pytest.mark.skipif(not hasattr(os, "posix_fallocate"), reason="no posix_fallocate here")
def test_weights_that_do_not_fit_are_a_clear_error_and_the_batcher_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with MultiProcessBatcher(CountingAgent, ENV, n_timesteps=3, seeds=[0, 1]) as b:
        monkeypatch.setattr(os, "posix_fallocate", _fail_fallocate(1 << 20))
        b.reset()
        with pytest.raises(SharedMemoryError, match=r"update\(\)"):
            b.update({"w": np.ones(1), "big": np.zeros(1 << 20)})
        b.update({"w": np.full(1, 2.0)})
        b.execute()
        tr, _ = b.get()
    np.testing.assert_array_equal(tr.trajectories["action/weight"], 2.0)


# ---------------------------------------------------------------------- SIGKILLed owner
OWNER_STARTING = """
import functools, sys
from rlstructures.batchers import MultiProcessBatcher
from rlstructures.batchers.testing import CountingAgent
from tests.batchers.scenarios import SlowStartEnv

if __name__ == "__main__":
    env = functools.partial(SlowStartEnv, slow_seed=1, marker=sys.argv[1])
    MultiProcessBatcher(CountingAgent, env, n_timesteps=50, seeds=[0, 1])
"""

OWNER_UPDATING = """
import functools, sys
import numpy as np
from rlstructures.batchers import MultiProcessBatcher
from rlstructures.batchers.testing import CountingAgent, CountingEnv

if __name__ == "__main__":
    env = functools.partial(CountingEnv, n_envs=2, auto_reset=True, sleep=0.05)
    b = MultiProcessBatcher(CountingAgent, env, n_timesteps=2000, seeds=[0, 1])
    b.reset()
    b.execute()
    b.update({"w": np.ones(3)})  # the workers are busy: they read it after their slice
    open(sys.argv[1], "w").close()
    b.get()
"""

KILL = """
import json, os, signal, subprocess, sys, tempfile, time
from tests.batchers.scenarios import alive, descendants, wait_for_file
""" + SHM_REPORT + """
owner_code = sys.argv[1]
before = shm_report()
marker = os.path.join(tempfile.mkdtemp(), "marker")
owner = subprocess.Popen([sys.executable, "-c", owner_code, marker])
started = wait_for_file(marker, 60)
kids = descendants(owner.pid)
os.kill(owner.pid, signal.SIGKILL)
owner.wait()
deadline = time.monotonic() + 20
while time.monotonic() < deadline and any(alive(k) for k in kids):
    time.sleep(0.02)
after = shm_report()
while time.monotonic() < deadline and after["used"] > before["used"]:
    time.sleep(0.05)  # the kernel frees a file's pages once its last user is gone
    after = shm_report()
print(json.dumps({"started": started, "kids": len(kids), "left": [k for k in kids if alive(k)],
                  "before": before, "after": after}))
"""


def _kill_owner(owner_code: str) -> dict[str, Any]:
    driver = f"import sys; sys.argv[1:] = [{owner_code!r}]\n" + KILL
    if private_shm_unavailable():
        done = run_python(driver, timeout=90)
    else:
        done = run_with_private_shm(driver, "64m")
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    assert report["started"], "the owner never reached the moment to kill it"
    assert report["kids"] >= 2, report
    assert report["left"] == [], "worker processes outlived their owner"
    return report


def _assert_nothing_left(report: dict[str, Any]) -> None:
    new_names = set(report["after"]["names"]) - set(report["before"]["names"])
    assert not new_names, f"left in /dev/shm: {sorted(new_names)}"
    if not private_shm_unavailable():
        assert report["after"]["used"] == report["before"]["used"]


def test_owner_killed_while_its_workers_start_leaves_nothing() -> None:
    _assert_nothing_left(_kill_owner(OWNER_STARTING))


def test_owner_killed_after_an_update_read_by_no_worker_yet_leaves_nothing() -> None:
    _assert_nothing_left(_kill_owner(OWNER_UPDATING))


def test_a_buffer_too_large_for_memory_is_a_clear_error_in_both_batchers() -> None:
    from rlstructures.batchers import LocalBatcher

    huge = 10**12  # steps: ~100 TB of buffer
    with pytest.raises(MemoryError, match=r"LocalBatcher's trajectory buffer needs .* GiB"):
        LocalBatcher(CountingAgent, ENV, n_timesteps=huge, seeds=[0])
    with pytest.raises(SharedMemoryError, match=r"trajectory buffer .* needs .* GiB"):
        MultiProcessBatcher(CountingAgent, ENV, n_timesteps=huge, seeds=[0])
