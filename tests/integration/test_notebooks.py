"""The notebooks run top to bottom: every code cell, in order, in one namespace."""

from __future__ import annotations

import contextlib
import glob
import io
import json
import os

import pytest

NOTEBOOKS = sorted(glob.glob("notebooks/*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS)
def test_notebook_runs(path, monkeypatch):
    with open(path) as f:
        nb = json.load(f)
    monkeypatch.chdir(os.path.dirname(path))
    namespace: dict = {"__name__": "__main__"}
    out = io.StringIO()
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        with contextlib.redirect_stdout(out):
            exec(compile(source, f"{path}[cell {i}]", "exec"), namespace)
    text = out.getvalue()
    assert "Bridge br-int" in text  # the show of the notebook's bring-up


def test_there_are_notebooks():
    assert NOTEBOOKS
