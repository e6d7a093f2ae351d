"""Notebooks are valid nbformat-4 JSON and their code cells run top to bottom (offline, Agg backend)."""

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert {p.name for p in NOTEBOOKS} >= {"quickstart.ipynb", "motion_blur.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, tmp_path, monkeypatch):
    nb = json.loads(path.read_text())
    assert nb["nbformat"] == 4 and nb["cells"]
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    assert code
    # run in an empty scratch folder: shipped pipelines/benchmarks are package data, found from any folder
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    ns = {"__name__": "__notebook__"}
    for i, src in enumerate(code):
        try:
            exec(compile(src, f"{path.name}[cell {i}]", "exec"), ns)
        except Exception as e:  # name the failing cell
            raise AssertionError(f"{path.name} code cell {i} failed: {type(e).__name__}: {e}") from e
    import matplotlib.pyplot as plt

    plt.close("all")
    assert os.getcwd() == str(tmp_path)
