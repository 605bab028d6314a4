"""docs/tutorial.ipynb runs as saved, top to bottom, in a fresh kernel, and shows what it says:
the training's accuracy, the figures inline, the echo and the sweep's staircase (issue 22, item 3;
issue 29). It is saved without outputs, so the repository holds no stale numbers."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "docs" / "tutorial.ipynb"


def test_the_notebook_says_what_to_install_and_its_cells_have_ids():
    """Issue 29: a `notebook` extra installs Jupyter (the test extra has only nbclient and a kernel),
    the notebook's first cell says so, and every cell has an id (nbformat warned without)."""
    import tomllib

    import nbformat

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {re.match(r"[\w-]+", d).group() for d in extras["notebook"]} >= {"jupyterlab", "ipykernel"}
    nb = json.loads(NOTEBOOK.read_text())
    assert "pip install '.[notebook]'" in "".join(nb["cells"][0]["source"])
    ids = [c.get("id") for c in nb["cells"]]
    assert all(ids) and len(set(ids)) == len(ids)
    nbformat.validate(nbformat.reads(NOTEBOOK.read_text(), as_version=4))


def test_the_notebook_is_saved_without_outputs():
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert code and all(not c["outputs"] and c["execution_count"] is None for c in code)


@pytest.mark.slow  # a kernel of its own, TensorFlow's import, a training and a small sweep: about a minute
def test_the_notebook_runs_and_shows_its_results(tmp_path):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [c.get("outputs", []) for c in nb.cells if c.cell_type == "code"]
    text = ["".join(o.get("text", "") + "".join(o.get("data", {}).get("text/plain", ""))
                    for o in out) for out in outputs]
    accuracy = float(re.search(r"completed held-out accuracy (\d\.\d+)", text[0]).group(1))
    assert accuracy > 0.99
    images = [any("image/png" in o.get("data", {}) for o in out) for out in outputs]
    assert images[1] and images[3] and images[4], "the figures are shown inline"
    assert re.search(r"accuracy\s+1\.0", text[2]), text[2]
    assert re.search(r"rests on lag 3 \((9\d|100)% of the profile\) after 8 epochs", text[3]), text[3]
    # The staircase its text promises: each echo learned exactly by the windows longer than it.
    found = re.findall(r"echo (\d), window (\d): completed, held-out accuracy (\d\.\d+)", text[4])
    assert len(found) == 9, text[4]
    for echo, window, accuracy in found:
        learned = float(accuracy) > 0.99
        assert learned == (int(echo) < int(window)) and (learned or float(accuracy) < 0.7), (echo, window, accuracy)
