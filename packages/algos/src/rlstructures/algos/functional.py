"""The building blocks of the algorithms' losses, for your own training loops.

What the example agents (``rlstructures.algos.examples``) and the algorithms themselves use
to turn a batch of trajectories into a loss, public so that a loop you write imports
nothing private:

* returns on ``[B, T]`` rollouts, numpy or torch (the type given is the type returned):
  `gae_advantages`, `discounted_returns`, `nstep_returns`. A terminated transition is never
  bootstrapped, a truncated one is (from its kept final observation), and nothing is
  carried across an episode's end; see each function.
* torch distributions without ``torch.distributions`` (several times cheaper per call):
  `categorical_logprob_entropy` (``[N, n_actions]`` logits) and
  `gaussian_logprob_entropy` (a diagonal Gaussian).

Importing this module imports torch (the package itself does not).

Example:
    >>> import numpy as np
    >>> from rlstructures.algos.functional import discounted_returns
    >>> rewards = np.ones((1, 3), np.float32)
    >>> next_values = np.zeros((1, 3), np.float32)
    >>> ended = np.array([[False, False, True]])
    >>> discounted_returns(rewards, next_values, ended, ended, gamma=0.5)
    array([[1.75, 1.5 , 1.  ]], dtype=float32)
"""

from rlstructures.algos._networks import categorical_logprob_entropy as categorical_logprob_entropy
from rlstructures.algos._networks import gaussian_logprob_entropy as gaussian_logprob_entropy
from rlstructures.algos._returns import discounted_returns as discounted_returns
from rlstructures.algos._returns import gae_advantages as gae_advantages
from rlstructures.algos._returns import nstep_returns as nstep_returns

__all__ = [
    "gae_advantages",
    "discounted_returns",
    "nstep_returns",
    "categorical_logprob_entropy",
    "gaussian_logprob_entropy",
]
