"""Every error message: the error class, the key or argument, the values, and the fix."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from rlstructures.dicttensor import (
    BackendError,
    BatchIndexError,
    BatchShapeError,
    DictTensor,
    DictTensorError,
    KeyMismatchError,
    MissingDependencyError,
    Spec,
    SpecMismatchError,
    TemporalDictTensor,
    Trajectories,
)


def bad(value: object) -> Any:
    """A value of the wrong type, passed on purpose (hides it from mypy)."""
    return value


def dt3() -> DictTensor:
    return DictTensor({"a": np.zeros((3, 2), np.float32), "b": np.arange(3)})


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (BatchShapeError, ValueError),
        (BatchIndexError, IndexError),
        (KeyMismatchError, ValueError),
        (SpecMismatchError, ValueError),
        (BackendError, TypeError),
        (MissingDependencyError, ImportError),
    ],
)
def test_every_error_is_a_dict_tensor_error_and_a_builtin(error: type, builtin: type) -> None:
    assert issubclass(error, DictTensorError)
    assert issubclass(error, builtin)


# ---------------------------------------------------------------------- construction
@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: DictTensor(bad(5)), TypeError, "takes a mapping from str keys to arrays, got int"),
        (lambda: DictTensor(bad({1: np.zeros(2)})), TypeError, r"keys must be str, got 1 \(int\)"),
        (lambda: DictTensor({"a": [1, 2]}), BackendError,
         r"key 'a' holds a list.*`np.asarray\(value\)`"),
        (lambda: DictTensor({"a": np.zeros(2), "b": 3.0}), BackendError, "key 'b' holds a float"),
        (lambda: DictTensor({"x": np.float32(1)}), BackendError, "key 'x' holds a float32"),
        (lambda: DictTensor({"x": np.array(1.0)}), BatchShapeError,
         r"key 'x' is 0-dimensional.*`batch_shape=\(\)`"),
        (lambda: DictTensor({"a": np.zeros(3), "b": np.zeros(4)}), BatchShapeError,
         r"key 'b' has shape \(4,\), which does not start with the batch shape \(3,\)"),
        (lambda: DictTensor({"a": np.zeros((3, 2))}, batch_shape=(3, 4)), BatchShapeError,
         r"key 'a' has shape \(3, 2\).*batch shape \(3, 4\)"),
        (lambda: DictTensor({}, batch_shape=-1), BatchShapeError,
         r"batch_shape must hold non-negative sizes, got \(-1,\)"),
        (lambda: DictTensor({}, batch_shape=bad("3")), TypeError,
         "batch_shape must be an int or a tuple of ints, got '3'"),
        (lambda: DictTensor({}, batch_shape=bad((2.5,))), TypeError,
         r"batch_shape entry must be an int, got 2.5 \(float\)"),
        (lambda: DictTensor({}, batch_shape=True), TypeError, "must be an int, got True"),
        (lambda: Spec((-1,), "float32"), ValueError, "non-negative sizes"),
        (lambda: Spec(bad("4"), "float32"), TypeError, "Spec shape must be a tuple of ints"),
        (lambda: Spec(bad(None), "float32"), TypeError, "Spec shape must be a tuple of ints"),
    ],
)
def test_construction_errors(make: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        make()


# ---------------------------------------------------------------------- indexing
def test_missing_key_lists_the_keys() -> None:
    with pytest.raises(KeyError, match=re.escape("no key 'c' in this DictTensor; its keys are "
                                                 "['a', 'b']")):
        dt3()["c"]
    with pytest.raises(KeyError, match="no key 'c'"):
        dt3().select(["a", "c"])
    with pytest.raises(KeyError, match="no key 'c'"):
        dt3().exclude("c")


@pytest.mark.parametrize(
    ("index", "message"),
    [
        (3, "cannot select rows 3 of a DictTensor with batch_shape \\(3,\\): index 3 is out of "
            "bounds"),
        (-4, "index -4 is out of bounds"),
        (True, "unsupported DictTensor row index True \\(bool\\)"),
        (None, "unsupported DictTensor row index None"),
        (Ellipsis, "unsupported DictTensor row index Ellipsis"),
        (1.5, "cannot select rows 1.5"),
        ((0, 1), "index \\(0, 1\\) has 2 entries but this DictTensor has only 1 batch "
                 "dimension\\(s\\) \\(3,\\); to index inside a leaf use `dt\\[key\\]\\[...\\]`"),
        (np.ones((3, 2), bool), "covers 2 dimensions but the batch shape is \\(3,\\)"),
        (np.ones(2, bool), r"a bool mask of shape \(2,\) does not fit the batch shape \(3,\)"),
        ((np.ones(2, bool),), "boolean index did not match"),
        (np.array(True), "a 0-d bool index selects nothing"),
        (np.array([0.5]), "cannot select rows ndarray of float64 \\(1,\\)"),
        (["a", "b"], r"got an array of <U1; to keep some keys use `dt.select\(\[...\]\)`"),
    ],
)
def test_bad_row_indices(index: Any, message: str) -> None:
    with pytest.raises(BatchIndexError, match=message):
        dt3()[index]


def test_a_single_row_cannot_be_indexed_further() -> None:
    with pytest.raises(BatchIndexError, match=r"batch_shape \(\) \(a single row"):
        dt3()[0][0]


# ---------------------------------------------------------------------- setitem
def test_setting_a_leaf_checks_its_batch_shape_and_type() -> None:
    dt = dt3()
    with pytest.raises(BatchShapeError, match=r"key 'c' has shape \(4,\).*batch shape \(3,\)"):
        dt["c"] = np.zeros(4)
    with pytest.raises(BackendError, match="key 'c' holds a list"):
        dt["c"] = [1, 2, 3]
    with pytest.raises(TypeError, match=r'needs a DictTensor value.*use a str key: `dt\["key"\]'):
        dt[bad(b"c")] = np.zeros(3)
    assert list(dt.keys()) == ["a", "b"]


def test_writing_rows_checks_keys_specs_shapes_and_writability() -> None:
    dt = dt3()
    with pytest.raises(TypeError, match="needs a DictTensor value, got ndarray"):
        dt[0] = bad(np.zeros(2))
    with pytest.raises(KeyMismatchError, match=r"missing from the other: \['b'\]"):
        dt[0:1] = dt[0:1].select("a")
    with pytest.raises(SpecMismatchError,
                       match=r"key 'b' is int64\[\] here and float64\[\] in other"):
        dt[0:1] = DictTensor({"a": np.zeros((1, 2), np.float32), "b": np.zeros(1)})
    with pytest.raises(SpecMismatchError, match=r"key 'a' is float32\[2\] here and "
                                                r"float32\[3\] in other"):
        dt[0:1] = DictTensor({"a": np.zeros((1, 3), np.float32), "b": np.zeros(1, np.int64)})
    with pytest.raises(BatchShapeError, match=r"cannot write key 'a': rows slice\(0, 2, None\)"):
        dt[0:2] = dt[0:3]
    read_only = DictTensor.from_arrow(dt.to_arrow())
    with pytest.raises(ValueError, match=r"key 'a' is read-only.*`.clone\(\)`"):
        read_only[0:1] = dt[0:1]


# ---------------------------------------------------------------------- cat, stack
@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: DictTensor.cat([]), ValueError, "needs at least one DictTensor"),
        (lambda: DictTensor.cat(dt3()), TypeError, r"write `DictTensor.cat\(\[a, b\]\)`"),
        (lambda: DictTensor.cat([dt3(), bad(1)]), TypeError, "item 1 is a int, not a DictTensor"),
        (lambda: DictTensor.cat([dt3(), dt3().select("a")]), KeyMismatchError,
         r"part 0 vs part 1.*missing from the other: \['b'\]"),
        (lambda: DictTensor.cat([dt3(), DictTensor({"a": np.zeros((1, 2)), "b": np.zeros(1)})]),
         SpecMismatchError,
         r"key 'a' has different row specs.*\['float32\[2\]', 'float64\[2\]'\]"),
        (lambda: DictTensor.cat([dt3(), DictTensor({"a": np.zeros((1, 3), np.float32),
                                                    "b": np.zeros(1, np.int64)})]),
         SpecMismatchError, r"\['float32\[2\]', 'float32\[3\]'\]"),
        (lambda: DictTensor.cat([DictTensor({"x": np.zeros((2, 3))}, batch_shape=(2, 3)),
                                 DictTensor({"x": np.zeros((2, 4))}, batch_shape=(2, 4))]),
         BatchShapeError,
         r"part 1 has batch_shape \(2, 4\), part 0 has \(2, 3\); they may differ only on dim 0"),
        (lambda: DictTensor.cat([dt3(), DictTensor({"a": np.zeros((1, 1, 2), np.float32),
                                                    "b": np.zeros((1, 1), np.int64)},
                                                   batch_shape=(1, 1))]),
         BatchShapeError, r"part 1 has batch_shape \(1, 1\), part 0 has \(3,\)"),
        (lambda: DictTensor.cat([dt3()], dim=1), BatchShapeError,
         r"dim=1 is out of range for 1 batch dimension\(s\); use a dim in \[-1, 0\]"),
        (lambda: DictTensor.cat([dt3()], dim=bad(0.0)), TypeError, "dim must be an int"),
        (lambda: DictTensor.cat([dt3()[0]]), BatchShapeError, r"use `DictTensor.stack\(parts\)`"),
        (lambda: DictTensor.stack([dt3(), dt3()[:2]]), BatchShapeError,
         r"part 1 has batch_shape \(2,\), part 0 has \(3,\); all parts must have the same"),
        (lambda: DictTensor.stack([dt3()], dim=3), BatchShapeError, "dim=3 is out of range"),
        (lambda: DictTensor.stack([dt3(), dt3().torch()]), BackendError,
         "part 1 is torch, part 0 is numpy"),
    ],
)
def test_cat_and_stack_errors(make: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        make()


# ---------------------------------------------------------------------- other operations
@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: dt3().where(np.ones(3, bool), bad({"a": 1})), TypeError,
         "other must be a DictTensor, got dict"),
        (lambda: dt3().where(np.ones(2, bool), dt3()), BatchShapeError,
         r"mask must have the batch shape \(3,\), got shape \(2,\)"),
        (lambda: dt3().where(np.ones(3), dt3()), TypeError,
         r"mask must be a bool array of shape \(3,\), got dtype float64; compare first"),
        (lambda: dt3().where(np.ones(3, bool), dt3()[:2]), BatchShapeError,
         r"other has batch_shape \(2,\), expected \(3,\)"),
        (lambda: dt3().where(np.ones(3, bool), DictTensor({"a": np.zeros((3, 2)),
                                                           "b": np.arange(3)})),
         SpecMismatchError, r"key 'a' is float32\[2\] in self and float64\[2\] in other"),
        (lambda: dt3().where(np.ones(3, bool), dt3().select("a")), KeyMismatchError,
         r"where: the DictTensors hold different keys"),
        (lambda: DictTensor.zeros(bad({"x": ((2,), "float32")}), 3), TypeError,
         r"specs\['x'\] is a tuple, not a Spec; write `Spec\(shape, dtype\)`"),
        (lambda: DictTensor.zeros({}, 3, bad("jax")), ValueError,
         "backend must be 'numpy' or 'torch', got 'jax'"),
        (lambda: DictTensor.zeros({}, 3, device="cuda"), ValueError,
         "device='cuda' needs backend='torch'"),
        (lambda: dt3() | dt3().select("b"), KeyMismatchError,
         r"keys \['b'\] are in both DictTensors.*`a \| b.prefix\('b/'\)`"),
        (lambda: dt3() | DictTensor({"c": np.zeros(2)}), BatchShapeError,
         r"cannot merge batch_shape \(3,\) with \(2,\)"),
        (lambda: dt3().prefix(bad(1)), TypeError, "prefix must be a str, got 1"),
        (lambda: len(dt3()[0]), TypeError, r"len\(\) of a DictTensor with batch_shape \(\)"),
    ],
)
def test_operation_errors(make: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        make()


# ---------------------------------------------------------------------- TemporalDictTensor
def tdt23() -> TemporalDictTensor:
    return TemporalDictTensor({"x": np.zeros((2, 3))}, [3, 1])


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: TemporalDictTensor(bad(5)), TypeError,
         "takes a mapping of \\[B, T, ...\\] arrays or a DictTensor"),
        (lambda: TemporalDictTensor({"x": np.zeros(3)}), BatchShapeError,
         r"key 'x' has shape \(3,\), but TemporalDictTensor leaves need two leading dims"),
        (lambda: TemporalDictTensor({"x": [[1]]}), BackendError, "key 'x' holds a list"),
        (lambda: TemporalDictTensor({"x": np.zeros((2, 3))}, [1.0, 2.0]), TypeError,
         "lengths must hold integers, got dtype float64"),
        (lambda: TemporalDictTensor({"x": np.zeros((2, 3))}, [1, 2, 3]), BatchShapeError,
         r"lengths has shape \(3,\), expected \(2,\): one length per sequence \(B=2\)"),
        (lambda: TemporalDictTensor({"x": np.zeros((2, 3))}, [1, 5]), BatchShapeError,
         r"lengths\[1\] = 5 is outside \[0, T=3\]"),
        (lambda: TemporalDictTensor({"x": np.zeros((2, 3))}, [-1, 2]), BatchShapeError,
         r"lengths\[0\] = -1 is outside \[0, T=3\]"),
        (lambda: TemporalDictTensor({"x": np.zeros((2, 3))}, "12"), TypeError,
         "lengths must be a \\[B\\] integer array, got a str"),
        (lambda: TemporalDictTensor({"x": np.zeros((2, 3))}, [True, False]), TypeError,
         "lengths must hold integers, got dtype bool"),
        (lambda: tdt23().temporal_index(3), BatchIndexError,
         r"step 3 is out of range for T=3: use 0 <= t < T"),
        (lambda: tdt23().temporal_index(-1), BatchIndexError, "step -1 is out of range"),
        (lambda: tdt23().masked_temporal_index(bad(1.5)), TypeError, "step t must be an int"),
        (lambda: tdt23().temporal_slice(-1, 2), BatchIndexError,
         "needs 0 <= start <= stop, got start=-1, stop=2"),
        (lambda: tdt23().temporal_slice(2, 1), BatchIndexError, "got start=2, stop=1"),
        (lambda: tdt23()[bad((0, 1))], BatchIndexError,
         r"one index over the sequences; for time use `temporal_index\(t\)`"),
        (lambda: tdt23()[2], BatchIndexError, "sequence index 2 is out of range for B=2"),
        (lambda: tdt23()[np.zeros((1, 1), np.intp)], BatchIndexError,
         r"selects sequences with shape \(1, 1\); use a 1-D int array"),
        (lambda: TemporalDictTensor.cat([]), ValueError, "needs at least one part"),
        (lambda: TemporalDictTensor.cat([tdt23(), bad(tdt23().dict_tensor)]), TypeError,
         "item 1 is a DictTensor, not a TemporalDictTensor"),
        (lambda: TemporalDictTensor.cat(bad(tdt23())), TypeError,
         r"write `TemporalDictTensor.cat\(\[a, b\]\)`"),
        (lambda: TemporalDictTensor.cat([tdt23(), TemporalDictTensor({"y": np.zeros((1, 1))})]),
         KeyMismatchError, "different keys"),
    ],
)
def test_temporal_errors(make: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        make()


def test_temporal_item_assignment_takes_str_keys() -> None:
    tdt = tdt23()
    with pytest.raises(TypeError, match="item assignment takes a str key, got 0"):
        tdt[bad(0)] = np.zeros(3)


# ---------------------------------------------------------------------- Trajectories
def test_trajectories_errors() -> None:
    steps = tdt23()
    with pytest.raises(TypeError, match="takes a DictTensor and a TemporalDictTensor, got "
                                        "DictTensor and DictTensor"):
        Trajectories(DictTensor({}, batch_shape=2), bad(steps.dict_tensor))
    with pytest.raises(BatchShapeError, match=r"info has batch_shape \(3,\) but there are 2 "
                                              r"sequences.*\(2,\)"):
        Trajectories(DictTensor({"i": np.zeros(3)}), steps)
    with pytest.raises(BackendError, match="info is numpy but trajectories is torch"):
        Trajectories(DictTensor({"i": np.zeros(2)}), steps.torch())
    traj = Trajectories(DictTensor({"i": np.zeros(2)}), steps)
    with pytest.raises(BatchIndexError, match="sequence index -3 is out of range for B=2"):
        traj[-3]
    with pytest.raises(ValueError, match="needs at least one part"):
        Trajectories.cat([])
    with pytest.raises(TypeError, match="item 0 is a TemporalDictTensor, not Trajectories"):
        Trajectories.cat([bad(steps)])
