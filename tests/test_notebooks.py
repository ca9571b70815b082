"""Every notebook (jupytext percent format) executes AS A NOTEBOOK, at small size, and shows figures.

jupytext -> nbformat -> nbclient with the ``python3`` kernel (ipykernel), exactly what a user's
Jupyter does; the executed notebook must contain ``image/png`` outputs (figures that a user
would see) and no errors.
"""

import re
from pathlib import Path

import jupytext
import nbclient
import pytest

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.py"))


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_never_sets_the_backend(path):
    text = path.read_text()
    assert not re.search(r"matplotlib\s*\.\s*use\s*\(", text), "notebooks must not call matplotlib.use"
    assert "plt.switch_backend" not in text


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes_and_shows_figures(path, monkeypatch, tmp_path):
    nb = jupytext.read(path)
    assert nb.metadata.get("jupytext", {}).get("text_representation", {}).get("format_name") == "percent"
    monkeypatch.setenv("LINSIM_NOTEBOOK_SMALL", "1")  # the kernel inherits the environment
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    assert pngs, f"{path.name} produced no figure"
    for o in pngs:
        assert len(o["data"]["image/png"]) > 5000  # base64 of a real figure, not an empty canvas
