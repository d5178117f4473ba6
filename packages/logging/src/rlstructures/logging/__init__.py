"""rlstructures.logging: scalar logs (CSV, TensorBoard, Arrow), trajectory files, plots.

Public API:

* `Logger`: scalars and hyperparameters of one run, to several backends at once;
  `ScalarLogger` is the protocol it implements (for type hints in training code).
* `read_logs`: the scalars of a log directory as a ``pyarrow.Table``.
* `TrajectoryWriter`: streams `Trajectories` to Arrow IPC or Parquet files.
* `read_trajectories`: reads them back as `Trajectories` (memory-mapped for Arrow).
* errors: `LoggingError` and its subclasses (also in ``rlstructures.logging.errors``).

The ``rlstructures-plot`` command (``python -m rlstructures.logging.plot``) draws learning
curves; it needs the ``plot`` extra.
"""

import importlib.metadata
from typing import TYPE_CHECKING, Any

from rlstructures.logging._legacy import removed_module_name
from rlstructures.logging._logger import Logger as Logger
from rlstructures.logging._logger import ScalarLogger as ScalarLogger
from rlstructures.logging._logger import read_logs as read_logs
from rlstructures.logging._trajectories import TrajectoryWriter as TrajectoryWriter
from rlstructures.logging._trajectory_reader import read_trajectories as read_trajectories
from rlstructures.logging.errors import CorruptFileError as CorruptFileError
from rlstructures.logging.errors import DatasetExistsError as DatasetExistsError
from rlstructures.logging.errors import HParamsError as HParamsError
from rlstructures.logging.errors import InvalidScalarError as InvalidScalarError
from rlstructures.logging.errors import LoggingError as LoggingError
from rlstructures.logging.errors import LogWriteError as LogWriteError
from rlstructures.logging.errors import MissingDependencyError as MissingDependencyError
from rlstructures.logging.errors import NoDataError as NoDataError
from rlstructures.logging.errors import RemovedImportError as RemovedImportError
from rlstructures.logging.errors import RemovedNameError as RemovedNameError
from rlstructures.logging.errors import SchemaMismatchError as SchemaMismatchError
from rlstructures.logging.errors import UnknownTagError as UnknownTagError
from rlstructures.logging.errors import WriterClosedError as WriterClosedError

__version__ = importlib.metadata.version("rlstructures-logging")

__all__ = [
    "Logger",
    "ScalarLogger",
    "read_logs",
    "TrajectoryWriter",
    "read_trajectories",
    "LoggingError",
    "InvalidScalarError",
    "HParamsError",
    "WriterClosedError",
    "SchemaMismatchError",
    "DatasetExistsError",
    "CorruptFileError",
    "NoDataError",
    "UnknownTagError",
    "LogWriteError",
    "RemovedNameError",
    "RemovedImportError",
    "MissingDependencyError",
    "__version__",
]

if not TYPE_CHECKING:  # for the type checker, a module __getattr__ would accept any name

    def __getattr__(name: str) -> Any:
        """RLStructures 0.2 names (``TFLogger``, ``logging.info``) fail naming the replacement."""
        raise removed_module_name(__name__, name)
