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
