"""Agent parameters (a ``state_dict``) laid out in one flat buffer.

``update(state_dict)`` writes the arrays into shared memory once; each worker copies them
out. Only the layout (names, shapes, dtypes) and non-array values travel by pickle.
"""

from __future__ import annotations

import math
import pickle
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from rlstructures.batchers._layout import ALIGN
from rlstructures.dicttensor import is_tensor

__all__ = ["KeyPath", "WeightsLayout", "check_state_dict", "restore", "split"]


@dataclass(frozen=True, slots=True)
class WeightsLayout:
    """Where each array of a state_dict lives: ``(key path, shape, dtype, offset, kind)``.

    ``kind`` is "numpy", "torch", or "bfloat16" (a torch tensor travelling as int16 bits).
    """

    entries: tuple[tuple[tuple[Any, ...], tuple[int, ...], str, int, str], ...]
    size: int

    @property
    def signature(self) -> tuple[tuple[tuple[Any, ...], tuple[int, ...], str], ...]:
        """Keys, shapes and dtypes: a new segment is needed when it changes."""
        return tuple((k, s, d) for k, s, d, _, _ in self.entries)

    def write(self, buffer: Any, arrays: Mapping[tuple[Any, ...], npt.NDArray[Any]]) -> None:
        """Copy ``arrays`` into ``buffer``."""
        for key, shape, dtype, offset, _ in self.entries:
            dst = np.frombuffer(buffer, dtype=dtype, count=math.prod(shape), offset=offset)
            dst[:] = arrays[key].reshape(-1)

    def read(self, buffer: Any) -> dict[tuple[Any, ...], Any]:
        """Copies of the arrays in ``buffer`` (torch tensors where the original was torch)."""
        out: dict[tuple[Any, ...], Any] = {}
        for key, shape, dtype, offset, kind in self.entries:
            src = np.frombuffer(buffer, dtype=dtype, count=math.prod(shape), offset=offset)
            arr = src.reshape(shape).copy()
            if kind == "numpy":
                out[key] = arr
            else:
                import torch

                tensor = torch.from_numpy(arr)
                out[key] = tensor.view(torch.bfloat16) if kind == "bfloat16" else tensor
        return out


#: Where a value sits in a state_dict: its key, then the keys of the mappings it is nested in.
KeyPath = tuple[Any, ...]


def _leaves(mapping: Mapping[Any, Any], prefix: KeyPath,
            parents: tuple[int, ...]) -> list[tuple[KeyPath, Any]]:
    """Every non-mapping value under ``mapping`` (non-empty mappings are walked into)."""
    if id(mapping) in parents:
        raise ValueError(f"update(): the state_dict under key {prefix!r} contains itself.")
    out: list[tuple[KeyPath, Any]] = []
    for key, value in mapping.items():
        path = (*prefix, key)
        if isinstance(value, Mapping) and value:  # e.g. {"actor": actor.state_dict(), ...}
            out.extend(_leaves(value, path, (*parents, id(mapping))))
        else:
            out.append((path, value))
    return out


def _array(value: Any) -> tuple[npt.NDArray[Any], str] | None:
    """``(numpy array, kind)`` for a value that travels in the buffer, else None."""
    if is_tensor(value):
        tensor = value.detach().cpu()
        kind = "torch"
        if str(tensor.dtype) == "torch.bfloat16":  # no numpy dtype: send its bits
            kind, tensor = "bfloat16", tensor.view(sys.modules["torch"].int16)
        try:
            arr = tensor.numpy()
        except (TypeError, RuntimeError):  # a dtype or layout numpy lacks: pickled
            return None
    elif isinstance(value, np.ndarray):
        arr, kind = value, "numpy"
    else:
        return None
    return (arr, kind) if arr.dtype.kind in "biufc" else None


def _pickle_others(order: list[KeyPath], others: list[tuple[KeyPath, Any]]) -> bytes:
    """The key order and the non-array values, pickled by value (never as shared storage)."""
    try:
        return pickle.dumps((order, others), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        bad = "?"
        for path, value in others:
            try:
                pickle.dumps(value)
            except Exception:
                bad = "/".join(map(str, path))
                break
        raise TypeError(
            f"update(): the value under key {bad!r} cannot be sent to the agents "
            f"({type(exc).__name__}: {exc}). A state_dict holds arrays, tensors and picklable "
            "values; convert that one (e.g. drop it, or send its parameters instead)."
        ) from exc


def check_state_dict(state_dict: object) -> None:
    """TypeError unless ``state_dict`` is a mapping (what every batcher's update() takes)."""
    if not isinstance(state_dict, Mapping):
        raise TypeError(
            "update() takes a mapping (e.g. `model.state_dict()`), got "
            f"{type(state_dict).__name__}."
        )


def split(
    state_dict: Mapping[str, Any],
) -> tuple[WeightsLayout, dict[KeyPath, npt.NDArray[Any]], bytes]:
    """Split a state_dict into a layout, its arrays (numpy) and the other values (pickled).

    Nested mappings (``{"actor": actor.state_dict(), "critic": ...}``) are walked: their
    arrays travel in the buffer too. The other values (and tensors numpy cannot hold) are
    pickled here, once, with the standard pickler: a tensor among them reaches the agents
    as a copy, never as storage shared with the caller.
    """
    check_state_dict(state_dict)
    arrays: dict[KeyPath, npt.NDArray[Any]] = {}
    others: list[tuple[KeyPath, Any]] = []
    order: list[KeyPath] = []
    entries = []
    offset = 0
    for path, value in _leaves(state_dict, (), ()):
        order.append(path)
        if getattr(value, "is_meta", False) is True:  # a torch tensor without data
            raise ValueError(
                f"update(): the tensor under key {'/'.join(map(str, path))!r} is on the meta "
                "device: it has a shape but no values to send. Send the state_dict of a model "
                "whose parameters were materialised (e.g. after `model.to_empty(device=...)` "
                "and loading weights, or `load_state_dict(..., assign=True)`)."
            )
        found = _array(value)
        if found is None:
            others.append((path, value))
            continue
        arr, kind = found
        arrays[path] = np.ascontiguousarray(arr)
        entries.append((path, tuple(arr.shape), arr.dtype.str, offset, kind))
        offset += -(-arr.nbytes // ALIGN) * ALIGN
    layout = WeightsLayout(tuple(entries), max(offset, ALIGN))
    return layout, arrays, _pickle_others(order, others)


def restore(layout: WeightsLayout, buffer: Any, others: bytes) -> dict[Any, Any]:
    """The state_dict rebuilt from ``buffer`` plus the pickled values, nesting and order kept."""
    values: dict[KeyPath, Any] = layout.read(buffer)
    order, rest = pickle.loads(others)
    values.update(rest)
    out: dict[Any, Any] = {}
    for path in order:
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = values[path]
    return out
