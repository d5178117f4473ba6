"""Names of RLStructures 0.2's logger that a port hits, each with an error naming our replacement.

0.2 had ``rlstructures.logger.TFLogger(log_dir=..., hps=..., save_every=...)`` (a
``torch.utils.tensorboard.SummaryWriter`` that also kept every value in memory for a CSV),
and ``rlstructures.logging`` was a module of console helpers (``logging.info(...)``). These
tables turn the AttributeError, ImportError or TypeError that such code gets into one that
says what to write instead. The guide is the "Coming from RLStructures 0.2" section of the
package README.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from rlstructures.logging.errors import RemovedImportError, RemovedNameError

__all__ = ["LOGGER_ATTRIBUTES", "LOGGER_KEYWORDS", "MODULE_NAMES", "removed_attribute",
           "removed_module_name", "check_legacy_keywords"]

_SUMMARY_WRITER: Final = (
    "Logger writes scalars only. Write {name} with tensorboard's own writer into the same run "
    "directory, e.g. `torch.utils.tensorboard.SummaryWriter(logger.logdir).{name}(...)`: "
    "TensorBoard shows both files as one run."
)
_HISTORY: Final = (
    "use `logger.last(tag)` for the latest value logged, or `read_logs(logger.logdir)` "
    "(a pyarrow.Table of wall_time, step, tag, value) for the whole history."
)

#: ``Logger(...)`` keywords of 0.2's ``TFLogger``, and what to do instead.
LOGGER_KEYWORDS: Final[Mapping[str, str]] = {
    "log_dir": "the log directory is `logdir`: write `Logger(logdir=...)` or `Logger(path)`.",
    "hps": "hyperparameters are recorded by `logger.add_hparams(hps)` after construction "
           "(nested mappings are flattened with '/').",
    "save_every": "there is no decimation option: call `add_scalar` only on the steps to "
                  "keep (rows are buffered and written every `flush_secs`).",
}

#: 0.2 methods and attributes of ``Logger``/``TFLogger``, and what to use instead.
LOGGER_ATTRIBUTES: Final[Mapping[str, str]] = {
    "update_csv": "`update_csv()` is gone: `flush()` writes every backend (CSV included), "
                  "and runs by itself every `flush_secs`, every `max_pending` rows and at "
                  "`close()`.",
    "add_dict": "use `add_scalars(mapping, step)`; nested mappings are flattened with '/' as "
                "0.2's add_dict did.",
    "get_scalar": _HISTORY,
    "get_scalars": _HISTORY,
    "get_last": _HISTORY,
    "all_values": _HISTORY,
    "copy": "there is no copy(logger, iteration): log the values again, e.g. "
            "`logger.add_scalar(tag, other.last(tag), step)`.",
    "log_dir": "the directory is `logger.logdir` (a pathlib.Path).",
    "config": "the hyperparameters are in `logger.logdir / 'hparams.json'` (JSON).",
    **{
        name: _SUMMARY_WRITER.format(name=name)
        for name in ("add_images", "add_image", "add_text", "add_histogram", "add_figure",
                     "add_video", "add_audio", "add_graph", "add_embedding", "add_pr_curve",
                     "add_mesh", "add_custom_scalars")
    },
}

_CONSOLE: Final = (
    "`rlstructures.logging` is now the package of Logger, read_logs and TrajectoryWriter; "
    "0.2's console helpers (rlstructures.logging.info, debug, error, basicConfig, "
    "getLogger) are gone. Use Python's logging module: `import logging; "
    "logging.basicConfig(level=logging.INFO); logging.getLogger(__name__).info(...)`."
)

#: Module-level names of 0.2 (``rlstructures.logging.X``, ``rlstructures.logger.X``).
MODULE_NAMES: Final[Mapping[str, str]] = {
    "TFLogger": "0.2's `TFLogger(log_dir=..., hps=...)` is `Logger(logdir)` followed by "
                "`logger.add_hparams(hps)`: `from rlstructures.logging import Logger`. It "
                "writes CSV, Arrow and TensorBoard at once (no torch needed).",
    **{name: _CONSOLE for name in ("info", "debug", "error", "warn", "warning", "basicConfig",
                                   "getLogger", "DEBUG", "INFO", "NO")},
}


def check_legacy_keywords(keywords: Mapping[str, object]) -> None:
    """TypeError naming our replacement when ``Logger(...)`` got a 0.2 keyword."""
    for name, advice in LOGGER_KEYWORDS.items():
        if name in keywords:
            raise TypeError(
                f"Logger() got the keyword {name!r} of RLStructures 0.2's TFLogger; {advice}"
            )


def removed_attribute(owner: str, name: str) -> AttributeError:
    """The error for ``owner.name``: RemovedNameError for a 0.2 name, else AttributeError."""
    advice = LOGGER_ATTRIBUTES.get(name)
    if advice is None:
        return AttributeError(f"{owner!r} object has no attribute {name!r}")
    return RemovedNameError(f"{owner}.{name} is a name of RLStructures 0.2; {advice}")


def removed_module_name(module: str, name: str) -> AttributeError | ImportError:
    """The error for ``module.name`` (and ``from module import name``).

    0.2 code imported ``TFLogger`` (``from ... import TFLogger``): an ImportError keeps its
    message through the ``from`` statement, which replaces an AttributeError by its own
    "cannot import name". The console helpers were attributes (``logging.info(...)``).
    """
    advice = MODULE_NAMES.get(name)
    if advice is None:
        return AttributeError(f"module {module!r} has no attribute {name!r}")
    message = f"{module}.{name} is a name of RLStructures 0.2; {advice}"
    if name == "TFLogger":
        return RemovedImportError(message, name=name)
    return RemovedNameError(message)
