"""The README's examples run as written: every ```python block, in order, in one namespace,
and every ``linsim`` line of the ```bash blocks of its Usage section.

The checks after running compare the example's theory with its own simulation (an
independent oracle: a wrong learning rate or eigenbasis makes the top eigenvalues miss by
a factor ~2 at λ₁ = 1.5) and look at the files the examples promise.
"""

import re
import shlex
from pathlib import Path

import matplotlib
import numpy as np
import pytest

README = Path(__file__).parents[1] / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def blocks(language: str, section: str | None = None) -> list[str]:
    text = README.read_text()
    if section is not None:
        start = text.index(f"## {section}\n")
        end = text.find("\n## ", start + 1)
        text = text[start:end if end > 0 else None]
    return [body for lang, body in FENCE.findall(text) if lang == language]


def test_readme_has_examples():
    assert len(blocks("python")) >= 3
    assert any("linsim" in b for b in blocks("bash", "Usage"))


@pytest.fixture(scope="module")
def namespace(tmp_path_factory):
    import os

    folder = tmp_path_factory.mktemp("readme")
    old_dir, old_backend = os.getcwd(), matplotlib.get_backend()
    os.chdir(folder)
    ns = {"__name__": "__readme__"}
    try:
        for i, code in enumerate(blocks("python")):
            exec(compile(code, f"README.md python block {i + 1}", "exec"), ns)
        assert matplotlib.get_backend() == old_backend, "the README code changed the matplotlib backend"
    finally:
        os.chdir(old_dir)
    ns["__folder__"] = folder
    return ns


def test_usage_theory_matches_its_simulation(namespace):
    lam = namespace["emb"].model.eigenvalues_[:5]
    pred = namespace["pred"][:5]
    assert namespace["cfg"].lambda_1 != 1.0  # the example must exercise lr = 1/λ₁ != 1
    np.testing.assert_allclose(pred, lam, rtol=0.05)
    assert namespace["inputs"].lr == pytest.approx(1 / namespace["cfg"].lambda_1)


def test_usage_writes_the_figures_it_promises(namespace):
    for name in ("ribbon.png", "spectrum.png", "phase.png"):
        assert (namespace["__folder__"] / name).read_bytes()[:4] == b"\x89PNG", name


def test_usage_sweep_and_low_level_results(namespace):
    ds = namespace["ds"]
    assert ds["status"].shape == (2, 2) and (ds["status"].values == "ok").all()
    assert 0.0 <= namespace["linsim"].agreement(ds)["agreement"] <= 1.0
    assert namespace["coords_new"].shape == (3, 5)
    D = namespace["D"]
    assert D.dtype == np.float64 and np.allclose(D, D.T) and np.allclose(np.diag(D), 0)


def test_usage_commands_run(tmp_path, monkeypatch, capsys):
    from linsim.cli import main

    monkeypatch.chdir(tmp_path)
    lines = [ln for b in blocks("bash", "Usage") for ln in b.splitlines() if ln.strip().startswith("linsim ")]
    assert lines
    for line in lines:
        argv = shlex.split(line, comments=True)[1:]
        assert main(argv) == 0, line
        out = "--out" in argv and Path(argv[argv.index("--out") + 1])
        if out:
            assert any(out.iterdir()), f"{line}: wrote nothing"
    capsys.readouterr()
