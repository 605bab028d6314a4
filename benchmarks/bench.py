"""Side by side, in one run: the tutorial's own training loop (a) against echo-rnn's trainer (b).

    .venv/bin/python benchmarks/bench.py                  # about 3 minutes on 2 cores
    .venv/bin/python benchmarks/bench.py --quick          # about 1.5 minutes: fewer windows, repeats
    .venv/bin/python benchmarks/bench.py --full-tutorial  # also the tutorial's whole 100 epochs
    .venv/bin/python benchmarks/bench.py --device gpu     # echo-rnn on the GPU
    .venv/bin/python benchmarks/bench.py --markdown out.md --json out.json
    .venv/bin/python benchmarks/bench.py --sizes          # the size table instead: see scaling.py

Prints a Markdown report (what benchmarks/RESULTS.md holds) on stdout. Every measurement runs in a
process of its own: (a) must (it turns eager execution off for its whole process), and process
start to exit is what a user waits for. Timings on a shared machine are noisy; the ratios, taken
side by side in one run, are what to compare. Not a test: nothing here fails on a slow machine.

What is measured:
  (a) benchmarks/tutorial_baseline.py: the tutorial's graph, one ``sess.run`` with ``feed_dict`` per
      window, through ``tf.compat.v1``; timed over --tutorial-windows windows and extrapolated to
      its 100 epochs (or run in full with --full-tutorial).
  (b) echo-rnn's trainer (``train_many``): the time per window in steady state (a second training
      in the same process, everything compiled; each epoch's data preparation and bookkeeping
      included), the compiled epoch alone, and the first epoch (trace + compile, or load from the
      on-disk cache).
  End to end: ``echo-rnn train`` with defaults, process start to exit, and its peak memory, with
  the compile cache cold (a fresh folder), warm (the same folder again) and off;
  ``echo-rnn train --seeds 16`` the same way; ``echo-rnn --help``; ``echo-rnn plot`` of a default run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from common import env_with, header, log, ok, preamble, publish, steady_state, timed_process, worker

HERE = Path(__file__).resolve().parent
TUTORIAL = HERE / "tutorial_baseline.py"
DEFAULT_WINDOWS = 50000 // 5 // 15  # per epoch, the tutorial's settings
TUTORIAL_EPOCHS = 100

TARGETS = {  # the targets, on a 2-core CPU
    "speedup": 50.0,        # (a)/(b) per window, at least
    "e2e_s": 8.0,           # default `echo-rnn train`, at most
    "help_s": 0.3,
    "plot_s": 2.0,
    "peak_mb": 1024.0,
    "seeds16_ratio": 2.0,   # 16 seeds' wall / 1 seed's wall, at most
}


# --- running things ---------------------------------------------------------------------------

def echo_rnn_command() -> list[str]:
    script = Path(sys.executable).with_name("echo-rnn")
    return [str(script)] if script.exists() else [sys.executable, "-m", "echo_rnn_cli"]


# --- the worker: echo-rnn's trainer in this process ---------------------------------------------

def run_worker(models: int, epochs: int, device: str, cell: str = "rnn") -> dict:
    """Train `models` default models (of this cell) for `epochs` epochs; time the trainer and the
    compiled epoch."""
    import numpy as np

    t0 = time.perf_counter()
    from echo_rnn_cli import Config
    from echo_rnn_cli._tf import tf

    import_s = time.perf_counter() - t0
    configs = [Config(epochs=epochs, device=device, seed=s, cell=cell) for s in range(models)]
    steady = steady_state(configs)
    runs = steady["runs"]

    # The compiled epoch alone (no data preparation, no Python between epochs), on fixed data.
    from echo_rnn_cli.data import epoch_data
    from echo_rnn_cli.steps import compiled_train_epoch
    from echo_rnn_cli.trainer import prepare_models, resolve_device

    with tf.device(resolve_device(device)):
        group = prepare_models(configs, runs, resolve_device(device))
        params, opt = group.params, group.opt
        data = [epoch_data(c, 0) for c in configs]
        xs = tf.constant(np.stack([d[0] for d in data], 1))
        ys = tf.constant(np.stack([d[1] for d in data], 1))
        lr = tf.constant([c.learning_rate for c in configs], tf.float32)
        c0 = configs[0]
        # Every setting that shapes the program, so the timed program is the one the trainer ran.
        fn = compiled_train_epoch(c0.optimizer, c0.num_classes, c0.snapshot_every, c0.cell, c0.num_layers,
                                  c0.stride_steps, group.math, c0.clip_norm)
        traces = fn.experimental_get_tracing_count()
        calls = []
        for _ in range(max(3, min(10, epochs))):
            t = time.perf_counter()
            out = fn(params, opt, xs, ys, lr)
            out[2].numpy()
            calls.append(time.perf_counter() - t)
        retraced = fn.experimental_get_tracing_count() - traces
    return {
        "models": models, "epochs": epochs, "import_s": import_s, "train_s": steady["train_s"],
        "first_epoch_s": steady["first_epoch_s"], "steady_window_us": steady["steady_window_us"],
        "compiled_window_us": float(min(calls) / configs[0].windows_per_epoch * 1e6),
        "retraced": retraced, "eval_accuracy": runs[0].eval_accuracy, "device": runs[0].device,
    }


# --- the benchmark ------------------------------------------------------------------------------

def best(runs: list[dict], key: str = "wall_s") -> float:
    return min(r[key] for r in runs)


def check_gpu() -> None:
    probe = timed_process([sys.executable, "-c", "import tensorflow as tf; "
                           "print(len(tf.config.list_physical_devices('GPU')))"], env=env_with())
    if probe["code"] != 0 or probe["stdout"].strip().splitlines()[-1:] == ["0"]:
        raise RuntimeError("--device gpu: TensorFlow sees no GPU on this machine")


def tutorial_loop(opts) -> dict:
    """(a) the tutorial's loop, in its own process: timed windows, and all 100 epochs if asked."""
    n = opts.tutorial_windows
    log(f"(a) tutorial loop, {n} windows ...")
    r = timed_process([sys.executable, str(TUTORIAL), "--max-windows", str(n)], env=env_with())
    if r["code"] != 0:
        raise RuntimeError("tutorial baseline failed: " + r["stderr"][-500:])
    a = json.loads(r["stdout"].strip().splitlines()[-1])
    a["process_s"] = r["wall_s"]
    a["est_100_epochs_s"] = a["per_window_seconds"] * DEFAULT_WINDOWS * TUTORIAL_EPOCHS
    if opts.full_tutorial:
        log("(a) tutorial loop, all 100 epochs ...")
        full = timed_process([sys.executable, str(TUTORIAL)], env=env_with())
        a["full"] = json.loads(full["stdout"].strip().splitlines()[-1]) | {"process_s": full["wall_s"]}
    return a


