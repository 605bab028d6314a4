"""The Pythons echo-rnn installs on (issue 28). TensorFlow 2.21 has wheels for CPython 3.10 to 3.13
and none for 3.14; without an upper bound pip would start on 3.14 and stop at its resolver's
"No matching distribution found for tensorflow". With ``requires-python`` it stops first, with one
line naming the versions that work: ``ERROR: Package 'echo-rnn-cli' requires a different Python:
3.14.0 not in '<3.14,>=3.11'`` (pip 25.2 and 26.3, asked with ``--python-version 3.14``)."""

import re
import tomllib
from pathlib import Path

from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]
SUPPORTED = ["3.11", "3.12", "3.13"]


def _admitted() -> list[str]:
    spec = SpecifierSet(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"])
    return [f"3.{minor}" for minor in range(6, 30) if spec.contains(f"3.{minor}.0")]


def test_pip_refuses_the_pythons_tensorflow_has_no_wheel_for():
    assert _admitted() == SUPPORTED


def test_the_readme_and_the_setup_page_name_the_same_versions():
    named = f"Python {SUPPORTED[0]}-{SUPPORTED[-1]}"
    readme = (ROOT / "README.md").read_text()
    assert named in readme
    assert not re.search(r"Python 3\.\d+\+", readme), "an open-ended range promises versions pip refuses"
    assert named in (ROOT / "docs" / "setup.md").read_text()
