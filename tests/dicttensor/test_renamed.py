"""RLStructures 0.2 names on the data structures fail with an error naming the new one."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pytest

from rlstructures.dicttensor import (
    DictTensor,
    RemovedImportError,
    RemovedNameError,
    TemporalDictTensor,
    Trajectories,
)


def objects() -> dict[str, Any]:
    dt = DictTensor({"a/x": np.zeros(2)})
    tdt = TemporalDictTensor({"x": np.zeros((2, 3))})
    return {"DictTensor": dt, "TemporalDictTensor": tdt, "Trajectories": Trajectories(dt, tdt)}


@pytest.mark.parametrize(
    ("kind", "name", "replacement"),
    [
        ("DictTensor", "truncate_key", "select_prefix(prefix)"),
        ("DictTensor", "prepend_key", "prefix(prefix)"),
        ("DictTensor", "set", "dt[key] = value"),
        ("DictTensor", "get", "dt.select(keys)"),
        ("DictTensor", "empty", "not dt.keys()"),
        ("DictTensor", "unfold", "list(dt)"),
        ("DictTensor", "slice", "dt[a:b]"),
        ("DictTensor", "index", "dt[i : i + 1]"),
        ("DictTensor", "device", "dt.to(device)"),
        ("DictTensor", "copy_", "dst[dst_rows] = source[src_rows]"),
        ("DictTensor", "variables", "dt.to_dict()"),
        ("TemporalDictTensor", "n_elems", "len(tdt)"),
        ("TemporalDictTensor", "set", "tdt[key] = value"),
        ("TemporalDictTensor", "get", "tdt.select(keys)"),
        ("TemporalDictTensor", "unfold", "tdt[i : i + 1]"),
        ("TemporalDictTensor", "temporal_multi_index", "tdt.dict_tensor[np.arange"),
        ("TemporalDictTensor", "full", "tdt.lengths == tdt.max_length"),
        ("TemporalDictTensor", "expand", "TemporalDictTensor.cat"),
        ("Trajectories", "n_elems", "len(trajectories)"),
        ("Trajectories", "device", "dt.to(device)"),
    ],
)
def test_a_02_method_names_its_replacement(kind: str, name: str, replacement: str) -> None:
    obj = objects()[kind]
    with pytest.raises(RemovedNameError) as info:
        getattr(obj, name)
    message = str(info.value)
    assert message.startswith(f"{kind}.{name} is a name of RLStructures 0.2; ")
    assert replacement in message
    assert isinstance(info.value, AttributeError)
    assert info.value.name == name
    assert info.value.obj is obj
    assert not hasattr(obj, name)


def test_other_missing_names_are_plain_attribute_errors_with_suggestions() -> None:
    dt = objects()["DictTensor"]
    message = "'DictTensor' object has no attribute 'selct'"
    with pytest.raises(AttributeError, match=message) as info:
        dt.selct  # noqa: B018  # the point of the test
    assert type(info.value) is AttributeError
    assert (info.value.name, info.value.obj) == ("selct", dt)  # "Did you mean: 'select'?"


def test_plus_is_a_type_error_naming_the_pipe() -> None:
    a, b = DictTensor({"x": np.zeros(2)}), DictTensor({"y": np.zeros(2)})
    with pytest.raises(TypeError, match=r"use `a \| b`"):
        a + b  # type: ignore[operator]  # the point of the test


@pytest.mark.parametrize(
    ("name", "replacement"),
    [
        ("masked_dicttensor", "d1.where(mask, d0)"),
        ("masked_tensor", "np.where(mask[:, None], t1, t0)"),
    ],
)
def test_a_02_module_name_names_its_replacement(name: str, replacement: str) -> None:
    module = importlib.import_module("rlstructures.dicttensor")
    with pytest.raises(RemovedImportError, match=r"is a name of RLStructures 0\.2") as info:
        exec(f"from rlstructures.dicttensor import {name}", {})
    assert replacement in str(info.value)
    with pytest.raises(ImportError):
        getattr(module, name)
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        module.nothing  # noqa: B018  # the point of the test


def test_masked_dicttensor_replacement_keeps_the_argument_order() -> None:
    """0.2: masked_dicttensor(d0, d1, m) took d1 where m. Ours: d1.where(m, d0)."""
    d0, d1 = DictTensor({"x": np.zeros(3)}), DictTensor({"x": np.ones(3)})
    mask = np.array([True, False, True])
    np.testing.assert_array_equal(d1.where(mask, d0)["x"], [1.0, 0.0, 1.0])
