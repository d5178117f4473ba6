"""Validation of what `Logger` is given: tags, steps, values and hyperparameters."""

from __future__ import annotations

import json
import math
import operator
import os
from pathlib import Path
from typing import Final

import numpy as np

from rlstructures.logging._scalars import HParamValue
from rlstructures.logging.errors import HParamsError, InvalidScalarError

__all__ = ["check_step", "check_tag", "check_value", "hparam", "write_hparams_json"]

_INT64: Final = (-(2**63), 2**63 - 1)


def check_tag(tag: object) -> str:
    """``tag`` if it is a non-empty str without line break, else InvalidScalarError."""
    if type(tag) is not str:
        raise InvalidScalarError(
            f"tag must be a str such as 'charts/episodic_return', got {tag!r} "
            f"({type(tag).__name__})."
        )
    if not tag or "\n" in tag or "\r" in tag:
        raise InvalidScalarError(
            f"tag {tag!r} must be non-empty and hold no line break; use '/' to group tags, "
            "e.g. 'losses/value_loss'."
        )
    return tag


def check_step(step: object, tag: str) -> int:
    """``step`` as an int64-range Python int (bools refused)."""
    if isinstance(step, bool | np.bool_):
        raise InvalidScalarError(f"step for tag {tag!r} must be an int, got the bool {step!r}.")
    try:
        value = operator.index(step)  # type: ignore[arg-type]  # any __index__ object
    except TypeError:
        raise InvalidScalarError(
            f"step for tag {tag!r} must be an int (the global env step), got {step!r} "
            f"({type(step).__name__}). Pass e.g. `int(global_step)`."
        ) from None
    if not _INT64[0] <= value <= _INT64[1]:
        raise InvalidScalarError(f"step {value} for tag {tag!r} does not fit in int64.")
    return value


def check_value(value: object, tag: str) -> float:
    """``value`` as a Python float (numbers, numpy and torch scalars; not str)."""
    if isinstance(value, str | bytes):
        raise InvalidScalarError(
            f"value for tag {tag!r} must be a real number, got the string {value!r}."
        )
    detach = getattr(value, "detach", None)  # a torch tensor: no requires_grad warning
    if callable(detach):
        value = detach()
    try:
        return float(value)  # type: ignore[arg-type]  # numbers, numpy/torch scalars, 0-d
    except (TypeError, ValueError):
        shape = getattr(value, "shape", None)
        hint = f" of shape {tuple(shape)}" if shape is not None else ""
        raise InvalidScalarError(
            f"value for tag {tag!r} must be a real number (int, float, numpy scalar, 0-d "
            f"array or one-element tensor), got {type(value).__name__}{hint}. Reduce it "
            "first, e.g. `x.mean().item()`."
        ) from None


def hparam(key: str, value: object) -> HParamValue:
    """``value`` normalised to JSON: bool, int, float, str, None or a list of those."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple) and all(
        v is None or isinstance(v, bool | int | float | str) for v in value
    ):
        return list(value)
    raise HParamsError(
        f"hyperparameter {key!r} is a {type(value).__name__} ({value!r}); supported: bool, "
        "int, float, str, None and lists of those. Convert it first, e.g. `str(value)`."
    )


def write_hparams_json(path: Path, hparams: dict[str, HParamValue]) -> None:
    """Write ``hparams.json`` atomically; HParamsError if it holds other values."""
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = None
        if old != hparams and not (old is not None and _same_with_nan(old, hparams)):
            raise HParamsError(
                f"{path} already holds other hyperparameters ({old!r}) than the ones given "
                f"({hparams!r}). A log directory is one run: use a new logdir for a new "
                "configuration, or delete that file."
            )
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(hparams, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)  # atomic: readers see the old file or the whole new one


def _same_with_nan(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_with_nan(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_with_nan(x, y) for x, y in zip(a, b, strict=True))
    return a == b
