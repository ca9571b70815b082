"""The linear theory's control parameters measured on deep networks, and its prediction there.

The hyper-ribbon theory of linear models has three controls (README): the decay rate ``c`` of
the input-correlation eigenvalues, the output-to-weight scale ratio ``rho / sigma_0`` and the
number of GD steps ``T``.  For a deep configuration they are measured as follows.

Controls
--------
``c_input``  decay rate of the eigenvalues of ``Sigma = X^T X / n`` of the (normalized,
             flattened) training inputs: least-squares slope of ``log lambda_k`` against ``k``
             over the **leading** ``n_fit`` eigenvalues (default 20, fewer when the spectrum is
             shorter or reaches zero), :func:`linsim.metrics.decay_rate`.
``c_ntk``    the same fit on the eigenvalues of ``Theta / n``, the network's empirical NTK at
             initialization on the training inputs (the kernel that drives its lazy dynamics).
``ratio``    ``rms(z_T) / rms(z_0)`` of the class-centred logits (:func:`theory.validity.centred_logit_rms`)
             at the last and at the first checkpoint, pooled over runs and samples.  In the
             linear theory outputs move from ``X W_0^T`` (scale ``sigma_0``) to the teacher's
             ``X W*^T`` (scale ``rho``), so this is the deep analogue of ``rho / sigma_0``; it
             is an estimate (a deep net's end point is not a teacher), and it is infinite for
             networks that start at exactly zero logits.
``steps``    the checkpoint steps; ``T`` is the last one.

Prediction
----------
At the measured ``(c, ratio, steps)`` the theory's expected explained-stress curve is evaluated
on its standard ensemble: geometric spectrum ``lambda_k = e^{-c (k-1)}`` over ``d`` modes (the
number of non-zero eigenvalues of the spectrum ``c`` was fitted on: of ``Sigma`` for
``c_input``, of ``Theta / n`` for ``c_ntk``), GD
with ``lr lambda_1 = 1`` at the deep checkpoint steps, ``R`` runs, ``C`` classes
(:func:`theory.expected_explained_stress`), and ``k_chi`` is its first ``k`` with ``chi_k >= chi``.
The measured ``k_chi`` of a configuration is that of the InPCA of its own points (all runs,
all checkpoints).  The theory is a small-logit theory: :attr:`ControlRow.final_logit_rms` says
how far outside that regime a network ends.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

import theory
from linsim.embed import distance_matrix
from linsim.inpca import InPCA
from linsim.metrics import decay_rate

__all__ = ["ControlRow", "DEFAULT_N_FIT", "fitted_decay", "input_spectrum", "logit_ratio", "measured_k_chi",
           "predicted_k_chi", "theory_controls"]

#: Leading eigenvalues used in the decay-rate fits.
DEFAULT_N_FIT = 20


def input_spectrum(X):
    """Eigenvalues of ``X^T X / n`` (uncentered, as the linear model's ``Sigma``), descending.

    Parameters
    ----------
    X : array (n, ...) of inputs; flattened to (n, d).

    Returns
    -------
    numpy.ndarray float64 (min(n, d),)

    Examples
    --------
    >>> import numpy as np
    >>> input_spectrum(np.diag([2.0, 1.0]) * np.sqrt(2)).round(6).tolist()
    [4.0, 1.0]
    """
    X = np.asarray(X, dtype=np.float64)
    X = X.reshape(X.shape[0], -1)
    s = np.linalg.svd(X, compute_uv=False)
    return s ** 2 / X.shape[0]


def fitted_decay(eigenvalues, n_fit=DEFAULT_N_FIT):
    """Decay rate ``c`` of a spectrum over its leading ``n_fit`` eigenvalues (module docstring).

    Returns
    -------
    c : float
    n_used : int
        Eigenvalues actually in the fit.

    Examples
    --------
    >>> import numpy as np
    >>> c, n = fitted_decay(np.exp(-0.3 * np.arange(50)))
    >>> round(c, 12), n
    (0.3, 20)
    """
    lam = np.sort(np.abs(np.asarray(eigenvalues, dtype=np.float64)))[::-1]
    lam = lam[lam > lam[0] * 1e-12] if lam.size and lam[0] > 0 else lam
    rate, _, n_used = decay_rate(lam, k=min(int(n_fit), lam.size))
    return float(rate), int(n_used)


def logit_ratio(outputs):
    """``rms(centred logits at the last checkpoint) / rms(at the first)`` of outputs ``(R, K, n, C)``.

    Examples
    --------
    >>> import numpy as np
    >>> z = np.zeros((1, 2, 3, 2)); z[0, 0, :, 0] = 0.1; z[0, 1, :, 0] = 2.0
    >>> round(logit_ratio(z), 12)
    20.0
    """
    z = np.asarray(outputs, dtype=np.float64)
    if z.ndim != 4:
        raise ValueError(f"outputs must have shape (R, K, n, C); got {z.shape}")
    first = theory.validity.centred_logit_rms(z[:, 0])
    last = theory.validity.centred_logit_rms(z[:, -1])
    return last / first if first > 0 else math.inf


def measured_k_chi(traj, chi=0.9, *, n_components=10, device=None):
    """``k_chi`` of the InPCA of one trajectory's points, and its explained-stress curve.

    Returns
    -------
    k : int
        Smallest ``k`` with ``chi_k >= chi`` (``n_components + 1`` when not reached).
    curve : numpy.ndarray (k',)

    Examples
    --------
    >>> from linsim.ensemble import EnsembleConfig, simulate
    >>> traj = simulate(EnsembleConfig(n_samples=20, dim=5, n_runs=2, steps=50, n_checkpoints=4))
    >>> k, curve = measured_k_chi(traj, 0.9)
    >>> bool(curve[k - 1] >= 0.9)
    True
    """
    D = distance_matrix(traj, device=device)
    fit = InPCA(n_components=min(int(n_components), D.shape[0] - 1)).fit(D)
    curve = fit.explained_stress_
    hit = np.flatnonzero(curve >= chi - 1e-12)
    return (int(hit[0]) + 1 if hit.size else curve.size + 1), curve


def predicted_k_chi(c, ratio, steps, n_classes, n_runs, d, chi=0.9, *, n_draws=16, seed=0):
    """The theory's ``k_chi`` on its standard ensemble at the controls ``(c, ratio, steps)``.

    Returns ``len(curve) + 1`` when the expected curve never reaches ``chi`` and ``nan`` when the
    controls are not finite.

    Examples
    --------
    >>> predicted_k_chi(1.0, 10.0, [0, 1, 10, 100], 3, 4, 20) <= 3
    True
    """
    if not (np.isfinite(c) and np.isfinite(ratio)):
        return float("nan")
    lam = theory.geometric_spectrum(max(float(c), 0.0), int(d))
    curve = theory.expected_explained_stress(lam, int(n_classes), float(ratio), 1.0, 1.0,
                                             np.asarray(steps, dtype=np.int64), int(n_runs),
                                             n_draws=n_draws, seed=seed)
    curve = np.asarray(curve, dtype=np.float64)  # an array or theory's StressCurve
    hit = np.flatnonzero(curve >= chi - 1e-12)
    return int(hit[0]) + 1 if hit.size else int(curve.size + 1)


@dataclass(frozen=True)
class ControlRow:
    """Controls, measured ``k_chi`` and predicted ``k_chi`` of one deep configuration.

    ``predicted_k_input`` / ``predicted_k_ntk`` use ``c_input`` / ``c_ntk`` (``nan`` when the
    NTK was not computed).

    Examples
    --------
    >>> row = ControlRow("a", 0.5, 20, float("nan"), 0, 10.0, 100, 0.2, 2, 2.0, float("nan"))
    >>> row.as_dict()["measured_k"], row.as_dict()["c_input"]
    (2, 0.5)
    """

    config: str
    c_input: float
    c_input_n_fit: int
    c_ntk: float
    c_ntk_n_fit: int
    ratio: float
    steps: int
    final_logit_rms: float
    measured_k: int
    predicted_k_input: float
    predicted_k_ntk: float

    def as_dict(self):
        """The row as a plain dict of Python scalars."""
        return {k: (v if isinstance(v, str) else float(v) if isinstance(v, float) else int(v))
                for k, v in asdict(self).items()}


def _rank(eigenvalues):
    """Number of modes of a spectrum above rounding (``lambda > 1e-12 lambda_max``)."""
    lam = np.abs(np.asarray(eigenvalues, dtype=np.float64))
    return max(1, int(np.sum(lam > lam.max() * 1e-12))) if lam.size and lam.max() > 0 else 1


def theory_controls(config, traj, X_train, ntk_spectrum=None, *, chi=0.9, n_fit=DEFAULT_N_FIT,
                    n_components=10, n_draws=16, device=None):
    """Measure the controls of one deep configuration and put its ``k_chi`` next to the theory's.

    Parameters
    ----------
    config : str
        Name of the configuration (table row label).
    traj : Trajectory
        The configuration's deep trajectory (all runs).
    X_train : array (n, ...)
        Its training inputs.
    ntk_spectrum : array, optional
        Eigenvalues of ``Theta / n`` at initialization (:class:`linsim.compare.counterparts.NTKRecord`).

    Returns
    -------
    ControlRow

    Examples
    --------
    >>> from linsim.ensemble import EnsembleConfig, simulate
    >>> traj = simulate(EnsembleConfig(slope=0.5, n_samples=40, dim=8, n_runs=2, steps=100, n_checkpoints=4))
    >>> row = theory_controls("linear ensemble", traj, traj.inputs, n_draws=4)
    >>> round(row.c_input, 6), row.steps
    (0.5, 100)
    """
    lam = input_spectrum(X_train)
    c_in, n_in = fitted_decay(lam, n_fit)
    if ntk_spectrum is not None:
        c_ntk, n_ntk = fitted_decay(ntk_spectrum, n_fit)
    else:
        c_ntk, n_ntk = float("nan"), 0
    ratio = logit_ratio(traj.outputs)
    k_meas, _ = measured_k_chi(traj, chi, n_components=n_components, device=device)
    steps = traj.times.astype(np.int64)
    args = (ratio, steps, traj.n_outputs, traj.n_runs)
    k_in = predicted_k_chi(c_in, *args, _rank(lam), chi, n_draws=n_draws)
    k_ntk = (predicted_k_chi(c_ntk, *args, _rank(ntk_spectrum), chi, n_draws=n_draws)
             if ntk_spectrum is not None else float("nan"))
    return ControlRow(config=str(config), c_input=c_in, c_input_n_fit=n_in, c_ntk=c_ntk, c_ntk_n_fit=n_ntk,
                      ratio=float(ratio), steps=int(steps[-1]),
                      final_logit_rms=float(theory.validity.centred_logit_rms(traj.outputs[:, -1])),
                      measured_k=int(k_meas), predicted_k_input=float(k_in), predicted_k_ntk=float(k_ntk))
