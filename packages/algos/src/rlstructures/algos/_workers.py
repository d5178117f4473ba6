"""How the batchers' worker processes start: a fork server with the actor modules loaded.

Workers are forked from one server process that imported numpy, gymnasium and the
torch-free acting modules once (``multiprocessing``'s "forkserver" start method), so a
worker is ready in tens of milliseconds instead of the half second a "spawn" worker spends
importing. ``prestart()`` launches that server without waiting for it: the command line
calls it first thing, and the server loads its modules on the second core while this
process imports torch. The fork server is single-threaded, so forking from it is as safe
as "spawn" (threads and CUDA in this process do not matter). Platforms without
"forkserver" (Windows, macOS defaults aside) use "spawn".
"""

from __future__ import annotations

import multiprocessing
from typing import Final

__all__ = ["PRELOAD", "prestart", "start_method"]

#: What the fork server imports once: everything a worker needs, nothing that imports torch.
PRELOAD: Final = [
    "numpy",
    "gymnasium",
    "rlstructures.batchers",
    "rlstructures.algos._actor",
    "rlstructures.algos._envs",
]


def start_method() -> str:
    """``"forkserver"`` (with `PRELOAD`) where the platform has it, else ``"spawn"``."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return "spawn"
    multiprocessing.set_forkserver_preload(PRELOAD)
    return "forkserver"


def prestart() -> None:
    """Launch the fork server now, without waiting for it to load its modules."""
    if start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()
