"""The speed tables of README.md and docs/speed.md are the ones benchmarks/speed_tables.py makes
from the committed benchmark run (benchmarks/scaling.json): no timing typed by hand, and a new run
fails here until the tables are pasted again."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("speed_tables", ROOT / "benchmarks" / "speed_tables.py")
tables = importlib.util.module_from_spec(_spec)
sys.modules["speed_tables"] = tables
_spec.loader.exec_module(tables)


@pytest.mark.parametrize("name", sorted(tables.TABLES))
def test_the_page_holds_the_table_made_from_the_committed_run(name):
    page, make = tables.TABLES[name]
    made = make(tables.load())
    assert made in (ROOT / page).read_text(), f"{page}: run `python benchmarks/speed_tables.py --page {name}`"


def test_the_tables_show_what_the_run_measured():
    """A cell of the made table is the run's number as measured, at the digits shown."""
    rows = tables.load()
    lstm64 = tables.value(rows, "echo-rnn", "lstm", 64)
    jax64 = tables.value(rows, "jax", "lstm", 64)
    line = next(ln for ln in tables.speed_table(rows).splitlines() if ln.startswith("| 64 "))
    assert f"{lstm64:,.0f} µs" in line and f"{lstm64 / jax64:.2f}" in line
    assert tables.significant(0.7, 2) == "0.70" and tables.significant(57.0, 2) == "57"
    assert tables.us(None, 2) == "-" and tables.us(1234.5, 2) == "1,234"


def test_the_prose_quotes_the_lstms_ratios_of_the_committed_run():
    rows = tables.load()
    shown = " and ".join(f"{tables.value(rows, 'echo-rnn', 'lstm', s) / tables.value(rows, 'jax', 'lstm', s):.2f}x"
                         for s in (64, 128))
    for page in ("README.md", "docs/speed.md"):
        assert f"({shown}" in " ".join((ROOT / page).read_text().split()), page
