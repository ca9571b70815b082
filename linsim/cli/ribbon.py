"""linsim ribbon: simulate one ensemble, embed every checkpoint of every run with InPCA, and
report the explained-stress curve, the eigenvalue ladder and the hyper-ribbon verdict.

Writes ``trajectory.nc`` (the simulated outputs), ``ribbon.nc`` (the embedding: coordinates,
signed eigenvalues, explained stress) and ``ribbon.png`` into ``--out``.
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
from linsim.cli._outputs import Outputs, command_line, output_folder

__all__ = ["EPILOG", "add_arguments", "embedding_dataset", "run"]

def _epilog() -> str:
    from linsim.cli.phase import PHASE_BASE
    from linsim.ensemble import EnsembleConfig

    c = EnsembleConfig()
    return (f"defaults: the standard ensemble EnsembleConfig() (R = {c.n_runs} runs, sigma_0 = "
            f"{c.init_scale:g}, rho = {c.teacher_scale:g}, d = {c.dim}, n = {c.n_samples}, T = {c.steps}); "
            "'linsim phase' starts from a different base ("
            + ", ".join(f"{k} = {v}" for k, v in PHASE_BASE.items()) + "), see 'linsim phase --help'.")


EPILOG = _epilog()


def _defaults() -> dict:
    from linsim.ensemble import EnsembleConfig

    return dataclasses.asdict(EnsembleConfig())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``linsim ribbon``: one per EnsembleConfig field plus the output options.

    Examples
    --------
    >>> p = argparse.ArgumentParser(prog="linsim ribbon")
    >>> add_arguments(p)
    >>> a = p.parse_args(["--steps", "1e3", "--model", "kernel"])
    >>> a.cfg_steps, a.cfg_model, a.chi
    (1000, 'kernel', 0.9)
    """
    _flags.add_config_flags(parser, _defaults(),
                            title="ensemble (every field of linsim.ensemble.EnsembleConfig)")
    g = parser.add_argument_group("embedding and output")
    g.add_argument("--n-components", type=_flags.positive_integer, default=20, metavar="K",
                   help="InPCA eigenpairs to compute and report (default 20; capped at the number of points)")
    g.add_argument("--chi", type=_flags.fraction, default=0.9,
                   help="explained-stress threshold χ of k_χ and of the ribbon verdict (default 0.9)")
    g.add_argument("--k-star", type=_flags.positive_integer, default=3, metavar="K_STAR",
                   help="hyper-ribbon if k_χ <= k* (default 3)")
    g.add_argument("--device", type=_device, default=None,
                   help="torch device of the distance kernel, e.g. cpu, cuda, cuda:1 (default: CUDA when "
                   "available, else the CPU)")
    g.add_argument("--out", type=Path, default=Path("linsim-out"),
                   help="output folder, created if needed (default linsim-out)")
    g.add_argument("--no-figure", action="store_true", help="do not draw ribbon.png (an old one is removed)")
    g.add_argument("--json", action="store_true", help="print the summary as one JSON object")


def _device(text: str) -> str:
    import torch

    try:
        dev = torch.device(text)
    except (RuntimeError, TypeError):
        raise argparse.ArgumentTypeError(f"not a torch device: {text!r} (e.g. cpu, cuda, cuda:0)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: CUDA is not available on this machine")
    return str(dev)


