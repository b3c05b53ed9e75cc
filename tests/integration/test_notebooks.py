"""The notebooks run top to bottom: every code cell, in order, in one namespace."""

from __future__ import annotations

import contextlib
import glob
import io
import json
import os

import pytest

NOTEBOOKS = sorted(glob.glob("notebooks/*.ipynb"))
#: what each notebook must print (its cells also assert what they show)
EXPECTED = {
    "notebooks/01-topology-to-ovsdb.ipynb": "Bridge br-int",  # the show of the bring-up
    "notebooks/02-packet-through-datapaths.ipynb": "actions:set(tunnel(",  # hv1's megaflow
    "notebooks/03-openflow-pipeline.ipynb": "Datapath actions: set(tunnel(",  # vm1's trace
}


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
    assert EXPECTED[path] in text


def test_there_are_notebooks():
    assert NOTEBOOKS and sorted(EXPECTED) == NOTEBOOKS
