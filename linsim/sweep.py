"""Phase sweeps: simulate the standard ensemble on a grid of parameters, embed every cell
with InPCA, compute its sloppiness metrics, and evaluate the analytic theory beside it.

A sweep is described by a :class:`PhaseSpec` (base ensemble, two or three axes, ribbon
criterion, root seed).  :func:`run_phase` returns an ``xarray.Dataset`` whose dimensions are
the swept axes and whose variables hold, for every cell,

* ``sim_*``: metrics of the simulated ensemble (exact softmax outputs, Bhattacharyya
  distances mean over samples, InPCA), see :mod:`linsim.metrics`;
* ``theory_*``: the same metrics of :func:`theory.expected_spectrum` (expectation over
  teachers and initializations; needs no simulation);
* ``draw_*``: the same metrics of :func:`theory.quadratic_spectrum` for the very teacher and
  initializations that were simulated (small-logit prediction of this draw);
* ``logit_rms`` and ``logit_max``: how far the ensemble is from the small-logit regime
  (class-centred logits; the quadratic theory is exact as they go to 0), and ``in_regime``;
* ``status`` (``"ok"`` or ``"failed"``) and ``error``: a failing cell is recorded, the sweep
  goes on.

Seeds: every cell's seed is drawn from ``SeedSequence(root_seed).spawn(n_cells)`` in C order
of the grid, so results do not depend on the number of workers or the order of execution.

Axis names are fields of :class:`linsim.ensemble.EnsembleConfig` (``slope``, ``steps``,
``teacher_scale``, ``init_scale``, ``n_classes``, ``n_runs``, ...) or ``scale_ratio``, which
sets ``teacher_scale = scale_ratio * init_scale``.  Short aliases: ``c`` (slope), ``T``
(steps), ``ratio`` (scale_ratio), ``C`` (n_classes), ``R`` (n_runs).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from linsim.ensemble import EnsembleConfig
from linsim.metrics import RibbonCriterion

ALIASES = {"c": "slope", "T": "steps", "ratio": "scale_ratio", "C": "n_classes", "R": "n_runs"}
#: Class-centred rms logit below which the small-logit theory is trusted.  At this size the
#: quadratic expansion of the Bhattacharyya distance is accurate to a few percent.
REGIME_LOGIT_RMS = 0.3
#: Number of explained-stress values stored per cell (k = 1..N_STRESS).
N_STRESS = 10
METRIC_KEYS = (
    "k_chi",
    "stress_k",
    "stress_1",
    "stress_2",
    "stress_3",
    "decay_rate",
    "decay_rate_stderr",
    "n_negative",
    "negative_share",
    "is_ribbon",
)
THEORY_MODELS = {("linear", "gd"), ("linear", "flow")}


def canonical_axis(name: str) -> str:
    """The EnsembleConfig field (or ``scale_ratio``) an axis name refers to."""
    name = ALIASES.get(name, name)
    fields = {f.name for f in dataclasses.fields(EnsembleConfig)}
    if name != "scale_ratio" and name not in fields:
        raise ValueError(
            f"unknown sweep axis {name!r}; choose an EnsembleConfig field "
            f"({', '.join(sorted(fields))}), 'scale_ratio' or an alias {sorted(ALIASES)}"
        )
    if name == "seed":
        raise ValueError("'seed' cannot be swept: cell seeds derive from the root seed")
    return name


@dataclass(frozen=True)
class PhaseSpec:
    """What to sweep.

    Parameters
    ----------
    base : EnsembleConfig
        The ensemble every cell starts from.
    axes : dict of str -> 1-D array
        Two or three axes, in order (first axis = x of the figure, second = y).
    criterion : RibbonCriterion
        Hyper-ribbon criterion ``k_χ ≤ k*`` (defaults χ = 0.9, k* = 3).
    root_seed : int
        Root of the per-cell seeds.
    """

    base: EnsembleConfig
    axes: dict[str, np.ndarray]
    criterion: RibbonCriterion = field(default_factory=RibbonCriterion)
    root_seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= len(self.axes) <= 3:
            raise ValueError(f"a phase sweep takes 1 to 3 axes; got {len(self.axes)}")
        axes = {}
        for name, values in self.axes.items():
            key = canonical_axis(name)
            arr = np.asarray(values, dtype=np.float64)
            if arr.ndim != 1 or arr.size == 0:
                raise ValueError(f"axis {name!r} must be a non-empty 1-D array; got shape {arr.shape}")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"axis {name!r} contains NaN or inf")
            if key in axes:
                raise ValueError(f"axis {key!r} given twice")
            axes[key] = arr
        if "scale_ratio" in axes and "teacher_scale" in axes:
            raise ValueError("sweep either scale_ratio or teacher_scale, not both")
        n_points = self.base.n_runs * (self.base.n_checkpoints + 1)
        if self.criterion.k_max >= n_points and "n_runs" not in axes:
            raise ValueError(
                f"criterion k* = {self.criterion.k_max} must be smaller than the number of "
                f"points per cell (about {n_points})"
            )
        object.__setattr__(self, "axes", axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(v.size for v in self.axes.values())

    def cell_config(self, index: tuple[int, ...], seed: int) -> EnsembleConfig:
        """The ensemble configuration of the cell at a grid index."""
        values = {name: vals[i] for (name, vals), i in zip(self.axes.items(), index)}
        return with_values(dataclasses.replace(self.base, seed=int(seed)), values)

    def cells(self) -> list[tuple[tuple[int, ...], EnsembleConfig]]:
        """All ``(grid index, config)`` pairs in C order, each with its own spawned seed."""
        indices = list(np.ndindex(*self.shape))
        children = np.random.SeedSequence(self.root_seed).spawn(len(indices))
        seeds = [int(c.generate_state(1, dtype=np.uint32)[0]) for c in children]
        return [(idx, self.cell_config(idx, s)) for idx, s in zip(indices, seeds)]


# ----------------------------------------------------------------------------- one cell
def _theory_inputs(cfg: EnsembleConfig, traj) -> dict[str, Any]:
    lr = cfg.lr if cfg.lr is not None else 1.0 / cfg.lambda_1
    steps = np.rint(traj.times / (lr if traj.time_unit == "time" else 1.0)).astype(np.int64)
    return {"eigenvalues": traj.arrays["eigenvalues"], "lr": lr, "steps": steps}


def _spectrum_metrics(prefix: str, lam, criterion, frobenius_norm=None) -> dict[str, Any]:
    from linsim import metrics

    out = {f"{prefix}_{k}": v for k, v in metrics.summarize(lam, frobenius_norm, criterion=criterion).items()}
    curve = metrics.explained_stress(lam, frobenius_norm)
    stress = np.full(N_STRESS, np.nan)
    stress[: min(N_STRESS, curve.size)] = curve[:N_STRESS]
    out[f"{prefix}_stress_curve"] = stress
    return out


def logit_scale(traj) -> tuple[float, float]:
    """Class-centred logit size of an ensemble: (rms over all points and samples, max |z|).

    The small-logit (quadratic) theory is exact in the limit where both go to zero.
    """
    z = traj.outputs - traj.outputs.mean(axis=-1, keepdims=True)
    return float(np.sqrt(np.mean(z**2))), float(np.max(np.abs(z)))


def theory_spectra(cfg: EnsembleConfig, traj) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Expected and same-draw small-logit spectra for a simulated cell (None if no theory)."""
    import theory

    if (cfg.model, cfg.optimizer) not in THEORY_MODELS:
        return None, None
    inp = _theory_inputs(cfg, traj)
    V = traj.arrays["eigenvectors"]
    teacher = traj.arrays["teacher"] @ V
    init = traj.arrays["init"] @ V
    if cfg.optimizer == "gd":
        expected = theory.expected_spectrum(
            inp["eigenvalues"], cfg.n_classes, cfg.teacher_scale, cfg.init_scale,
            inp["lr"], inp["steps"], cfg.n_runs,
        )
        draw = theory.quadratic_spectrum(inp["eigenvalues"], teacher, init, inp["lr"], inp["steps"])
    else:
        expected = theory.expected_spectrum(
            inp["eigenvalues"], cfg.n_classes, cfg.teacher_scale, cfg.init_scale,
            None, traj.times, cfg.n_runs, dynamics="flow",
        )
        draw = theory.quadratic_spectrum_flow(inp["eigenvalues"], teacher, init, traj.times)
    return np.asarray(expected, dtype=np.float64), np.asarray(draw, dtype=np.float64)


