"""What recording the memory profile costs the default run (issue 20's target: at most 5%).

    .venv/bin/python benchmarks/memory_cost.py             # the default run, 3 times
    .venv/bin/python benchmarks/memory_cost.py --rounds 5 --set cell=lstm --set state_size=8

Each round trains the default configuration (or the one given) through the public API, with the
trainer's real ``record`` wrapped in a timer: the seconds spent in the records and the run's own
wall time come from the same run, so the share needs no second run to compare with (and no drift
between two runs can creep in). Prints one line a round and the median share; ``--json`` for
scripts. Not a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings

from echo_rnn_cli import Config, train
from echo_rnn_cli import trainer as trainer_module
from echo_rnn_cli.config import parse_setting


def timed_run(config: Config) -> dict:
    real = trainer_module.record
    spent = []

    def timed(weights, c):
        start = time.perf_counter()
        try:
            return real(weights, c)
        finally:
            spent.append(time.perf_counter() - start)

    trainer_module.record = timed
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run = train(config)
    finally:
        trainer_module.record = real
    return {"records": len(spent), "record_seconds": sum(spent), "wall_seconds": run.wall_seconds,
            "share": sum(spent) / run.wall_seconds, "eval_accuracy": run.eval_accuracy,
            "memory_lag": run.memory_peak[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a setting other than the default")
    ap.add_argument("--json", action="store_true")
    opts = ap.parse_args()
    settings = {}
    for item in opts.set:
        key, _, value = item.partition("=")
        settings[key] = parse_setting(key, value, f"--set {key}")
    config = Config(**settings)
    rounds = []
    for i in range(opts.rounds):
        r = timed_run(config)
        rounds.append(r)
        if not opts.json:
            print(f"round {i + 1}: {r['records']} records, {r['record_seconds'] * 1e3:.0f} ms of a "
                  f"{r['wall_seconds']:.2f} s run = {r['share']:.1%} (accuracy {r['eval_accuracy']:.4f}, "
                  f"rests on lag {r['memory_lag']})", flush=True)
    median = statistics.median(r["share"] for r in rounds)
    if opts.json:
        print(json.dumps({"config": config.to_dict(), "rounds": rounds, "median_share": median}))
    else:
        print(f"median share of the run's wall time spent recording: {median:.1%} (target: at most 5%)")


if __name__ == "__main__":
    main()
