"""Axis specifications of a phase sweep: names, values, seeds, and checks made before computing.

An axis name is a field of :class:`linsim.ensemble.EnsembleConfig` (``slope``, ``steps``,
``teacher_scale``, ``n_classes``, ``n_runs``, ...) or ``scale_ratio``, which sets
``teacher_scale = scale_ratio * init_scale``.  Short aliases: ``c`` (slope), ``T`` (steps),
``ratio`` (scale_ratio), ``C`` (n_classes), ``R`` (n_runs); kebab-case (``n-runs``) is accepted.

Seeds: cell ``i`` (C order of the grid) gets child ``i`` of
``SeedSequence(root_seed).spawn(n_cells)``; replicate 0 of the cell uses that child's first
32-bit word, replicate ``r >= 1`` the first word of ``child.spawn(replicates - 1)[r - 1]``.
Seeds therefore do not depend on the engine, the worker count or the order of execution, and
adding replicates keeps the existing ones.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import typing
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from linsim.ensemble import EnsembleConfig
from linsim.metrics import RibbonCriterion

__all__ = ["ALIASES", "AXIS_INFO", "AxisInfo", "PhaseSpec", "Unit", "axis_info", "canonical_axis",
           "fine_axis", "is_integer_axis", "is_log_axis", "with_values"]

ALIASES = {"c": "slope", "T": "steps", "ratio": "scale_ratio", "C": "n_classes", "R": "n_runs"}


@dataclass(frozen=True)
class AxisInfo:
    """How a swept quantity is shown: its symbol, a CF ``long_name`` and ``units``.

    Examples
    --------
    >>> AXIS_INFO["steps"].symbol
    'T'
    """

    symbol: str
    long_name: str
    units: str = "1"


#: Symbols and descriptions of the quantities that can be swept (others get a generic entry).
AXIS_INFO: dict[str, AxisInfo] = {
    "slope": AxisInfo("c", "decay rate c of the input-correlation eigenvalues (λ_k = λ₁ e^{-c(k-1)})"),
    "scale_ratio": AxisInfo("ρ/σ₀", "output-to-weight scale ratio ρ/σ₀ (teacher scale over initial-weight scale)"),
    "steps": AxisInfo("T", "number of gradient-descent steps T (last checkpoint)"),
    "teacher_scale": AxisInfo("ρ", "teacher weight scale ρ"),
    "init_scale": AxisInfo("σ₀", "initial weight scale σ₀"),
    "n_classes": AxisInfo("C", "number of classes C"),
    "n_runs": AxisInfo("R", "number of training runs R per ensemble"),
    "n_samples": AxisInfo("n", "number of training samples n"),
    "dim": AxisInfo("d", "input dimension d"),
    "lambda_1": AxisInfo("λ₁", "largest input-correlation eigenvalue λ₁"),
    "lr": AxisInfo("η", "learning rate η"),
    "n_checkpoints": AxisInfo("K", "number of log-spaced checkpoints K"),
    "batch_size": AxisInfo("B", "SGD batch size B"),
    "hidden": AxisInfo("h", "hidden width h of the two-layer network"),
    "kernel_bandwidth": AxisInfo("ℓ", "kernel bandwidth ℓ"),
}


def axis_info(name: str) -> AxisInfo:
    """Symbol, long name and units of an axis (canonical name or alias).

    Examples
    --------
    >>> axis_info("ratio").symbol, axis_info("c").units
    ('ρ/σ₀', '1')
    """
    key = canonical_axis(name)
    return AXIS_INFO.get(key, AxisInfo(key, f"EnsembleConfig.{key}"))


def canonical_axis(name: str) -> str:
    """The EnsembleConfig field (or ``scale_ratio``) an axis name refers to.

    Examples
    --------
    >>> canonical_axis("c"), canonical_axis("n-runs"), canonical_axis("ratio")
    ('slope', 'n_runs', 'scale_ratio')
    """
    if not isinstance(name, str):
        raise TypeError(f"axis names are strings; got {name!r}")
    name = ALIASES.get(name, name)
    name = ALIASES.get(name.replace("-", "_"), name.replace("-", "_"))
    fields = {f.name for f in dataclasses.fields(EnsembleConfig)}
    if name == "seed":
        raise ValueError("'seed' cannot be swept: cell seeds derive from the root seed (use replicates)")
    if name != "scale_ratio" and name not in fields:
        raise ValueError(
            f"unknown sweep axis {name!r}; choose an EnsembleConfig field "
            f"({', '.join(sorted(fields - {'seed'}))}), 'scale_ratio' or an alias {sorted(ALIASES)}"
        )
    return name


@functools.cache
def _integer_fields() -> frozenset[str]:
    """EnsembleConfig fields annotated ``int`` (resolved annotations, not their spelling)."""
    hints = typing.get_type_hints(EnsembleConfig)
    return frozenset(f.name for f in dataclasses.fields(EnsembleConfig) if hints.get(f.name) is int)


def is_integer_axis(name: str) -> bool:
    """True for axes that take integers (``steps``, ``n_classes``, ``n_runs``, ...).

    Examples
    --------
    >>> is_integer_axis("steps"), is_integer_axis("slope")
    (True, False)
    """
    return canonical_axis(name) in _integer_fields()


def is_log_axis(values) -> bool:
    """True when the values are positive and closer to geometric than to linear spacing.

    Examples
    --------
    >>> is_log_axis(np.geomspace(0.1, 100, 12)), is_log_axis(np.linspace(0, 2, 12))
    (True, False)
    """
    v = np.sort(np.asarray(values, dtype=np.float64))
    if v.size < 3 or v[0] <= 0:
        return False
    lin = np.std(np.diff(v)) / max(np.mean(np.diff(v)), 1e-300)
    log = np.std(np.diff(np.log(v))) / max(np.mean(np.diff(np.log(v))), 1e-300)
    return bool(log < lin)


def fine_axis(values, resolution: int, name: str = "") -> np.ndarray:
    """``resolution`` values spanning ``values`` (geometric on log axes, linear otherwise);
    integer axes such as ``steps`` are rounded and de-duplicated, so they may have fewer.

    Examples
    --------
    >>> fine_axis([10, 100, 1000], 3, "steps").tolist()
    [10.0, 100.0, 1000.0]
    """
    values = np.asarray(values, dtype=np.float64)
    lo, hi = float(values.min()), float(values.max())
    fine = np.geomspace(lo, hi, resolution) if is_log_axis(values) else np.linspace(lo, hi, resolution)
    if name and is_integer_axis(name):
        fine = np.unique(np.rint(fine))
    return fine


def with_values(base: EnsembleConfig, values: Mapping[str, float]) -> EnsembleConfig:
    """``base`` with axis values substituted (``scale_ratio`` sets ``teacher_scale``).

    Names are axis names or aliases (:func:`canonical_axis`).  Integer fields (``steps``,
    ``n_classes``, ...) must receive integral values.

    Examples
    --------
    >>> cfg = with_values(EnsembleConfig(init_scale=0.01), {"scale_ratio": 10.0, "T": 20.0})
    >>> round(cfg.teacher_scale, 12), cfg.steps
    (0.1, 20)
    """
    changes: dict[str, Any] = {}
    ratio = None
    for name, value in values.items():
        key = canonical_axis(name)
        if key in changes or (key == "scale_ratio" and ratio is not None):
            raise ValueError(f"axis {key!r} given twice (as {name!r} too)")
        value = float(value)
        if key == "scale_ratio":
            ratio = value
            continue
        if key in _integer_fields():
            if value != round(value):
                raise ValueError(f"axis {key!r} takes integers; got {value}")
            value = int(round(value))
        changes[key] = value
    cfg = dataclasses.replace(base, **changes)
    if ratio is not None:
        cfg = dataclasses.replace(cfg, teacher_scale=ratio * cfg.init_scale)
    return cfg


@dataclass(frozen=True)
class Unit:
    """One simulation of a sweep: a grid cell and a replicate, with its configuration.

    Attributes
    ----------
    index : tuple of int
        Grid index (one entry per axis).
    flat : int
        C-order position of the cell in the grid.
    replicate : int
        Replicate number, 0-based.
    config : EnsembleConfig
        The cell's configuration with this replicate's seed.

    Examples
    --------
    >>> u = PhaseSpec(EnsembleConfig(), {"c": [0.0, 1.0]}, replicates=2).units()[3]
    >>> u.index, u.flat, u.replicate, u.config.slope
    ((1,), 1, 1, 1.0)
    """

    index: tuple[int, ...]
    flat: int
    replicate: int
    config: EnsembleConfig


def _axis_items(axes) -> list[tuple[str, Any]]:
    if isinstance(axes, Mapping):
        return list(axes.items())
    try:
        items = [tuple(pair) for pair in axes]
    except TypeError:
        raise TypeError(f"axes must be a mapping or a sequence of (name, values) pairs; got {axes!r}") from None
    for pair in items:
        if len(pair) != 2:
            raise TypeError(f"axes pairs must be (name, values); got {pair!r}")
    return items


@dataclass(frozen=True)
class PhaseSpec:
    """What to sweep.

    Parameters
    ----------
    base : EnsembleConfig
        The ensemble every cell starts from.
    axes : mapping or sequence of (name, values) pairs
        One to three axes, in order (first axis = x of the figure, second = y).  A name given
        twice (also as an alias, e.g. ``c`` and ``slope``) is refused.  Values of integer
        axes are rounded to integers and de-duplicated, with a warning (recorded in
        :attr:`notes`); a repeated value on a real axis is refused.
    criterion : RibbonCriterion
        Hyper-ribbon criterion ``k_χ ≤ k*`` (defaults χ = 0.9, k* = 3).
    root_seed : int >= 0
        Root of the per-cell seeds.
    replicates : int >= 1
        Independent seeds per cell; metrics are averaged over them (and their spread kept).

    Attributes
    ----------
    axes : dict of str -> float64 array
        Canonical names and values.
    notes : tuple of str
        What was adjusted (rounded integer axes).

    Examples
    --------
    >>> spec = PhaseSpec(EnsembleConfig(), [("c", [0.0, 1.0]), ("T", [10, 100, 1000])])
    >>> spec.shape, spec.axes["steps"].tolist()
    ((2, 3), [10.0, 100.0, 1000.0])
    """

    base: EnsembleConfig
    axes: Any
    criterion: RibbonCriterion = field(default_factory=RibbonCriterion)
    root_seed: int = 0
    replicates: int = 1
    notes: tuple[str, ...] = field(default=(), init=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.base, EnsembleConfig):
            raise TypeError(f"PhaseSpec.base must be an EnsembleConfig; got {type(self.base).__name__}")
        if not isinstance(self.criterion, RibbonCriterion):
            raise TypeError(f"PhaseSpec.criterion must be a RibbonCriterion; got {self.criterion!r}")
        for name, minimum in (("root_seed", 0), ("replicates", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
                raise ValueError(f"PhaseSpec.{name} must be an integer >= {minimum}; got {value!r}")
        items = _axis_items(self.axes)
        if not 1 <= len(items) <= 3:
            raise ValueError(f"a phase sweep takes 1 to 3 axes; got {len(items)}")
        axes: dict[str, np.ndarray] = {}
        given: dict[str, str] = {}
        notes = []
        for name, values in items:
            key = canonical_axis(name)
            if key in axes:
                raise ValueError(f"axis {key!r} given twice (as {given[key]!r} and {name!r}); give each axis once")
            arr = np.asarray(values)
            if arr.dtype.kind in "cOUSb":
                raise TypeError(f"axis {name!r} must hold real numbers; got dtype {arr.dtype}")
            arr = arr.astype(np.float64)
            if arr.ndim != 1 or arr.size == 0:
                raise ValueError(f"axis {name!r} must be a non-empty 1-D array; got shape {arr.shape}")
            bad = np.flatnonzero(~np.isfinite(arr))
            if bad.size:
                raise ValueError(f"axis {name!r} contains NaN or inf at index {bad[0]}")
            if is_integer_axis(key) and (np.any(arr != np.rint(arr)) or np.unique(arr).size < arr.size):
                rounded = np.rint(arr)
                _, first = np.unique(rounded, return_index=True)
                kept = rounded[np.sort(first)]
                if np.any(arr != rounded):
                    note = (f"axis {key!r} takes integers: rounded {np.array2string(arr, precision=4)} "
                            f"to {kept.astype(np.int64).tolist()}")
                else:
                    note = f"axis {key!r}: repeated values removed, {kept.astype(np.int64).tolist()} kept"
                if kept.size < arr.size:
                    note += f" ({arr.size - kept.size} duplicate(s) removed)"
                notes.append(note)
                warnings.warn(note, UserWarning, stacklevel=3)
                arr = kept
            elif np.unique(arr).size < arr.size:
                raise ValueError(f"axis {name!r} repeats a value: {arr.tolist()}")
            axes[key] = arr
            given[key] = name
        if "scale_ratio" in axes and "teacher_scale" in axes:
            raise ValueError("sweep either scale_ratio or teacher_scale, not both")
        n_points = self.base.n_runs * (self.base.n_checkpoints + 1)
        if self.criterion.k_star >= n_points and "n_runs" not in axes:
            raise ValueError(
                f"criterion k* = {self.criterion.k_star} must be smaller than the number of "
                f"points per cell (about {n_points})"
            )
        object.__setattr__(self, "axes", axes)
        object.__setattr__(self, "notes", tuple(notes))

    # ------------------------------------------------------------------ grid
    @property
    def shape(self) -> tuple[int, ...]:
        """Grid shape, one entry per axis."""
        return tuple(v.size for v in self.axes.values())

    @property
    def n_cells(self) -> int:
        """Number of grid cells (replicates not counted)."""
        return int(np.prod(self.shape))

    def cell_config(self, index: tuple[int, ...], seed: int) -> EnsembleConfig:
        """The ensemble configuration of the cell at a grid index, with ``seed``.

        Examples
        --------
        >>> PhaseSpec(EnsembleConfig(), {"c": [0.0, 1.0]}).cell_config((1,), 7).slope
        1.0
        """
        values = {name: vals[i] for (name, vals), i in zip(self.axes.items(), index)}
        return with_values(dataclasses.replace(self.base, seed=int(seed)), values)

    def seeds(self) -> np.ndarray:
        """Seeds of every cell and replicate: int64 array of shape ``shape + (replicates,)``.

        Examples
        --------
        >>> spec = PhaseSpec(EnsembleConfig(), {"c": [0.0, 1.0]}, replicates=3)
        >>> spec.seeds().shape, len(set(spec.seeds().ravel()))
        ((2, 3), 6)
        """
        children = np.random.SeedSequence(self.root_seed).spawn(self.n_cells)
        out = np.empty((self.n_cells, self.replicates), dtype=np.int64)
        for i, child in enumerate(children):
            out[i, 0] = int(child.generate_state(1, dtype=np.uint32)[0])
            if self.replicates > 1:
                for r, grand in enumerate(child.spawn(self.replicates - 1), start=1):
                    out[i, r] = int(grand.generate_state(1, dtype=np.uint32)[0])
        return out.reshape(self.shape + (self.replicates,))

    def units(self) -> list[Unit]:
        """Every (cell, replicate) simulation, cells in C order, replicates inside each cell.

        Examples
        --------
        >>> [(u.index, u.replicate) for u in PhaseSpec(EnsembleConfig(), {"c": [0, 1]}, replicates=2).units()]
        [((0,), 0), ((0,), 1), ((1,), 0), ((1,), 1)]
        """
        seeds = self.seeds()
        return [
            Unit(idx, flat, r, self.cell_config(idx, seeds[idx + (r,)]))
            for flat, idx in enumerate(np.ndindex(*self.shape))
            for r in range(self.replicates)
        ]

    def cells(self) -> list[tuple[tuple[int, ...], EnsembleConfig]]:
        """``(grid index, config)`` of replicate 0 of every cell, in C order.

        Examples
        --------
        >>> [(idx, cfg.slope) for idx, cfg in PhaseSpec(EnsembleConfig(), {"c": [0, 1]}).cells()]
        [((0,), 0.0), ((1,), 1.0)]
        """
        return [(u.index, u.config) for u in self.units() if u.replicate == 0]

    # ------------------------------------------------------------------ checks
    def invalid_cells(self) -> list[tuple[tuple[int, ...], str]]:
        """Cells whose configuration :meth:`EnsembleConfig.validate` refuses, with the reason.

        Such cells are recorded as failed by a sweep; a front end may refuse them up front.

        Examples
        --------
        >>> bad = PhaseSpec(EnsembleConfig(), {"c": [-1.0, 0.5]}).invalid_cells()
        >>> [idx for idx, _ in bad], "slope" in bad[0][1]
        ([(0,)], True)
        """
        bad = []
        for idx, cfg in self.cells():
            try:
                cfg.validate()
            except (ValueError, TypeError) as exc:
                bad.append((idx, str(exc)))
        return bad

    @property
    def supports_theory_map(self) -> bool:
        """True when :func:`linsim.sweep.theory_map` applies: the base model's runner has a
        theory hook (:func:`linsim.runners.has_theory`) and there are at least two axes.

        Examples
        --------
        >>> PhaseSpec(EnsembleConfig(), {"c": [0, 1], "ratio": [1, 10]}).supports_theory_map
        True
        """
        from linsim.runners import has_theory

        return has_theory(self.base.model, self.base.optimizer) and len(self.axes) >= 2

    def validate_for_theory_map(self, resolution: int) -> dict[str, np.ndarray]:
        """Check, before computing anything, that the fine theory map can be drawn.

        Raises ``ValueError`` naming the problem (model, number of axes, resolution, or an axis
        value the theory refuses).  Returns the fine axes ``{name: values}``.

        Examples
        --------
        >>> spec = PhaseSpec(EnsembleConfig(), {"c": [0.0, 2.0], "ratio": [0.1, 100.0]})
        >>> {k: v.size for k, v in spec.validate_for_theory_map(5).items()}
        {'slope': 5, 'scale_ratio': 5}
        >>> spec.validate_for_theory_map(1)
        Traceback (most recent call last):
        ...
        ValueError: theory-map resolution must be >= 2 (or 0 for no map); got 1
        """
        from linsim.theory_inputs import theory_inputs

        if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)):
            raise TypeError(f"theory-map resolution must be an integer; got {resolution!r}")
        if resolution < 2:
            raise ValueError(f"theory-map resolution must be >= 2 (or 0 for no map); got {resolution}")
        from linsim.runners import has_theory, theory_runners

        if not has_theory(self.base.model, self.base.optimizer):
            raise ValueError(
                f"the fine theory map needs a model the theory covers ({', '.join('/'.join(k) for k in theory_runners())}); "
                f"got model={self.base.model!r}, optimizer={self.base.optimizer!r} (use resolution 0)"
            )
        if len(self.axes) < 2:
            raise ValueError("the fine theory map needs at least two axes (use resolution 0)")
        names = list(self.axes)[:2]
        fine = {n: fine_axis(self.axes[n], int(resolution), n) for n in names}
        # every fine value of each axis (beside the other's first value), then the four corners:
        # a limit that involves both axes (e.g. lr and lambda_1 for stability) is reached there
        points = [(pos, j) for pos, name in enumerate(names) for j in range(fine[name].size)]
        a, b = fine[names[0]], fine[names[1]]
        corners = [(a[i], b[j]) for i in (0, -1) for j in (0, -1)]
        for pos, j in points:
            name, other = names[pos], names[1 - pos]
            value = fine[name][j]
            try:
                theory_inputs(with_values(self.base, {name: value, other: fine[other][0]}))
            except (ValueError, TypeError) as exc:  # validates the config, builds the theory's inputs
                raise ValueError(
                    f"the theory map cannot use axis {name!r} value {value:g} (fine point {j}): {exc}"
                ) from None
        for va, vb in corners:
            try:
                theory_inputs(with_values(self.base, {names[0]: va, names[1]: vb}))
            except (ValueError, TypeError) as exc:
                raise ValueError(
                    f"the theory map cannot use the corner {names[0]}={va:g}, {names[1]}={vb:g} of its "
                    f"fine grid: {exc}"
                ) from None
        return fine

    def fingerprint(self) -> str:
        """SHA-256 of everything that determines the results (base, axes, criterion, seeds).

        Examples
        --------
        >>> a = PhaseSpec(EnsembleConfig(), {"c": [0.0, 1.0]})
        >>> a.fingerprint() == PhaseSpec(EnsembleConfig(), {"slope": [0, 1]}).fingerprint()
        True
        """
        payload = {
            "base": dataclasses.asdict(self.base),
            "axes": {k: v.tolist() for k, v in self.axes.items()},
            "criterion": {"chi": self.criterion.chi, "k_star": self.criterion.k_star},
            "root_seed": int(self.root_seed),
            "replicates": int(self.replicates),
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

