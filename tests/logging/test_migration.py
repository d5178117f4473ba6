"""RLStructures 0.2 names a port hits: each fails with an error that names our replacement."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import rlstructures.logging as logging_package
from rlstructures.logging import Logger, RemovedImportError, RemovedNameError


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"log_dir": "runs/x"}, r"keyword 'log_dir' of RLStructures 0.2's TFLogger.*logdir="),
        ({"hps": {"lr": 0.1}}, r"logger.add_hparams\(hps\)"),
        ({"save_every": 10}, "no decimation option"),
    ],
)
def test_tflogger_keywords_are_a_type_error_naming_the_fix(
        tmp_path: Path, keywords: dict[str, Any], message: str) -> None:
    args = () if "log_dir" in keywords else (tmp_path,)
    with pytest.raises(TypeError, match=message):
        Logger(*args, **keywords)
    assert not list(tmp_path.iterdir())  # nothing created


def test_tflogger_import_names_logger() -> None:
    with pytest.raises(ImportError, match=r"TFLogger.*is `Logger\(logdir\)`.*add_hparams"):
        from rlstructures.logging import TFLogger  # type: ignore[attr-defined]  # tested  # noqa: F401
    with pytest.raises(RemovedImportError):
        logging_package.TFLogger  # type: ignore[attr-defined]  # noqa: B018  # the error tested


@pytest.mark.parametrize("name", ["info", "debug", "error", "basicConfig", "getLogger"])
def test_02_console_helpers_point_to_the_standard_logging_module(name: str) -> None:
    with pytest.raises(AttributeError, match=r"import logging; .*getLogger\(__name__\)"):
        getattr(logging_package, name)
    with pytest.raises(RemovedNameError):
        getattr(logging_package, name)


def test_unknown_module_names_stay_plain_attribute_errors() -> None:
    assert not hasattr(logging_package, "no_such_name")
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'") as info:
        logging_package.no_such_name  # type: ignore[attr-defined]  # noqa: B018  # tested
    assert type(info.value) is AttributeError


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("update_csv", r"`flush\(\)` writes every backend"),
        ("add_dict", r"`add_scalars\(mapping, step\)`; nested mappings are flattened"),
        ("get_scalar", r"`logger.last\(tag\)`.*`read_logs\(logger.logdir\)`"),
        ("get_scalars", r"`read_logs\(logger.logdir\)`"),
        ("get_last", r"`logger.last\(tag\)`"),
        ("add_images", r"SummaryWriter\(logger.logdir\).add_images"),
        ("add_text", r"SummaryWriter\(logger.logdir\).add_text"),
        ("add_histogram", "scalars only"),
        ("log_dir", r"`logger.logdir`"),
    ],
)
def test_02_logger_methods_name_the_replacement(tmp_path: Path, name: str, message: str) -> None:
    with Logger(tmp_path, backends=("csv",)) as logger:
        with pytest.raises(RemovedNameError, match=message):
            getattr(logger, name)
        assert not hasattr(logger, "no_such_method")
        with pytest.raises(AttributeError, match="'Logger' object has no attribute 'nope'"):
            logger.nope  # type: ignore[attr-defined]  # noqa: B018  # the error tested


def test_the_ported_02_loop_runs(tmp_path: Path) -> None:
    """0.2: TFLogger(log_dir, hps); add_dict; add_scalar; update_csv; get_last; close."""
    config = {"lr": 0.01, "env": {"name": "CartPole-v1", "n_envs": 4}}
    logger = Logger(tmp_path)                      # was TFLogger(log_dir=..., hps=config)
    logger.add_hparams(config)
    for iteration in range(3):
        logger.add_scalars({"loss": {"policy": 0.5 / (iteration + 1)}}, iteration)  # add_dict
        logger.add_scalar("reward", float(iteration), iteration)
        logger.flush()                             # was update_csv()
    assert logger.last("loss/policy") == 0.5 / 3  # was get_last()["loss"]["policy"]
    logger.close()
    table = logging_package.read_logs(tmp_path, source="csv")
    assert table.num_rows == 6
