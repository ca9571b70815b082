"""One comparison of a trained deep grid with the linear theory: counterparts, embedding, findings.

:func:`compare` takes the deep configurations (one ``train`` Trajectory each: logits of ``R``
seeds at ``K`` checkpoint steps on the training-evaluation samples), builds their linear
counterparts, embeds everything jointly, resamples the deep runs at equal progress, measures the
study's findings and the theory's controls, and returns a :class:`Comparison` holding every
number (written to disk by :mod:`linsim.compare.report`).

Choices (all in :class:`CompareConfig`)
---------------------------------------
* One evaluation set: configurations are grouped by their labelled evaluation samples; the
  largest group is compared and the others are listed in ``Comparison.notes``.
* Counterparts (:mod:`linsim.compare.counterparts`): ``linear``, ``softmax`` and
  ``random_features`` once, on the data and checkpoint steps of the first configuration; ``ntk``
  once per distinct network at initialization (architecture, width, depth, activation,
  BatchNorm, init, init scale, seed), on the steps of the first configuration with that network.
  The NTK kernel machine is trained on at most ``ntk_max_train`` training samples (a seeded
  subset; ``None`` = all) because its Gram matrix and Jacobians grow with ``n_train``.
* Names: a configuration is named by its architecture and the values of the factors
  (:data:`linsim.compare.findings.FACTORS`) that vary across the grid.
* Resume: with ``cache_dir``, every NTK counterpart (the expensive unit) is written there as
  soon as it is computed (``ntk-<hash>.nc``, an atomic, checksummed Trajectory file holding its
  NTK spectrum too) and read back instead of recomputed on the next run; the hash covers the
  network, the data set, the checkpoint steps, the NTK settings and the linsim version.  A
  corrupt cache file is recomputed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .controls import ControlRow, theory_controls
from .counterparts import COUNTERPARTS, build_counterparts, problem_from_deep
from .findings import FACTORS, Findings, ProgressStudy, measure_findings, progress_study
from .joint import JointEmbedding, joint_embedding

__all__ = ["CompareConfig", "Comparison", "compare", "config_names", "load_grid_results"]

_NETWORK_KEYS = ("architecture", "width", "depth", "activation", "batch_norm", "init", "init_scale", "seed",
                 "corner_steps")


@dataclass(frozen=True)
class CompareConfig:
    """Settings of :func:`compare`.

    Attributes
    ----------
    chi : float
        Explained-stress threshold of ``k_chi`` (default 0.9).
    k_star : int
        Ribbon criterion ``k_chi <= k_star`` (default 3).
    n_components : int
        InPCA components of every view (default 10).
    n_grid : int
        Equal-progress grid size (default 50).
    counterparts : tuple of str
        Counterpart names (:data:`linsim.compare.counterparts.COUNTERPARTS`).
    counterpart_runs : int
        Runs of every counterpart (default 2).
    ntk_max_train : int or None
        Training samples of the NTK kernel machine (default 500; None = all).
    ntk_runs : int
        Networks (runs) whose NTK is computed per distinct network (default 1).
    ntk_dtype : {"float32", "float64"}
        Precision of the NTK Jacobians (default float32, the networks' own training precision;
        the kernel is accumulated in float64).
    rf_features : int
        Random ReLU features of the ``random_features`` counterpart (default 512).
    n_draws : int
        Monte-Carlo draws of the theory's expected stress (default 16).
    seed : int
    device : str or None
        Device of the distance kernels and NTK Jacobians (None: CUDA when available).

    Examples
    --------
    >>> CompareConfig(chi=0.8).k_star
    3
    >>> CompareConfig(chi=1.5)
    Traceback (most recent call last):
    ...
    ValueError: CompareConfig.chi must be in (0, 1); got 1.5
    """

    chi: float = 0.9
    k_star: int = 3
    n_components: int = 10
    n_grid: int = 50
    counterparts: tuple = ("linear", "softmax", "ntk", "random_features")
    counterpart_runs: int = 2
    ntk_max_train: int | None = 500
    ntk_runs: int = 1
    ntk_dtype: str = "float32"
    rf_features: int = 512
    n_draws: int = 16
    seed: int = 0
    device: str | None = None

    def __post_init__(self):
        if not 0 < self.chi < 1:
            raise ValueError(f"CompareConfig.chi must be in (0, 1); got {self.chi}")
        for name in ("k_star", "n_components", "n_grid", "counterpart_runs", "n_draws", "ntk_runs", "rf_features"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < (2 if name == "n_grid" else 1):
                raise ValueError(f"CompareConfig.{name} must be a positive integer; got {v!r}")
        if self.ntk_max_train is not None and int(self.ntk_max_train) < 2:
            raise ValueError(f"CompareConfig.ntk_max_train must be >= 2 or None; got {self.ntk_max_train}")
        if self.ntk_dtype not in ("float32", "float64"):
            raise ValueError(f"CompareConfig.ntk_dtype must be 'float32' or 'float64'; got {self.ntk_dtype!r}")
        object.__setattr__(self, "counterparts", tuple(self.counterparts))
        unknown = [k for k in self.counterparts if k not in COUNTERPARTS]
        if unknown:
            raise ValueError(f"CompareConfig.counterparts: unknown counterpart {unknown[0]!r}; valid: "
                             f"{sorted(COUNTERPARTS)}")


@dataclass(frozen=True)
class Comparison:
    """Everything one comparison measured (see :mod:`linsim.compare.report` for the file).

    Attributes
    ----------
    config : CompareConfig
    names : list of str
        Deep configuration names.
    deep : list of Trajectory
    linear : list of Trajectory
        The counterparts (``params["family"]`` names them).
    families : list of str
        Family of every trajectory in ``deep + linear`` (architecture or counterpart name).
    joint : JointEmbedding
    study : ProgressStudy
    findings : Findings
    controls : list of ControlRow
    boundary : tuple (c values, critical ratios)
        The theory's ribbon boundary for the phase diagram.
    notes : list of str

    Examples
    --------
    >>> from linsim.compare._examples import tiny_comparison
    >>> comp = tiny_comparison()
    >>> comp.names, len(comp.controls), sorted(comp.summary())[:3]
    (['linear', 'mlp'], 2, ['deep_stress', 'init', 'joint_stress'])
    """

    config: CompareConfig
    names: list
    deep: list
    linear: list
    families: list
    joint: JointEmbedding
    study: ProgressStudy
    findings: Findings
    controls: list
    boundary: tuple
    notes: list = field(default_factory=list)

    def summary(self):
        """The JSON summary (``linsim compare --json``): at least the keys of issue 8."""
        v = self.joint.views
        n = self.config.n_components
        rows = [r.as_dict() for r in self.controls]
        for r in rows:
            for k, x in r.items():
                if isinstance(x, float) and not math.isfinite(x):
                    r[k] = None
        f = self.findings.as_dict()
        return {
            "deep_stress": [float(x) for x in v.deep[:n]],
            "joint_stress": [float(x) for x in v.all[:n]],
            "linear_basis_all": [float(x) for x in v.linear_basis_all[:n]],
            "linear_basis_deep": [float(x) for x in v.linear_basis_deep[:n]],
            "top3_deep_stress": f["top3_stress"],
            "separability": {k: x for k, x in f["separability"].items() if k != "architecture"},
            "permutation_importance": f["importance"],
            "width": {"width_over_architecture_distance": f["width_ratio"],
                      "steps_to_progress_half": [{"architecture": a, "width": w, "steps": s}
                                                 for a, w, s, _ in f["width_speedup"]],
                      "mid_level": f["mid_level"],
                      "steps_to_mid_level": [{"architecture": a, "width": w, "steps": m}
                                             for a, w, _, m in f["width_speedup"]]},
            "init": {"init_over_architecture_distance": f["init_ratio"],
                     "init_over_seed_distance": f["init_vs_seed"]},
            "theory_vs_deep": rows,
            "n_configs": len(self.names),
            "n_points": int(self.joint.member.size),
            "notes": list(self.notes),
        }


def config_names(params_list, factors=None):
    """Readable unique names: architecture plus the factor values that vary across configurations.

    Examples
    --------
    >>> config_names([{"architecture": "mlp", "lr": 0.1, "optimizer": "sgd"},
    ...               {"architecture": "mlp", "lr": 0.01, "optimizer": "adam"}])
    ['mlp optimizer=sgd lr=0.1', 'mlp optimizer=adam lr=0.01']
    """
    factors = FACTORS if factors is None else factors
    keys = list(dict.fromkeys(k for names in factors.values() for k in names if k != "architecture"))
    varying = [k for k in keys if len({json.dumps(p.get(k), default=str) for p in params_list}) > 1]
    out, seen = [], {}
    for p in params_list:
        name = " ".join([str(p.get("architecture", "model"))] + [f"{k}={p.get(k)}" for k in varying])
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} #{seen[name]}")
    return out


def load_grid_results(directory):
    """The ``train`` trajectories of every complete configuration of a ``linsim train`` folder.

    Reads the manifest ``index.json`` and each result file with checksums verified
    (:meth:`linsim.deep.train.TrainResult.load_trajectories`).

    Returns
    -------
    trajectories : list of Trajectory
    notes : list of str
        Configurations skipped (not complete, or every run diverged).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     load_grid_results(d)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: ... is not a `linsim train` output folder: no index.json in it
    """
    from linsim.deep.train import TrainResult

    d = Path(directory)
    manifest = d / "index.json"
    if not manifest.is_file():
        raise FileNotFoundError(f"{str(d)!r} is not a `linsim train` output folder: no index.json in it")
    configs = json.loads(manifest.read_text()).get("configs", [])
    trajs, notes = [], []
    for item in configs:
        if item.get("status") != "complete":
            notes.append(f"{item.get('file')}: status {item.get('status')!r}, skipped")
            continue
        train, _, _, _ = TrainResult.load_trajectories(d / item["file"])
        if train.n_runs == 0:
            notes.append(f"{item['file']}: every run diverged, skipped")
            continue
        trajs.append(train)
    if not trajs:
        raise ValueError(f"no complete configuration with finite runs in {str(d)!r}")
    return trajs, notes


def _group_by_eval_set(trajs):
    groups = {}
    for i, t in enumerate(trajs):
        key = (t.n_samples, t.n_outputs, None if t.labels is None else t.labels.tobytes(),
               None if t.inputs is None else np.asarray(t.inputs, dtype=np.float32).tobytes())
        groups.setdefault(key, []).append(i)
    return sorted(groups.values(), key=len, reverse=True)


def _subset_problem(problem, max_train, seed):
    from dataclasses import replace

    n = problem.X_train.shape[0]
    if max_train is None or n <= max_train:
        return problem
    idx = np.sort(np.random.default_rng(np.random.SeedSequence([seed, 7])).choice(n, int(max_train), replace=False))
    return replace(problem, X_train=problem.X_train[idx], y_train=problem.y_train[idx])


def _ntk_cache_file(cache_dir, traj, config):
    import hashlib

    from linsim.provenance import linsim_version

    p = traj.params
    ident = {"network": {k: p.get(k) for k in _NETWORK_KEYS},
             "data": {k: v for k, v in p.items() if k.startswith(("dataset", "data_")) or k in
                      ("n_train", "n_test", "eval_stride")},
             "steps": [float(t) for t in traj.times], "ntk_max_train": config.ntk_max_train,
             "ntk_runs": config.ntk_runs, "ntk_dtype": config.ntk_dtype, "seed": config.seed,
             "linsim": linsim_version()}
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return Path(cache_dir) / f"ntk-{digest}.nc"


def _ntk_counterpart(t, config, cache_dir, say):
    """The NTK counterpart trajectory of ``t``'s network and its spectrum (from the cache if there)."""
    from linsim.storage import CorruptFileError
    from linsim.trajectory import Trajectory

    path = None if cache_dir is None else _ntk_cache_file(cache_dir, t, config)
    if path is not None and path.is_file():
        try:
            tr = Trajectory.load(path)
            say(f"NTK of {t.params.get('architecture')}: read from {path.name}")
            return tr, tr.arrays["ntk_spectrum"]
        except (CorruptFileError, OSError, ValueError, KeyError) as exc:
            say(f"cache file {path.name} unreadable ({exc}); recomputing")
    say(f"NTK of {t.params.get('architecture')}")
    prob = _subset_problem(problem_from_deep(t, n_runs=config.ntk_runs, seed=config.seed),
                           config.ntk_max_train, config.seed)
    trajs, records = build_counterparts(prob, ["ntk"], device=config.device, ntk_dtype=config.ntk_dtype)
    tr = trajs["ntk"]
    tr = Trajectory(outputs=tr.outputs, times=tr.times, params={**tr.params,
                    "family": f"ntk:{t.params.get('architecture')}"}, inputs=tr.inputs, labels=tr.labels,
                    arrays={"ntk_spectrum": records[0].spectrum})
    if path is not None:
        from linsim.storage import check_writable_dir

        check_writable_dir(path.parent)
        tr.save(path)
    return tr, records[0].spectrum


