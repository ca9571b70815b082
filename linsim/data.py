"""Synthetic inputs with a prescribed correlation spectrum, linear teachers, and the digits set.

Conventions
-----------
* Inputs are rows: ``X`` has shape (n, d); the (uncentered) input correlation matrix is
  ``Sigma = X^T X / n``.
* Spectra are returned in descending order.
* Every random function takes an explicit ``seed`` (int or ``numpy.random.SeedSequence``);
  the same seed gives the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from linsim._fields import check_integer
from linsim.registry import Registry



def _geometric(k: np.ndarray, slope: float, lambda_1: float) -> np.ndarray:
    return lambda_1 * np.exp(-slope * (k - 1))


def _power(k: np.ndarray, slope: float, lambda_1: float) -> np.ndarray:
    return lambda_1 * k ** (-slope)


#: Spectrum registry: kind -> ``f(k, slope, lambda_1)`` on mode numbers ``k = 1..d`` (float64),
#: returning non-negative descending eigenvalues with ``f(1) = lambda_1``.
SPECTRUM_KINDS: Registry[Callable[..., np.ndarray]] = Registry(
    "spectrum kind", callable_only=True, entries={"geometric": _geometric, "power": _power})


def _exact_rows(lam, root, V, n, rng):
    d = lam.size
    if n < d and np.count_nonzero(lam) > n:
        raise ValueError(
            f"mode='exact' needs n >= number of non-zero eigenvalues: n={n}, "
            f"{np.count_nonzero(lam)} non-zero eigenvalues (d={d}); use mode='sampled' or more samples"
        )
    k = min(n, d)
    order = np.argsort(lam)[::-1][:k]
    q, r = np.linalg.qr(rng.standard_normal((n, k)))
    q = q * np.sign(np.where(np.diag(r) == 0, 1.0, np.diag(r)))
    return np.sqrt(n) * (q * root[order]) @ V[:, order].T


def _sampled_rows(lam, root, V, n, rng):
    return (rng.standard_normal((n, lam.size)) * root) @ V.T


#: Input-mode registry: mode -> ``rows(eigenvalues, sqrt(eigenvalues), V, n, rng) -> X (n, d)``.
INPUT_MODES: Registry[Callable[..., np.ndarray]] = Registry(
    "input mode", callable_only=True, entries={"exact": _exact_rows, "sampled": _sampled_rows})


def _children(seed, k: int) -> list[np.random.SeedSequence]:
    """``k`` child streams of ``seed`` without mutating it (``SeedSequence.spawn`` counts its
    calls, so spawning from a caller's object twice would give different numbers)."""
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(_check_seed(seed))
    return [np.random.SeedSequence(ss.entropy, spawn_key=tuple(ss.spawn_key) + (i,), pool_size=ss.pool_size)
            for i in range(k)]


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    return np.random.default_rng(_check_seed(seed))


def _real(name: str, value) -> float:
    if np.iscomplexobj(value):
        raise TypeError(f"{name} is complex ({value!r}); it must be a real number")
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a real number, not a boolean")
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a real number; got {value!r}") from exc


def spectrum(d: int, kind: str = "geometric", slope: float = 0.5, lambda_1: float = 1.0) -> np.ndarray:
    """Eigenvalues of the input correlation matrix, descending, shape (d,).

    Parameters
    ----------
    d : int
        Input dimension.
    kind : {"geometric", "power"}
        ``geometric``: ``lambda_k = lambda_1 * exp(-slope * (k - 1))`` (slope ``c`` = log ratio of
        consecutive eigenvalues); ``power``: ``lambda_k = lambda_1 * k ** (-slope)``.
    slope : float
        ``c >= 0`` (geometric) or ``a >= 0`` (power).
    lambda_1 : float
        Largest eigenvalue, > 0.

    Examples
    --------
    >>> spectrum(3, "geometric", slope=np.log(2), lambda_1=4.0).round(12).tolist()
    [4.0, 2.0, 1.0]
    >>> spectrum(3, "power", slope=1.0).round(12).tolist()
    [1.0, 0.5, 0.333333333333]
    """
    d = check_integer("d", d, 1)
    shape = SPECTRUM_KINDS.lookup(kind, what="kind")
    slope = _real("slope", slope)
    lambda_1 = _real("lambda_1", lambda_1)
    if not np.isfinite(slope) or slope < 0:
        raise ValueError(f"slope must be a finite number >= 0; got {slope}")
    if not np.isfinite(lambda_1) or lambda_1 <= 0:
        raise ValueError(f"lambda_1 must be a finite number > 0; got {lambda_1}")
    k = np.arange(1, d + 1, dtype=np.float64)
    return shape(k, slope, lambda_1)


def random_orthogonal(d: int, seed) -> np.ndarray:
    """A Haar-random orthogonal matrix (d, d) (QR of a Gaussian matrix with sign fix).

    Examples
    --------
    >>> Q = random_orthogonal(3, seed=0)
    >>> bool(np.allclose(Q.T @ Q, np.eye(3)))
    True
    """
    d = check_integer("d", d, 1)
    rng = _rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.where(np.diag(r) == 0, 1.0, np.diag(r)))


def _check_eigenvalues(eigenvalues) -> np.ndarray:
    if np.iscomplexobj(eigenvalues):
        raise TypeError("eigenvalues are complex; a correlation spectrum is real (pass the real part explicitly)")
    lam = np.asarray(eigenvalues, dtype=np.float64)
    if lam.ndim != 1 or lam.size == 0:
        raise ValueError(f"eigenvalues must be a non-empty 1-D array; got shape {lam.shape}")
    if not np.all(np.isfinite(lam)):
        raise ValueError("eigenvalues contain NaN or inf")
    if np.any(lam < 0):
        raise ValueError(f"eigenvalues must be >= 0 (a correlation matrix); got minimum {lam.min()}")
    return lam


