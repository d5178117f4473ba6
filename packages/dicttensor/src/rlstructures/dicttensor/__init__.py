"""rlstructures.dicttensor: batches of named arrays, numpy core with zero-copy torch views.

Public API:

* `DictTensor`: a dict of arrays sharing leading batch dimensions.
* `TemporalDictTensor`: B sequences of various lengths, padded to T steps.
* `Trajectories`: per-sequence info plus a TemporalDictTensor (what batchers return).
* `Spec`: the per-row shape and dtype of a leaf.
* `is_tensor`: whether a value is a torch tensor, without importing torch.
* `RemovedAttribute`: a class attribute marking a name of RLStructures 0.2; reading it
  raises `RemovedNameError` naming the replacement.
* errors: `DictTensorError` and its subclasses (each also a ValueError, IndexError,
  TypeError or ImportError). `MissingDependencyError` is the one raised by every
  rlstructures package for a missing extra.

Importing this package imports numpy only: torch (extra ``torch``) and pyarrow (extra
``arrow``) are imported by the methods that need them.
"""

import importlib.metadata
from typing import TYPE_CHECKING, Any

from rlstructures.dicttensor._backend import is_tensor as is_tensor
from rlstructures.dicttensor._dicttensor import DictTensor as DictTensor
from rlstructures.dicttensor._renamed import RemovedAttribute as RemovedAttribute
from rlstructures.dicttensor._spec import Spec as Spec
from rlstructures.dicttensor._temporal import TemporalDictTensor as TemporalDictTensor
from rlstructures.dicttensor._trajectories import Trajectories as Trajectories
from rlstructures.dicttensor.errors import BackendError as BackendError
from rlstructures.dicttensor.errors import BatchIndexError as BatchIndexError
from rlstructures.dicttensor.errors import BatchShapeError as BatchShapeError
from rlstructures.dicttensor.errors import DictTensorError as DictTensorError
from rlstructures.dicttensor.errors import KeyMismatchError as KeyMismatchError
from rlstructures.dicttensor.errors import MissingDependencyError as MissingDependencyError
from rlstructures.dicttensor.errors import RemovedImportError as RemovedImportError
from rlstructures.dicttensor.errors import RemovedNameError as RemovedNameError
from rlstructures.dicttensor.errors import SpecMismatchError as SpecMismatchError

__version__ = importlib.metadata.version("rlstructures-dicttensor")

__all__ = [
    "DictTensor",
    "TemporalDictTensor",
    "Trajectories",
    "Spec",
    "is_tensor",
    "DictTensorError",
    "BatchShapeError",
    "BatchIndexError",
    "KeyMismatchError",
    "SpecMismatchError",
    "BackendError",
    "MissingDependencyError",
    "RemovedNameError",
    "RemovedImportError",
    "RemovedAttribute",
    "__version__",
]

if not TYPE_CHECKING:  # for the type checker, a module __getattr__ would accept any name

    def __getattr__(name: str) -> Any:
        """RLStructures 0.2 names (``masked_dicttensor``, ...) fail naming the replacement."""
        from rlstructures.dicttensor._renamed import missing_module_name

        raise missing_module_name(__name__, name)
