"""rlstructures-train: argument errors (status 2, one line), help, progress output."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from rlstructures.algos._cli import field_docs, main
from rlstructures.algos._envs import check_actions, describe_env
from rlstructures.algos._progress import Progress
from rlstructures.algos._registry import ALGORITHMS
from rlstructures.algos.errors import UnsupportedSpaceError
from rlstructures.algos.ppo import PPOConfig


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "choose an algorithm"),
        (["dqn"], "unknown algorithm 'dqn'; choose one of a2c, ppo, ddqn, sac"),
        (["sac", "--env", "CartPole-v1"], "sac cannot handle the action space Discrete(2)"),
        (["ppo", "--env", "CartPol-v1"], "unknown env id 'CartPol-v1'"),
        (["ppo", "--total-steps", "0"], "total_steps (--total-steps) must be a positive int"),
        (["a2c", "--total-steps", "-5"], "must be a positive int, got -5"),
        (["ppo", "--seed", "abc"], "argument --seed: invalid int value: 'abc'"),
        (["ppo", "--bogus", "1"], "unrecognized arguments: --bogus 1"),
        (["ppo", "--gamma", "2"], "gamma (--gamma) must be in [0.0, 1.0], got 2.0"),
        (["ppo", "--activation", "gelu"], "invalid choice: 'gelu'"),
        (["a2c", "--resume", "/nonexistent/run"], "no checkpoint there"),
        (["ppo", "--n-envs", "3", "--n-processes", "2"], "not a multiple of --n-processes"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("rlstructures-train")
    assert message in err


def test_a_continuous_env_is_refused_by_discrete_only_algorithms() -> None:
    pendulum = describe_env("Pendulum-v1")
    with pytest.raises(UnsupportedSpaceError) as info:
        check_actions(pendulum, "ddqn")
    assert str(info.value) == (
        "ddqn cannot handle the action space Box(1,) (continuous) of Pendulum-v1; algorithms "
        "that can: a2c, ppo, sac."
    )
    with pytest.raises(UnsupportedSpaceError, match=r"Discrete.2.*a2c, ppo, ddqn"):
        check_actions(describe_env("CartPole-v1"), "sac")


def test_a_real_process_exits_2_without_a_traceback() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "rlstructures.algos", "ppo", "--total-steps", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "rlstructures-train: error: total_steps (--total-steps) must be a positive int, got 0."
    ]


def test_help_lists_the_algorithms(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for line in ("a2c ", "ppo ", "ddqn ", "sac "):
        assert f"  {line}" in out
    missing = sum(not a.available for a in ALGORITHMS.values())
    assert out.count("[not available yet in this version]") == missing
    assert ALGORITHMS["sac"].available
    assert ALGORITHMS["ddqn"].available


def test_algorithm_help_shows_docstrings_and_preset_values(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["ppo", "--env", "CartPole-v1", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--gae-lambda X GAE lambda (1: Monte-Carlo advantages, 0: one-step TD). [*0.8]" in out
    assert "--env ENV_ID, --env-id ENV_ID Gymnasium id of the environment. [CartPole-v1]" in out
    assert "--anneal-lr, --no-anneal-lr" in out
    assert "* from the ppo preset for CartPole-v1" in out
    assert main(["ppo", "--env", "Acrobot-v1", "--help"]) == 0
    assert "[0.95]" in capsys.readouterr().out  # no preset: the dataclass default


def test_field_docs_come_from_the_attribute_docstrings() -> None:
    docs = field_docs(PPOConfig)
    assert docs["clip_range"] == "Clipping of the probability ratio to [1 - clip, 1 + clip]."
    assert docs["seed"].startswith("Seed of the networks")  # inherited from TrainConfig


def test_progress_off_a_terminal_is_a_line_every_interval() -> None:
    stream = io.StringIO()  # not a TTY
    progress = Progress(
        "auto", total=1000, initial=0, desc="ppo X seed 0", stream=stream, interval=0.0
    )
    assert progress.mode == "lines"
    for step in (100, 200, 300):
        progress.update(step, sps=1234.5, recent_return=21.25, eval_return=None, eval_step=None)
    progress.update(400, sps=1500.0, recent_return=30.0, eval_return=42.0, eval_step=300)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert len(lines) == 5  # one per update (interval 0) and a last one at close
    assert lines[0].startswith("ppo X seed 0: 100/1,000 steps (10%) | 1,234 steps/s |")
    assert "return 21.2" in lines[0]
    assert "eval 42.0 @ 300" in lines[3]
    quiet = io.StringIO()
    slow = Progress("lines", total=10, initial=0, desc="d", stream=quiet, interval=3600.0)
    for step in range(10):
        slow.update(step, sps=1.0, recent_return=None, eval_return=None, eval_step=None)
    slow.close()
    assert len(quiet.getvalue().splitlines()) == 1  # only the closing line


def test_a_piped_run_prints_lines_and_the_summary(tmp_path: Path) -> None:
    logdir = tmp_path / "cli-run"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rlstructures.algos",
            "a2c",
            "--total-steps",
            "300",
            "--n-envs",
            "2",
            "--eval-episodes",
            "2",
            "--logdir",
            str(logdir),
            "--no-plot",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stdout
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("a2c CartPole-v1 seed 0: ")  # the closing progress line
    assert any(line.startswith("a2c CartPole-v1: ") and "steps in" in line for line in lines)
    assert any(line.startswith("last evaluation: mean return") for line in lines)
    assert f"logs (CSV, Arrow, tensorboard): {logdir}" in lines
    assert f"checkpoint: {logdir / 'checkpoints' / 'last.pt'}" in lines


def test_ctrl_c_saves_a_checkpoint_and_says_how_to_resume(tmp_path: Path) -> None:
    import os
    import signal
    import time

    logdir = tmp_path / "interrupted"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rlstructures.algos",
            "a2c",
            "--total-steps",
            "100000000",
            "--n-envs",
            "2",
            "--logdir",
            str(logdir),
            "--progress",
            "none",
            "--no-plot",
            "--checkpoint-every",
            "1000",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        checkpoint = logdir / "checkpoints" / "last.pt"
        while not checkpoint.exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # training is under way once the first checkpoint is written
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert (logdir / "checkpoints" / "last.pt").is_file()
    lines = err.strip().splitlines()
    assert lines == [
        f"rlstructures-train: interrupted; checkpoint in {logdir / 'checkpoints'}, continue "
        f"with `rlstructures-train a2c --resume {logdir}`"
    ]
