"""The Ray connection RayBatchers share: joined or started once, shut down by its starter.

``ray.init`` is per process. A RayBatcher built while Ray is initialized uses that
connection and never shuts it down. One built while it is not calls ``ray.init(address)``
(which joins the cluster at ``address``, or with None the one ``RAY_ADDRESS`` or a running
``ray start`` names, or else starts a local Ray): that connection is counted, and the last
RayBatcher using it shuts it down on close. Ray is imported only here, when a RayBatcher is
built.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

__all__ = ["acquire", "import_ray", "release"]

_lock = threading.Lock()
_users = 0  # RayBatchers open on the connection `acquire` started (0: none started)


def import_ray() -> Any:
    """The ``ray`` module, or an ImportError naming the extra that installs it."""
    try:
        return importlib.import_module("ray")
    except ImportError as exc:
        raise ImportError(
            "RayBatcher needs Ray, which is not installed: install it with "
            "pip install 'rlstructures-batchers[ray]' (plain `ray`; `ray[rllib]` is not needed "
            "and pins an old gymnasium)."
        ) from exc


def acquire(address: str | None) -> bool:
    """Make sure this process is connected to Ray; whether ``release()`` must follow.

    Args:
        address: None (an initialized connection, else Ray's own discovery, else a new
            local Ray), or the address of a cluster's head (``"host:6379"``, ``"auto"``).

    Raises:
        ValueError: Ray is initialized already, connected to another address.
    """
    global _users
    ray = import_ray()
    with _lock:
        if ray.is_initialized():
            if _users == 0:  # initialized by the caller: theirs to shut down
                _check_same(ray, address)
                return False
            _check_same(ray, address)
        else:
            ray.init(address=address)
            _users = 0
        _users += 1
        return True


def release() -> None:
    """One RayBatcher less on the connection ``acquire`` started; shut down after the last."""
    global _users
    ray = import_ray()
    with _lock:
        if _users == 0:
            return
        _users -= 1
        if _users == 0 and ray.is_initialized():
            ray.shutdown()


def _check_same(ray: Any, address: str | None) -> None:
    if address is None or address == "auto":
        return
    current = str(ray.get_runtime_context().gcs_address)
    if address != current:
        raise ValueError(
            f"RayBatcher(address={address!r}): this process is connected to the Ray cluster at "
            f"{current} already (ray.init ran). Pass address=None to use that connection, or "
            "call ray.shutdown() first to join another cluster."
        )
