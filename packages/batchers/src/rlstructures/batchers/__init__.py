"""rlstructures.batchers: run many agents against many environments, return Trajectories.

Public API:

* `LocalBatcher`: everything in the calling process (debugging, tests).
* `MultiProcessBatcher`: one worker process per seed, trajectories in shared memory.
* `Batcher`: the interface both implement.
* errors: `WorkerError`, `AgentOutputError`, `BatcherStateError`, `BatcherTimeoutError`,
  `SharedMemoryError`, `BatcherError`.
* `rlstructures.batchers.testing`: small deterministic envs and agents, with fault
  injection, for tests of code built on batchers.
"""

import importlib.metadata

from rlstructures.batchers._base import Batcher as Batcher
from rlstructures.batchers._local import LocalBatcher as LocalBatcher
from rlstructures.batchers._multiprocess import MultiProcessBatcher as MultiProcessBatcher
from rlstructures.batchers.errors import AgentOutputError as AgentOutputError
from rlstructures.batchers.errors import BatcherError as BatcherError
from rlstructures.batchers.errors import BatcherStateError as BatcherStateError
from rlstructures.batchers.errors import BatcherTimeoutError as BatcherTimeoutError
from rlstructures.batchers.errors import SharedMemoryError as SharedMemoryError
from rlstructures.batchers.errors import WorkerError as WorkerError

__version__ = importlib.metadata.version("rlstructures-batchers")

__all__ = [
    "Batcher",
    "LocalBatcher",
    "MultiProcessBatcher",
    "WorkerError",
    "AgentOutputError",
    "BatcherStateError",
    "BatcherTimeoutError",
    "SharedMemoryError",
    "BatcherError",
    "__version__",
]
