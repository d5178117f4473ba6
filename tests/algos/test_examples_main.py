"""Every example's command line, on a small budget: it prints its final return and keys."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

# (example, flags for a few iterations, a line its output must hold); 500 steps: one batch
CASES = [
    ("tabular_q", ["--iterations", "3"], "greedy episodes in the last batch:"),
    ("recurrent_ppo", ["--steps", "2048"], "final evaluation (16 greedy episodes):"),
    ("recurrent_ppo", ["--steps", "500", "--no-memory"], "final evaluation (16 greedy"),
    ("transformer", ["--steps", "2048", "--k", "4"], "final evaluation (16 greedy episodes):"),
    ("multitask", ["--iterations", "2"], "target 9  eval: mean return"),
    ("hierarchical", ["--steps", "2048"], "final evaluation (16 episodes, greedy worker):"),
]


@pytest.mark.parametrize(("name", "flags", "expected"), CASES)
def test_main_prints_the_final_return_and_the_stored_keys(
    name: str, flags: list[str], expected: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    module = importlib.import_module(f"rlstructures.algos.examples.{name}")
    assert module.main([*flags, "--logdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    stored = next(line for line in out.splitlines() if line.startswith("stored keys: ["))
    assert {"'_observation/reward'", "'action/action'", "'observation/frame'"} <= set(
        stored.removeprefix("stored keys: [").removesuffix("]").split(", "))
    if name == "recurrent_ppo":  # the state stored at every step
        assert "'agent_state/h'" in stored
    assert expected in out
