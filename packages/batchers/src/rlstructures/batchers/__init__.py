"""rlstructures.batchers: run many agents against many environments, return Trajectories.

Public API:

* `LocalBatcher`: everything in the calling process (debugging, tests).
* `MultiProcessBatcher`: one worker process per seed, trajectories in shared memory.
* `InferenceBatcher`: workers step envs, one batched agent call per step in this process.
* `Batcher`: the interface they implement; `BatcherOptions`: its shared keyword arguments.
* errors: `WorkerError`, `AgentOutputError`, `BatcherStateError`, `BatcherTimeoutError`,
  `SharedMemoryError`, `BatcherError`; `RemovedImportError` / `RemovedNameError` for the
  names of RLStructures 0.2 (``RL_Batcher``, ``batcher.n_elems()``), naming ours.
* `rlstructures.batchers.testing`: small deterministic envs and agents, with fault
  injection, for tests of code built on batchers.
"""

import importlib.metadata
from typing import TYPE_CHECKING, Any

from rlstructures.batchers._base import Batcher as Batcher
from rlstructures.batchers._base import BatcherOptions as BatcherOptions
from rlstructures.batchers._inference import InferenceBatcher as InferenceBatcher
from rlstructures.batchers._legacy import removed_module_name
from rlstructures.batchers._local import LocalBatcher as LocalBatcher
from rlstructures.batchers._multiprocess import MultiProcessBatcher as MultiProcessBatcher
from rlstructures.batchers.errors import AgentOutputError as AgentOutputError
from rlstructures.batchers.errors import BatcherError as BatcherError
from rlstructures.batchers.errors import BatcherStateError as BatcherStateError
from rlstructures.batchers.errors import BatcherTimeoutError as BatcherTimeoutError
from rlstructures.batchers.errors import RemovedImportError as RemovedImportError
from rlstructures.batchers.errors import RemovedNameError as RemovedNameError
from rlstructures.batchers.errors import SharedMemoryError as SharedMemoryError
from rlstructures.batchers.errors import WorkerError as WorkerError

__version__ = importlib.metadata.version("rlstructures-batchers")

__all__ = [
    "Batcher",
    "BatcherOptions",
    "LocalBatcher",
    "MultiProcessBatcher",
    "InferenceBatcher",
    "WorkerError",
    "AgentOutputError",
    "BatcherStateError",
    "BatcherTimeoutError",
    "SharedMemoryError",
    "RemovedImportError",
    "RemovedNameError",
    "BatcherError",
    "__version__",
]

if not TYPE_CHECKING:  # for the type checker, a module __getattr__ would accept any name

    def __getattr__(name: str) -> Any:
        """RLStructures 0.2 names (``RL_Batcher``, ...) fail naming the replacement."""
        raise removed_module_name(__name__, name)
