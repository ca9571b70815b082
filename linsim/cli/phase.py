"""linsim phase: sweep two or three ensemble parameters; in every cell simulate, embed with
InPCA, compute the sloppiness metrics and evaluate the theory beside them.

Writes ``phase.nc`` (every cell's metrics, theory and status, plus the fine theory map) and
``phase.png`` (the phase diagram) into ``--out``, and prints how often theory and simulation
agree on ribbon / no ribbon.  A sweep over ρ/σ₀ and one other axis (the default) also gets the
analytic boundary ``theory.critical_ratio`` (drawn as a curve beside the fine-map contour) and
a comparison on the same cells: the theory, the analytic boundary and the trivial rule
"ribbon iff ρ/σ₀ >= 1.5" (:data:`linsim.sweep.summary.TRIVIAL_RIBBON_RATIO`) against the
simulation, stored in ``phase.nc`` as the attributes ``agreement_cells``, ``agreement_theory``,
``agreement_analytic`` and ``agreement_trivial``.  Everything (flags, axes, every cell's configuration, the theory
map's corners, the output folder) is checked before the first cell is computed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from linsim.cli import _flags
from linsim.cli._axes import AxisAction, axis_argument, parse_axis
from linsim.cli._outputs import Outputs, command_line, output_folder

__all__ = ["DEFAULT_AXES", "EPILOG", "PHASE_BASE", "add_arguments", "run"]

#: The phase command's base ensemble: small initial weights, so that most of the default grid
#: lies in the small-logit regime where the theory is exact, and a size that keeps the 144
#: default cells fast.
PHASE_BASE = {"init_scale": 0.01, "n_runs": 12, "n_checkpoints": 16, "dim": 40, "n_samples": 160}
#: The default axes: 12 x 12 over the slope c and the ratio rho/sigma0.
DEFAULT_AXES = ("slope=lin:0:2:12", "scale_ratio=log:0.1:100:12")
#: Fine theory-map resolution used when --theory-resolution is not given.
DEFAULT_THEORY_RESOLUTION = 24

EPILOG = (
    "defaults: a base ensemble that differs from 'linsim ribbon' (which uses EnsembleConfig()): "
    + ", ".join(f"{k} = {v}" for k, v in PHASE_BASE.items())
    + f"; axes {' '.join(DEFAULT_AXES)}.\n"
    "axis names: EnsembleConfig fields (snake_case or kebab-case: n_runs, n-runs), scale_ratio "
    "(sets teacher_scale = scale_ratio x init_scale) or the aliases c (slope), T (steps), ratio "
    "(scale_ratio), C (n_classes), R (n_runs). Integer axes round lin:/log: values.\n"
    "seeds: every cell's seed is spawned from SeedSequence(--seed) in grid order, so results "
    "do not depend on --workers."
)


def _defaults() -> dict:
    from linsim.ensemble import EnsembleConfig

    return {**dataclasses.asdict(EnsembleConfig()), **PHASE_BASE}


def _theory_resolution(text: str) -> int:
    value = _flags.integer(text)
    if value < 0 or value == 1:
        raise argparse.ArgumentTypeError(f"must be 0 (no fine theory map) or >= 2; got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``linsim phase``: ensemble fields (with the phase defaults), axes, options.

    Examples
    --------
    >>> p = argparse.ArgumentParser(prog="linsim phase")
    >>> add_arguments(p)
    >>> a = p.parse_args(["--axis", "n-runs=2,4", "--axis", "T=log:10:1000:3", "--seed", "5"])
    >>> [(x.name, x.values.tolist()) for x in a.axis], a.cfg_seed, hasattr(a, "cfg_dim")  # dim: not given
    ([('n_runs', [2.0, 4.0]), ('steps', [10.0, 100.0, 1000.0])], 5, False)
    """
    _flags.add_config_flags(
        parser, _defaults(), title="base ensemble of every cell (fields of linsim.ensemble.EnsembleConfig; "
        "phase defaults differ from ribbon's)",
        notes={"seed": "here the ROOT seed: cell seeds are spawned from SeedSequence(seed)"})
    parser.add_argument("--root-seed", dest="cfg_seed", type=_flags.integer, default=argparse.SUPPRESS,
                        help=argparse.SUPPRESS)  # older spelling of --seed
    g = parser.add_argument_group("sweep")
    g.add_argument("--axis", action=AxisAction, type=axis_argument, default=None, metavar="NAME=SPEC",
                   help="NAME=lin:START:STOP:NUM | NAME=log:START:STOP:NUM | NAME=v1,v2,...; repeat for "
                   f"each of 1-3 axes, each name once (default: {' '.join(DEFAULT_AXES)})")
    g.add_argument("--chi", type=_flags.fraction, default=0.9, help="explained-stress threshold χ (default 0.9)")
    g.add_argument("--k-star", dest="k_star", type=_flags.positive_integer, default=3, metavar="K_STAR",
                   help="a cell is a hyper-ribbon if k_χ <= k* (default 3)")
    g.add_argument("--k-max", dest="k_star", type=_flags.positive_integer, default=argparse.SUPPRESS,
                   help=argparse.SUPPRESS)  # older spelling of --k-star
    g.add_argument("--theory-resolution", type=_theory_resolution, default=None, metavar="N",
                   help=f"N x N fine grid of the theory's boundary, 0: none (default "
                   f"{DEFAULT_THEORY_RESOLUTION} where a fine map exists: two axes, a model the map covers)")
    g.add_argument("--replicates", type=_flags.positive_integer, default=None, metavar="N",
                   help="simulate N seeds per cell (the map averages them)")
    g.add_argument("--resume", action="store_true",
                   help="keep the cells already finished in --out from an interrupted run with the same "
                   "settings, compute only the rest")
    _flags.add_engine_flags(parser, what="cells", default="all cores", group=g)
    g = parser.add_argument_group("output")
    g.add_argument("--out", type=Path, default=Path("linsim-out"),
                   help="output folder, created if needed (default linsim-out)")
    g.add_argument("--no-figure", action="store_true", help="do not draw phase.png (an old one is removed)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--json", action="store_true",
                   help="print the agreement summary as one JSON object (keys agreement, cells, "
                   "disagreements, comparison, axes, criterion, seconds, files, ...)")


