"""Time per training window of two checkouts of echo-rnn, side by side, alternating in one run.

    git worktree add /tmp/before HEAD~3
    .venv/bin/python benchmarks/window_ab.py /tmp/before .            # the default network
    .venv/bin/python benchmarks/window_ab.py /tmp/before . --set cell=lstm --set state_size=8

For a change that must not cost speed (or may cost at most so much): each round runs each
checkout's compiled epoch in a fresh process of its own (A then B, then B then A the next round, so
neither always goes first), on the same data, and keeps the fastest of its calls per window; the
report gives each side's median over rounds and their ratio. Machines that others share drift by
tens of percent over minutes; alternating keeps the drift out of the ratio. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

#: Run in each checkout's own process: the compiled epoch of a config, timed on fixed data.
WORKER = r"""
import json, sys, time
import numpy as np
from echo_rnn_cli import Config, train_many
from echo_rnn_cli._tf import tf
from echo_rnn_cli.data import epoch_data
from echo_rnn_cli.steps import compiled_train_epoch
from echo_rnn_cli.trainer import prepare_models

c = Config(**json.loads(sys.argv[1]))
train_many([c.replace(epochs=1)])  # compiles (or loads) the program this config trains with
group = prepare_models([c])
xs, ys = (tf.constant(a[:, None]) for a in epoch_data(c, 0))
args = [c.optimizer, c.num_classes, c.snapshot_every, c.cell, c.num_layers, c.stride_steps,
        getattr(c, "math_used", c.math)]
if getattr(c, "clip_norm", 0):
    args.append(c.clip_norm)
fn = compiled_train_epoch(*args)
wall = cpu = float("inf")
for _ in range(int(sys.argv[2])):
    t, p = time.perf_counter(), time.process_time()
    fn(group.params, group.opt, xs, ys, group.lr)[2].numpy()
    wall, cpu = min(wall, time.perf_counter() - t), min(cpu, time.process_time() - p)
print(json.dumps({"window_us": wall / c.windows_per_epoch * 1e6, "cpu_window_us": cpu / c.windows_per_epoch * 1e6,
                  "source": __import__("echo_rnn_cli").__file__}))
"""


def time_checkout(path: Path, settings: dict, calls: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(path.resolve()), "TF_CPP_MIN_LOG_LEVEL": "3"}
    # cwd too: `python -c` puts the working folder first on sys.path, before PYTHONPATH.
    out = subprocess.run([sys.executable, "-c", WORKER, json.dumps(settings), str(calls)], env=env, check=True,
                         cwd=path, capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    if not result["source"].startswith(str(path.resolve())):  # the checkout asked for, not an installed copy
        raise SystemExit(f"{path}: imported echo_rnn_cli from {result['source']}")
    return result


def parse_set(text: str) -> tuple[str, object]:
    key, _, value = text.partition("=")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("a", type=Path, help="the checkout before (its root folder)")
    p.add_argument("b", type=Path, help="the checkout after")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a setting (repeatable)")
    p.add_argument("--rounds", type=int, default=5, help="A/B pairs [5]")
    p.add_argument("--calls", type=int, default=10, help="timed epochs per process, fastest kept [10]")
    p.add_argument("--epoch-symbols", type=int, default=15000, help="total_series_length of the timed epoch")
    args = p.parse_args()
    settings = {"total_series_length": args.epoch_symbols} | dict(parse_set(s) for s in args.set)
    got = {"a": [], "b": []}
    for r in range(args.rounds):
        for side in ("ab" if r % 2 == 0 else "ba"):
            got[side].append(time_checkout(getattr(args, side), settings, args.calls))
        print(f"round {r + 1}: A {got['a'][-1]['window_us']:.1f} us ({got['a'][-1]['cpu_window_us']:.1f} cpu), "
              f"B {got['b'][-1]['window_us']:.1f} us ({got['b'][-1]['cpu_window_us']:.1f} cpu)", file=sys.stderr)
    report = {"settings": settings}
    # Wall time is what users wait for; CPU time (the process's, every thread) is what the program
    # costs, and moves far less when other work shares the cores.
    for clock in ("window_us", "cpu_window_us"):
        a, b = (statistics.median(x[clock] for x in got[side]) for side in "ab")
        report[clock] = {"a": [x[clock] for x in got["a"]], "b": [x[clock] for x in got["b"]],
                         "a_median": a, "b_median": b, "ratio_b_over_a": b / a}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
