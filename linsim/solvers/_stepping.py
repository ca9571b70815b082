"""Private helpers: drive a stepped optimizer (explicit GD, SGD, moment recursions) through
its checkpoints.

Every explicit stepper in :mod:`linsim.solvers` needs the same loop: visit the requested
step counts in increasing order (they may be given in any order, with repeats), take single
steps until the next one is reached, and record the state there.  The cost is
``max(steps)`` steps, whatever ``K``.  :func:`weight_gd` is that loop for full-batch GD on
the weights ``W`` of a linear model (squared loss, softmax cross-entropy: only the gradient
differs).
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def step_through(steps: np.ndarray, advance: Callable[[int], None], record: Callable[[int], None], *,
                 progress: bool = False, desc: str = "steps") -> None:
    """Call ``advance(t)`` for ``t = 0 .. max(steps) - 1`` and ``record(k)`` at checkpoint ``k``.

    Parameters
    ----------
    steps : int64 array (K,)
        Validated step counts (``linsim.solvers._checks.check_steps``), any order.
    advance : callable
        ``advance(t)`` takes the state from step ``t`` to step ``t + 1`` (in place).
    record : callable
        ``record(k)`` stores the current state as checkpoint ``k`` (an index into ``steps``).
    progress : bool
        Show a tqdm progress bar over the ``max(steps)`` steps (on stderr; closed on errors).
    desc : str
        Label of the progress bar.

    Examples
    --------
    >>> seen, state = [], [0]
    >>> step_through(np.array([3, 0, 3, 1]), lambda t: state.__setitem__(0, state[0] + 1),
    ...              lambda k: seen.append((k, state[0])))
    >>> seen
    [(1, 0), (3, 1), (0, 3), (2, 3)]
    """
    from tqdm.auto import tqdm

    total = int(steps.max()) if steps.size else 0
    with tqdm(total=total, desc=desc, unit="step", disable=not progress, mininterval=0.5) as bar:
        t = 0
        for k in np.argsort(steps, kind="stable"):
            target = int(steps[k])
            start = t
            while t < target:
                advance(t)
                t += 1
                if progress and (t - start) % 256 == 0:
                    bar.update(256)
            bar.update((t - start) % 256 if progress else 0)
            record(int(k))


def weight_gd(W: np.ndarray, gradient: Callable[[np.ndarray], np.ndarray], lr: float, steps: np.ndarray,
              Z: np.ndarray, *, progress: bool = False, desc: str = "GD") -> np.ndarray:
    """Full-batch GD ``W <- W - lr * gradient(W)`` on weights ``W`` (R, C, d), **in place**;
    returns the outputs ``Z W^T`` at the checkpoints.

    Parameters
    ----------
    W : float64 array (R, C, d)
        Initial weights of ``R`` runs (overwritten: it ends at step ``max(steps)``).
    gradient : callable
        ``gradient(W) -> (R, C, d)``, the loss gradient at ``W``.
    lr : float
        Validated learning rate.
    steps : int64 array (K,)
        Validated step counts, any order.
    Z : float64 array (m, d)
        Inputs at which the outputs are recorded.
    progress, desc :
        As for :func:`step_through`.

    Returns
    -------
    float64 array (R, K, m, C)

    Examples
    --------
    >>> W = np.ones((1, 1, 1))                      # f(w) = w^2 / 2: w_t = (1 - lr)^t
    >>> weight_gd(W, lambda W: W, 0.5, np.array([0, 2]), np.ones((1, 1))).ravel().tolist()
    [1.0, 0.25]
    """
    out = np.empty((W.shape[0], steps.size, Z.shape[0], W.shape[1]))

    def advance(_t):
        W[...] -= lr * gradient(W)

    def record(k):
        out[:, k] = Z @ W.transpose(0, 2, 1)

    step_through(steps, advance, record, progress=progress, desc=desc)
    return out


__all__ = ["step_through", "weight_gd"]
