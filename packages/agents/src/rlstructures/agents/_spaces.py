"""From gymnasium spaces to DictTensor keys: observation leaves and action checks.

Only called with gymnasium installed (``GymVecEnv`` checks it first); the hot paths
(``stack_leaf``, ``ActionSpec.check``) use numpy only.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Generic, Literal, NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt

from rlstructures.agents.errors import ActionError, ObservationError, UnsupportedSpaceError
from rlstructures.dicttensor import is_tensor

if TYPE_CHECKING:
    from gymnasium import Space

T = TypeVar("T")

__all__ = [
    "RESERVED_KEYS",
    "ActionSpec",
    "Flags",
    "ObsLeaf",
    "action_spec",
    "flags_of",
    "observation_leaves",
]


class Flags(NamedTuple, Generic[T]):
    """One value per observation key that GymVecEnv adds next to the frame keys, by name.

    The field names are the keys: ``Flags._make(itemgetter(*Flags._fields)(arrays))``
    reads the arrays of a mapping so that code uses ``flags.reward``, never a position.
    """

    reward: T
    terminated: T
    truncated: T
    done: T
    initial_state: T
    last_action: T


#: Observation keys written by GymVecEnv next to the frame keys.
RESERVED_KEYS: Final = Flags._fields

#: ``Flags`` of a tuple of 6 arrays (``tuple.__new__``: what ``Flags._make`` does, unchecked)
flags_of: Callable[[tuple[npt.NDArray[Any], ...]], Flags[npt.NDArray[Any]]] = functools.partial(
    tuple.__new__, Flags
)
_OBS_SPACES: Final = "Box, Discrete, MultiDiscrete, MultiBinary, Dict and Tuple"
_ACTION_SPACES: Final = "Discrete, Box, MultiDiscrete and MultiBinary"


@dataclass(frozen=True, slots=True)
class ObsLeaf:
    """One array of the observation.

    Attributes:
        key: its DictTensor key.
        path: where it sits in the nested gymnasium observation (dict keys, tuple positions).
        shape: its row shape.
        dtype: its dtype (the space's).
    """

    key: str
    path: tuple[Any, ...]
    shape: tuple[int, ...]
    dtype: np.dtype[Any]


def observation_leaves(space: Space[Any]) -> tuple[ObsLeaf, ...]:
    """The leaves of an observation space, in space order.

    A Box, Discrete, MultiDiscrete or MultiBinary space is one leaf ``"frame"``; a Dict
    space gives one leaf per entry (nested keys joined with "/", no ``"frame"`` prefix); a
    Tuple space gives ``"frame/0"``, ``"frame/1"``, ... (inside a Dict entry ``"k"``:
    ``"k/0"``, ...).

    Raises:
        UnsupportedSpaceError: another space type, or a Dict key equal to a reserved key.
    """
    from gymnasium import spaces

    leaves: list[ObsLeaf] = []

    def walk(sub: Space[Any], key: str, path: tuple[Any, ...]) -> None:
        if isinstance(sub, spaces.Dict):
            for name, child in sub.spaces.items():
                walk(child, f"{key}/{name}" if key else str(name), (*path, name))
        elif isinstance(sub, spaces.Tuple):
            for i, child in enumerate(sub.spaces):
                walk(child, f"{key or 'frame'}/{i}", (*path, i))
        elif isinstance(
            sub, (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)
        ):
            shape = tuple(int(d) for d in (sub.shape or ()))
            assert sub.dtype is not None  # these four space types always have a dtype
            leaves.append(ObsLeaf(key or "frame", path, shape, np.dtype(sub.dtype)))
        else:
            where = f" (at key {key!r})" if key else ""
            raise UnsupportedSpaceError(
                f"observation space {sub}{where} is a {type(sub).__name__}; the gymnasium "
                f"adapters handle {_OBS_SPACES} spaces. Wrap the env in a "
                "`gymnasium.ObservationWrapper` that turns it into one of those."
            )

    walk(space, "", ())
    clash = sorted({leaf.key for leaf in leaves} & set(RESERVED_KEYS))
    if clash:
        raise UnsupportedSpaceError(
            f"the Dict observation space has entries {clash}, which clash with the keys "
            f"GymVecEnv adds to every observation {list(RESERVED_KEYS)}. Rename them with a "
            "`gymnasium.ObservationWrapper`."
        )
    return tuple(leaves)


def gather(observations: Sequence[Any], path: tuple[Any, ...]) -> Sequence[Any]:
    """The values at ``path`` of every (nested) observation."""
    if not path:
        return observations
    if len(path) == 1:
        p = path[0]
        return [o[p] for o in observations]
    out = []
    for o in observations:
        for p in path:
            o = o[p]
        out.append(o)
    return out


def get(observation: Any, path: tuple[Any, ...]) -> Any:
    """The value at ``path`` of one (nested) observation."""
    for p in path:
        observation = observation[p]
    return observation


def check_row(leaf: ObsLeaf, value: Any, env_id: int, when: str) -> Any:
    """``value`` when it has the leaf's shape (it is then written into a row of the leaf).

    Raises:
        ObservationError: another shape; names the env and the key.
    """
    try:
        shape = np.shape(value)
    except ValueError:  # a ragged nested sequence
        shape = None
    if shape != leaf.shape:
        raise ObservationError(_shape_message(leaf, [value], [env_id], when))
    return value


def stack_leaf(leaf: ObsLeaf, values: Sequence[Any], env_ids: Any, when: str) -> npt.NDArray[Any]:
    """``[n, *leaf.shape]`` array of ``leaf.dtype`` from one value per env (a fresh array).

    Raises:
        ObservationError: a value does not have the leaf's shape; names the env and key.
    """
    try:
        arr = np.array(values, dtype=leaf.dtype)
    except (ValueError, TypeError):
        arr = None
    except OverflowError:  # a Python int outside the dtype's range
        raise ObservationError(range_message(leaf, values, env_ids, when)) from None
    if arr is None or arr.shape[1:] != leaf.shape or arr.shape[0] != len(values):
        raise ObservationError(_shape_message(leaf, values, env_ids, when))
    return arr


def range_message(leaf: ObsLeaf, values: Sequence[Any], env_ids: Any, when: str) -> str:
    """The message of an observation value that does not fit the leaf's dtype."""
    bad, got = 0, values[0] if len(values) else None
    for i, value in enumerate(values):
        try:
            np.array(value, dtype=leaf.dtype)
        except OverflowError:
            bad, got = i, value
            break
    return (
        f"env {int(env_ids[bad])} returned an observation from {when} whose {leaf.key!r} holds "
        f"{got!r}, outside the range of the observation space's dtype {leaf.dtype}. Return "
        "values the observation space allows (or declare a wider dtype)."
    )


def _shape_message(leaf: ObsLeaf, values: Sequence[Any], env_ids: Any, when: str) -> str:
    bad = 0
    got: Any = None
    for i, value in enumerate(values):
        try:
            shape = np.shape(value)
        except ValueError:  # a ragged nested sequence
            shape = None
        if shape != leaf.shape:
            bad, got = i, shape
            break
    found = "an object with no array shape" if got is None else f"shape {got}"
    return (
        f"env {int(env_ids[bad])} returned an observation from {when} whose {leaf.key!r} has "
        f"{found}, but its observation space declares {leaf.shape} ({leaf.dtype}). Every "
        "observation must keep the shape declared by the observation_space: fix the env, or "
        "declare the right space."
    )


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """How GymVecEnv checks an ``"action"`` leaf and hands its rows to the envs.

    Attributes:
        kind: the action space type.
        shape: the row shape (``()`` for Discrete).
        dtype: what the env receives and what ``"last_action"`` holds.
        low: smallest allowed value (broadcast to ``shape``), None when unbounded.
        high: largest allowed value (inclusive), None when unbounded.
        kinds: the numpy dtype kinds an action may have (``"iu"``: integers).
        int_bounds: ``(low, high)`` as Python ints for Discrete (a faster check).
        int_values: every allowed value, for a Discrete space of at most
            ``_SMALL_DISCRETE`` values (a set lookup beats min and max).
    """

    kind: Literal["discrete", "box", "multidiscrete", "multibinary"]
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    low: npt.NDArray[Any] | None
    high: npt.NDArray[Any] | None
    kinds: str
    int_bounds: tuple[int, int] | None = None
    int_values: frozenset[int] | None = None

    def check(self, value: Any, n: int, copy: bool = True) -> npt.NDArray[Any]:
        """Validate the ``"action"`` leaf of ``n`` rows.

        Args:
            value: ``[n, *shape]`` numpy array or torch tensor (moved to the CPU).
            n: how many envs are running.
            copy: return a fresh array even when ``value`` already has ``dtype``.

        Returns:
            A ``[n, *shape]`` numpy array of ``dtype``: a fresh one when ``copy`` (never a
            view of ``value``), else possibly ``value`` itself.

        Raises:
            ActionError: wrong shape, dtype kind or a value outside the space.
        """
        tensor = False
        if type(value) is np.ndarray:
            pass
        elif is_tensor(value):
            value, tensor = value.detach().cpu().numpy(), True
        elif not isinstance(value, np.ndarray):
            raise ActionError(
                f"action['action'] is a {type(value).__name__}; it must be a numpy array or "
                f"a torch tensor of shape {(n, *self.shape)}."
            )
        else:  # a subclass (masked array, matrix): its plain values, as a copy would give
            value = np.asarray(value)
        if value.shape != (n, *self.shape):
            raise ActionError(
                f"action['action'] has shape {value.shape}, expected {(n, *self.shape)}: one "
                f"row per running env, each of the action space's shape {self.shape}."
            )
        if value.dtype.kind not in self.kinds:
            what = "integer" if self.kinds == "iu" else "numeric"
            cast = f"a.to(torch.{self.dtype})" if tensor else f"a.astype(np.{self.dtype})"
            raise ActionError(
                f"action['action'] has dtype {value.dtype}, but a {self.kind} action space "
                f"needs {what} values ({self.dtype}). Cast it, e.g. `{cast}`."
            )
        arr = value if not copy and value.dtype is self.dtype else np.array(value, self.dtype)
        # integers are checked before the cast, which would wrap them (300 -> 44 in int8)
        v = value if self.kinds == "iu" and value.dtype != arr.dtype else arr
        if self.int_bounds is not None and n > _MANY_ROWS:  # numpy beats Python on many rows
            low, high = self.int_bounds
            if low == 0 and v.dtype.kind in "iu":  # one reduction: negatives view as huge
                out = v.view(f"u{v.itemsize}").max() > high
            else:
                out = v.min() < low or v.max() > high
            if out:
                self._raise_out_of_space(v, (v >= self.low) & (v <= self.high))
        elif self.int_values is not None:  # Python sets beat numpy on small n
            if not self.int_values.issuperset(v.tolist()):
                self._raise_out_of_space(v, (v >= self.low) & (v <= self.high))
        elif self.int_bounds is not None and n:
            values = v.tolist()
            if min(values) < self.int_bounds[0] or max(values) > self.int_bounds[1]:
                self._raise_out_of_space(v, (v >= self.low) & (v <= self.high))
        elif self.low is not None and self.high is not None:
            ok = (v >= self.low) & (v <= self.high)
            if not ok.all():
                self._raise_out_of_space(v, ok)
        return arr

    def _raise_out_of_space(self, arr: npt.NDArray[Any], ok: npt.NDArray[np.bool_]) -> None:
        row = int(np.flatnonzero(~ok.reshape(len(ok), -1).all(axis=1))[0])
        low, high = np.asarray(self.low), np.asarray(self.high)  # set: only called when bounded
        if self.kind == "discrete":
            expected = f"{int(low)} <= action <= {int(high)}"
        else:
            expected = f"values between {low.tolist()} and {high.tolist()} (element-wise)"
        fix = {
            "box": "Clip it in the agent (`np.clip(a, low, high)`) or wrap the env with "
            "`gymnasium.wrappers.ClipAction` (`gymnasium.wrappers.vector.ClipAction` for a "
            "vector env); actions are never clipped silently.",
            "discrete": "Check how the agent samples its actions.",
            "multidiscrete": "Check how the agent samples its actions.",
            "multibinary": "Use 0 or 1.",
        }[self.kind]
        raise ActionError(
            f"action['action'][{row}] = {arr[row].tolist()} is outside the {self.kind} action "
            f"space: expected {expected}. {fix}"
        )


_SMALL_DISCRETE: Final = 1024
#: Above this many rows, a Discrete action is checked with numpy's min and max (vector envs).
_MANY_ROWS: Final = 64


def action_spec(space: Space[Any]) -> ActionSpec:
    """The ActionSpec of a Discrete, Box, MultiDiscrete or MultiBinary action space.

    Raises:
        UnsupportedSpaceError: any other action space.
    """
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        start, n = int(space.start), int(space.n)
        return ActionSpec(
            "discrete",
            (),
            np.dtype(space.dtype),
            np.asarray(start),
            np.asarray(start + n - 1),
            "iu",
            (start, start + n - 1),
            frozenset(range(start, start + n)) if n <= _SMALL_DISCRETE else None,
        )
    if isinstance(space, spaces.Box):
        shape = tuple(space.shape)
        low, high = np.broadcast_to(space.low, shape), np.broadcast_to(space.high, shape)
        bounded = bool(np.isfinite(low).any() or np.isfinite(high).any())
        dtype = np.dtype(space.dtype)
        return ActionSpec(
            "box",
            shape,
            dtype,
            low if bounded else None,
            high if bounded else None,
            "fiu" if dtype.kind == "f" else "iu",
        )
    if isinstance(space, spaces.MultiDiscrete):
        first = np.asarray(space.start)
        return ActionSpec(
            "multidiscrete",
            tuple(space.shape),
            np.dtype(space.dtype),
            first,
            first + np.asarray(space.nvec) - 1,
            "iu",
        )
    if isinstance(space, spaces.MultiBinary):
        shape = tuple(space.shape)
        return ActionSpec(
            "multibinary",
            shape,
            np.dtype(space.dtype),
            np.zeros(shape, np.int8),
            np.ones(shape, np.int8),
            "iub",
        )
    raise UnsupportedSpaceError(
        f"action space {space} is a {type(space).__name__}; the gymnasium adapters handle "
        f"{_ACTION_SPACES} action spaces. Wrap the env in a `gymnasium.ActionWrapper` that "
        "takes one of those."
    )