def embedding_dataset(emb, cfg):
    """A self-describing ``xarray.Dataset`` of an embedding (CF attributes on every variable).

    Parameters
    ----------
    emb : linsim.embed.Embedding
    cfg : linsim.ensemble.EnsembleConfig
        Stored as JSON in the ``config_json`` attribute.

    Returns
    -------
    xarray.Dataset
        ``coordinates`` (point, component), ``eigenvalues``, ``signature``,
        ``explained_stress`` (component), ``run``, ``checkpoint``, ``time`` (point).

    Examples
    --------
    >>> from linsim.embed import embed
    >>> from linsim.ensemble import EnsembleConfig, simulate
    >>> cfg = EnsembleConfig(dim=4, n_samples=8, n_classes=3, n_runs=2, steps=10, n_checkpoints=3)
    >>> ds = embedding_dataset(embed(simulate(cfg)), cfg)
    >>> ds["eigenvalues"].attrs["long_name"]
    'signed InPCA eigenvalue'
    """
    import xarray as xr

    m = emb.model
    unit = "step" if {t.time_unit for t in emb.trajectories} == {"step"} else "lr * step"
    ds = xr.Dataset(
        {
            "coordinates": (("point", "component"), np.asarray(m.embedding_, dtype=np.float64),
                            {"long_name": "InPCA coordinates (eigenvector scaled by sqrt|eigenvalue|)",
                             "units": "1"}),
            "eigenvalues": (("component",), np.asarray(m.eigenvalues_, dtype=np.float64),
                            {"long_name": "signed InPCA eigenvalue",
                             "units": "1 (Bhattacharyya distance, mean over samples)"}),
            "signature": (("component",), np.asarray(m.signature_).astype(np.int8),
                          {"long_name": "sign of the eigenvalue (+1 space-like, -1 time-like)", "units": "1"}),
            "explained_stress": (("component",), np.asarray(m.explained_stress_, dtype=np.float64),
                                 {"long_name": "explained stress chi_k of the first k components",
                                  "units": "1"}),
            "run": (("point",), np.asarray(emb.points["run"], dtype=np.int64),
                    {"long_name": "training run of the point"}),
            "checkpoint": (("point",), np.asarray(emb.points["checkpoint"], dtype=np.int64),
                           {"long_name": "checkpoint index of the point"}),
            "time": (("point",), np.asarray(emb.points["time"], dtype=np.float64),
                     {"long_name": "training time of the point", "units": unit}),
        },
        coords={"component": ("component", np.arange(1, m.eigenvalues_.size + 1),
                              {"long_name": "InPCA component k"})},
        attrs={
            "linsim_type": "Embedding",
            "title": "InPCA embedding of one linsim ensemble",
            "config_json": json.dumps(dataclasses.asdict(cfg), sort_keys=True),
            "frobenius_norm": float(m.frobenius_norm_),
            "comment": "InPCA of Bhattacharyya distances (mean over samples); eigenvalues signed, "
            "sorted by |eigenvalue| descending; coordinates scaled by sqrt|eigenvalue|; explained "
            "stress chi_k = 1 - sqrt(1 - sum_{i<=k} eigenvalue_i^2 / ||W||_F^2)",
        },
    )
    return ds


def _k_text(kc, n: int) -> str:
    return f">{n}" if (isinstance(kc, float) and math.isinf(kc)) or kc > n else str(int(kc))


