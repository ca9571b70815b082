"""The ``linsim`` command line.

``linsim ribbon``
    Simulate one ensemble, embed all its checkpoints with InPCA, print the explained-stress
    curve and the eigenvalue ladder, save a netCDF file and a figure.
``linsim phase``
    Sweep two (or three) ensemble parameters, compare the simulated hyper-ribbon metrics with
    the theory in every cell, save a netCDF dataset and a phase-diagram figure, print the
    agreement (``--json``: one JSON object).

Every field of :class:`linsim.ensemble.EnsembleConfig` is a flag (``--n-runs 8``,
``--teacher-scale 0.5``, ...).
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

from linsim import __version__

#: The phase command's default base ensemble: small initial weights so that most of the
#: default grid lies in the small-logit regime where the theory is exact.
PHASE_BASE = {"init_scale": 0.01, "n_runs": 12, "n_checkpoints": 16, "dim": 40, "n_samples": 160}
#: The phase command's default axes: 12 x 12 over the slope c and the ratio rho/sigma0.
PHASE_AXES = ("slope=lin:0:2:12", "scale_ratio=log:0.1:100:12")


def _config_fields():
    from linsim.ensemble import EnsembleConfig

    return dataclasses.fields(EnsembleConfig)


def _add_config_flags(parser: argparse.ArgumentParser, overrides: dict | None = None) -> None:
    """One flag per EnsembleConfig field, with the field's default (or an override)."""
    from linsim.ensemble import EnsembleConfig

    defaults = EnsembleConfig()
    overrides = overrides or {}
    group = parser.add_argument_group("ensemble (linsim.ensemble.EnsembleConfig)")
    for f in _config_fields():
        default = overrides.get(f.name, getattr(defaults, f.name))
        kind = str(f.type)
        if kind == "int":
            conv = int
        elif kind == "str":
            conv = str
        elif "None" in kind:
            conv = _optional_float
        else:
            conv = float
        group.add_argument(
            f"--{f.name.replace('_', '-')}", dest=f"cfg_{f.name}", type=conv, default=default,
            metavar=f.name.upper() if conv is not str else "NAME",
            help=f"(default: {default})",
        )


def _optional_float(text: str):
    return None if text.lower() in ("none", "default") else float(text)


def _config_from(args):
    from linsim.ensemble import EnsembleConfig

    cfg = EnsembleConfig(**{f.name: getattr(args, f"cfg_{f.name}") for f in _config_fields()})
    cfg.validate()
    return cfg


def parse_axis(text: str) -> tuple[str, np.ndarray]:
    """Parse ``NAME=lin:START:STOP:NUM``, ``NAME=log:START:STOP:NUM`` or ``NAME=v1,v2,...``."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"axis {text!r} must look like NAME=lin:0:2:12 or NAME=1,2,3")
    name, spec = text.split("=", 1)
    try:
        if spec.startswith(("lin:", "log:")):
            kind, start, stop, num = spec.split(":")
            start, stop, num = float(start), float(stop), int(num)
            if num < 1:
                raise ValueError("NUM must be >= 1")
            if kind == "log":
                if start <= 0 or stop <= 0:
                    raise ValueError("log axes need positive START and STOP")
                values = np.geomspace(start, stop, num)
            else:
                values = np.linspace(start, stop, num)
        else:
            values = np.array([float(v) for v in spec.split(",")])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"bad axis {text!r}: {exc}") from None
    return name.strip(), values


def build_parser() -> argparse.ArgumentParser:
    """The top-level argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="linsim",
        description="Exact training trajectories of linear models, embedded with InPCA.",
    )
    parser.add_argument("--version", action="version", version=f"linsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("ribbon", help="simulate one ensemble and embed it with InPCA",
                       description="Simulate an ensemble of training runs, embed all checkpoints "
                       "with InPCA (Bhattacharyya distance, mean over samples) and report the ribbon.")
    _add_config_flags(p)
    p.add_argument("--n-components", type=int, default=20, help="eigenpairs to report (default 20)")
    p.add_argument("--out", type=Path, default=Path("linsim-out"), help="output folder")
    p.add_argument("--no-figure", action="store_true", help="do not draw the figure")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=cmd_ribbon)

    p = sub.add_parser("phase", help="sweep parameters into a phase diagram with theory beside it",
                       description="Sweep 2 or 3 ensemble parameters; in every cell simulate, embed, "
                       "compute the sloppiness metrics and evaluate the theory.")
    _add_config_flags(p, PHASE_BASE)
    p.add_argument("--axis", action="append", type=parse_axis, default=None,
                   help="NAME=lin:START:STOP:NUM | NAME=log:START:STOP:NUM | NAME=v1,v2,...; "
                   f"repeat for each axis (default: {' '.join(PHASE_AXES)})")
    p.add_argument("--chi", type=float, default=0.9, help="explained-stress threshold χ (default 0.9)")
    p.add_argument("--k-max", type=int, default=3, help="ribbon if k_χ <= k* (default 3)")
    p.add_argument("--root-seed", type=int, default=0, help="root of the per-cell seeds")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--theory-resolution", type=int, default=24,
                   help="fine grid for the theory boundary (0: none)")
    p.add_argument("--out", type=Path, default=Path("linsim-out"), help="output folder")
    p.add_argument("--no-figure", action="store_true", help="do not draw the figure")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true",
                   help="print the agreement summary as one JSON object (keys agreement, cells, disagreements, ...)")
    p.set_defaults(func=cmd_phase)
    return parser


