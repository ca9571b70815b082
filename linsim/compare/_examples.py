"""Private: a tiny trained grid and its comparison, built once per process for the doctests.

Two configurations (``linear`` and ``mlp``) on 32 digits samples, 2 seeds, 6 steps: enough to
exercise every stage of :func:`linsim.compare.compare` in about a second.
"""

from __future__ import annotations

import functools

__all__: list[str] = []


@functools.lru_cache(maxsize=1)
def tiny_trajectories():
    """The ``train`` trajectories of two tiny trained configurations (cached)."""
    from linsim.deep.config import TrainConfig
    from linsim.deep.train import train

    base = dict(dataset="digits", n_train=32, n_test=8, eval_stride=2, batch_size=8, steps=6, n_checkpoints=3,
                n_runs=2, device="cpu", engine="loop", lr=0.1)
    return tuple(train(TrainConfig(architecture=a, **base)).train for a in ("linear", "mlp"))


@functools.lru_cache(maxsize=1)
def tiny_comparison():
    """:func:`linsim.compare.compare` of :func:`tiny_trajectories` with light settings (cached)."""
    from .pipeline import CompareConfig, compare

    cfg = CompareConfig(n_components=3, n_grid=4, counterparts=("linear", "ntk"), counterpart_runs=1, n_draws=2,
                        device="cpu")
    return compare(tiny_trajectories(), config=cfg)