# ----------------------------------------------------------------------------- validation
def _axes(args) -> dict[str, np.ndarray]:
    given = args.axis or []
    if given:
        return {a.name: a.values for a in given}
    return dict(parse_axis(text) for text in DEFAULT_AXES)


def _refuse_overridden_flags(args, axes: dict) -> None:
    given = _flags.given_fields(args)
    for name in axes:
        hidden = ["teacher_scale"] if name == "scale_ratio" else [name]
        for field in hidden:
            if field in given:
                raise ValueError(f"{_flags.flag_name(field)} does nothing here: --axis {name} sets "
                                 f"{field} in every cell; drop one of them")


def _check_cells(spec) -> None:
    """Every cell's configuration must be valid (the error names the first bad cell)."""
    bad = spec.invalid_cells()
    if bad:
        idx, why = bad[0]
        where = ", ".join(f"{n} = {v[i]:g}" for (n, v), i in zip(spec.axes.items(), idx))
        more = f" ({len(bad) - 1} more cells are invalid)" if len(bad) > 1 else ""
        raise ValueError(f"--axis: the cell {where} is invalid: {why}{more}")


def _fine_map_problem(spec, resolution: int) -> str | None:
    """Why the fine theory map cannot be drawn at ``resolution`` (None if it can)."""
    try:
        spec.validate_for_theory_map(resolution)
    except ValueError as exc:
        return str(exc)
    return None


def _resolution(args, spec) -> int:
    """The fine-map resolution: the given one (checked), else the default where a map exists."""
    if args.theory_resolution == 0:
        return 0
    if args.theory_resolution is None:
        if not spec.supports_theory_map or len(spec.axes) != 2:
            return 0
        problem = _fine_map_problem(spec, DEFAULT_THEORY_RESOLUTION)
        if problem is None:
            return DEFAULT_THEORY_RESOLUTION
        raise ValueError(f"the default fine theory map cannot be drawn: {problem}; pass "
                         "--theory-resolution 0 to sweep without it")
    if len(spec.axes) != 2:
        raise ValueError(f"--theory-resolution {args.theory_resolution}: the fine theory map is drawn "
                         f"over exactly two axes; this sweep has {len(spec.axes)} (use 0)")
    problem = _fine_map_problem(spec, args.theory_resolution)
    if problem is not None:
        raise ValueError(f"--theory-resolution {args.theory_resolution}: {problem}")
    return args.theory_resolution


