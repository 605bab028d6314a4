"""The README opens with a quick start that works as written (issue 12, item 6) and stays a short front
door (issue 22), CI runs the README's own test command, every link and anchor in README.md and docs/
resolves, and docs/layout.md and docs/architecture.md name every module (issue 9, item 8)."""

import os
import re
import shlex
import tomllib
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
QUICK_START = README.split("\n# A tour\n", 1)[0]
#: README.md and every page of docs/, by path relative to the repository.
PAGES = {p.relative_to(ROOT).as_posix(): p.read_text()
         for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]}


def commands(text: str) -> list[str]:
    """The lines of the ```sh blocks."""
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def setup_commands() -> list[str]:
    return [c for c in commands(QUICK_START) if c.startswith("python3 -m venv")]


def test_the_quick_start_is_short_and_comes_first():
    assert README.startswith("# echo-rnn\n")
    assert "\n# A tour\n" in README, "the tour sits under a clear heading, after the quick start"
    assert len(QUICK_START.splitlines()) <= 70
    assert len(README.splitlines()) <= 250, "the README is the front door; the reference lives in docs/"
    for needed in ("echo-rnn train", "echo-rnn plot run.npz", "](docs/quickstart.png)", "--version",
                   "_ECHO_RNN_COMPLETE=bash_source echo-rnn", "What you should see"):
        assert needed in QUICK_START, needed


def test_each_setup_command_makes_and_uses_its_own_environment():
    """Each works on a fresh machine alone: it creates the virtual environment it then uses, and the
    two use different ones (the test one is editable, with extras; the user's is not)."""
    found = setup_commands()
    assert len(found) == 2
    made = []
    for command in found:
        words = shlex.split(command)
        venv = words[words.index("venv") + 1]
        used = {w.split("/bin/", 1)[0] for w in words if "/bin/" in w}
        assert used == {venv}, f"{command!r} uses {used - {venv}} that it did not make"
        made.append(venv)
    assert len(set(made)) == 2
    assert (ROOT / ".gitignore").read_text().split().count(made[1] + "/") == 1  # and ruff skips it


def test_ci_runs_the_readme_test_command_with_lint_first():
    (test_command,) = [c for c in setup_commands() if "pytest" in c]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci, ".ci/run must run the README's test command as written"
    steps = test_command.split(" && ")
    lint = next(i for i, s in enumerate(steps) if s.endswith("ruff check ."))
    assert lint < next(i for i, s in enumerate(steps) if "pytest" in s)
    assert os.access(ROOT / ".ci" / "run", os.X_OK)
    extras = (ROOT / "pyproject.toml").read_text().split("[project.optional-dependencies]", 1)[1]
    test_extra = re.search(r"^test = \[(.*?)\]", extras, flags=re.M).group(1)
    assert '"ruff' in test_extra and '"pytest' in test_extra


def test_ci_lists_the_slowest_tests_and_the_readme_names_the_quick_subset():
    (test_command,) = [c for c in setup_commands() if "pytest" in c]
    # Two workers, each taking whole files (a file's tests share its fixtures and trained runs).
    assert test_command.endswith("-m pytest -n 2 --dist loadfile --durations=15")
    assert '.venv-test/bin/python -m pytest -m "not slow" -n 2 --dist loadfile' in commands(QUICK_START)
    assert '.venv-test/bin/python -m pytest -m "not slow" -n 2 --dist loadfile' in commands(PAGES["docs/setup.md"])
    markers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
    assert any(m.startswith("slow:") for m in markers)


def test_the_figure_is_there_and_can_be_made_again():
    png = ROOT / "docs" / "quickstart.png"
    assert png.stat().st_size < 300_000
    with Image.open(png) as image:
        assert image.format == "PNG" and image.width >= 800
    script = ROOT / "scripts" / "make_readme_figure.sh"
    assert os.access(script, os.X_OK)
    text = script.read_text()
    assert "docs/make.py default" in text and "docs/quickstart.png" in text  # the quick start's own run
    assert "scripts/make_readme_figure.sh" in PAGES["docs/setup.md"]
    make = (ROOT / "docs" / "make.py").read_text()
    assert '"echo-rnn train --echo-step 3 -o run.npz && echo-rnn plot run.npz -o docs/quickstart.png' in make


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    return {slug(h) for h in re.findall(r"^#+ (.+)$", "\n".join(outside_code(text)), flags=re.M)}


def links(text: str) -> list[str]:
    """The targets of the Markdown links and images outside code blocks."""
    return re.findall(r"\]\(([^)\s]+)\)", "\n".join(outside_code(text)))


@pytest.mark.parametrize("page", list(PAGES))
def test_every_link_and_anchor_resolves(page):
    for target in links(PAGES[page]):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        where = (ROOT / page).parent / path if path else ROOT / page
        assert where.exists(), f"{page}: {target} does not exist"
        if anchor:
            text = where.read_text()
            assert anchor in anchors(text), f"{page}: {target}: no such heading"


def test_every_docs_page_starts_with_a_title_and_a_two_line_summary():
    for page, text in PAGES.items():
        if page == "README.md":
            continue
        lines = text.splitlines()
        assert lines[0].startswith("# ") and lines[1] == "", page
        assert lines[2] and lines[3] and lines[4] == "", f"{page}: a two-line summary under the title"


def test_the_readme_links_every_docs_page():
    for page in PAGES:
        if page.startswith("docs/"):
            assert f"]({page})" in README, f"the README does not link {page}"


def modules() -> list[Path]:
    package = ROOT / "echo_rnn_cli"
    return sorted(p.relative_to(package) for p in package.rglob("*.py") if p.name != "__init__.py"
                  or p.parent != package)


@pytest.mark.parametrize("where", ["docs/layout.md", "docs/architecture.md"])
def test_layout_and_architecture_name_every_module(where):
    text = (ROOT / where).read_text()
    for module in modules():
        name = f"{module.parent.name}/" if module.name == "__init__.py" else module.name
        if where == "docs/architecture.md" and module.name in ("__init__.py", "__main__.py"):
            continue  # the package's plumbing; the Layout lists it
        stem = name if module.name == "__init__.py" else module.stem
        assert name in text or f"`{stem}`" in text, f"{where} does not name {module}"


def outside_code(text: str) -> list[str]:
    """The lines of the text that are not inside ``` blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


@pytest.mark.parametrize("page", list(PAGES))
def test_every_table_is_one_table(page):
    """A table starts with a header row and its | --- | row: rows cut off by a blank line would
    render as raw pipes."""
    lines = outside_code(PAGES[page])
    for i, line in enumerate(lines):
        if line.startswith("|") and (i == 0 or not lines[i - 1].startswith("|")):
            assert i + 1 < len(lines) and re.fullmatch(r"\|( *-+ *\|)+", lines[i + 1]), f"a table cut off at {line!r}"


def test_layout_names_each_module_once():
    layout = PAGES["docs/layout.md"].split("## Layout\n", 1)[1].split("```", 2)[1]
    entries = re.findall(r"^( +)(\S+(?:\.py|/))(?= )", layout, flags=re.M)
    assert entries and len(entries) == len(set(entries)), [e for e in entries if entries.count(e) > 1]


def test_the_licence_is_the_one_pyproject_names():
    """pyproject says MIT (issue 29: there was no LICENSE file)."""
    text = (ROOT / "LICENSE").read_text()
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"] == "MIT"
    assert text.startswith("MIT License\n") and "Copyright (c) the echo-rnn authors" in text
    assert "THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND" in text
