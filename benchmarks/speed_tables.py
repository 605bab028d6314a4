"""The speed tables of README.md and docs/speed.md, made from a run of `scaling.py` (its JSON).

    python benchmarks/speed_tables.py                      # every table from benchmarks/scaling.json
    python benchmarks/speed_tables.py --page readme        # only README.md's
    python benchmarks/speed_tables.py --json /tmp/run.json

The pages quote the committed run (`benchmarks/scaling.json`, its machine and command in
`benchmarks/scaling.md`), never numbers typed by hand: tests/test_speed_tables.py checks that each
page holds exactly the table this script makes from that file, so a new run of the benchmark
fails the suite until the tables are pasted again.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import scaling  # noqa: E402 - beside this file, once its folder is on the path

CELLS = ("rnn", "lstm", "gru")


#: One measured number of the run, echo-rnn's on the default path (--math auto); None if not measured.
value = functools.partial(scaling.lookup, math="auto")


def states(rows: list[dict]) -> list[int]:
    return sorted({r["state"] for r in rows if r["framework"] == "echo-rnn"})


def significant(v: float, digits: int) -> str:
    """``digits`` significant digits, trailing zeros kept (0.70, 2.0), no trailing point."""
    return f"{v:#.{digits}g}".rstrip(".")


def us(v, digits: int) -> str:
    """Microseconds: whole ones from 100 on, else ``digits`` significant digits."""
    if v is None:
        return "-"
    return f"{v:,.0f}" if v >= 100 else significant(v, digits)


def ms(v, digits: int) -> str:
    return "-" if v is None else significant(v / 1000, digits)


def _peers(rows, framework: str, state: int, show) -> str:
    return " / ".join(show(value(rows, framework, c, state)) for c in CELLS)


def _math(rows, state: int) -> str:
    used = {c: next((r.get("math_used") for r in rows if r["framework"] == "echo-rnn" and r["cell"] == c
                     and r["state"] == state and r["models"] == 1), None) for c in CELLS}
    kinds = set(used.values())
    if len(kinds) == 1:
        return f"{state} ({kinds.pop()})"
    rnn, gated = used["rnn"], used["lstm"]
    return f"{state} (rnn {rnn}; LSTM, GRU {gated})"


def readme_table(rows: list[dict]) -> str:
    lines = ["| units | rnn | LSTM | GRU | JAX scan (rnn / LSTM / GRU) | PyTorch eager (rnn / LSTM / GRU) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for s in states(rows):
        echo = " | ".join(f"{us(value(rows, 'echo-rnn', c, s), 2)} µs" for c in CELLS)
        lines.append(f"| {s} | {echo} | {_peers(rows, 'jax', s, lambda v: us(v, 2))} µs | "
                     f"{_peers(rows, 'pytorch', s, lambda v: ms(v, 2))} ms |")
    return "\n".join(lines)


def speed_table(rows: list[dict]) -> str:
    lines = ["| units | rnn | LSTM | GRU | JAX scan (rnn / LSTM / GRU) | echo-rnn / JAX | "
             "PyTorch eager (rnn / LSTM / GRU) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for s in states(rows):
        echo = " | ".join(f"{us(value(rows, 'echo-rnn', c, s), 3)} µs" for c in CELLS)
        ratios = []
        for c in CELLS:
            a, b = value(rows, "echo-rnn", c, s), value(rows, "jax", c, s)
            r = "-" if a is None or b is None else f"{a / b:.2f}"
            ratios.append(f"**{r}**" if r != "-" and a > b else r)
        lines.append(f"| {_math(rows, s)} | {echo} | {_peers(rows, 'jax', s, lambda v: us(v, 2))} µs | "
                     f"{' / '.join(ratios)} | {_peers(rows, 'pytorch', s, lambda v: ms(v, 3))} ms |")
    return "\n".join(lines)


def seeds_table(rows: list[dict], models: int = 16) -> str:
    """Per model-window with ``--seeds 16`` against one model's window, and JAX's vmap likewise."""
    lines = [f"| units | `--seeds {models}` per model-window, over one model's (rnn / LSTM / GRU) | "
             f"JAX vmap {models}, over its one model (rnn / LSTM / GRU) |", "| --- | --- | --- |"]
    for s in states(rows):
        parts = []
        for framework in ("echo-rnn", "jax"):
            shown = []
            for c in CELLS:
                many = value(rows, framework, c, s, models, "per_model_window_us")
                one = value(rows, framework, c, s)
                shown.append("-" if many is None or one is None else f"{us(many, 3)} µs ({many / one:.2f}x)")
            parts.append(" / ".join(shown))
        lines.append(f"| {s} | {parts[0]} | {parts[1]} |")
    return "\n".join(lines)


TABLES = {"readme": ("README.md", readme_table), "speed": ("docs/speed.md", speed_table),
          "seeds": ("docs/speed.md", seeds_table)}


def load(path: Path = HERE / "scaling.json") -> list[dict]:
    return json.loads(path.read_text())["rows"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", type=Path, default=HERE / "scaling.json", help="a scaling.py --json file")
    p.add_argument("--page", choices=sorted(TABLES), action="append", help="only these tables")
    opts = p.parse_args(argv)
    rows = load(opts.json)
    for name in opts.page or list(TABLES):
        page, make = TABLES[name]
        print(f"<!-- {page} -->\n{make(rows)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
