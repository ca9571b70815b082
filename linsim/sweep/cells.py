"""One sweep cell: simulate the ensemble, embed it with InPCA, compute its metrics, and
evaluate the theory beside it.  A cell never raises: a failure is recorded in its result.

Per-cell values (the keys of :attr:`CellResult.scalars` and :attr:`CellResult.curves`):

* ``sim_*``: metrics of the simulated ensemble (exact outputs, Bhattacharyya distances mean
  over samples, InPCA), see :func:`linsim.metrics.summarize`;
* ``theory_*``: the same metrics of the expected spectrum (expectation over teachers and
  initializations), ``draw_*``: of the small-logit spectrum of the very teacher and
  initializations that were simulated; both from :func:`linsim.theory_inputs.predict_spectra`
  and only for models whose runner has a theory hook (:mod:`linsim.runners`);
* ``logit_rms`` (:func:`theory.centred_logit_rms`), ``logit_max`` and ``in_regime``
  (:func:`theory.in_regime`, the one definition of the small-logit regime).
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from linsim.ensemble import EnsembleConfig
from linsim.metrics import RibbonCriterion
from linsim._theory_check import import_theory

__all__ = ["CellResult", "N_STRESS", "logit_scale", "run_cell", "theory_spectra"]

#: Number of explained-stress values stored per cell (k = 1..N_STRESS).
N_STRESS = 10


@dataclass(frozen=True)
class CellResult:
    """What one (cell, replicate) simulation produced.

    Attributes
    ----------
    seed : int
        The configuration's seed.
    seconds : float
        Wall time of the cell (the only value that differs between identical runs).
    error : str
        ``""`` when the cell succeeded, else the exception and a short traceback.
    scalars : dict of str -> float or bool
        ``sim_k_chi``, ``sim_is_ribbon``, ..., ``logit_rms``, ``in_regime`` (empty on failure;
        ``theory_*`` / ``draw_*`` absent when the model has no theory).
    curves : dict of str -> float64 array (N_STRESS,)
        ``sim_stress_curve``, ``theory_stress_curve``, ``draw_stress_curve``: χ_k for k = 1..10
        (NaN past the number of eigenvalues).

    Examples
    --------
    >>> CellResult(seed=1, seconds=0.1, error="ValueError: bad").ok
    False
    """

    seed: int
    seconds: float
    error: str = ""
    scalars: dict[str, Any] = field(default_factory=dict)
    curves: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the cell succeeded (no error recorded)."""
        return not self.error


def _spectrum_metrics(prefix: str, lam, criterion, frobenius_norm=None):
    from linsim import metrics

    summary = metrics.summarize(lam, frobenius_norm, criterion=criterion)
    scalars = {f"{prefix}_{k}": (bool(v) if isinstance(v, (bool, np.bool_)) else float(v))
               for k, v in summary.items()}
    curve = metrics.explained_stress(lam, frobenius_norm)
    stress = np.full(N_STRESS, np.nan)
    stress[: min(N_STRESS, curve.size)] = curve[:N_STRESS]
    return scalars, {f"{prefix}_stress_curve": stress}


def logit_scale(traj) -> tuple[float, float]:
    """Class-centred logit size of an ensemble: (pooled rms, max ``|z - mean_c z|``).

    The rms is :func:`theory.centred_logit_rms`, the statistic of the small-logit regime.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> logit_scale(SimpleNamespace(outputs=np.array([[1.0, -1.0], [0.5, 0.5]])))
    (0.7071067811865476, 1.0)
    """
    theory = import_theory()
    z = np.asarray(traj.outputs, dtype=np.float64)
    zc = z - z.mean(axis=-1, keepdims=True)
    return theory.centred_logit_rms(z), float(np.max(np.abs(zc)))


def theory_spectra(cfg: EnsembleConfig, traj) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Expected and same-draw small-logit spectra of a simulated cell (``None`` without theory).

    Delegates to :func:`linsim.theory_inputs.predict_spectra`, the one gate of "can the theory
    handle this model" (the runner registry) and the one builder of the theory's inputs.

    Returns
    -------
    (expected, draw) : float64 arrays of signed InPCA eigenvalues, or (None, None).

    Examples
    --------
    >>> from linsim.ensemble import simulate
    >>> cfg = EnsembleConfig(dim=4, n_samples=8, n_classes=2, n_runs=2, steps=10, n_checkpoints=2)
    >>> expected, draw = theory_spectra(cfg, simulate(cfg))
    >>> expected.dtype, draw.ndim
    (dtype('float64'), 1)
    """
    from linsim.theory_inputs import predict_spectra

    pred = predict_spectra(traj)
    if pred is None:
        return None, None
    draw = None if pred.draw is None else np.asarray(pred.draw, dtype=np.float64)
    return np.asarray(pred.expected, dtype=np.float64), draw


def run_cell(cfg: EnsembleConfig, criterion: RibbonCriterion = RibbonCriterion()) -> CellResult:
    """Simulate, embed and predict one cell.  Never raises: a failure is recorded.

    Parameters
    ----------
    cfg : EnsembleConfig
    criterion : RibbonCriterion

    Returns
    -------
    CellResult

    Examples
    --------
    >>> res = run_cell(EnsembleConfig(slope=-1.0))
    >>> res.ok, "slope" in res.error
    (False, True)
    """
    start = time.perf_counter()
    try:
        from linsim.embed import embed
        from linsim.ensemble import simulate

        theory = import_theory()
        traj = simulate(cfg)
        fitted = embed(traj).model
        scalars, curves = _spectrum_metrics("sim", fitted.eigenvalues_, criterion, fitted.frobenius_norm_)
        rms, zmax = logit_scale(traj)
        scalars.update(logit_rms=rms, logit_max=zmax, in_regime=theory.in_regime(rms))
        expected, draw = theory_spectra(cfg, traj)
        for prefix, lam in (("theory", expected), ("draw", draw)):
            if lam is not None:
                s, c = _spectrum_metrics(prefix, lam, criterion)
                scalars.update(s)
                curves.update(c)
        return CellResult(int(cfg.seed), time.perf_counter() - start, "", scalars, curves)
    except Exception as exc:  # a failing cell must not stop the sweep
        text = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
        return CellResult(int(cfg.seed), time.perf_counter() - start, text)


def _cell_task(item: tuple[EnsembleConfig, RibbonCriterion]) -> CellResult:
    """Engine task: one ``(config, criterion)`` item."""
    return run_cell(*item)
