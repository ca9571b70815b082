"""Every notebook (jupytext percent format) executes at small size."""

import os
from pathlib import Path

import jupytext
import pytest

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.py"))


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, monkeypatch, tmp_path):
    nb = jupytext.read(path)
    assert nb.metadata.get("jupytext", {}).get("text_representation", {}).get("format_name") == "percent"
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    monkeypatch.setenv("LINSIM_NOTEBOOK_SMALL", "1")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(path), "exec"), {"__name__": "__notebook__"})
