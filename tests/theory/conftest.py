"""Shared fixtures of the theory tests."""

import numpy as np
import pytest


@pytest.fixture
def no_numpy_rng(monkeypatch):
    """Every numpy random generator constructor raises during the test: a seedless rule passes,
    one that seeds (or lets scipy seed) a generator fails."""

    def refuse(*args, **kwargs):
        raise AssertionError("a numpy random generator was asked for")

    for name in ("default_rng", "Generator", "PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64",
                 "SeedSequence", "RandomState"):
        monkeypatch.setattr(np.random, name, refuse)