def end_to_end(opts, cli: list[str], work: Path, seeds: int) -> dict:
    """`echo-rnn train` with defaults (and --seeds), process start to exit: cold, warm, cache off."""
    # --force: each repeat writes the same run file on purpose (train keeps an existing one otherwise).
    flags = ["train", "-q", "--force", "--device", opts.device] + (["--seeds", str(seeds)] if seeds > 1 else [])
    out = work / f"seeds{seeds}"
    out.mkdir()
    cache = work / f"cache-e2e-{seeds}"
    log(f"end to end: echo-rnn {' '.join(flags)} (cold, warm x{opts.repeats}, no cache) ...")
    cold = timed_process(cli + flags, env=env_with(ECHO_RNN_XLA_CACHE=str(cache)), cwd=out)
    warm = [timed_process(cli + flags, env=env_with(ECHO_RNN_XLA_CACHE=str(cache)), cwd=out)
            for _ in range(opts.repeats)]
    off = timed_process(cli + flags, env=env_with(ECHO_RNN_XLA_CACHE="0"), cwd=out)
    for run in (cold, *warm, off):  # a run that failed fast must not pass for a fast run
        if run["code"] != 0:
            raise RuntimeError(f"echo-rnn {' '.join(flags)} failed: {run['stderr'].strip()[-300:]}")
    return {"cold_s": cold["wall_s"], "warm_s": best(warm), "off_s": off["wall_s"],
            "peak_mb": max([cold["peak_mb"], off["peak_mb"], *(w["peak_mb"] for w in warm)])}