def run(args) -> int:
    """Run ``linsim ribbon`` with parsed arguments; returns the exit status.

    Called by :func:`linsim.cli.main` (which parses the arguments).

    Examples
    --------
    >>> import contextlib, io, tempfile
    >>> from linsim.cli import main
    >>> with tempfile.TemporaryDirectory() as d, contextlib.redirect_stdout(io.StringIO()) as out:
    ...     status = main(["ribbon", "--n-runs", "2", "--dim", "4", "--n-samples", "8", "--steps", "10",
    ...                    "--n-checkpoints", "3", "--no-figure", "--json", "--out", d])
    >>> status, json.loads(out.getvalue())["points"]
    (0, 8)
    """
    from linsim import metrics
    from linsim.embed import embed
    from linsim.ensemble import simulate
    from linsim.plotting import ribbon_figure

    cfg = _flags.config_from(args, _defaults())
    try:
        criterion = metrics.RibbonCriterion(chi=args.chi, k_star=args.k_star)
    except ValueError as exc:
        raise ValueError(f"--chi / --k-star: {exc}") from None
    out_dir = output_folder(args.out)
    t0 = time.perf_counter()
    traj = simulate(cfg)
    t_sim = time.perf_counter() - t0
    k = min(args.n_components, traj.n_points)
    emb = embed(traj, n_components=k, device=args.device)
    t_all = time.perf_counter() - t0
    m = emb.model
    summ = metrics.summarize(m.eigenvalues_, m.frobenius_norm_, criterion=criterion)

    outputs = Outputs(out_dir, "ribbon.png", command_line(args))
    outputs.add_writer("trajectory.nc", lambda path, command: traj.save(path, command=command))
    ds = embedding_dataset(emb, cfg)
    outputs.add_data("ribbon.nc", ds, checksum_vars=list(ds.data_vars))
    problem = None
    if not args.no_figure:
        rho_sigma = cfg.teacher_scale / cfg.init_scale if cfg.init_scale > 0 else math.inf
        try:
            outputs.figure = ribbon_figure(
                emb, chi=args.chi,
                title=f"{cfg.model} / {cfg.optimizer}: c = {cfg.slope:g}, ρ/σ₀ = {rho_sigma:g}, "
                      f"T = {cfg.steps}, R = {cfg.n_runs}")
        except Exception as exc:  # still write the data (and drop the old figure)
            problem = exc
    try:
        files = outputs.write()
    except RuntimeError as exc:
        problem = exc.__cause__ or exc
        files = outputs.written
    if problem is not None:
        print(f"linsim ribbon: error: drawing ribbon.png failed ({type(problem).__name__}: {problem}); "
              f"written: {', '.join(files)}", file=sys.stderr)
        return 1

    kc = summ["k_chi"]
    result = {
        "points": traj.n_points,
        "runs": traj.n_runs,
        "checkpoints": traj.n_checkpoints,
        "eigenvalues": m.eigenvalues_.tolist(),
        "explained_stress": m.explained_stress_.tolist(),
        "n_negative": int(np.sum(m.eigenvalues_ < 0)),
        "metrics": {key: (None if isinstance(v, float) and not math.isfinite(v) else v)
                    for key, v in summ.items()},
        "criterion": {"chi": criterion.chi, "k_star": criterion.k_star},
        "seconds": {"simulate": round(t_sim, 3), "total": round(t_all, 3)},
        "files": files,
        "notes": outputs.notes,
    }
    if args.json:
        print(json.dumps(result))
        return 0
    lr = traj.params.get("lr_effective", cfg.lr)
    print(f"linsim ribbon: {cfg.model} model, {cfg.optimizer}, {traj.n_runs} runs x "
          f"{traj.n_checkpoints} checkpoints = {traj.n_points} models on {traj.n_samples} samples, "
          f"C = {cfg.n_classes}")
    print(f"  c = {cfg.slope:g}, rho = {cfg.teacher_scale:g}, sigma0 = {cfg.init_scale:g}, T = {cfg.steps}, "
          f"lr = {lr:g}")
    print("  k   eigenvalue     explained stress")
    for j, (lam, chi) in enumerate(zip(m.eigenvalues_, m.explained_stress_), start=1):
        print(f"  {j:<3d} {lam:+.4e}    {chi:.4f}{'   (time-like)' if lam < 0 else ''}")
    print(f"  negative eigenvalues among the top {k}: {result['n_negative']}")
    print(f"  k_chi({criterion.chi:g}) = {_k_text(kc, k)}; decay rate of |λ_k| = {summ['decay_rate']:.3f} "
          f"± {summ['decay_rate_stderr']:.3f} per dimension; hyper-ribbon (k_{criterion.chi:g} <= "
          f"{criterion.k_star}): {'yes' if summ['is_ribbon'] else 'no'}")
    for note in outputs.notes:
        print(f"  {note}")
    print(f"  wrote {', '.join(files)}  ({t_all:.2f} s)")
    return 0