# ----------------------------------------------------------------------------- run
def _first_error(ds) -> str:
    status = ds["status"].values.ravel()
    errors = ds["error"].values.ravel() if "error" in ds else np.full(status.shape, "")
    for s, e in zip(status, errors):
        if s != "ok":
            return str(e).strip().splitlines()[0] if str(e).strip() else "unknown error"
    return ""


def _json_safe(obj):
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _rule_comparison(ds) -> dict | None:
    """Theory, analytic boundary and trivial rule against the simulation on the same cells,
    or None when the sweep has no analytic boundary (it needs ρ/σ₀ and one other axis)."""
    from linsim.sweep.summary import TRIVIAL_RIBBON_RATIO, common_agreement

    if "analytic_is_ribbon" not in ds or "trivial_is_ribbon" not in ds:
        return None
    res = common_agreement(ds, ("theory", "analytic", "trivial"))
    res["trivial_ratio"] = float(TRIVIAL_RIBBON_RATIO)
    return res


def _store_comparison(ds, rules: dict, path: Path, command: str) -> None:
    """Put the comparison into ``phase.nc`` (attributes ``agreement_*``), rewritten atomically."""
    from linsim.sweep.dataset import save_dataset

    ds.attrs.update({
        "agreement_cells": int(rules["cells"]),
        "agreement_theory": float(rules["theory"]),
        "agreement_analytic": float(rules["analytic"]),
        "agreement_trivial": float(rules["trivial"]),
        "agreement_note": "fractions of the same agreement_cells cells where each rule's ribbon verdict "
                          "equals sim_is_ribbon; trivial rule: ribbon iff rho/sigma0 >= "
                          f"{rules['trivial_ratio']:g}",
    })
    to_write = ds.copy(deep=False)
    to_write.attrs = {k: v for k, v in ds.attrs.items() if k != "history"}
    save_dataset(to_write, path, command=command)


