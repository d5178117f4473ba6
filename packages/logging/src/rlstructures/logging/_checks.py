"""Validation of what `Logger` is given: tags, steps, values and hyperparameters."""

from __future__ import annotations

import json
import math
import operator
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np

from rlstructures.logging._scalars import HParamValue
from rlstructures.logging.errors import HParamsError, InvalidScalarError

__all__ = [
    "MAX_TAG_BYTES",
    "check_step",
    "check_tag",
    "check_value",
    "flatten_hparams",
    "write_hparams_json",
]

_INT64: Final = (-(2**63), 2**63 - 1)
_FLOAT_INT: Final = 2**1023  # ints within this convert to float without OverflowError
#: The longest tag, in UTF-8 bytes (a CSV line must stay far below the reader's block size).
MAX_TAG_BYTES: Final = 4096


def check_tag(tag: object) -> str:
    """``tag`` as a plain str if it is a non-empty str of valid Unicode without line break.

    A str subclass (an ``enum.StrEnum`` member, ``numpy.str_``) gives its plain text.
    """
    if type(tag) is not str and isinstance(tag, str):
        tag = str.__str__(tag)  # its characters, whatever the subclass's __str__ says
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
    try:
        size = len(tag.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidScalarError(
            f"tag {tag!r} is not valid Unicode text: it holds the lone surrogate "
            f"{tag[exc.start]!r} at index {exc.start} (what decoding bytes with "
            "errors='surrogateescape' leaves, e.g. from a file name), which no log file can "
            "store. Clean it first, e.g. `tag.encode('utf-8', 'replace').decode()`."
        ) from None
    if size > MAX_TAG_BYTES:
        raise InvalidScalarError(
            f"tag {tag[:40]!r}... is {size} bytes long in UTF-8; tags are names, at most "
            f"{MAX_TAG_BYTES} bytes. Log long text elsewhere (e.g. in hparams or a file)."
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
    """``value`` as a Python float (numbers, numpy and torch scalars; not str, not complex)."""
    if type(value) is float:
        return value
    if type(value) is int and -_FLOAT_INT <= value <= _FLOAT_INT:
        return float(value)
    if isinstance(value, str | bytes):
        raise InvalidScalarError(
            f"value for tag {tag!r} must be a real number, got the string {value!r}."
        )
    try:
        detach = getattr(value, "detach", None)  # a torch tensor: no requires_grad warning
        if callable(detach):
            value = detach()
        dtype = getattr(value, "dtype", None)
        if isinstance(value, complex) or getattr(dtype, "is_complex", False) or (
                getattr(dtype, "kind", None) == "c"):
            # numpy's float() would drop the imaginary part with only a warning.
            raise InvalidScalarError(
                f"value for tag {tag!r} is the complex number {_short(value)}; log its parts "
                "as two tags, e.g. `f'{tag}/real'` and `f'{tag}/imag'`, or its `abs()`."
            )
        result = float(value)  # type: ignore[arg-type]  # numbers, numpy/torch scalars, 0-d
        if math.isinf(result) and not _is_infinite(value):
            raise OverflowError  # Decimal("1e400"), np.longdouble("1e400"): not an inf
        return result
    except InvalidScalarError:
        raise
    except OverflowError:
        raise InvalidScalarError(
            f"value for tag {tag!r} is {_short(value)}, too large for a float64 (the largest "
            "is about 1.8e308). Scale it, or log its logarithm, e.g. `math.log10(x)`."
        ) from None
    except Exception as exc:  # any failure of a user object's __float__
        shape = getattr(value, "shape", None)
        hint = f" of shape {tuple(shape)}" if isinstance(shape, tuple) else ""
        dtype = getattr(value, "dtype", None)
        hint += f" and dtype {dtype}" if dtype is not None else ""
        raise InvalidScalarError(
            f"value for tag {tag!r} must be a real number (int, float, numpy scalar, 0-d "
            f"array or one-element tensor), got {type(value).__name__}{hint} "
            f"({type(exc).__name__}: {exc}). Reduce it first, e.g. `x.mean().item()`."
        ) from exc


def _is_infinite(value: object) -> bool:
    """Whether ``value`` itself is infinite (not a finite number beyond float64's range)."""
    try:
        return bool(value == math.inf or value == -math.inf)
    except Exception:  # a user object's __eq__: take float()'s word for it
        return True


def _short(value: object) -> str:
    """``repr(value)``, cut to 60 characters (an int of 10**400 has 401 digits)."""
    try:
        text = repr(value)
    except Exception:  # Python refuses repr of ints over 4300 digits
        return f"an {type(value).__name__} too large to print"
    return text if len(text) <= 60 else text[:28] + "..." + text[-28:]


def _unicode(text: str, what: str) -> str:
    """``text`` if UTF-8 can encode it (no lone surrogate), else HParamsError."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise HParamsError(
            f"{what} {text!r} holds the lone surrogate {text[exc.start]!r} at index "
            f"{exc.start}, which neither JSON files nor TensorBoard can store. Clean it first, "
            "e.g. `text.encode('utf-8', 'replace').decode()`."
        ) from None
    return text


def _plain(value: object) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def _hparam_value(key: str, value: object) -> HParamValue:
    """``value`` normalised to JSON: bool, int, float, str, None or a list of those."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, list | tuple):
        value = [v.item() if isinstance(v, np.generic) else v for v in value]
    for number in value if isinstance(value, list) else [value]:
        if isinstance(number, int) and number.bit_length() > 13_000:  # 4000 digits
            raise HParamsError(
                f"hyperparameter {key!r} is an int of {number.bit_length()} bits, too large "
                "to record as text; log its logarithm, or a str of your own."
            )
    if _plain(value) or (isinstance(value, list) and all(_plain(v) for v in value)):
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str):
                _unicode(text, f"the value of hyperparameter {key!r}")
        return value  # type: ignore[return-value]  # checked just above
    hint = (
        " For a dataclass, pass `dataclasses.asdict(config)`."
        if hasattr(type(value), "__dataclass_fields__")
        else " Convert it first, e.g. `str(value)`."
    )
    raise HParamsError(
        f"hyperparameter {key!r} is a {type(value).__name__} ({_short(value)}); supported: "
        "bool, int, float, str, None, lists of those, and mappings of them (flattened with "
        f"'/').{hint}"
    )


def flatten_hparams(mapping: Mapping[Any, Any]) -> dict[str, HParamValue]:
    """``mapping`` with nested mappings flattened: ``{"opt": {"lr": 1}}`` -> ``{"opt/lr": 1}``.

    Raises:
        HParamsError: a non-str name, a name given twice (``"opt/lr"`` and ``{"opt": {"lr"}}``),
            a mapping that contains itself, or an unsupported value.
    """
    if not isinstance(mapping, Mapping):
        raise HParamsError(
            f"add_hparams takes a mapping {{name: value}}, got {type(mapping).__name__}. For a "
            "dataclass config, pass `dataclasses.asdict(config)`."
        )
    out: dict[str, HParamValue] = {}
    _flatten_into(out, mapping, "", [])
    return out


def _flatten_into(out: dict[str, HParamValue], mapping: Mapping[Any, Any], prefix: str,
                  parents: list[int]) -> None:
    if id(mapping) in parents:
        raise HParamsError(f"hyperparameter {prefix.rstrip('/')!r} contains itself.")
    parents.append(id(mapping))
    for key, value in mapping.items():
        if type(key) is not str and isinstance(key, str):  # StrEnum, numpy.str_: the text
            key = str.__str__(key)
        if type(key) is not str:
            raise HParamsError(
                f"hyperparameter names must be str, got {key!r} ({type(key).__name__})"
                + (f" under {prefix.rstrip('/')!r}." if prefix else ".")
            )
        name = prefix + _unicode(key, "the hyperparameter name")
        if isinstance(value, Mapping):
            _flatten_into(out, value, name + "/", parents)
            continue
        if name in out:
            raise HParamsError(
                f"hyperparameter {name!r} is given twice (once as a nested mapping, flattened "
                "with '/', once by its full name); keep one."
            )
        out[name] = _hparam_value(name, value)
    parents.pop()


def write_hparams_json(path: Path, hparams: dict[str, HParamValue]) -> None:
    """Write ``hparams.json`` atomically; HParamsError if it holds other values."""
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise HParamsError(
                f"{path} exists but cannot be read as the JSON that add_hparams writes "
                f"({type(exc).__name__}: {exc}). Move it away (or delete it) and log again."
            ) from exc
        if old != hparams and not _same_with_nan(old, hparams):
            raise HParamsError(
                f"{path} already holds other hyperparameters ({old!r}) than the ones given "
                f"({hparams!r}). A log directory is one run: use a new logdir for a new "
                "configuration, or delete that file."
            )
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(hparams, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)  # atomic: readers see the old file or the whole new one
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk leaves no partial file behind
        raise


def _same_with_nan(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_with_nan(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_with_nan(x, y) for x, y in zip(a, b, strict=True))
    return a == b
