"""RLStructures 0.2 names of the data structures, each with what to write instead.

A port of 0.2 code calls ``dt.truncate_key(...)``, ``d0 + d1`` or ``masked_dicttensor``:
the AttributeError (ImportError for a module name) it gets says what replaces it. The
classes hold one ``RemovedAttribute`` per 0.2 name (``RemovedAttribute.install``), which
costs nothing on normal attribute access; module names go through the module
``__getattr__``, which Python calls only for a name the module lacks.
The guide is ``docs/migrating-from-0.2.md`` at the root of the repository.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, NoReturn

from rlstructures.dicttensor.errors import RemovedImportError, RemovedNameError

__all__ = [
    "ADD_MESSAGE",
    "DICT_TENSOR",
    "TEMPORAL",
    "TRAJECTORIES",
    "RemovedAttribute",
    "missing_module_name",
]

_SPECS: Final = (
    "`specs()` now returns `{key: Spec(shape, dtype)}` (numpy dtypes), e.g. "
    "`dt.specs()['obs'].shape`."
)
_DEVICE: Final = (
    "leaves are numpy arrays or torch tensors (`dt.backend`); a torch leaf has its own "
    "`.device`, e.g. `next(iter(dt.values())).device`, and `dt.to(device)` moves them all."
)
_COPY: Final = (
    "write rows in place with an index: `dst[dst_rows] = source[src_rows]` (numpy indexing, "
    "both DictTensors with the same keys)."
)
_VARIABLES: Final = "the leaves are `dt.to_dict()` (a new dict), `dt.items()`, or `dt[key]`."

#: 0.2 methods and attributes of ``DictTensor``.
DICT_TENSOR: Final[Mapping[str, str]] = {
    "truncate_key": "use `dt.select_prefix(prefix)` (keeps the keys under prefix, stripped).",
    "prepend_key": "use `dt.prefix(prefix)`.",
    "set": "use item assignment: `dt[key] = value` (the batch shape is checked).",
    "get": "use `dt.select(keys)` (and `.clone()` for copies): `dt.get` was 0.2's subset.",
    "empty": "use `not dt.keys()` (a DictTensor without keys still has a batch shape).",
    "unfold": "iterate: `list(dt)` gives the rows (batch dimension removed), "
              "`[dt[i : i + 1] for i in range(len(dt))]` keeps a batch of one.",
    "slice": "use numpy indexing: `dt[a:b]` (a view), `dt[i]` for one row.",
    "index": "use numpy indexing: `dt[i]` removes the batch dimension, `dt[i : i + 1]` keeps it.",
    "device": _DEVICE,
    "copy_": _COPY,
    "variables": _VARIABLES,
    "size": "use `dt.batch_shape` (a tuple) or `len(dt)`.",
}

#: 0.2 methods and attributes of ``TemporalDictTensor``.
TEMPORAL: Final[Mapping[str, str]] = {
    "n_elems": "use `len(tdt)` (B, the number of sequences).",
    "set": "use item assignment: `tdt[key] = value` (a [B, T, ...] leaf).",
    "get": "use `tdt.select(keys)`.",
    "unfold": "use `[tdt[i : i + 1] for i in range(len(tdt))]` (`tdt[i]` is the DictTensor of "
              "the valid steps of sequence i).",
    "slice": "use `tdt[a:b]` (sequences a to b-1).",
    "index": "use `tdt[i]` (the DictTensor of the lengths[i] valid steps of sequence i) or "
             "`tdt[i : i + 1]` (a TemporalDictTensor of one sequence).",
    "temporal_multi_index": "use `tdt.dict_tensor[np.arange(len(tdt)), steps]` (one step per "
                            "sequence).",
    "full": "use `bool((tdt.lengths == tdt.max_length).all())`.",
    "expand": "pad with `TemporalDictTensor.cat([tdt, other])`, or build zeros with "
              "`DictTensor.zeros(tdt.specs(), (n, tdt.max_length))`.",
    "device": _DEVICE,
    "copy_": _COPY,
    "variables": _VARIABLES,
}

#: 0.2 methods of ``Trajectories``.
TRAJECTORIES: Final[Mapping[str, str]] = {
    "n_elems": "use `len(trajectories)` (B, the number of sequences).",
    "device": _DEVICE,
    "sample": "index it: `trajectories[np.random.default_rng().choice(len(trajectories), n)]`.",
}

#: 0.2 module-level names (``from rlstructures import masked_dicttensor``).
MODULE: Final[Mapping[str, str]] = {
    "masked_dicttensor": "`masked_dicttensor(d0, d1, mask)` is `d1.where(mask, d0)`: the rows "
                         "of d1 where mask is True, of d0 elsewhere (note the order).",
    "masked_tensor": "`masked_tensor(t0, t1, mask)` is `np.where(mask[:, None], t1, t0)` (or "
                     "`torch.where`), or `DictTensor.where` on whole DictTensors.",
    "Specs": "row specs are `Spec(shape, dtype)` values, from `dt.specs()`.",
}

ADD_MESSAGE: Final = (
    "`a + b` on DictTensors is RLStructures 0.2's merge; use `a | b` (the same batch shape, "
    "disjoint keys)."
)


class RemovedAttribute:
    """A class attribute standing for a name of RLStructures 0.2 that was renamed or removed.

    Public (``rlstructures.dicttensor.RemovedAttribute``) so that every rlstructures package
    marks its 0.2 names the same way.

    Reading it (``dt.truncate_key``) raises a ``RemovedNameError`` (an AttributeError, so
    ``hasattr`` is False) whose message says what to write instead. A class attribute, not
    a ``__getattr__``: a class with ``__getattr__`` pays for it on every attribute access
    (CPython then takes its slow lookup path), while these cost nothing until read.

    Args:
        advice: what replaces the name, e.g. ``"use `dt.select_prefix(prefix)`."``.

    Example:
        >>> class Box:
        ...     total = RemovedAttribute("use `sum(box)`.")
        >>> Box().total  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        rlstructures.dicttensor.errors.RemovedNameError: Box.total is a name of ... `sum(box)`.
    """

    __slots__ = ("_advice", "_message", "_name")

    def __init__(self, advice: str) -> None:
        self._advice = advice
        self._name = ""
        self._message = advice

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name
        self._message = f"{owner.__name__}.{name} is a name of RLStructures 0.2; {self._advice}"

    def __get__(self, obj: object, owner: type | None = None) -> NoReturn:
        raise RemovedNameError(self._message, name=self._name, obj=obj)

    @staticmethod
    def install(cls: type, names: Mapping[str, str]) -> None:
        """Add one ``RemovedAttribute`` attribute per ``{name: advice}`` to ``cls``."""
        for name, advice in names.items():
            if hasattr(cls, name):
                raise TypeError(f"{cls.__name__}.{name} exists: it cannot be a removed name.")
            removed = RemovedAttribute(advice)
            setattr(cls, name, removed)
            removed.__set_name__(cls, name)


def missing_module_name(module: str, name: str) -> AttributeError | ImportError:
    """The error of ``module.name`` or ``from module import name``.

    A 0.2 name is a RemovedImportError: an ImportError keeps its message through a
    ``from`` import (which turns an AttributeError into its own "cannot import name").
    """
    advice = MODULE.get(name)
    if advice is None:
        return AttributeError(f"module {module!r} has no attribute {name!r}", name=name)
    return RemovedImportError(
        f"{module}.{name} is a name of RLStructures 0.2; {advice}", name=name
    )
