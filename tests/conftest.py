"""Shared test configuration: a deterministic hypothesis profile (as in SciPy's suite)."""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "linsim",
    derandomize=True,  # same examples every run: failures reproduce
    deadline=None,  # CI machines are slow and shared
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile("linsim-thorough", parent=settings.get_profile("linsim"), max_examples=400)
settings.load_profile(os.environ.get("LINSIM_HYPOTHESIS_PROFILE", "linsim"))