def make_inputs(
    eigenvalues, n: int, mode: str = "exact", seed=0, n_test: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out inputs whose correlation matrix has a prescribed spectrum.

    The eigenbasis ``V`` is a Haar-random rotation (drawn from ``seed``), and the population
    covariance is ``V diag(eigenvalues) V^T``.

    Parameters
    ----------
    eigenvalues : array (d,)
        Non-negative eigenvalues (any order; ``spectrum`` gives descending ones).
    n : int
        Number of training inputs.
    mode : {"exact", "sampled"}
        ``exact``: the empirical ``X^T X / n`` equals ``V diag(eigenvalues) V^T`` up to round-off
        (``X = sqrt(n) Q diag(sqrt(eigenvalues)) V^T`` with ``Q`` (n, d) random orthonormal
        columns; needs ``n >= d`` unless the extra eigenvalues are zero).
        ``sampled``: rows i.i.d. ``N(0, V diag(eigenvalues) V^T)``.
    seed : int or SeedSequence
        Randomness for the basis, training rows and test rows.
    n_test : int
        Number of held-out inputs, always drawn i.i.d. from the population Gaussian.

    Returns
    -------
    X : array (n, d)
    X_test : array (n_test, d)

    Examples
    --------
    >>> X, X_test = make_inputs([2.0, 0.5], n=4, mode="exact", seed=0, n_test=3)
    >>> np.linalg.eigvalsh(X.T @ X / 4).round(12).tolist(), X_test.shape
    ([0.5, 2.0], (3, 2))
    """
    lam = _check_eigenvalues(eigenvalues)
    n = check_integer("n", n, 1)
    n_test = check_integer("n_test", n_test, 0)
    rows = INPUT_MODES.lookup(mode, what="mode")
    d = lam.size
    s_basis, s_train, s_test = _children(seed, 3)
    V = random_orthogonal(d, s_basis)
    root = np.sqrt(lam)
    X = rows(lam, root, V, n, np.random.default_rng(s_train))
    X_test = (np.random.default_rng(s_test).standard_normal((n_test, d)) * root) @ V.T
    return X, X_test


def _check_seed(seed):
    """The one seed rule of linsim: an int >= 0 (or a SeedSequence, handled by the callers).

    ``None`` would mean fresh OS entropy (non-reproducible) and a ``Generator`` carries hidden
    state, so both are refused.
    """
    if seed is None:
        raise ValueError("seed is required (int or SeedSequence); randomness is always explicit")
    if isinstance(seed, np.random.Generator):
        raise TypeError("pass an int or numpy.random.SeedSequence as seed, not a Generator")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int or SeedSequence; got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0; got {seed}")
    return int(seed)


def linear_teacher(C: int, d: int, scale: float = 1.0, seed=0) -> np.ndarray:
    """Teacher weights ``W*`` (C, d) with i.i.d. ``N(0, scale^2)`` entries.

    ``scale`` (rho) sets the size of the ground-truth outputs ``W* x``.

    Examples
    --------
    >>> W = linear_teacher(2, 3, scale=0.5, seed=0)
    >>> W.shape, bool(np.array_equal(W, 0.5 * linear_teacher(2, 3, scale=1.0, seed=0)))
    ((2, 3), True)
    """
    C = check_integer("C", C, 1)
    d = check_integer("d", d, 1)
    scale = _real("scale", scale)
    if not np.isfinite(scale) or scale < 0:
        raise ValueError(f"teacher scale must be a finite number >= 0; got {scale}")
    return scale * _rng(seed).standard_normal((C, d))


def one_hot(labels, C: int) -> np.ndarray:
    """One-hot rows (n, C) float64 of integer ``labels`` (n,) in ``[0, C)``.

    Examples
    --------
    >>> one_hot(np.array([2, 0]), 3).tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be a 1-D integer array; got shape {labels.shape}, dtype {labels.dtype}")
    C = check_integer("C", C, 1)
    if labels.size and (labels.min() < 0 or labels.max() >= C):
        raise ValueError(f"labels must lie in [0, {C}); got range [{labels.min()}, {labels.max()}]")
    out = np.zeros((labels.size, C))
    out[np.arange(labels.size), labels] = 1.0
    return out


def load_digits(n_classes: int = 10, scale: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 handwritten digits (ships with scikit-learn; no download).

    Parameters
    ----------
    n_classes : int
        Keep digits ``0 .. n_classes-1`` (2..10).
    scale : bool
        Divide the pixel values (0..16) by 16 so inputs lie in [0, 1].

    Returns
    -------
    X : array (n, 64) float64
        Flattened images (n = 1797 for all ten classes).
    labels : int array (n,)

    Examples
    --------
    >>> X, labels = load_digits(2)
    >>> X.shape, sorted(set(labels.tolist())), float(X.max())
    ((360, 64), [0, 1], 1.0)
    """
    from sklearn.datasets import load_digits as _sk_load_digits

    n_classes = check_integer("n_classes", n_classes, 2)
    if not isinstance(scale, (bool, np.bool_)):
        raise TypeError(f"scale must be True or False; got {scale!r}")
    if n_classes > 10:
        raise ValueError(f"n_classes must be <= 10; got {n_classes}")
    bunch = _sk_load_digits(n_class=n_classes)
    X = np.asarray(bunch.data, dtype=np.float64)
    if scale:
        X = X / 16.0
    return X, np.asarray(bunch.target, dtype=np.int64)


__all__ = [
    "linear_teacher",
    "load_digits",
    "make_inputs",
    "one_hot",
    "random_orthogonal",
    "spectrum",
]
