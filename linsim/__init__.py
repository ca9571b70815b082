"""linsim: exact training trajectories of linear models, embedded with InPCA.

Data flows one way::

    data -> runners/solvers -> Trajectory (outputs at checkpoints) -> probabilities
         -> linsim.inpca (distances, InPCA) -> metrics / sweeps -> plots, CLI
    Trajectory -> theory_inputs -> theory (predicted spectra)

The user-facing names are re-exported here (a flat namespace)::

    import linsim
    traj = linsim.simulate(linsim.EnsembleConfig(lambda_1=1.5))
    emb = linsim.embed(traj)
    pred = linsim.theory_inputs(traj).quadratic_spectrum()

Names from heavy modules (``InPCA`` and ``bhattacharyya`` need torch and scikit-learn,
``run_phase`` the sweep machinery) are imported on first use, so ``import linsim`` is fast.
``linsim.embed`` and ``linsim.theory_inputs`` are the *functions*; their modules' other
names are imported as usual (``from linsim.embed import distance_matrix``).

Subpackages and modules
-----------------------
linsim.data          synthetic inputs with a prescribed correlation spectrum, teachers, digits
linsim.runners       the (model, optimizer) runner registry behind ``simulate``
linsim.registry      the one Registry type behind every named choice (kernels, runners, ...)
linsim.solvers       closed-form / ODE / SGD training trajectories
linsim.ensemble      the standard ensemble (``EnsembleConfig``, ``simulate``)
linsim.trajectory    the one trajectory type every solver returns
linsim.theory_inputs the typed bridge from a trajectory to the analytic theory
linsim.embed         trajectories -> distances (output-model registry) -> InPCA
linsim.inpca         Bhattacharyya distances, InPCA, information geometry
linsim.metrics       sloppiness metrics and the hyper-ribbon criterion
linsim.sweep         phase sweeps

Examples
--------
>>> import linsim
>>> traj = linsim.simulate(linsim.EnsembleConfig(dim=3, n_samples=5, n_classes=2, n_runs=2,
...                                              steps=4, n_checkpoints=2))
>>> traj.outputs.shape
(2, 3, 5, 2)
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("linsim")
except PackageNotFoundError:  # pragma: no cover - running from a source tree that is not installed
    __version__ = "0+unknown"

# A user's own theory.py in the working folder would shadow the theory package that the modules
# below import; say so by name instead of failing with "'theory' is not a package".
from linsim._theory_check import import_theory as _import_theory  # noqa: E402

_import_theory()

# cheap imports (numpy/scipy only), bound eagerly: ``embed`` and ``theory_inputs`` must be
# bound after their modules are imported so that the package attribute is the function
from linsim.embed import Embedding, EmbeddingPoints, distance_matrix, embed  # noqa: E402
from linsim.ensemble import EnsembleConfig, simulate  # noqa: E402
from linsim.runners import Runner, get_runner, register_runner  # noqa: E402
from linsim.theory_inputs import TheoryInputs, TheorySpectra, predict_spectra, theory_inputs  # noqa: E402
from linsim.trajectory import Trajectory  # noqa: E402
from linsim.metrics import (  # noqa: E402
    RibbonCriterion,
    decay_rate,
    explained_stress,
    k_chi,
    negative_share,
    stress_at,
    summarize,
    widths,
)

#: Names resolved on first access (module -> names), see ``__getattr__``.
_LAZY = {
    "linsim.inpca": ("InPCA", "bhattacharyya"),
    "linsim.sweep": ("PhaseSpec", "run_phase", "agreement"),
}
_LAZY_NAMES = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str):
    module = _LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'linsim' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "Embedding",
    "EmbeddingPoints",
    "EnsembleConfig",
    "InPCA",
    "PhaseSpec",
    "RibbonCriterion",
    "Runner",
    "TheoryInputs",
    "TheorySpectra",
    "Trajectory",
    "__version__",
    "agreement",
    "bhattacharyya",
    "decay_rate",
    "distance_matrix",
    "embed",
    "explained_stress",
    "get_runner",
    "k_chi",
    "negative_share",
    "predict_spectra",
    "register_runner",
    "run_phase",
    "simulate",
    "stress_at",
    "summarize",
    "theory_inputs",
    "widths",
]
