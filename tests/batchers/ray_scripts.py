"""Ray scenarios that need a process of their own (a driver joins one Ray cluster only).

Run by tests/batchers/test_ray_processes.py as ``python -m tests.batchers.ray_scripts NAME``
with Ray's test environment (``RAY_TMPDIR`` in the test's tmp area); each exits 0 after its
checks, or raises.
"""

from __future__ import annotations

import functools
import sys
import time

import numpy as np

from rlstructures.batchers import LocalBatcher, RayBatcher, WorkerError
from rlstructures.batchers.testing import CountingAgent, CountingEnv
from rlstructures.dicttensor import Trajectories
from tests.batchers.ray_local import LOOPBACK, assert_loopback

ENV = functools.partial(CountingEnv, n_envs=2, auto_reset=True)
MB = 2**20


def _same(a: Trajectories, b: Trajectories) -> None:
    assert set(a.trajectories.keys()) == set(b.trajectories.keys())
    for k in a.trajectories.keys():
        np.testing.assert_array_equal(a.trajectories[k], b.trajectories[k], err_msg=k)
    np.testing.assert_array_equal(a.trajectories.lengths, b.trajectories.lengths)


def _collect(batcher: LocalBatcher | RayBatcher, n: int) -> list[Trajectories]:
    batcher.reset()
    out = []
    for _ in range(n):
        batcher.execute()
        out.append(batcher.get()[0])
    return out


def two_nodes() -> None:
    """Two raylets on 127.0.0.1 with 1 CPU each: one actor on each, then a node lost."""
    import ray
    from ray.cluster_utils import Cluster

    # node deaths noticed within ~1 s instead of Ray's default of tens of seconds
    health = {
        "health_check_initial_delay_ms": 0,
        "health_check_period_ms": 300,
        "health_check_timeout_ms": 300,
        "health_check_failure_threshold": 2,
    }
    head_args = {
        "num_cpus": 1,
        "include_dashboard": False,
        "object_store_memory": 80 * MB,
        "_system_config": health,
    }
    cluster = Cluster(initialize_head=True, head_node_args=head_args)
    try:
        worker_node = cluster.add_node(num_cpus=1, object_store_memory=80 * MB)
        cluster.wait_for_nodes()
        # address given: the batcher joins the cluster itself, and leaves it on close
        b = RayBatcher(CountingAgent, ENV, n_timesteps=5, seeds=[0, 5], address=cluster.address)
        assert ray.is_initialized()
        assert_loopback(ray)
        nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
        assert len(nodes) == 2, nodes
        located = [loc.node_id for loc in b.locations]
        assert set(located) == nodes, (located, nodes)  # one actor on each node
        assert {loc.node_ip for loc in b.locations} == {LOOPBACK}
        with LocalBatcher(CountingAgent, ENV, n_timesteps=5, seeds=[0, 5]) as local:
            expected = _collect(local, 3)
        for got, want in zip(_collect(b, 3), expected, strict=True):
            _same(got, want)
        b.close()
        assert not ray.is_initialized()  # its own connection, closed with it
        assert cluster.head_node.remaining_processes_alive()

        slow = functools.partial(CountingEnv, n_envs=2, auto_reset=True, sleep=0.05)
        b = RayBatcher(CountingAgent, slow, n_timesteps=400, seeds=[0, 5], address=cluster.address)
        lost = [w for w, loc in enumerate(b.locations) if loc.node_id == worker_node.node_id]
        assert len(lost) == 1, (b.locations, worker_node.node_id)
        b.reset()
        b.execute()
        cluster.remove_node(worker_node, allow_graceful=False)  # the node is lost
        t0 = time.monotonic()
        error: WorkerError | None = None
        try:
            b.get()
        except WorkerError as exc:
            error = exc
        assert error is not None, "no WorkerError after the node was lost"
        assert error.worker == lost[0], error
        assert "its Ray actor died" in str(error), error
        print(f"lost node reported after {time.monotonic() - t0:.1f} s")
        assert b.closed
        assert not ray.is_initialized()
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()


def own_local_ray() -> None:
    """With no Ray running, the batchers start one, and the last one closed shuts it down."""
    import ray

    first = RayBatcher(CountingAgent, ENV, n_timesteps=2, seeds=[0])
    assert ray.is_initialized()
    assert_loopback(ray)
    second = RayBatcher(CountingAgent, ENV, n_timesteps=2, seeds=[5])
    first.close()
    assert ray.is_initialized()  # the second one still uses it
    second.reset()
    second.execute()
    second.get()
    second.close()
    assert not ray.is_initialized()


if __name__ == "__main__":
    {"two_nodes": two_nodes, "own_local_ray": own_local_ray}[sys.argv[1]]()