def run_cell(cfg: EnsembleConfig, criterion: RibbonCriterion) -> dict[str, Any]:
    """Simulate, embed and predict one cell.  Never raises: failures are recorded."""
    from linsim import inpca
    from linsim.embed import embed
    from linsim.ensemble import simulate

    start = time.perf_counter()
    try:
        traj = simulate(cfg)
        emb = embed(traj)
        fitted: inpca.InPCA = emb.model
        out: dict[str, Any] = _spectrum_metrics(
            "sim", fitted.eigenvalues_, criterion, fitted.frobenius_norm_
        )
        rms, zmax = logit_scale(traj)
        out.update(logit_rms=rms, logit_max=zmax, in_regime=bool(rms <= REGIME_LOGIT_RMS))
        expected, draw = theory_spectra(cfg, traj)
        for prefix, lam in (("theory", expected), ("draw", draw)):
            if lam is not None:
                out.update(_spectrum_metrics(prefix, lam, criterion))
        out.update(status="ok", error="")
    except Exception as exc:  # a failing cell must not stop the sweep
        out = {"status": "failed", "error": f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"}
    out["seed"] = cfg.seed
    out["seconds"] = time.perf_counter() - start
    return out


_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                "NUMEXPR_NUM_THREADS")


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)


class _single_threaded_children:
    """Context manager: processes spawned inside it start with one BLAS/OpenMP thread each.

    Cells are small (a few hundred points), so one thread per worker is fastest; letting every
    worker start a full BLAS thread pool oversubscribes the cores and made a 0.1 s cell take
    1-3 s.  Spawned children read these variables before they import numpy.
    """

    def __enter__(self):
        self._saved = {k: os.environ.get(k) for k in _THREAD_VARS}
        for k in _THREAD_VARS:
            os.environ[k] = "1"
        return self

    def __exit__(self, *exc):
        for k, v in self._saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        return False


