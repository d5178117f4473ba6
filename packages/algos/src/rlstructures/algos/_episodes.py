"""Episode returns and lengths from successive Trajectories of one batcher.

Stand-in for ``rlstructures.agents.EpisodeTracker`` (planned in the agents package, same
interface): once that ships, this module is deleted and ``_run`` imports it instead.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from rlstructures.dicttensor import DictTensor, Trajectories

__all__ = ["EpisodeTracker"]


class EpisodeTracker:
    """Running sums per env row, carried across successive ``get()`` results.

    An episode starts at a step whose ``observation/initial_state`` is True and ends at a
    step whose ``_observation/done`` is True; rewards come from ``_observation/reward``.
    """

    def __init__(self) -> None:
        self._return: npt.NDArray[np.float64] = np.zeros(0)
        self._length: npt.NDArray[np.int64] = np.zeros(0, np.int64)

    def update(self, trajectories: Trajectories) -> DictTensor:
        """The episodes that ended in ``trajectories``, one row each.

        Returns:
            numpy DictTensor ``[E]``: ``"return"`` float64, ``"length"`` int64, ``"env"``
            int64 (the row of the batch), ``"terminated"`` bool.
        """
        steps = trajectories.trajectories.numpy()
        b, t_max = steps.batch_shape
        if len(self._return) != b:
            self._return, self._length = np.zeros(b), np.zeros(b, np.int64)
        lengths = np.asarray(steps.lengths)
        initial = np.asarray(steps["observation/initial_state"], bool)
        reward = np.asarray(steps["_observation/reward"], np.float64)
        done = np.asarray(steps["_observation/done"], bool)
        terminated = np.asarray(steps["_observation/terminated"], bool)
        ended: list[tuple[float, int, int, bool]] = []
        for t in range(t_max):
            valid = lengths > t
            start = initial[:, t] & valid
            self._return[start] = 0.0
            self._length[start] = 0
            self._return[valid] += reward[valid, t]
            self._length[valid] += 1
            for k in np.flatnonzero(done[:, t] & valid):
                ended.append(
                    (float(self._return[k]), int(self._length[k]), int(k), bool(terminated[k, t]))
                )
        columns = list(zip(*ended, strict=True)) if ended else [(), (), (), ()]
        return DictTensor(
            {
                "return": np.asarray(columns[0], np.float64),
                "length": np.asarray(columns[1], np.int64),
                "env": np.asarray(columns[2], np.int64),
                "terminated": np.asarray(columns[3], bool),
            },
            batch_shape=(len(ended),),
        )
