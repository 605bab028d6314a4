"""docs/tutorial.ipynb runs as saved, top to bottom, in a fresh kernel, and shows what it says:
the training's accuracy, the figures inline, the echo and the sweep (issue 22, item 3). It is
saved without outputs, so the repository holds no stale numbers."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "docs" / "tutorial.ipynb"


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
    assert "4 runs ['completed', 'completed', 'completed', 'completed']" in text[4]