def _pool(n_workers: int) -> ProcessPoolExecutor:
    import multiprocessing as mp

    with _single_threaded_children():
        pool = ProcessPoolExecutor(max_workers=n_workers, mp_context=mp.get_context("spawn"),
                                   initializer=_worker_init)
        # start the workers now, while the variables are set
        list(pool.map(int, range(n_workers)))
    return pool


def _run_cells(cells, criterion, n_workers: int, progress: bool) -> list[dict[str, Any]]:
    from tqdm.auto import tqdm

    results: list[dict[str, Any] | None] = [None] * len(cells)
    bar = tqdm(total=len(cells), desc="phase cells", disable=not progress, unit="cell")
    if n_workers <= 1:
        for i, (_, cfg) in enumerate(cells):
            results[i] = run_cell(cfg, criterion)
            bar.update()
    else:
        with _pool(n_workers) as pool:
            futures = {pool.submit(run_cell, cfg, criterion): i for i, (_, cfg) in enumerate(cells)}
            for fut in as_completed(futures):
                results[futures[fut]] = fut.result()
                bar.update()
    bar.close()
    return results  # type: ignore[return-value]


def run_phase(spec: PhaseSpec, n_workers: int | None = None, progress: bool = True, theory_resolution: int = 0):
    """Run a phase sweep.

    Parameters
    ----------
    spec : PhaseSpec
    n_workers : int, optional
        Worker processes (default: number of CPU cores).  Results do not depend on it.
    progress : bool
        Show a progress bar on stderr.
    theory_resolution : int
        If > 0 (two axes only), also evaluate the expected-spectrum theory on a finer
        ``resolution × resolution`` grid spanning the same axes (variables ``fine_*``), used to
        draw the theoretical boundary.

    Returns
    -------
    xarray.Dataset
        Dims: the swept axes (plus ``k`` for stress curves). See the module docstring.
    """
    import xarray as xr

    from linsim import __version__

    n_workers = (os.cpu_count() or 1) if n_workers is None else int(n_workers)
    cells = spec.cells()
    results = _run_cells(cells, spec.criterion, n_workers, progress)
    dims = tuple(spec.axes)
    shape = spec.shape
    keys = sorted({k for r in results for k in r})
    data_vars: dict[str, Any] = {}
    for key in keys:
        sample = next(r[key] for r in results if key in r)
        if isinstance(sample, np.ndarray):
            arr = np.full(shape + sample.shape, np.nan)
            for (idx, _), r in zip(cells, results):
                if key in r:
                    arr[idx] = r[key]
            data_vars[key] = (dims + ("k",), arr)
        elif isinstance(sample, str):
            arr = np.empty(shape, dtype=object)
            arr[...] = ""
            for (idx, _), r in zip(cells, results):
                arr[idx] = r.get(key, "")
            data_vars[key] = (dims, arr.astype(str))
        else:
            arr = np.full(shape, np.nan)
            for (idx, _), r in zip(cells, results):
                if key in r:
                    arr[idx] = float(r[key])
            data_vars[key] = (dims, arr)
    coords = {name: values for name, values in spec.axes.items()}
    coords["k"] = np.arange(1, N_STRESS + 1)
    attrs = {
        "linsim_type": "PhaseSweep",
        "linsim_version": __version__,
        "base_config_json": json.dumps(dataclasses.asdict(spec.base), sort_keys=True),
        "criterion_chi": spec.criterion.chi,
        "criterion_k_max": spec.criterion.k_max,
        "root_seed": spec.root_seed,
        "regime_logit_rms": REGIME_LOGIT_RMS,
        "conventions": (
            "sim_*: simulated ensemble (softmax outputs, Bhattacharyya distance mean over samples, "
            "InPCA); theory_*: theory.expected_spectrum; draw_*: theory.quadratic_spectrum of the "
            "simulated draw; is_ribbon: k_chi <= k_max at explained stress chi; boolean variables "
            "stored as 0/1 floats with NaN for failed cells"
        ),
    }
    ds = xr.Dataset(data_vars, coords=coords, attrs=attrs)
    if theory_resolution and len(dims) == 2:
        ds = ds.merge(theory_map(spec, theory_resolution, n_workers=n_workers))
    return ds


