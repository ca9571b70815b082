"""The public namespace: ``import linsim`` exposes the user-facing names, fast, with a version."""

import importlib
import importlib.metadata
import subprocess
import sys

import pytest

import linsim

OWN_MODULES = [
    "linsim.data", "linsim.embed", "linsim.ensemble", "linsim.runners", "linsim.theory_inputs",
    "linsim.solvers", "linsim.solvers.linear", "linsim.solvers.kernel", "linsim.solvers.softmax",
    "linsim.solvers.two_layer", "linsim.solvers.sgd", "linsim.solvers._checks",
    "linsim.solvers._stepping", "linsim.solvers._ode",
]

HOMES = {
    "EnsembleConfig": "linsim.ensemble", "simulate": "linsim.ensemble", "Trajectory": "linsim.trajectory",
    "embed": "linsim.embed", "Embedding": "linsim.embed", "InPCA": "linsim.inpca",
    "bhattacharyya": "linsim.inpca", "k_chi": "linsim.metrics", "explained_stress": "linsim.metrics",
    "RibbonCriterion": "linsim.metrics", "summarize": "linsim.metrics", "run_phase": "linsim.sweep",
    "PhaseSpec": "linsim.sweep", "theory_inputs": "linsim.theory_inputs",
    "TheoryInputs": "linsim.theory_inputs", "register_runner": "linsim.runners",
}


def test_version_comes_from_package_metadata():
    assert linsim.__version__ == importlib.metadata.version("linsim")


def test_every_public_name_resolves_and_is_listed():
    assert set(HOMES) <= set(linsim.__all__)
    names = set(dir(linsim))
    for name in linsim.__all__:
        assert name in names, name
        assert getattr(linsim, name) is not None, name
    for name, module in HOMES.items():
        assert getattr(linsim, name) is getattr(importlib.import_module(module), name), name
    assert callable(linsim.embed) and callable(linsim.theory_inputs)  # the functions, not the modules
    with pytest.raises(AttributeError, match="no attribute 'simulated'"):
        linsim.simulated  # noqa: B018


@pytest.mark.parametrize("module", OWN_MODULES)
def test_each_module_declares_all_and_its_names_exist(module):
    mod = importlib.import_module(module)
    assert isinstance(mod.__all__, (list, tuple)) and mod.__all__
    assert len(set(mod.__all__)) == len(mod.__all__)
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.__all__ lists missing {name!r}"


def test_import_is_light_and_leaves_global_state_alone():
    code = (
        "import os, sys; env = dict(os.environ); import linsim; "
        "print('torch' in sys.modules, 'sklearn' in sys.modules, 'matplotlib' in sys.modules, "
        "'scipy.integrate' in sys.modules, dict(os.environ) == env)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "False", "False", "True"]


def test_readme_style_usage_through_the_flat_namespace():
    cfg = linsim.EnsembleConfig(dim=4, n_samples=10, n_classes=3, n_runs=3, steps=20, n_checkpoints=4,
                                lambda_1=1.5, teacher_scale=0.01, init_scale=0.01)
    traj = linsim.simulate(cfg)
    emb = linsim.embed(traj)
    pred = linsim.theory_inputs(traj).quadratic_spectrum()
    top = emb.model.eigenvalues_[0]
    assert abs(pred[0] / top - 1) < 0.01
    assert linsim.k_chi(emb.model.eigenvalues_, 0.9, emb.model.frobenius_norm_) >= 1


DOCUMENTED = [m for m in OWN_MODULES if "._" not in m and m != "linsim.solvers"]


@pytest.mark.parametrize("module", DOCUMENTED)
def test_public_functions_and_classes_have_runnable_examples(module):
    """Every public function/class documents itself with an Examples section (run as a doctest)."""
    import inspect

    mod = importlib.import_module(module)
    missing = []
    for name in mod.__all__:
        obj = getattr(mod, name)
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and ">>>" not in (inspect.getdoc(obj) or ""):
            missing.append(name)
    assert not missing, f"{module}: no Examples in {missing}"