def bench(opts) -> dict:
    res = header()
    cli = echo_rnn_command()
    device = ["--device", opts.device]
    work = Path(tempfile.mkdtemp(prefix="echo-rnn-bench-"))
    try:
        if opts.device == "gpu":
            check_gpu()
        res["tutorial"] = tutorial_loop(opts)

        # (b) the trainer: steady state, compiled epoch, first epoch cold (fresh cache) and warm.
        epochs = opts.trainer_epochs
        for m in (1, 16):
            log(f"(b) trainer, {m} model(s), {epochs} epochs, cache cold then warm ...")
            cache = work / f"cache-trainer-{m}"
            cold = worker(["--models", str(m), "--epochs", str(epochs), *device],
                          env_with(ECHO_RNN_XLA_CACHE=str(cache)), script=__file__)
            warm = worker(["--models", str(m), "--epochs", str(epochs), *device],
                          env_with(ECHO_RNN_XLA_CACHE=str(cache)), script=__file__)
            res[f"trainer_{m}"] = {"cold": cold, "warm": warm}
        for seeds in (1, 16):
            res[f"e2e_{seeds}"] = end_to_end(opts, cli, work, seeds)

        log("echo-rnn --help, echo-rnn plot ...")
        res["help_s"] = best([timed_process(cli + ["--help"], env=env_with()) for _ in range(5)])
        run_file = work / "seeds1" / "run.npz"
        plot = [timed_process(cli + ["plot", str(run_file), "-o", str(work / "run.png")], env=env_with())
                for _ in range(opts.repeats)]
        res["plot_s"] = best(plot) if all(p["code"] == 0 for p in plot) else None
        if res["plot_s"] is None:
            res["plot_error"] = plot[0]["stderr"].strip()[-300:]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    res["load_after"] = os.getloadavg()
    return res


# --- the report -----------------------------------------------------------------------------------

def report(res: dict) -> str:
    a = res["tutorial"]
    t1, t16 = res["trainer_1"], res["trainer_16"]
    a_us = a["per_window_seconds"] * 1e6
    b_us = t1["warm"]["steady_window_us"]
    lines = [
        *preamble(res, t1["warm"]["device"]),
        "",
        "Side by side, per training window (default settings: 5 rows x 15 steps, 4 units):",
        "",
        "| what | per window | first call / build | whole default training |",
        "| --- | --- | --- | --- |",
        f"| (a) the tutorial's loop (`sess.run` + `feed_dict` per window, {a['windows']} windows timed) "
        f"| {a_us:,.0f} µs | {a['build_seconds']:.2f} s graph + session "
        f"| {a['est_100_epochs_s']:.0f} s for 100 epochs (extrapolated) |",
    ]
    if "full" in a:
        f = a["full"]
        lines.append(f"| (a) the same, all 100 epochs run | {f['per_window_seconds'] * 1e6:,.0f} µs "
                     f"| {f['build_seconds']:.2f} s | {f['seconds']:.0f} s loop, {f['process_s']:.0f} s process |")
    for m, t in ((1, t1), (16, t16)):
        what = "(b) echo-rnn's trainer" if m == 1 else "(b) 16 models at once (`--seeds 16`)"
        per = " (16 models)" if m == 16 else ""
        lines.append(
            f"| {what} | {t['warm']['steady_window_us']:.1f} µs{per} (compiled epoch alone "
            f"{t['warm']['compiled_window_us']:.1f} µs) | first epoch {t['cold']['first_epoch_s']:.2f} s "
            f"cold, {t['warm']['first_epoch_s']:.2f} s warm | {t['warm']['train_s']:.2f} s for "
            f"{t['warm']['epochs']} epochs, evaluation included |")
    lines += [
        "",
        f"**Ratio (a)/(b), time per window: {a_us / b_us:.0f}x** (the compiled epoch alone: "
        f"{a_us / t1['warm']['compiled_window_us']:.0f}x). One window of 16 models costs "
        f"{t16['warm']['steady_window_us'] / b_us:.1f}x one window of one.",
        "",
        *report_end_to_end(res),
    ]
    return "\n".join(lines) + "\n"