def compare(deep, *, config=None, names=None, progress=None, cache_dir=None):
    """Compare deep-network trajectories with their linear counterparts and the theory.

    Parameters
    ----------
    deep : sequence of Trajectory
        ``train`` trajectories of deep configurations written by :func:`linsim.deep.train`.
    config : CompareConfig, optional
    names : sequence of str, optional
        Configuration names (default :func:`config_names`).
    progress : callable, optional
        Called with a short string as each stage starts.
    cache_dir : path, optional
        Where NTK counterparts are written as they finish and found again on a rerun (module
        docstring); None: no cache.

    Returns
    -------
    Comparison

    Examples
    --------
    >>> from linsim.compare._examples import tiny_trajectories
    >>> comp = compare(tiny_trajectories(), config=CompareConfig(n_components=3, n_grid=4, counterparts=("linear",),
    ...                                                          counterpart_runs=1, n_draws=2, device="cpu"))
    >>> comp.families
    ['linear', 'mlp', 'linear']
    >>> comp.joint.views.deep.shape, [r.config for r in comp.controls]
    ((3,), ['linear', 'mlp'])
    """
    import theory

    config = CompareConfig() if config is None else config
    say = progress or (lambda msg: None)
    deep = list(deep)
    notes = []
    groups = _group_by_eval_set(deep)
    if len(groups) > 1:
        notes.append(f"{len(deep) - len(groups[0])} configurations evaluated on other samples were left out "
                     f"(only one evaluation set can be embedded jointly)")
    deep = [deep[i] for i in groups[0]]
    names = config_names([t.params for t in deep]) if names is None else [names[i] for i in groups[0]]

    say("linear counterparts")
    base = problem_from_deep(deep[0], n_runs=config.counterpart_runs, seed=config.seed)
    plain = [k for k in config.counterparts if k != "ntk"]
    options = {"random_features": {"n_features": config.rf_features}} if "random_features" in plain else {}
    linear, _ = build_counterparts(base, plain, device=config.device, options=options) if plain else ({}, [])
    linear = list(linear.values())
    ntk_spectra = {}
    if "ntk" in config.counterparts:
        for t in deep:
            key = tuple(t.params.get(k) for k in _NETWORK_KEYS)
            if key in ntk_spectra:
                continue
            tr, spectrum = _ntk_counterpart(t, config, cache_dir, say)
            linear.append(tr)
            ntk_spectra[key] = spectrum
        if config.ntk_max_train is not None and base.X_train.shape[0] > config.ntk_max_train:
            notes.append(f"NTK kernel machines trained on a seeded subset of {config.ntk_max_train} of the "
                         f"{base.X_train.shape[0]} training samples")
    families = [str(t.params.get("architecture")) for t in deep] + [str(t.params["family"]) for t in linear]

    say("joint InPCA")
    joint = joint_embedding(deep, linear, n_components=config.n_components, device=config.device)
    say("equal-progress study")
    study = progress_study(deep, names, n_grid=config.n_grid, device=config.device)
    findings = measure_findings(study, joint.views.deep, seed=config.seed)
    if findings.dendrogram_filled:
        notes.append(f"{findings.dendrogram_filled} configuration pairs share no progress range; the dendrogram "
                     "places them at the largest measured distance")

    say("theory controls")
    rows = []
    for name, t in zip(names, deep):
        key = tuple(t.params.get(k) for k in _NETWORK_KEYS)
        rows.append(theory_controls(name, t, base.X_train, ntk_spectra.get(key), chi=config.chi,
                                    n_components=config.n_components, n_draws=config.n_draws,
                                    device=config.device))
    boundary = _boundary(rows, deep, base, config, theory)
    return Comparison(config=config, names=names, deep=deep, linear=linear, families=families, joint=joint,
                      study=study, findings=findings, controls=rows, boundary=boundary, notes=notes)


def _boundary(rows, deep, base, config, theory):
    """Theory's critical ratio against c at the grid's median T (for the phase figure)."""
    cs = [r.c_input for r in rows] + [r.c_ntk for r in rows]
    cs = [c for c in cs if np.isfinite(c)]
    hi = max([2.0] + [1.2 * c for c in cs])
    c_values = np.linspace(0.02, hi, 24)
    fixed = {"T": float(np.median([r.steps for r in rows])), "d": int(base.flat_train.shape[1]),
             "n_classes": int(deep[0].n_outputs), "n_runs": int(np.median([t.n_runs for t in deep]))}
    ratio = theory.phase_boundary("c", c_values, fixed, chi=config.chi, k_star=config.k_star)
    return c_values, np.asarray(ratio, dtype=np.float64)