# ----------------------------------------------------------------------------- ribbon
def embedding_dataset(emb, cfg) -> "object":
    """A self-describing xarray.Dataset of an embedding (coordinates, spectrum, points)."""
    import xarray as xr

    m = emb.model
    ds = xr.Dataset(
        {
            "coordinates": (("point", "component"), m.embedding_),
            "eigenvalues": (("component",), m.eigenvalues_),
            "signature": (("component",), m.signature_),
            "explained_stress": (("component",), m.explained_stress_),
            "run": (("point",), emb.points["run"]),
            "checkpoint": (("point",), emb.points["checkpoint"]),
            "time": (("point",), emb.points["time"]),
        },
        coords={"component": np.arange(1, m.eigenvalues_.size + 1)},
        attrs={
            "linsim_type": "Embedding",
            "linsim_version": __version__,
            "config_json": json.dumps(dataclasses.asdict(cfg), sort_keys=True),
            "frobenius_norm": float(m.frobenius_norm_),
            "conventions": "InPCA of Bhattacharyya distances (mean over samples); eigenvalues signed, "
            "sorted by |λ| descending; coordinates scaled by sqrt|λ|; explained stress "
            "χ_k = 1 - sqrt(1 - Σ_{i≤k} λ_i²/‖W‖_F²)",
        },
    )
    return ds


def cmd_ribbon(args) -> int:
    from linsim import metrics
    from linsim.embed import embed
    from linsim.ensemble import simulate

    cfg = _config_from(args)
    t0 = time.perf_counter()
    traj = simulate(cfg)
    t_sim = time.perf_counter() - t0
    k = min(args.n_components, traj.n_points)
    emb = embed(traj, n_components=k)
    t_all = time.perf_counter() - t0
    m = emb.model
    summ = metrics.summarize(m.eigenvalues_, m.frobenius_norm_)
    args.out.mkdir(parents=True, exist_ok=True)
    traj.save(args.out / "trajectory.nc")
    embedding_dataset(emb, cfg).to_netcdf(args.out / "ribbon.nc", engine="h5netcdf")
    files = [str(args.out / "trajectory.nc"), str(args.out / "ribbon.nc")]
    if not args.no_figure:
        from linsim.plotting import ribbon_figure

        fig = ribbon_figure(emb, title=f"{cfg.model}/{cfg.optimizer}, c={cfg.slope:g}, "
                            f"ρ/σ₀={cfg.teacher_scale / cfg.init_scale:g}, T={cfg.steps}")
        fig.savefig(args.out / "ribbon.png", dpi=120)
        files.append(str(args.out / "ribbon.png"))
    result = {
        "points": traj.n_points,
        "runs": traj.n_runs,
        "checkpoints": traj.n_checkpoints,
        "eigenvalues": m.eigenvalues_.tolist(),
        "explained_stress": m.explained_stress_.tolist(),
        "n_negative": int(np.sum(m.eigenvalues_ < 0)),
        "metrics": {k_: (None if isinstance(v, float) and math.isinf(v) else v) for k_, v in summ.items()},
        "seconds": {"simulate": round(t_sim, 3), "total": round(t_all, 3)},
        "files": files,
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"linsim ribbon: {cfg.model} model, {cfg.optimizer}, {traj.n_runs} runs x "
          f"{traj.n_checkpoints} checkpoints = {traj.n_points} models on {traj.n_samples} samples, "
          f"C = {cfg.n_classes}")
    print(f"  c = {cfg.slope:g}, rho/sigma0 = {cfg.teacher_scale:g}/{cfg.init_scale:g}, T = {cfg.steps}, "
          f"lr = {cfg.lr if cfg.lr is not None else 1 / cfg.lambda_1:g}")
    print("  k   eigenvalue     explained stress")
    for j, (lam, chi) in enumerate(zip(m.eigenvalues_, m.explained_stress_), start=1):
        print(f"  {j:<3d} {lam:+.4e}    {chi:.4f}{'   (time-like)' if lam < 0 else ''}")
    print(f"  negative eigenvalues among the top {k}: {result['n_negative']}")
    kc = summ["k_chi"]
    print(f"  k_chi(0.9) = {'>' + str(k) if math.isinf(kc) else int(kc)}; "
          f"decay rate of |λ_k| = {summ['decay_rate']:.3f} ± {summ['decay_rate_stderr']:.3f} per dimension; "
          f"hyper-ribbon (k_0.9 <= 3): {'yes' if summ['is_ribbon'] else 'no'}")
    print(f"  wrote {', '.join(files)}  ({t_all:.2f} s)")
    return 0


