"""Shared pytest configuration: hypothesis profiles ("dev" by default, "ci" in `make test`)."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("dev")


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def pytest_collection_modifyitems(config: object, items: list[object]) -> None:
    """Skip tests marked ``cuda`` when no CUDA device is present."""
    import pytest

    if _has_cuda():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in getattr(item, "keywords", {}):
            item.add_marker(skip)  # type: ignore[attr-defined]  # a pytest.Item
