"""Names of RLStructures 0.2's batchers fail with an error naming the replacement."""

from __future__ import annotations

import functools

import pytest

import rlstructures.batchers as batchers
from rlstructures.batchers import (
    BatcherError,
    LocalBatcher,
    RemovedImportError,
    RemovedNameError,
)
from rlstructures.batchers.testing import CountingAgent, CountingEnv


@pytest.mark.parametrize(
    ("name", "replacement"),
    [
        ("RL_Batcher", "MultiProcessBatcher"),
        ("EpisodeBatcher", "auto_reset=False"),
        ("MultiThreadEpisodeBatcher", "MultiProcessBatcher"),
        ("MonoThreadEpisodeBatcher", "LocalBatcher"),
        ("MultiThreadTrajectoryBatcher", "auto_reset=True"),
    ],
)
def test_importing_a_0_2_name_names_the_replacement(name: str, replacement: str) -> None:
    with pytest.raises(RemovedImportError, match=r"RLStructures 0\.2") as info:
        exec(f"from rlstructures.batchers import {name}", {})
    assert replacement in str(info.value)
    assert "make_env(seed)" in str(info.value)
    assert isinstance(info.value, ImportError)
    assert isinstance(info.value, BatcherError)


def test_other_missing_names_are_plain_attribute_errors() -> None:
    assert not hasattr(batchers, "NoSuchBatcher")
    with pytest.raises(ImportError, match="cannot import name"):
        exec("from rlstructures.batchers import NoSuchBatcher", {})


def test_a_0_2_method_on_a_batcher_names_the_replacement() -> None:
    env = functools.partial(CountingEnv, n_envs=2)
    with LocalBatcher(CountingAgent, env, n_timesteps=2, seeds=[0, 1]) as b:
        with pytest.raises(RemovedNameError, match=r"LocalBatcher.n_elems .*`batcher.n_envs`"):
            b.n_elems()  # type: ignore[attr-defined]  # on purpose
        assert not hasattr(b, "no_such_attribute")
        assert b.n_envs == 4