#: Gaussian draws per fine-map point (the per-cell ``theory_*`` values use the default 64).
FINE_MAP_DRAWS = 16


def _theory_row(base: EnsembleConfig, names, a: float, fine_b: np.ndarray, criterion: RibbonCriterion,
                n_draws: int) -> tuple[np.ndarray, np.ndarray]:
    """``k_χ`` and ``χ_{k*}`` of the expected spectrum along one row of the fine map."""
    import theory
    from linsim import metrics
    from linsim.data import spectrum
    from linsim.ensemble import checkpoint_steps

    kc = np.full(fine_b.size, np.nan)
    sk = np.full(fine_b.size, np.nan)
    for j, b in enumerate(fine_b):
        cfg = with_values(base, {names[0]: a, names[1]: b})
        lam = spectrum(cfg.dim, kind=cfg.spectrum, slope=cfg.slope, lambda_1=cfg.lambda_1)
        lr = cfg.lr if cfg.lr is not None else 1.0 / cfg.lambda_1
        steps = checkpoint_steps(cfg.steps, cfg.n_checkpoints)
        pred = theory.expected_spectrum(
            lam, cfg.n_classes, cfg.teacher_scale, cfg.init_scale, lr, steps, cfg.n_runs,
            n_draws=n_draws,
        )
        kc[j] = metrics.k_chi(pred, criterion.chi)
        sk[j] = metrics.stress_at(pred, min(criterion.k_max, len(pred)))
    return kc, sk


def theory_map(spec: PhaseSpec, resolution: int = 24, n_workers: int | None = None,
               n_draws: int = FINE_MAP_DRAWS):
    """Expected-spectrum ``k_χ`` on a fine grid over the first two axes (no simulation).

    The fine axes span each swept axis's range, geometrically when its values are all
    positive and unevenly spaced by ratio (log axes), linearly otherwise.  Rows run in
    parallel on ``n_workers`` processes (default: all cores); each point uses ``n_draws``
    Gaussian draws of :func:`theory.expected_spectrum` (fixed seed, so the map does not depend
    on the number of workers).  The theory uses the population spectrum of the ensemble
    (``linsim.data.spectrum``), which the "exact" data mode reproduces exactly.

    Returns
    -------
    xarray.Dataset
        ``fine_k_chi`` and ``fine_stress_k`` (explained stress at k*) on dims ``fine_<axis>``.
    """
    import xarray as xr

    if (spec.base.model, spec.base.optimizer) != ("linear", "gd"):
        raise ValueError("the fine theory map is available for the linear model trained by GD")
    if len(spec.axes) < 2:
        raise ValueError("the fine theory map needs at least two axes")
    resolution = int(resolution)
    if resolution < 2:
        raise ValueError(f"resolution must be >= 2, got {resolution}")
    names = list(spec.axes)[:2]
    fine = {n: _fine_axis(spec.axes[n], resolution, n) for n in names}
    n_workers = (os.cpu_count() or 1) if n_workers is None else int(n_workers)
    args = [(spec.base, names, a, fine[names[1]], spec.criterion, n_draws) for a in fine[names[0]]]
    if n_workers <= 1:
        rows = [_theory_row(*arg) for arg in args]
    else:
        with _pool(n_workers) as pool:
            rows = list(pool.map(_theory_row, *zip(*args)))
    kc = np.array([r[0] for r in rows])
    sk = np.array([r[1] for r in rows])
    fdims = tuple(f"fine_{n}" for n in names)
    return xr.Dataset(
        {"fine_k_chi": (fdims, kc), "fine_stress_k": (fdims, sk)},
        coords={f"fine_{n}": fine[n] for n in names},
        attrs={"fine_map_draws": int(n_draws)},
    )


def _is_integer_axis(name: str) -> bool:
    types = {f.name: str(f.type) for f in dataclasses.fields(EnsembleConfig)}
    return types.get(name) == "int"