def report_end_to_end(res: dict) -> list[str]:
    a, t1 = res["tutorial"], res["trainer_1"]
    e1, e16 = res["e2e_1"], res["e2e_16"]
    lines = [
        "End to end (process start to exit, best of the warm repeats; cold = empty compile cache):",
        "",
        "| what | cold | warm | cache off | peak memory | target | met |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| `echo-rnn train` (defaults, 100 epochs) | {e1['cold_s']:.2f} s | {e1['warm_s']:.2f} s "
        f"| {e1['off_s']:.2f} s | {e1['peak_mb']:.0f} MB | <= {TARGETS['e2e_s']:.0f} s, <= 1 GB "
        f"| {ok(max(e1['cold_s'], e1['warm_s']), TARGETS['e2e_s'])}, {ok(e1['peak_mb'], TARGETS['peak_mb'])} |",
        f"| `echo-rnn train --seeds 16` | {e16['cold_s']:.2f} s | {e16['warm_s']:.2f} s "
        f"| {e16['off_s']:.2f} s | {e16['peak_mb']:.0f} MB | <= 2x one seed "
        f"| {ok(max(e16['cold_s'] / e1['cold_s'], e16['warm_s'] / e1['warm_s']), TARGETS['seeds16_ratio'])} |",
        f"| 16 seeds / 1 seed | {e16['cold_s'] / e1['cold_s']:.2f}x | {e16['warm_s'] / e1['warm_s']:.2f}x "
        f"| {e16['off_s'] / e1['off_s']:.2f}x | | <= 2x | |",
        f"| `echo-rnn --help` | | {res['help_s']:.2f} s | | | <= 0.3 s | {ok(res['help_s'], TARGETS['help_s'])} |",
    ]
    if res.get("plot_s") is not None:
        lines.append(f"| `echo-rnn plot run.npz` (a default run) | | {res['plot_s']:.2f} s | | | <= 2 s "
                     f"| {ok(res['plot_s'], TARGETS['plot_s'])} |")
    else:
        lines.append(f"| `echo-rnn plot run.npz` | failed: {res.get('plot_error', '')} | | | | <= 2 s | n/a |")
    lines += [
        "",
        f"Tutorial (a), extrapolated 100 epochs / `echo-rnn train` end to end: "
        f"{a['est_100_epochs_s'] / e1['cold_s']:.0f}x cold, {a['est_100_epochs_s'] / e1['warm_s']:.0f}x warm. "
        f"Retraced during the timed calls: {t1['warm']['retraced']} (must be 0). Held-out accuracy of "
        f"the trainer's run: {t1['warm']['eval_accuracy']:.4f} ({t1['warm']['epochs']} epochs).",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--sizes" in argv:  # the size table lives in scaling.py; its options follow --sizes
        from scaling import main as scaling_main

        return scaling_main([a for a in argv if a != "--sizes"])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", action="store_true", help="run the size table (scaling.py, its options) instead")
    p.add_argument("--quick", action="store_true", help="fewer windows and repeats (about half the time)")
    p.add_argument("--full-tutorial", action="store_true", help="also run the tutorial's whole 100 epochs")
    p.add_argument("--device", choices=("cpu", "gpu", "auto"), default="cpu", help="echo-rnn's device [cpu]")
    p.add_argument("--tutorial-windows", type=int, help="windows of (a) to time [3000; --quick 1000]")
    p.add_argument("--trainer-epochs", type=int, help="epochs of (b) to time [20; --quick 8]")
    p.add_argument("--repeats", type=int, help="warm repeats of end-to-end runs, best kept [2; --quick 1]")
    p.add_argument("--markdown", type=Path, help="also write the report here")
    p.add_argument("--json", type=Path, help="write every number measured here")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--models", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--epochs", type=int, default=10, help=argparse.SUPPRESS)
    p.add_argument("--cell", default="rnn", help=argparse.SUPPRESS)
    opts = p.parse_args(argv)
    if opts.worker:
        print(json.dumps(run_worker(opts.models, opts.epochs, opts.device, opts.cell)))
        return 0
    opts.tutorial_windows = opts.tutorial_windows or (1000 if opts.quick else 3000)
    opts.trainer_epochs = opts.trainer_epochs or (8 if opts.quick else 20)
    opts.repeats = opts.repeats or (1 if opts.quick else 2)
    try:
        res = bench(opts)
    except RuntimeError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1
    text = report(res)
    publish(text, res, opts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
