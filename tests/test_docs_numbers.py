"""The docs against the code (issue 29): every number the pages quote is the one docs/numbers.json
holds, rounded by the one rule of docs and CLI; every figure they show is made by docs/make.py; and
every part of the docs is trained again and its numbers and figure data compared with
docs/numbers.json exactly, so a change that moves a documented number fails here until
`python docs/make.py` is run again. The exact math gives the same bits on every x86 CPU and on
aarch64; other CPUs skip the exact comparisons."""

import importlib.util
import json
import platform
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("docs_make", ROOT / "docs" / "make.py")
make = importlib.util.module_from_spec(_spec)
sys.modules["docs_make"] = make
_spec.loader.exec_module(make)

NUMBERS = json.loads((ROOT / "docs" / "numbers.json").read_text())["numbers"]
VALUES = make.values_of(NUMBERS)
# Exact math gives x86's bits on aarch64 too (its fused multiply-adds switched off, tests/test_golden.py
# checks the tutorial's trace there); other CPUs skip the exact comparisons.
EXACT_CPU = platform.machine().lower() in ("x86_64", "amd64", "aarch64", "arm64")
exact_cpu = pytest.mark.skipif(not EXACT_CPU, reason="docs/numbers.json holds exact math's x86 and ARM bits")


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_every_number_names_its_value_part_command_and_machine():
    assert {entry["product"] for entry in NUMBERS.values()} == set(make.PRODUCTS), "a part never made"
    for name, entry in NUMBERS.items():
        assert set(entry) == {"value", "product", "command", "machine"}, name
        assert entry["product"] in make.PRODUCTS and entry["command"] == make.PRODUCTS[entry["product"]].command
        assert re.match(r"\d+-core .+, Python 3\.\d+\.\d+, TensorFlow \d", entry["machine"]), entry["machine"]


@pytest.mark.parametrize(("page", "template"), make.QUOTES, ids=[f"{p}:{t[:40]}" for p, t in make.QUOTES])
def test_the_page_quotes_the_number_as_made(page, template):
    """The passage is on its page once, with the numbers of docs/numbers.json as the rule rounds them."""
    text = (ROOT / page).read_text()
    found = make.find(text, template)
    assert len(found) == 1, f"{page}: {len(found)} passages like {template!r}"
    assert flat(found[0].group()) == flat(make.render(template, VALUES))


def test_every_quoted_number_is_one_the_script_makes():
    fields = {name for _, t in make.QUOTES for _, name, _, _ in __import__("string").Formatter().parse(t) if name}
    assert fields <= set(VALUES), fields - set(VALUES)


def test_rewriting_the_pages_finds_every_passage_and_changes_nothing(tmp_path, monkeypatch):
    """The script's own rewrite, run on copies of the pages: each passage found once, and the pages
    already say what docs/numbers.json holds. A moved number is rewritten in place."""
    for page in {p for p, _ in make.QUOTES}:
        (tmp_path / page).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / page).write_text((ROOT / page).read_text())
    monkeypatch.setattr(make, "ROOT", tmp_path)
    assert make.quote_pages(VALUES) == []
    moved = dict(VALUES, default_accuracy=0.123456)
    assert make.quote_pages(moved) == ["README.md", "docs/memory.md", "docs/training.md"]
    assert "held-out accuracy 0.1235." in flat((tmp_path / "README.md").read_text())


def test_the_rule_rounds_half_to_even_as_the_cli_does():
    """Ties (exactly representable ones) go to the even digit, everything else to the nearest, from
    the value as stored: the docs' rule is Python's format, which every number the CLI prints uses."""
    assert [format(v, ".2f") for v in (0.125, 0.375, 0.9996600151062012)] == ["0.12", "0.38", "1.00"]
    assert format(0.9996600151062012, ".4f") == "0.9997"  # issue 29: the docs had truncated it to 0.9996
    assert make.render("{x:.4f}", {"x": 0.99995}) == format(0.99995, ".4f")


def figures_shown() -> set[str]:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    found = set()
    for page in pages:
        for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+\.png)\)", page.read_text()):
            found.add((page.parent / target).resolve().relative_to(ROOT).as_posix())
    return found


def test_every_figure_shown_is_made_by_the_script():
    made = {f for p in make.PRODUCTS.values() for f in p.figures}
    measured_by_benchmarks = {f for f in figures_shown() if f.startswith("benchmarks/")}
    assert figures_shown() - measured_by_benchmarks <= made, figures_shown() - measured_by_benchmarks - made
    assert all((ROOT / f).is_file() for f in made)


def product_params():
    return [pytest.param(name, marks=[] if p.quick else [pytest.mark.slow], id=name)
            for name, p in make.PRODUCTS.items()]


@exact_cpu
@pytest.mark.parametrize("name", product_params())
def test_the_part_trains_to_the_numbers_the_docs_hold(name, tmp_path):
    """Trained again, the part's numbers and figure digests are docs/numbers.json's, bit for bit."""
    product = make.PRODUCTS[name]
    measured = {k: make.plain(v) for k, v in product.measure(tmp_path, False).items()}
    stored = {k: v for k, v in VALUES.items() if NUMBERS[k]["product"] == name}
    same_machine = {NUMBERS[k]["machine"] for k in stored} == {make.machine()}
    if product.fast and not same_machine:
        pytest.skip(f"fast math: docs/numbers.json holds the bits of {NUMBERS[next(iter(stored))]['machine']}")
    if not same_machine:
        # The memory records' float64 NumPy products are the BLAS kernel's of this CPU kind: equal
        # to float32 rounding (the records are stored as float32), not bit for bit; their digests
        # are not compared. Everything the training makes still is, exactly.
        blas = {k for k in stored if make.BLAS_DEPENDENT.search(k)}
        for k in blas - {k for k in blas if k.endswith("sha256")}:
            assert measured[k] == pytest.approx(stored[k], rel=1e-5, abs=1e-7), k
        measured = {k: v for k, v in measured.items() if k not in blas}
        stored = {k: v for k, v in stored.items() if k not in blas}
    assert measured == stored, {k: (measured.get(k), stored.get(k)) for k in measured.keys() | stored.keys()
                                if measured.get(k) != stored.get(k)}


@pytest.mark.slow  # the default training again, through the command
def test_the_cli_prints_what_the_docs_quote(tmp_path):
    """The default run through `echo-rnn train`: its end line shows the held-out accuracy the
    README quotes (one rounding rule), and its file is the trace the quick start's figure is drawn
    from."""
    from click.testing import CliRunner

    from echo_rnn_cli import load_run
    from echo_rnn_cli.cli import cli

    if not EXACT_CPU:
        pytest.skip("docs/numbers.json holds exact math's x86 and ARM bits")
    out = tmp_path / "run.npz"
    result = CliRunner().invoke(cli, ["train", "--echo-step", "3", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"held-out accuracy {VALUES['default_accuracy']:.4f}" in result.stderr
    assert make.trace_digest(load_run(out)) == VALUES["default_trace_sha256"]


def test_the_page_on_the_script_lists_every_part():
    listed = re.findall(r"^\| `(\w+)` \|", (ROOT / "docs" / "numbers.md").read_text(), re.M)
    assert listed == list(make.PRODUCTS)
    assert all(p.measure.__doc__ for p in make.PRODUCTS.values())
