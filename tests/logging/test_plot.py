"""rlstructures-plot: learning curves from log directories to a PNG."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rlstructures.logging import Logger
from rlstructures.logging._plot import Curve, aggregate, main, run_name

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def make_runs(root: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    runs = []
    for name, backends in (
        ("ppo_seed1", ("csv",)),
        ("ppo_seed2", ("arrow",)),
        ("ppo_seed3", ("csv", "arrow")),
        ("a2c_seed1", ("csv",)),
    ):
        with Logger(root / name, backends=backends) as logger:
            for step in range(0, 5000, 250):
                noisy = step / 50 + float(rng.normal())
                logger.add_scalar("charts/episodic_return", noisy, step)
                logger.add_scalar("losses/value_loss", float(rng.random()), step)
        runs.append(root / name)
    return runs


def assert_png(path: Path) -> None:
    import matplotlib.image

    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 100
    assert image.shape[1] > 100
    assert float(image[..., :3].std()) > 0.01  # not a blank canvas


def test_plot_renders_a_png_of_several_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = make_runs(tmp_path / "runs")
    out = tmp_path / "curve.png"
    assert main([*map(str, runs), "--tag", "charts/episodic_return", "-o", str(out)]) == 0
    assert_png(out)
    printed = capsys.readouterr().out
    assert "ppo (3 runs)" in printed
    assert "a2c (1 run)" in printed


def test_a_directory_of_runs_and_several_tags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_runs(tmp_path / "runs")
    out = tmp_path / "two.png"
    argv = [
        str(tmp_path / "runs"),
        "--tag",
        "charts/episodic_return",
        "--tag",
        "losses/value_loss",
        "--smooth",
        "3",
        "--no-group",
        "--title",
        "t",
        "-o",
        str(out),
    ]
    assert main(argv) == 0
    assert_png(out)
    printed = capsys.readouterr().out
    assert "ppo_seed2 (1 run)" in printed
    assert "losses/value_loss:" in printed


def test_errors_are_reported_with_exit_status_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = make_runs(tmp_path / "runs")
    assert main([str(runs[0]), "--tag", "nope", "-o", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert "no run holds the tag(s) ['nope']" in err
    assert "charts/episodic_return" in err
    assert not (tmp_path / "x.png").exists()
    assert main([str(tmp_path / "missing")]) == 1
    assert "is not a directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) == 1
    with pytest.raises(SystemExit):
        main([str(runs[0]), "--smooth", "0"])
    with pytest.raises(SystemExit):
        main([str(runs[0]), "--group", "("])


def test_missing_matplotlib_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = make_runs(tmp_path / "runs")
    for name in [m for m in sys.modules if m.split(".")[0] == "matplotlib"] + ["matplotlib"]:
        monkeypatch.setitem(sys.modules, name, None)
    assert main([str(runs[0]), "-o", str(tmp_path / "x.png")]) == 1
    assert "pip install 'rlstructures-logging[plot]'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ppo_seed1", "ppo"),
        ("ppo-seed-2", "ppo"),
        ("ppo_s3", "ppo"),
        ("ppo.seed10", "ppo"),
        ("CartPole-v1", "CartPole-v1"),
        ("run", "run"),
        ("42", "42"),
        # a trailing number that is not marked as a seed is a hyperparameter: never merged
        ("ppo-2", "ppo-2"),
        ("ppo_lr1e-3", "ppo_lr1e-3"),
        ("ppo_gamma0.99", "ppo_gamma0.99"),
        ("ppo_bs_64", "ppo_bs_64"),
        ("a2c_envs-16", "a2c_envs-16"),
        ("ppo_2026-11-24", "ppo_2026-11-24"),
    ],
)
def test_run_names_drop_a_trailing_seed(name: str, expected: str) -> None:
    assert run_name(Path(name)) == expected
    assert run_name(Path(name), None) == name


def test_aggregate_is_the_mean_and_std_over_the_common_range() -> None:
    a = Curve(np.array([0.0, 10.0, 20.0]), np.array([0.0, 10.0, 20.0]))
    b = Curve(np.array([0.0, 20.0, 30.0]), np.array([2.0, 22.0, 99.0]))
    steps, mean, low, high = aggregate([a, b])
    assert steps.tolist() == [0.0, 10.0, 20.0]  # 30 is reached by one run only
    assert mean.tolist() == [1.0, 11.0, 21.0]  # b interpolated at 10: 12
    assert (high - mean).tolist() == pytest.approx([1.0, 1.0, 1.0])
    assert (mean - low).tolist() == pytest.approx([1.0, 1.0, 1.0])


def test_the_command_is_installed_and_runs_as_a_module(tmp_path: Path) -> None:
    scripts = {e.name: e.value for e in importlib.metadata.entry_points(group="console_scripts")}
    assert scripts["rlstructures-plot"] == "rlstructures.logging._plot:main"
    runs = make_runs(tmp_path / "runs")
    out = tmp_path / "m.png"
    done = subprocess.run(
        [
            sys.executable,
            "-W",
            "error",
            "-m",
            "rlstructures.logging.plot",
            str(runs[0]),
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert_png(out)


def test_importing_the_package_loads_no_optional_dependency() -> None:
    code = (
        "import sys, rlstructures.logging, rlstructures.logging.plot\n"
        "bad = [m for m in ('torch', 'tensorboard', 'matplotlib') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
