"""A seed sweep timed both ways: its points trained together in one compiled program (grouped)
and each point alone, alternately, with everything else the same.

    .venv/bin/python benchmarks/sweep_grouping.py                     # lstm, 64 units, 4 seeds
    .venv/bin/python benchmarks/sweep_grouping.py --cell rnn --state 4 --seeds 8

``echo-rnn sweep`` groups points only below ``config.GROUP_BELOW`` (where benchmarks/scaling.py
measured a model among 16 cheaper per window than alone, benchmarks/grouping.md); this script
overrides that rule each way in turn and reports the wall time of the whole ``run_sweep`` call
(worker processes, compiling, training, evaluating, writing the run files), the fastest of
``--rounds``. The compile cache is a folder of its own, warmed by one untimed sweep first, so
neither way pays a first compile the other does not.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import header, log, preamble  # noqa: E402 - common.py beside it, once on the path


def timed_sweep(base, seeds: int, jobs: int, grouped: bool) -> float:
    from echo_rnn_cli import config
    from echo_rnn_cli.sweep.run import run_sweep

    saved = dict(config.GROUP_BELOW)
    config.GROUP_BELOW[base.cell] = sys.maxsize if grouped else 0
    try:
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            result = run_sweep(base, {}, seeds=seeds, out_dir=out, jobs=jobs)
            seconds = time.perf_counter() - t0
    finally:
        config.GROUP_BELOW.update(saved)
    if result.failed or result.interrupted:
        raise RuntimeError(f"the sweep did not complete: {result.failed or 'interrupted'}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sweep_grouping.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--cell", default="lstm", choices=("rnn", "lstm", "gru"))
    p.add_argument("--state", type=int, default=64)
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--series", type=int, default=30_000, help="total_series_length [30000]")
    p.add_argument("--jobs", type=int, default=None, help="sweep workers [the cores]")
    p.add_argument("--rounds", type=int, default=2)
    opts = p.parse_args(argv)
    cache = tempfile.mkdtemp(prefix="echo-rnn-xla-")
    os.environ["ECHO_RNN_XLA_CACHE"] = cache  # the workers inherit it
    from echo_rnn_cli.config import resolve

    base = resolve(overrides={"cell": opts.cell, "state_size": opts.state, "epochs": opts.epochs,
                              "total_series_length": opts.series})
    res = header()
    timed_sweep(base, opts.seeds, opts.jobs or os.cpu_count(), grouped=True)  # warms the compile cache
    timed_sweep(base, opts.seeds, opts.jobs or os.cpu_count(), grouped=False)
    best = {True: float("inf"), False: float("inf")}
    for r in range(opts.rounds):
        for grouped in (True, False):
            s = timed_sweep(base, opts.seeds, opts.jobs or os.cpu_count(), grouped)
            best[grouped] = min(best[grouped], s)
            log(f"round {r + 1}: {'grouped' if grouped else 'alone'} {s:.2f} s")
    res["load_after"] = os.getloadavg()
    lines = [*preamble(res, "/CPU:0"), "",
             f"`echo-rnn sweep --seeds {opts.seeds}` of a {opts.cell} of {opts.state} units, {opts.epochs} epochs of "
             f"{opts.series} symbols, {opts.jobs or os.cpu_count()} workers; fastest of {opts.rounds} rounds:", "",
             "| points | wall time |", "| --- | --- |",
             f"| trained together (one program) | {best[True]:.2f} s |",
             f"| each alone | {best[False]:.2f} s |", "",
             f"Each alone / together: {best[False] / best[True]:.2f}x."]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
