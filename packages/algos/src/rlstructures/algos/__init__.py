"""rlstructures.algos: A2C, PPO, Double DQN and SAC on the rlstructures APIs.

Each algorithm is one module, readable top to bottom: a frozen config dataclass whose field
docstrings are the command line's help, the networks, a pure loss function and
``train(config, logger=None) -> TrainResult``:

* `rlstructures.algos.a2c`: ``A2CConfig``, ``a2c_loss``, ``train``;
* `rlstructures.algos.ppo`: ``PPOConfig``, ``ppo_loss``, ``train``;
* `rlstructures.algos.dqn`: ``DQNConfig``, ``dqn_loss``, ``train`` (Double DQN);
* `rlstructures.algos.sac`: ``SACConfig``, ``sac_loss``, ``train``.

Public API of this package module (importing it does not import torch):

* `TrainConfig`: the fields every config shares; ``Config.from_preset(env_id, **overrides)``
  applies the per-env hyperparameters (as rl-baselines3-zoo keeps them).
* `TrainResult`, `EvalResult`: what ``train`` returns.
* `ALGORITHMS`: the algorithms of ``rlstructures-train`` (and whether each is available).
* `main`: the ``rlstructures-train`` command (``python -m rlstructures.algos``).
* errors: `AlgosError`, `ConfigError`, `UnsupportedSpaceError`,
  `AlgorithmNotAvailableError`, `CheckpointError`.
"""

import importlib.metadata

from rlstructures.algos import errors as errors
from rlstructures.algos._cli import main as main
from rlstructures.algos._config import TrainConfig as TrainConfig
from rlstructures.algos._evaluation import EvalResult as EvalResult
from rlstructures.algos._registry import ALGORITHMS as ALGORITHMS
from rlstructures.algos._result import TrainResult as TrainResult
from rlstructures.algos.errors import AlgorithmNotAvailableError as AlgorithmNotAvailableError
from rlstructures.algos.errors import AlgosError as AlgosError
from rlstructures.algos.errors import CheckpointError as CheckpointError
from rlstructures.algos.errors import ConfigError as ConfigError
from rlstructures.algos.errors import UnsupportedSpaceError as UnsupportedSpaceError

__version__ = importlib.metadata.version("rlstructures-algos")

__all__ = [
    "TrainConfig",
    "TrainResult",
    "EvalResult",
    "ALGORITHMS",
    "main",
    "AlgosError",
    "ConfigError",
    "UnsupportedSpaceError",
    "AlgorithmNotAvailableError",
    "CheckpointError",
    "errors",
    "__version__",
]