def run(args) -> int:
    """Run ``linsim phase`` with parsed arguments; returns the exit status.

    Called by :func:`linsim.cli.main` (which parses the arguments).

    Examples
    --------
    >>> import contextlib, io, tempfile
    >>> from linsim.cli import main
    >>> with tempfile.TemporaryDirectory() as d, contextlib.redirect_stdout(io.StringIO()) as out:
    ...     status = main(["phase", "--axis", "c=0,1", "--n-runs", "2", "--dim", "4", "--n-samples", "8",
    ...                    "--steps", "10", "--n-checkpoints", "3", "--workers", "1", "--json", "--out", d])
    >>> status, json.loads(out.getvalue())["cells"]
    (0, 2)
    """
    from linsim.metrics import RibbonCriterion
    from linsim.sweep import (REGIME_LOGIT_RMS, PhaseSpec, SweepFailedError, SweepInterrupted,
                              TheoryShadowedError, agreement, run_phase)

    axes = _axes(args)
    _refuse_overridden_flags(args, axes)
    cfg = _flags.config_from(args, _defaults(), swept=tuple(a for a in axes if a != "scale_ratio"))
    try:
        criterion = RibbonCriterion(chi=args.chi, k_star=args.k_star)
    except ValueError as exc:
        raise ValueError(f"--chi / --k-star: {exc}") from None
    try:
        spec = PhaseSpec(base=cfg, axes=axes, criterion=criterion, root_seed=cfg.seed)
    except ValueError as exc:
        raise ValueError(f"--axis: {exc}") from None
    _check_cells(spec)
    resolution = _resolution(args, spec)
    out_dir = output_folder(args.out)

    figure = not args.no_figure
    outputs = Outputs(out_dir, "phase.png", command_line(args))
    t0 = time.perf_counter()
    try:
        with outputs.figure_set_aside("phase.nc"):  # no old phase.png beside a new phase.nc
            ds = run_phase(spec, n_workers=args.workers, progress=not args.no_progress and not args.json,
                           theory_resolution=resolution, out=out_dir / "phase.nc", command=outputs.command,
                           replicates=args.replicates, resume=args.resume, scheduler=args.scheduler)
    except SweepFailedError as exc:
        print(f"linsim phase: error: {exc}", file=sys.stderr)
        return 1
    except SweepInterrupted as exc:
        print(f"linsim phase: {exc}", file=sys.stderr)
        return 130
    except TheoryShadowedError as exc:
        print(f"linsim phase: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a scheduler that cannot be reached, a full disk, ...
        print(f"linsim phase: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    rules = _rule_comparison(ds)  # stored in phase.nc before the figure is drawn beside it
    if rules is not None:
        try:
            _store_comparison(ds, rules, out_dir / "phase.nc", outputs.command)
        except OSError as exc:
            print(f"linsim phase: error: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
    seconds = time.perf_counter() - t0
    files = [str(out_dir / "phase.nc")]
    if figure:
        from linsim.plotting import phase_figure

        try:
            outputs.figure = phase_figure(ds)
            files += outputs.write()
        except Exception as exc:  # the data are written; say so and fail
            print(f"linsim phase: error: drawing phase.png failed ({type(exc).__name__}: {exc}); "
                  f"{files[0]} was written", file=sys.stderr)
            return 1

    summary = agreement(ds, "theory")
    draw = agreement(ds, "draw")
    if rules is not None:
        summary["comparison"] = rules
    summary["agreement_same_draw"] = draw["agreement"]
    summary["agreement_same_draw_in_regime"] = draw["agreement_in_regime"]
    summary["axes"] = {k: v.tolist() for k, v in spec.axes.items()}
    summary["criterion"] = {"chi": criterion.chi, "k_star": criterion.k_star}
    summary["root_seed"] = cfg.seed
    summary["seconds"] = round(seconds, 2)
    summary["files"] = files
    summary["notes"] = list(getattr(spec, "notes", ())) + outputs.notes
    if args.json:
        print(json.dumps(_json_safe(summary)))
        return 0
    names = list(spec.axes)

    def share(frac, n):
        return f"{frac:.1%} of {n}" if n else "none of 0"

    print(f"linsim phase: {' x '.join(f'{n} ({v.size})' for n, v in spec.axes.items())} = "
          f"{int(np.prod(spec.shape))} cells in {seconds:.1f} s; criterion k_chi({criterion.chi:g}) <= "
          f"{criterion.k_star}; root seed {cfg.seed}")
    print(f"  theory (expected spectrum) vs simulation agree on ribbon/no ribbon in "
          f"{share(summary['agreement'], summary['cells'])} cells; in the small-logit regime (rms "
          f"logit <= {REGIME_LOGIT_RMS}) {share(summary['agreement_in_regime'], summary['cells_in_regime'])}")
    print(f"  same-draw small-logit prediction agrees in {share(draw['agreement'], draw['cells'])} cells "
          f"(in regime {share(draw['agreement_in_regime'], draw['cells_in_regime'])})")
    if summary["failed"]:
        print(f"  {summary['failed']} cells failed (see the 'error' variable in phase.nc); the first: "
              f"{_first_error(ds)}")
    if summary["disagreements"]:
        print("  disagreements (sim k_chi vs theory k_chi, chi_k* sim vs theory, rms logit):")
        for rec in summary["disagreements"]:
            where = ", ".join(f"{n}={rec[n]:.3g}" for n in names)
            print(f"    {where}: k {rec['sim_k_chi']:g} vs {rec['predicted_k_chi']:g}, chi "
                  f"{rec['sim_stress_k']:.3f} vs {rec['predicted_stress_k']:.3f}, logit rms "
                  f"{rec['logit_rms']:.2f}{'' if rec['in_regime'] else ' (outside regime)'}")
    if "analytic_problems" in ds.attrs:
        print(f"  analytic boundary: {ds.attrs['analytic_problems']}")
    if rules is not None:
        print(f"  on the same {rules['cells']} cells: theory (expected spectrum) {rules['theory']:.1%}, "
              f"analytic boundary (theory.critical_ratio) {rules['analytic']:.1%}, trivial rule "
              f"\"ribbon iff ρ/σ₀ >= {rules['trivial_ratio']:g}\" {rules['trivial']:.1%} agree with the "
              f"simulation")
    for note in summary["notes"]:
        print(f"  note: {note}")
    print(f"  wrote {', '.join(files)}")
    return 0