# ----------------------------------------------------------------------------- phase
def cmd_phase(args) -> int:
    from linsim.metrics import RibbonCriterion
    from linsim.sweep import REGIME_LOGIT_RMS, PhaseSpec, agreement, run_phase, save_dataset

    cfg = _config_from(args)
    axes = dict(args.axis or [parse_axis(a) for a in PHASE_AXES])
    spec = PhaseSpec(base=cfg, axes=axes, criterion=RibbonCriterion(args.chi, args.k_max),
                     root_seed=args.root_seed)
    t0 = time.perf_counter()
    resolution = args.theory_resolution if len(spec.axes) == 2 and (cfg.model, cfg.optimizer) == ("linear", "gd") else 0
    ds = run_phase(spec, n_workers=args.workers, progress=not args.no_progress and not args.json,
                   theory_resolution=resolution)
    seconds = time.perf_counter() - t0
    args.out.mkdir(parents=True, exist_ok=True)
    save_dataset(ds, args.out / "phase.nc")
    files = [str(args.out / "phase.nc")]
    if not args.no_figure and len(spec.axes) >= 2:
        from linsim.plotting import phase_figure

        fig = phase_figure(ds)
        fig.savefig(args.out / "phase.png", dpi=120)
        files.append(str(args.out / "phase.png"))
    summary = agreement(ds, "theory")
    draw = agreement(ds, "draw")
    summary["agreement_same_draw"] = draw["agreement"]
    summary["agreement_same_draw_in_regime"] = draw["agreement_in_regime"]
    summary["axes"] = {k: v.tolist() for k, v in spec.axes.items()}
    summary["criterion"] = {"chi": args.chi, "k_max": args.k_max}
    summary["seconds"] = round(seconds, 2)
    summary["files"] = files
    if args.json:
        print(json.dumps(_json_safe(summary)))
        return 0
    names = list(spec.axes)
    print(f"linsim phase: {' x '.join(f'{n} ({v.size})' for n, v in spec.axes.items())} = "
          f"{int(np.prod(spec.shape))} cells in {seconds:.1f} s; criterion k_chi({args.chi}) <= {args.k_max}")
    def share(frac, n):
        return f"{frac:.1%} of {n}" if n else "none of 0"

    print(f"  theory (expected spectrum) vs simulation agree on ribbon/no ribbon in "
          f"{share(summary['agreement'], summary['cells'])} cells; in the small-logit regime (rms "
          f"logit <= {REGIME_LOGIT_RMS}) {share(summary['agreement_in_regime'], summary['cells_in_regime'])}")
    print(f"  same-draw small-logit prediction agrees in {share(draw['agreement'], draw['cells'])} cells "
          f"(in regime {share(draw['agreement_in_regime'], draw['cells_in_regime'])})")
    if summary["failed"]:
        print(f"  {summary['failed']} cells failed (see the 'error' variable in phase.nc)")
    if summary["disagreements"]:
        print("  disagreements (sim k_chi vs theory k_chi, chi_k* sim vs theory, rms logit):")
        for rec in summary["disagreements"]:
            where = ", ".join(f"{n}={rec[n]:.3g}" for n in names)
            print(f"    {where}: k {rec['sim_k_chi']:g} vs {rec['predicted_k_chi']:g}, chi "
                  f"{rec['sim_stress_k']:.3f} vs {rec['predicted_stress_k']:.3f}, logit rms "
                  f"{rec['logit_rms']:.2f}{'' if rec['in_regime'] else ' (outside regime)'}")
    print(f"  wrote {', '.join(files)}")
    return 0


def _json_safe(obj):
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``linsim`` console command. Returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except ValueError as exc:
        print(f"linsim {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
