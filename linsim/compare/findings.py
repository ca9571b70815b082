"""The deep-network study's findings, measured on a trained grid.

Every number here is computed from trajectories (or from results read back from disk); none is
a constant.  The study (``/work/shared/reference/deepnets.md``) reports: (a) the top three InPCA
dimensions of all CIFAR-10 checkpoints explain 76% of the stress; (b) architectures are
distinguishable while optimizer, batch size, weight decay, augmentation and initialization matter
little; (c) wider networks move along the same manifold, only faster; (d) different
initializations converge along similar manifolds.

Configurations and factors
--------------------------
A *configuration* is one deep trajectory (its ``R`` runs are seeds).  Its factor values come
from ``Trajectory.params``.  :data:`FACTORS` registers each factor as a tuple of parameter names,
the first being the factor's *primary* key.  Two configurations **differ only in factor f** when
the primary key of ``f`` differs and every parameter that differs belongs to ``f``'s names (the
learning rate is part of ``optimizer`` and of ``batch_size``, as in the study, where it was
tuned with both); parameters in :data:`IGNORED_PARAMS` (devices, seeds, bookkeeping) never count.

Equal-progress distances
------------------------
Runs are resampled at a common progress grid (:mod:`linsim.compare.progress`), from the smallest
starting progress to the median over configurations of their final seed-mean progress;
``T[g, i, j]`` is the distance between runs ``i`` and ``j`` at grid value ``g``, ``nan`` unless
``g`` lies in both runs' own progress ranges (:func:`linsim.compare.progress.reached`: a run is
not compared beyond where it stopped, nor before where it started).  The distance
between two configurations is ``T`` averaged over the grid and over all pairs of their runs
(distinct runs when a configuration is compared with itself: the seed-to-seed distance),
ignoring the ``nan`` entries; ``nan`` when no pair of runs shares a grid value.

(b) separability of factor ``f`` = mean configuration distance over pairs that differ only in
architecture / the same over pairs that differ only in ``f`` (> 1: the factor matters less than
the architecture).  The permutation importance (scikit-learn; a random forest of 100 trees fitted
on all configuration pairs with one 0/1 feature per factor, "the pair differs in it", scored
in-sample with 10 permutations per factor) says how much each factor explains of the pairwise
distance.  The dendrogram is complete
linkage (``optimal_ordering=True``) on the configuration distances; pairs of configurations
whose progress ranges do not overlap have no distance and enter the dendrogram at the largest
measured distance (their number is ``Findings.dendrogram_filled``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from linsim.registry import Registry

from .progress import (checkpoint_progress, equal_progress, geodesic_gap, progress_distance_tensor,
                       progress_grid, reached, steps_to_progress, tube_width)

__all__ = ["FACTORS", "IGNORED_PARAMS", "Findings", "ProgressStudy", "differing_factor", "measure_findings",
           "progress_study"]

def _check_factor(name: str, params) -> None:
    if not params or not all(isinstance(p, str) and p for p in params):
        raise ValueError(f"factor {name!r} must be a non-empty tuple of parameter names (primary first); "
                         f"got {params!r}")


#: factor name -> parameter names (primary first); a registry, extended by assignment
#: (``FACTORS["name"] = (...)``) or ``FACTORS.register``.
FACTORS: Registry[tuple[str, ...]] = Registry("factor", type=tuple, check=_check_factor, entries={
    "architecture": ("architecture", "depth", "activation", "batch_norm"),
    "width": ("width",),
    "optimizer": ("optimizer", "lr", "momentum", "lr_schedule"),
    "batch_size": ("batch_size", "lr", "steps_per_epoch"),
    "weight_decay": ("weight_decay",),
    "augment": ("augment",),
    "init": ("init", "init_scale", "corner_steps"),
})

#: parameters that never make two configurations different
IGNORED_PARAMS = frozenset({"device", "device_used", "engine", "eval_batch_size", "stopped_at", "split", "seed",
                            "n_runs", "family", "kind", "counterpart_of"})


def differing_factor(params_a, params_b, factors=None):
    """The factor two configurations differ in *only*, or None (see the module docstring).

    Examples
    --------
    >>> a = {"architecture": "mlp", "optimizer": "sgd", "lr": 0.1, "seed": 0}
    >>> differing_factor(a, {**a, "optimizer": "adam", "lr": 0.001, "seed": 3})
    'optimizer'
    >>> differing_factor(a, {**a, "architecture": "cnn", "lr": 0.2}) is None
    True
    """
    factors = FACTORS if factors is None else factors
    keys = (set(params_a) | set(params_b)) - IGNORED_PARAMS
    diff = {k for k in keys if params_a.get(k) != params_b.get(k)}
    if not diff:
        return None
    for name, names in factors.items():
        if names[0] in diff and diff <= set(names):
            return name
    return None


@dataclass(frozen=True)
class ProgressStudy:
    """Equal-progress resampling of every run of every configuration.

    Attributes
    ----------
    names : list of str, one per configuration
    params : list of dict, the configurations' parameters
    times : list of arrays (K_c,)
    progress : list of arrays (R_c, K_c)
    grid : array (G,)
    reached : bool array (M, G), grid values each run reached
    run_config : int array (M,), configuration of each run
    tensor : array (G, M, M), equal-progress distances
    config_distance : array (P, P), averaged as in the module docstring (nan diagonal when R = 1)
    tube : list of arrays (R_c, G), each seed's distance to its configuration's mean model
        (``nan`` where some seed of the configuration has not reached ``g``)
    geodesic_gap : list of arrays (R_c, G), distance to the geodesic point at the same progress
        (``nan`` where the run has not reached ``g``)

    Examples
    --------
    >>> from linsim.compare._examples import tiny_comparison
    >>> st = tiny_comparison().study
    >>> st.tensor.shape, st.config_distance.shape
    ((4, 4, 4), (2, 2))
    """

    names: list
    params: list
    times: list
    progress: list
    grid: np.ndarray
    reached: np.ndarray
    run_config: np.ndarray
    tensor: np.ndarray
    config_distance: np.ndarray
    tube: list
    geodesic_gap: list


def _config_distance(tensor, run_config, P):
    out = np.full((P, P), np.nan)
    for a in range(P):
        ia = np.flatnonzero(run_config == a)
        for b in range(a, P):
            ib = np.flatnonzero(run_config == b)
            block = tensor[:, ia][:, :, ib]  # (G, Ra, Rb)
            if a == b:
                if ia.size < 2:
                    continue
                block = block[:, ~np.eye(ia.size, dtype=bool)]
            if np.isfinite(block).any():
                out[a, b] = out[b, a] = float(np.nanmean(block))
    return out


def progress_study(trajectories, names=None, *, n_grid=50, device=None):
    """Resample every run at equal progress and measure distances, tubes and geodesic gaps.

    Parameters
    ----------
    trajectories : sequence of Trajectory
        One per configuration, on the same labelled samples.
    names : sequence of str, optional
        Configuration names (default ``config0``, ``config1``, ...).
    n_grid : int
        Number ``G`` of progress values (:func:`linsim.compare.progress_grid`).

    Returns
    -------
    ProgressStudy

    Examples
    --------
    >>> from linsim.compare._examples import tiny_trajectories
    >>> st = progress_study(tiny_trajectories(), ["lin", "mlp"], n_grid=5)
    >>> st.grid.shape, st.run_config.tolist()
    ((5,), [0, 0, 1, 1])
    """
    trajs = list(trajectories)
    if not trajs:
        raise ValueError("progress_study needs at least one trajectory")
    names = [f"config{i}" for i in range(len(trajs))] if names is None else [str(n) for n in names]
    if len(names) != len(trajs):
        raise ValueError(f"got {len(names)} names for {len(trajs)} trajectories")
    prog = [checkpoint_progress(t)[0] for t in trajs]
    grid = progress_grid(prog, n_grid, rule="median")
    masks = [reached(p, grid) for p in prog]
    ok = np.concatenate(masks)
    res, tubes, gaps = [], [], []
    for t, p, m in zip(trajs, prog, masks):
        r = equal_progress(t, grid, p)
        tw = tube_width(r, device=device)
        tw[:, ~m.all(axis=0)] = np.nan
        tubes.append(tw)
        g = geodesic_gap(r, grid, trajs[0].labels)
        g[~m] = np.nan
        gaps.append(g)
        # kept for the distance tensor as float32 (the deep nets' output precision): at the default
        # grid size float64 copies of every run would take ~1 GB; the distances accumulate in float64
        res.append(r.astype(np.float32))
    run_config = np.concatenate([np.full(r.shape[0], i) for i, r in enumerate(res)])
    tensor = progress_distance_tensor(np.concatenate(res), device=device)
    tensor[~(ok.T[:, :, None] & ok.T[:, None, :])] = np.nan
    return ProgressStudy(
        names=names, params=[dict(t.params) for t in trajs], times=[t.times for t in trajs], progress=prog,
        grid=grid, reached=ok, run_config=run_config, tensor=tensor,
        config_distance=_config_distance(tensor, run_config, len(trajs)), tube=tubes, geodesic_gap=gaps)


def _pair_means(study, factors):
    P = len(study.params)
    groups = {name: [] for name in factors}
    for a in range(P):
        for b in range(a + 1, P):
            f = differing_factor(study.params[a], study.params[b], factors)
            if f is not None and np.isfinite(study.config_distance[a, b]):
                groups[f].append(study.config_distance[a, b])
    return {f: (float(np.mean(v)) if v else math.nan, len(v)) for f, v in groups.items()}


#: trees of the random forest and permutation repeats of the importance (0/1 features, few pairs)
_FOREST_TREES, _PERMUTATION_REPEATS = 100, 10


def _permutation_importance(study, factors, seed):
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.inspection import permutation_importance

    P = len(study.params)
    rows, y = [], []
    for a in range(P):
        for b in range(a + 1, P):
            pa, pb = study.params[a], study.params[b]
            if not np.isfinite(study.config_distance[a, b]):
                continue
            rows.append([float(pa.get(names[0]) != pb.get(names[0])) for names in factors.values()])
            y.append(study.config_distance[a, b])
    X, y = np.array(rows).reshape(-1, len(factors)), np.array(y)
    varying = X.std(axis=0) > 0
    out = {f: math.nan for f in factors}
    if len(y) < 4 or not varying.any():
        return out
    # a constant column is never split on: fitting on the varying ones gives an equivalent forest and
    # spares permuting columns whose importance is undefined (nan)
    Xv = X[:, varying]
    rf = RandomForestRegressor(n_estimators=_FOREST_TREES, random_state=seed).fit(Xv, y)
    imp = permutation_importance(rf, Xv, y, n_repeats=_PERMUTATION_REPEATS, random_state=seed)
    for j, f in enumerate(f for f, v in zip(factors, varying) if v):
        out[f] = float(imp.importances_mean[j])
    return out


def _dendrogram(study):
    from scipy.cluster.hierarchy import dendrogram, linkage
    from scipy.spatial.distance import squareform

    D = study.config_distance.copy()
    P = D.shape[0]
    np.fill_diagonal(D, 0.0)
    missing = ~np.isfinite(D)
    n_filled = int(missing.sum() // 2)
    if P < 2 or missing.all():
        return np.zeros((0, 4)), list(range(P)), n_filled
    D[missing] = np.nanmax(D)  # no common progress range: as far as the farthest measured pair
    Z = linkage(squareform(D, checks=False), method="complete", optimal_ordering=True)
    return Z, [int(i) for i in dendrogram(Z, no_plot=True)["leaves"]], n_filled


@dataclass(frozen=True)
class Findings:
    """The study's findings measured on one grid (module docstring).

    Attributes
    ----------
    top3_stress : float
        (a) ``chi_3`` of the InPCA of all deep-network checkpoints.
    factor_distance : dict factor -> (mean distance, number of pairs)
        Mean equal-progress configuration distance over pairs differing only in that factor.
    separability : dict factor -> float
        (b) architecture distance / factor distance (nan where a side has no pairs).
    importance : dict factor -> float
        (b) permutation importance for the pairwise distance (nan for factors that never vary).
    linkage : array (P-1, 4) and leaves : list of int
        (b) complete-linkage dendrogram of the configurations and its leaf order.
    seed_distance : float
        Mean distance between seeds of the same configuration.
    width_ratio : float
        (c) width-pair distance / architecture-pair distance.
    steps_to_half : dict config name -> float
        (c) steps for the seed-mean progress to reach 0.5.
    width_speedup : list of (architecture, width, steps_to_half, steps_to_mid)
        (c) the same (and :attr:`steps_to_mid`), for grids that vary in width.
    mid_level : float
        The middle of the equal-progress grid (reached by about half the configurations).
    steps_to_mid : dict config name -> float
        (c) steps for the seed-mean progress to reach ``mid_level`` (short grids may never reach 0.5).
    init_ratio : float
        (d) init-pair distance / architecture-pair distance.
    init_vs_seed : float
        (d) init-pair distance / seed-to-seed distance (~1: inits differ no more than seeds).
    tube_width : dict config name -> float
        Mean tube width over seeds and progress.
    geodesic_gap : dict config name -> float
        Mean distance to the geodesic over seeds and progress.
    dendrogram_filled : int
        Configuration pairs without a common progress range (entered at the largest distance).

    Examples
    --------
    >>> from linsim.compare._examples import tiny_comparison
    >>> f = tiny_comparison().findings
    >>> f.lines()[0].startswith("(a) top 3 InPCA dimensions"), f.factor_distance["architecture"][1]
    (True, 1)
    """

    top3_stress: float
    factor_distance: dict
    separability: dict
    importance: dict
    linkage: np.ndarray
    leaves: list
    seed_distance: float
    width_ratio: float
    steps_to_half: dict
    width_speedup: list = field(default_factory=list)
    init_ratio: float = math.nan
    init_vs_seed: float = math.nan
    tube_width: dict = field(default_factory=dict)
    geodesic_gap: dict = field(default_factory=dict)
    dendrogram_filled: int = 0
    mid_level: float = math.nan
    steps_to_mid: dict = field(default_factory=dict)

    def as_dict(self):
        """JSON-ready dict (nan becomes None).

        Examples
        --------
        >>> f = Findings(0.8, {"architecture": (0.2, 1)}, {"architecture": 1.0}, {"architecture": float("nan")},
        ...              np.zeros((0, 4)), [0], 0.1, float("nan"), {"mlp": 12.0})
        >>> d = f.as_dict(); d["importance"], d["factor_distance"], d["steps_to_half"]
        ({'architecture': None}, {'architecture': [0.2, 1]}, {'mlp': 12.0})
        """
        def clean(v):
            if isinstance(v, dict):
                return {str(k): clean(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [clean(x) for x in v]
            if isinstance(v, np.ndarray):
                return clean(v.tolist())
            if isinstance(v, (float, np.floating)):
                return None if not np.isfinite(v) else float(v)
            if isinstance(v, np.integer):
                return int(v)
            return v
        return {k: clean(getattr(self, k)) for k in self.__dataclass_fields__}

    def lines(self):
        """One printable sentence per finding, each with its measured number."""
        def f(x, fmt=".3g"):
            return "n/a" if x is None or not np.isfinite(x) else format(x, fmt)

        out = [f"(a) top 3 InPCA dimensions of all deep-net checkpoints explain {f(100 * self.top3_stress, '.1f')}% "
               "of the stress (the study: 76% on CIFAR-10)."]
        sep = ", ".join(f"{k} {f(v)} ({self.factor_distance[k][1]} pairs)" for k, v in self.separability.items()
                        if k != "architecture")
        out.append(f"(b) architecture-pair distance / factor-pair distance (>1: the factor matters less than the "
                   f"architecture; {self.factor_distance['architecture'][1]} architecture pairs): {sep}.")
        imp = ", ".join(f"{k} {f(v)}" for k, v in self.importance.items())
        out.append(f"(b) permutation importance for the pairwise distance: {imp}.")
        out.append(f"(c) width-pair distance / architecture-pair distance = {f(self.width_ratio)}; steps to "
                   f"progress 0.5 (and to {f(self.mid_level, '.3f')}, mid-grid) by width: "
                   + (", ".join(f"{a} w={w:g}: {f(s, '.0f')} ({f(m, '.0f')})" for a, w, s, m in self.width_speedup)
                      or "n/a") + ".")
        out.append(f"(d) init-pair distance / architecture-pair distance = {f(self.init_ratio)}; / seed-to-seed "
                   f"distance = {f(self.init_vs_seed)}.")
        return out


def measure_findings(study, deep_stress, *, factors=None, seed=0):
    """Measure findings (a)-(d) from a :class:`ProgressStudy` and the deep-only stress curve.

    Parameters
    ----------
    study : ProgressStudy
    deep_stress : array (k,)
        Explained stress of the InPCA of all deep checkpoints (``JointEmbedding.views.deep``).
    factors : dict, optional
        Factor registry (default :data:`FACTORS`).
    seed : int
        Seed of the random forest and of the permutations.

    Returns
    -------
    Findings

    Examples
    --------
    >>> from linsim.compare._examples import tiny_comparison
    >>> comp = tiny_comparison()
    >>> f = measure_findings(comp.study, [0.5, 0.7, 0.9])
    >>> f.top3_stress, sorted(f.separability)[:2]
    (0.9, ['architecture', 'augment'])
    """
    factors = FACTORS if factors is None else factors
    deep_stress = np.asarray(deep_stress, dtype=np.float64)
    top3 = float(deep_stress[min(2, deep_stress.size - 1)]) if deep_stress.size else math.nan
    pairs = _pair_means(study, factors)
    arch = pairs.get("architecture", (math.nan, 0))[0]
    sep = {f: (arch / d if d and np.isfinite(d) and np.isfinite(arch) else math.nan) for f, (d, _) in pairs.items()}
    Z, leaves, n_filled = _dendrogram(study)
    diag = np.diagonal(study.config_distance)
    seed_d = float(np.nanmean(diag)) if np.isfinite(diag).any() else math.nan
    steps_half = {n: steps_to_progress(t, p, 0.5) for n, t, p in zip(study.names, study.times, study.progress)}
    mid = float(0.5 * (study.grid[0] + study.grid[-1]))
    steps_mid = {n: steps_to_progress(t, p, mid) for n, t, p in zip(study.names, study.times, study.progress)}
    widths = {p.get("width") for p in study.params}
    speed = []
    if len(widths) > 1:
        speed = sorted((str(p.get("architecture")), float(p.get("width")), steps_half[n], steps_mid[n])
                       for n, p in zip(study.names, study.params))
    width_d = pairs.get("width", (math.nan, 0))[0]
    init_d = pairs.get("init", (math.nan, 0))[0]
    ratio = (lambda a, b: a / b if np.isfinite(a) and np.isfinite(b) and b > 0 else math.nan)
    return Findings(
        top3_stress=top3, factor_distance=pairs, separability=sep,
        importance=_permutation_importance(study, factors, seed), linkage=Z, leaves=leaves,
        seed_distance=seed_d, width_ratio=ratio(width_d, arch), steps_to_half=steps_half, width_speedup=speed,
        init_ratio=ratio(init_d, arch), init_vs_seed=ratio(init_d, seed_d),
        dendrogram_filled=n_filled, mid_level=mid, steps_to_mid=steps_mid,
        tube_width={n: _nanmean(t) for n, t in zip(study.names, study.tube)},
        geodesic_gap={n: _nanmean(g) for n, g in zip(study.names, study.geodesic_gap)})


def _nanmean(x):
    x = np.asarray(x, dtype=np.float64)
    return float(np.nanmean(x)) if np.isfinite(x).any() else math.nan
