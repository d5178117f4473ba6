"""A local Ray for the batchers benchmark: loopback addresses only, temp files removed.

Used by tools/bench/batchers.py for its RayBatcher row. ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``
(read when ray is imported) makes Ray bind to 127.0.0.1; token authentication and usage
reports are off; ``RAY_TMPDIR`` is a fresh temp directory, removed afterwards.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

LOOPBACK = "127.0.0.1"


@contextmanager
def local_ray(num_cpus: int) -> Iterator[Any]:
    """``ray``, initialized on this machine only for the block; shut down afterwards."""
    os.environ.update(
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0"
    )
    tmp = tempfile.mkdtemp(prefix="rls-ray-")
    os.environ["RAY_TMPDIR"] = tmp
    import ray

    try:
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=False,
            object_store_memory=200 * 2**20,
            log_to_driver=False,
        )
        try:
            addresses = {n["NodeManagerAddress"] for n in ray.nodes()}
            gcs = str(ray.get_runtime_context().gcs_address)
            if addresses != {LOOPBACK} or not gcs.startswith(f"{LOOPBACK}:"):
                raise RuntimeError(
                    f"Ray is not on loopback addresses only (nodes {addresses}, GCS {gcs}): "
                    "was ray imported before RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 was set?"
                )
            yield ray
        finally:
            ray.shutdown()
    finally:
        os.environ.pop("RAY_TMPDIR", None)
        shutil.rmtree(tmp, ignore_errors=True)