def _fine_axis(values: np.ndarray, resolution: int, name: str = "") -> np.ndarray:
    """``resolution`` values spanning ``values`` (geometric for log axes); integer axes such as
    ``steps`` are rounded and de-duplicated, so they may have fewer points."""
    lo, hi = float(values.min()), float(values.max())
    fine = np.geomspace(lo, hi, resolution) if is_log_axis(values) else np.linspace(lo, hi, resolution)
    if _is_integer_axis(name):
        fine = np.unique(np.rint(fine))
    return fine


def is_log_axis(values) -> bool:
    """True when the values are positive and closer to geometric than to linear spacing."""
    v = np.sort(np.asarray(values, dtype=np.float64))
    if v.size < 3 or v[0] <= 0:
        return False
    lin = np.std(np.diff(v)) / max(np.mean(np.diff(v)), 1e-300)
    log = np.std(np.diff(np.log(v))) / max(np.mean(np.diff(np.log(v))), 1e-300)
    return bool(log < lin)


def with_values(base: EnsembleConfig, values: dict[str, float]) -> EnsembleConfig:
    """``base`` with axis values substituted (``scale_ratio`` sets ``teacher_scale``).

    Integer fields (``steps``, ``n_classes``, ...) must receive integral values.
    """
    types = {f.name: str(f.type) for f in dataclasses.fields(EnsembleConfig)}
    changes: dict[str, Any] = {}
    for name, value in values.items():
        if name == "scale_ratio":
            continue
        value = float(value)
        if types[name] == "int":
            if value != round(value):
                raise ValueError(f"axis {name!r} takes integers; got {value}")
            value = int(round(value))
        changes[name] = value
    cfg = dataclasses.replace(base, **changes)
    if "scale_ratio" in values:
        cfg = dataclasses.replace(cfg, teacher_scale=float(values["scale_ratio"]) * cfg.init_scale)
    return cfg


# ----------------------------------------------------------------------------- summary
def agreement(ds, prediction: str = "theory") -> dict[str, Any]:
    """Where theory and simulation classify cells the same (ribbon vs no ribbon).

    Parameters
    ----------
    ds : xarray.Dataset from :func:`run_phase`
    prediction : {"theory", "draw"}
        Compare the simulation with the expected spectrum or with the same-draw prediction.

    Returns
    -------
    dict with keys ``agreement`` (fraction of compared cells that agree), ``cells`` (number
    compared), ``agreement_in_regime`` and ``cells_in_regime`` (cells with small logits),
    ``failed`` (cells that failed), ``no_theory`` (cells without a prediction) and
    ``disagreements``: one record per disagreeing cell with its axis values, both ``k_χ``,
    both ``χ_{k*}`` and the logit size.
    """
    axes = list(ds["status"].dims)

    def values(name):  # a variable absent because every cell failed reads as NaN
        return ds[name].values if name in ds else np.full(ds["status"].shape, np.nan)

    sim = values("sim_is_ribbon")
    pred = values(f"{prediction}_is_ribbon")
    ok = ds["status"].values == "ok"
    compared = ok & np.isfinite(sim) & np.isfinite(pred)
    in_regime = compared & (values("in_regime") == 1)
    agree = compared & (sim == pred)
    disagreements = []
    for idx in zip(*np.nonzero(compared & ~agree)):
        rec = {name: float(ds[name].values[i]) for name, i in zip(axes, idx)}
        rec.update(
            sim_k_chi=float(ds["sim_k_chi"].values[idx]),
            predicted_k_chi=float(ds[f"{prediction}_k_chi"].values[idx]),
            sim_stress_k=float(ds["sim_stress_k"].values[idx]),
            predicted_stress_k=float(ds[f"{prediction}_stress_k"].values[idx]),
            logit_rms=float(ds["logit_rms"].values[idx]),
            in_regime=bool(ds["in_regime"].values[idx] == 1),
        )
        disagreements.append(rec)
    n_reg = int(in_regime.sum())
    return {
        "prediction": prediction,
        "agreement": float(agree.sum() / compared.sum()) if compared.any() else math.nan,
        "cells": int(compared.sum()),
        "agreement_in_regime": float((agree & in_regime).sum() / n_reg) if n_reg else math.nan,
        "cells_in_regime": n_reg,
        "failed": int((~ok).sum()),
        "no_theory": int((ok & ~np.isfinite(pred)).sum()),
        "disagreements": disagreements,
    }


def save_dataset(ds, path) -> None:
    """Write a sweep dataset to netCDF (h5netcdf engine)."""
    ds.to_netcdf(path, engine="h5netcdf")
