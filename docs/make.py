#!/usr/bin/env python3
"""Make every figure and every measured number of README.md, docs/ and the notebook, in one command.

    python docs/make.py                      # every product: train, draw, docs/numbers.json, the pages
    python docs/make.py default staircase    # only these products (the others' numbers are kept)
    python docs/make.py --quotes             # only rewrite the pages from docs/numbers.json
    python docs/make.py --list               # the products, what each makes and its command

Each *product* trains what one part of the docs shows (real training through the library, exactly
what the command it names does), draws that part's figures and measures that part's numbers. The
numbers go to docs/numbers.json, each with its value (as stored: a float32 accuracy as the float it
is), the command that made it and the machine; the figures' underlying data go there too, as
SHA-256 digests. The pages quote the numbers through ``QUOTES``: a template per passage, in which
the script rewrites each number, shown by the one rounding rule of docs and CLI
(``echo_rnn_cli.rounding``: the stored value rounded half to even at the digits shown).

tests/test_docs_numbers.py checks the pages against docs/numbers.json (every quote, quick) and
docs/numbers.json against the code (every product trained again and compared exactly, the exact
math giving the same bits on every x86 CPU; the cheap products in the quick subset). A change that
moves a documented number therefore fails the suite until this script is run again.

Timings are not made here: benchmarks/ measures them, and the pages name the machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import string
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
NUMBERS = DOCS / "numbers.json"
sys.path.insert(0, str(ROOT))  # run from a checkout as well as from an install

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


# --- products ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Product:
    """One part of the docs: ``measure(work, draw)`` trains in the folder ``work``, draws the
    figures when ``draw``, and returns the numbers by name. ``quick``: cheap enough for the suite's
    quick subset (seconds); the others are checked by slow tests."""

    name: str
    command: str
    figures: tuple[str, ...]
    measure: Callable[[Path, bool], dict]
    quick: bool = False
    #: Fast math (library dot products, whose last bits may differ between CPU kinds): the numbers
    #: are the machine's that made them, compared only on a machine like it.
    fast: bool = False


#: Numbers and digests drawn from the memory records: float64 NumPy, whose matrix products are the
#: BLAS library's, its kernel chosen per CPU (OpenBLAS: one for AVX2, another for AVX-512 or Zen,
#: NEON on ARM), so their last bits may differ between CPU kinds although the training's do not.
BLAS_DEPENDENT = re.compile(r"memory_sha256|^staircase_sha256|^cells_sha256|profile|_lag|share|other_max|past_window")


def digest(*arrays) -> str:
    """The SHA-256 of arrays (dtype, shape and bytes each): a figure's underlying data, compared
    exactly."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a))
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def trace_digest(run) -> str:
    """What the tutorial's figure is drawn from: every kept window's loss and accuracy, the epoch
    means, the snapshots and the held-out results."""
    means = run.epoch_means()
    return digest(run.loss, run.accuracy, run.epoch, *means, run.snapshot_window, run.snapshot_inputs,
                  run.snapshot_targets, run.snapshot_probs, [run.eval_accuracy, run.eval_loss])


def memory_digest(run) -> str:
    """What ``plot --memory`` draws: the records and the epoch means of the loss."""
    return digest(run.memory_epoch, run.memory_profile, run.memory_reach, run.epoch_means()[0])


def plot(*args) -> None:
    """``echo-rnn plot ARGS`` through the real command, in this process."""
    from click.testing import CliRunner

    from echo_rnn_cli.cli import cli

    result = CliRunner().invoke(cli, ["plot", *map(str, args), "-q"])
    if result.exit_code != 0:
        raise SystemExit(f"echo-rnn plot {' '.join(map(str, args))}: {result.output}")


def saved(run, path: Path):
    """The run as its file holds it (what `plot` and `summary` read)."""
    from echo_rnn_cli import load_run, save_run

    return load_run(save_run(run, path))


def at_record(run, epoch: int) -> np.ndarray:
    """The memory profile recorded after ``epoch`` epochs."""
    (i,) = np.flatnonzero(run.memory_epoch == epoch)
    return run.memory_profile[i]


def default(work: Path, draw: bool) -> dict:
    """The quick start's run: README's figure and its accuracy, the default run's memory."""
    from echo_rnn_cli import Config, train

    run = saved(train(Config()), work / "run.npz")  # named run.npz, as the figure's title shows
    if draw:
        plot(work / "run.npz", "-o", DOCS / "quickstart.png")
        plot(work / "run.npz", "--memory", "-o", DOCS / "memory-default.png")
    means = run.epoch_means()[0]
    final = run.memory_profile[-1]
    lag, share = run.memory_peak
    return {
        "default_accuracy": run.eval_accuracy, "default_eval_loss": run.eval_loss,
        "default_final_loss": run.final_loss, "default_lag": lag, "default_share": share,
        "default_loss_epoch1": means[0], "default_loss_epoch2": means[1],
        "default_profile_start_max": float(at_record(run, 0).max()),
        "default_profile_epoch1_max": float(at_record(run, 1).max()),
        "default_profile_epoch2_lag3": float(at_record(run, 2)[3]),
        "default_profile_lag3": float(final[3]), "default_profile_other_max": float(np.delete(final, 3).max()),
        "default_records": int(run.memory_epoch.size),
        "default_trace_sha256": trace_digest(run), "default_memory_sha256": memory_digest(run),
    }


def staircase(work: Path, draw: bool) -> dict:
    """docs/memory.md's staircase explained: echo 3 in a window of 3 and of 4, 10 epochs."""
    from echo_rnn_cli import Config, train

    runs = {w: saved(train(Config(truncated_backprop_length=w, epochs=10)), work / f"w{w}.npz") for w in (3, 4)}
    if draw:
        plot(work / "w3.npz", work / "w4.npz", "--memory", "-o", DOCS / "memory-staircase.png")
    w3, w4 = runs[3], runs[4]
    return {
        "staircase_w3_accuracy": w3.eval_accuracy, "staircase_w3_profile_max": float(w3.memory_profile[-1].max()),
        "staircase_w4_accuracy": w4.eval_accuracy,
        "staircase_w4_loss_epoch1": w4.epoch_means()[0][0], "staircase_w4_loss_epoch2": w4.epoch_means()[0][1],
        "staircase_w4_lag3": float(w4.memory_profile[-1, 3]),
        "staircase_w4_other_max": float(np.delete(w4.memory_profile[-1], 3).max()),
        "staircase_sha256": memory_digest(w3) + memory_digest(w4),
    }


def cells(work: Path, draw: bool) -> dict:
    """docs/memory.md's rnn, lstm and gru on echo 8 (configs/lstm.toml's settings, seed 0)."""
    from echo_rnn_cli import resolve, train

    runs = {c: saved(train(resolve(ROOT / "configs" / "lstm.toml", {"cell": c})), work / f"{c}.npz")
            for c in ("rnn", "lstm", "gru")}
    if draw:
        plot(*(work / f"{c}.npz" for c in runs), "--memory", "-o", DOCS / "memory-cells.png")
    out = {"cells_sha256": "".join(memory_digest(r) for r in runs.values())}
    for name, run in runs.items():
        final = run.memory_profile[-1]
        out |= {f"cells_{name}_accuracy": run.eval_accuracy, f"cells_{name}_lag8": float(final[8]),
                f"cells_{name}_share": run.memory_peak[1], f"cells_{name}_past_window_max": float(final[15:].max())}
    rnn, lstm, gru = runs["rnn"].memory_profile[-1], runs["lstm"], runs["gru"]
    out |= {f"cells_rnn_lag{k}": float(rnn[k]) for k in (4, 6, 10)}
    out |= {f"cells_lstm_epoch{e}_lag8": float(at_record(lstm, e)[8]) for e in (1, 8, 16)}
    out |= {f"cells_gru_epoch{e}_lag8": float(at_record(gru, e)[8]) for e in (3, 8)}
    return out


def sweep(work: Path, draw: bool) -> dict:
    """docs/sweeps.md's 4x4 sweep of echo_step against the window (state 4, 100 epochs, seed 0)."""
    from echo_rnn_cli import Config
    from echo_rnn_cli.summary import collect
    from echo_rnn_cli.sweep import run_sweep

    grid = {"echo_step": [1, 2, 3, 5], "truncated_backprop_length": [3, 5, 8, 15]}
    run_sweep(Config(), grid, out_dir=work / "sweep", jobs=1)
    acc = {(r.config["echo_step"], r.config["truncated_backprop_length"]): r.eval_accuracy
           for r in collect([work / "sweep"]).rows}
    out = {f"sweep_e{e}_w{w}": a for (e, w), a in sorted(acc.items())}
    out["sweep_e12_min"] = min(a for (e, _), a in acc.items() if e in (1, 2))
    return out


def presets(work: Path, draw: bool) -> dict:
    """docs/training.md's presets table: held-out accuracy over seeds 0-9, min and median."""
    from echo_rnn_cli import resolve, train_many

    out = {}
    for path in sorted((ROOT / "configs").glob("*.toml")):
        runs = train_many([resolve(path, {"seed": s}) for s in range(10)])
        acc = np.array([r.eval_accuracy for r in runs])
        key = path.stem.replace("-", "_")
        out |= {f"preset_{key}_min": float(acc.min()), f"preset_{key}_median": float(np.median(acc))}
    return out


def variants(work: Path, draw: bool) -> dict:
    """docs/training.md's words under the presets table: long-echo and multiclass at the default
    learning rate 0.3, smoke with the tutorial's weights, and the gated presets unclipped at 20 epochs."""
    from echo_rnn_cli import resolve, train_many

    def accuracies(name, seeds, **changes):
        configs = [resolve(ROOT / "configs" / f"{name}.toml", {**changes, "seed": s}) for s in seeds]
        return [r.eval_accuracy for r in train_many(configs)]

    out = {f"variant_long_echo_s{s}": a for s, a in enumerate(accuracies("long-echo", range(3), learning_rate=0.3))}
    out["variant_multiclass_s2"] = accuracies("multiclass", [2], learning_rate=0.3)[0]
    smoke = accuracies("smoke", range(10), init="tutorial")
    out["variant_smoke_tutorial_at_chance"] = sum(a < 0.6 for a in smoke)
    for cell in ("lstm", "gru"):
        acc = accuracies(cell, range(10), epochs=20, clip_norm=0.0)
        out |= {f"variant_{cell}20_min": min(acc), f"variant_{cell}20_max": max(acc)}
    return out


def first_above(values: np.ndarray, bound: float) -> int | None:
    """The first epoch (from 1) whose value reaches ``bound``; None if none does."""
    hits = np.flatnonzero(values >= bound)
    return int(hits[0]) + 1 if hits.size else None


def stop(work: Path, draw: bool) -> dict:
    """docs/training.md's *Stop when learned*: the first epoch of seeds 0-9 whose mean training
    accuracy reaches 0.95 (20 epochs looked at), and seed 0's stopped run."""
    from echo_rnn_cli import Config, train, train_many

    runs = train_many([Config(epochs=20, seed=s) for s in range(10)])
    first = [first_above(r.epoch_means()[1], 0.95) for r in runs]
    reached = [f for f in first if f is not None]
    stopped = train(Config(stop_at_accuracy=0.95))
    return {"stop_first_min": min(reached), "stop_first_max": max(reached),
            "stop_seeds_not_within_20": "".join(str(s) for s, f in enumerate(first) if f is None),
            "stop_seed0_epochs": stopped.epochs_completed, "stop_seed0_accuracy": stopped.eval_accuracy,
            # As the command computes it for its message: the mean of the last epoch's windows (float32).
            "stop_seed0_training_accuracy": float(np.mean(stopped.accuracy[stopped.epoch == stopped.epoch[-1]])),
            "stop_seed0_message": stopped.message}


def clipping(work: Path, draw: bool) -> dict:
    """docs/training.md's *Gradient clipping*: lstm and gru on echo 8, 8 units, seeds 0-4, 100
    epochs of 50,000, without and with --clip-norm 1; and the collapses (an epoch's mean loss back
    above 0.3 after it had fallen below 0.05)."""
    from echo_rnn_cli import Config, train_many

    out = {}
    for cell in ("lstm", "gru"):
        for clip in (0.0, 1.0):
            runs = train_many([Config(cell=cell, echo_step=8, state_size=8, clip_norm=clip, seed=s) for s in range(5)])
            name = f"clip_{cell}_{'on' if clip else 'off'}"
            collapses = []
            for s, run in enumerate(runs):
                out[f"{name}_s{s}"] = run.eval_accuracy
                if collapse(s, run):
                    collapses.append(collapse(s, run))
            said = f"{len(collapses)} of 5 seeds: " + ", ".join(collapses)
            out[f"{name}_collapses"] = said if collapses else "none"
    return out


def collapse(seed: int, run) -> str:
    """How a run collapsed, in the clipping table's words ('' if it did not): the epochs (from 1)
    whose mean loss is back above 0.3 after an epoch had fallen below 0.05."""
    loss = run.epoch_means()[0]
    low = np.flatnonzero(loss < 0.05)
    high = np.flatnonzero(loss > 0.3)
    after = high[high > low[0]] if low.size else high[:0]
    if not after.size:
        return ""
    end = "relearned" if loss[-1] < 0.05 else f"ends at {run.eval_accuracy:.3f}"
    return f"seed {seed} for {after.size} epoch{'s' if after.size > 1 else ''} (from epoch {after[0] + 1}; {end})"


def shell(work: Path, draw: bool) -> dict:
    """docs/sweeps.md's shell sweep: ECHO_STEPS="1 3" WINDOWS="3 8" EPOCHS=5 --state-size 8, seeds 0-2."""
    from echo_rnn_cli import Config, train_many

    acc = {}
    for w in (3, 8):  # the points of one window share a program, each the run it trains alone
        configs = [Config(echo_step=e, truncated_backprop_length=w, epochs=5, state_size=8, seed=s)
                   for e in (1, 3) for s in range(3)]
        for c, run in zip(configs, train_many(configs), strict=True):
            acc.setdefault((c.echo_step, w), []).append(run.eval_accuracy)
    return {"shell_e1_min": min(acc[1, 3] + acc[1, 8]), "shell_e1_max": max(acc[1, 3] + acc[1, 8]),
            "shell_e3_w8_min": min(acc[3, 8]), "shell_e3_w8_max": max(acc[3, 8]),
            "shell_e3_w3_min": min(acc[3, 3]), "shell_e3_w3_max": max(acc[3, 3])}


def cell_sweep(work: Path, draw: bool) -> dict:
    """docs/cells.md's heatmap and table: rnn, lstm and gru (Keras's initial weights) and the rnn with
    the tutorial's, over echo 2-12, seeds 0-2, window 15, 8 units, 10 epochs of 20,000."""
    from echo_rnn_cli import Config
    from echo_rnn_cli.summary import collect
    from echo_rnn_cli.sweep import run_sweep

    base = Config(state_size=8, truncated_backprop_length=15, total_series_length=20000, epochs=10)
    echoes = [2, 4, 6, 8, 10, 12]
    run_sweep(base.replace(init="keras"), {"cell": ["rnn", "lstm", "gru"], "echo_step": echoes}, seeds=3,
              out_dir=work / "cells", jobs=1)
    run_sweep(base.replace(init="tutorial"), {"echo_step": echoes}, seeds=3, out_dir=work / "tutorial", jobs=1)
    if draw:
        plot("--heatmap", work / "cells", "--x", "echo_step", "--y", "cell", "-o", DOCS / "cells-heatmap.png")
    out = {}
    for folder, label in ((work / "cells", None), (work / "tutorial", "tutorial")):
        acc = {}
        for r in collect([folder]).rows:
            acc.setdefault((label or r.config["cell"], r.config["echo_step"]), []).append(r.eval_accuracy)
        out |= {f"heatmap_{name}_e{e}": float(np.mean(a)) for (name, e), a in sorted(acc.items())}
    out["heatmap_sha256"] = digest(*[out[k] for k in sorted(out)])
    return out


def cell_extras(work: Path, draw: bool) -> dict:
    """docs/cells.md's other numbers: the rnn at configs/lstm.toml's settings with each initial
    weights (20 epochs, no clipping, seed 0), and the lstm's strides on echo 12 (10 epochs of 10,000)."""
    from echo_rnn_cli import Config, resolve, train, train_many

    inits = ("tutorial", "glorot", "keras")
    runs = train_many([resolve(ROOT / "configs" / "lstm.toml", {"cell": "rnn", "epochs": 20, "clip_norm": 0.0,
                                                                "init": i}) for i in inits])
    out = {f"cells_rnn20_{i}": r.eval_accuracy for i, r in zip(inits, runs, strict=True)}
    for stride in (15, 5, 1):
        run = train(Config(cell="lstm", echo_step=12, state_size=8, epochs=10, total_series_length=10000,
                           stride=stride))
        out[f"stride_{stride}_accuracy"] = run.eval_accuracy
        out[f"stride_{stride}_windows"] = run.config.windows_per_epoch
    return out


def init_table(work: Path, draw: bool) -> dict:
    """docs/training.md's *Initial weights* table (the exact-math sizes): held-out accuracy of seeds
    0-4 with only --state-size N or --num-layers 2 changed, and the tutorial's weights at 5 and 6."""
    from echo_rnn_cli import Config, train_many

    def accuracies(**changes):
        return [r.eval_accuracy for r in train_many([Config(seed=s, **changes) for s in range(5)])]

    out, sizes = {}, {}
    for size in (2, 3, 4, 5, 6, 8, 16):  # from 32 units the rnn's auto math is fast: not the same bits everywhere
        sizes[size] = acc = accuracies(state_size=size)
        out |= {f"init_{size}_min": min(acc), f"init_{size}_max": max(acc)}
        if size == 3:
            out |= {f"init_3_s{s}": a for s, a in enumerate(acc)}
    for a, b in ((5, 6), (8, 16)):
        out |= {f"init_{a}_{b}_min": min(sizes[a] + sizes[b]), f"init_{a}_{b}_max": max(sizes[a] + sizes[b])}
    acc = accuracies(num_layers=2)
    out |= {"init_2layers_min": min(acc), "init_2layers_max": max(acc)}
    for size in (5, 6):
        acc = accuracies(state_size=size, init="tutorial")
        seeds = [str(s) for s, a in enumerate(acc) if a < 0.6]
        said = " and ".join([", ".join(seeds[:-1]), seeds[-1]]) if seeds[1:] else "".join(seeds)
        out[f"init_tutorial_{size}_at_chance"] = f"seed{'s' if seeds[1:] else ''} {said}" if seeds else "no seed"
    return out


def messages(work: Path, draw: bool) -> dict:
    """docs/reliability.md's example lines: a diverged run's error (sgd at 1e30, a finite loss beyond
    the bound; at 1e38, a non-finite one) and the warning of a run that learned nothing (sgd at 3)."""
    from echo_rnn_cli import Config, train

    said = []
    out = {f"diverged_{name}_message": train(Config(optimizer="sgd", learning_rate=rate)).message
           for name, rate in (("exploded", 1e30), ("nonfinite", 1e38))}
    run = train(Config(optimizer="sgd", learning_rate=3.0, epochs=5, total_series_length=10000), warn=said.append)
    return out | {"chance_warning": said[0] if said else f"no warning: held-out accuracy {run.eval_accuracy}"}


def init_fast(work: Path, draw: bool) -> dict:
    """docs/training.md's *Initial weights* rows from 32 units, where ``--math auto`` is fast:
    held-out accuracy of seeds 0-4 with only --state-size N changed, which seeds collapsed, and
    64 units again with --clip-norm 1."""
    from echo_rnn_cli import Config, train_many

    out = {}
    for size, clip in ((32, 0.0), (64, 0.0), (128, 0.0), (64, 1.0)):
        runs = train_many([Config(seed=s, state_size=size, clip_norm=clip) for s in range(5)])
        acc, name = [r.eval_accuracy for r in runs], f"init_{size}" + ("_clip" if clip else "")
        collapses = [said for s, r in enumerate(runs) if (said := collapse(s, r))]
        out |= {f"{name}_min": min(acc), f"{name}_max": max(acc),
                f"{name}_collapses": "; ".join(collapses) if collapses else "none"}
    return out


def echo_example(work: Path, draw: bool) -> dict:
    """docs/use.md's example: `echo-rnn echo run.npz 0110100111` on a smoke run."""
    from echo_rnn_cli import resolve, train
    from echo_rnn_cli.inference import echo, parse_symbols

    run = train(resolve(ROOT / "configs" / "smoke.toml"))
    result = echo(run, parse_symbols("0110100111", num_classes=2))
    return {"echo_prediction": "".join(map(str, result.prediction)), "echo_accuracy": result.accuracy}


PRODUCTS = {p.name: p for p in [
    Product("default", "echo-rnn train --echo-step 3 -o run.npz && echo-rnn plot run.npz -o docs/quickstart.png "
            "&& echo-rnn plot run.npz --memory -o docs/memory-default.png",
            ("docs/quickstart.png", "docs/memory-default.png"), default, quick=True),
    Product("staircase", "echo-rnn train --epochs 10 --truncated-backprop-length W -o wW.npz (W = 3, 4) && "
            "echo-rnn plot w3.npz w4.npz --memory -o docs/memory-staircase.png",
            ("docs/memory-staircase.png",), staircase, quick=True),
    Product("cells", "echo-rnn train --config configs/lstm.toml --cell CELL -o CELL.npz (CELL = rnn, lstm, gru) && "
            "echo-rnn plot rnn.npz lstm.npz gru.npz --memory -o docs/memory-cells.png",
            ("docs/memory-cells.png",), cells),
    Product("sweep", "echo-rnn sweep --grid echo_step=1,2,3,5 --grid truncated_backprop_length=3,5,8,15 -o sweep",
            (), sweep),
    Product("presets", "echo-rnn train --config configs/NAME.toml --seeds 10 --json", (), presets),
    Product("variants", "echo-rnn train --config configs/NAME.toml --seeds N with --learning-rate 0.3 (long-echo, "
            "multiclass), --init tutorial (smoke), --epochs 20 --clip-norm 0 (lstm, gru)", (), variants),
    Product("stop", "echo-rnn train --epochs 20 --seeds 10 (first epoch of mean training accuracy >= 0.95) && "
            "echo-rnn train --epochs 100 --stop-at-accuracy 0.95", (), stop),
    Product("clipping", "echo-rnn train --cell CELL --echo-step 8 --state-size 8 --seeds 5 [--clip-norm 1]", (),
            clipping),
    Product("shell", 'ECHO_STEPS="1 3" WINDOWS="3 8" EPOCHS=5 scripts/sweep_echo.sh --state-size 8 --seed S '
            "(S = 0, 1, 2)", (), shell),
    Product("cell_sweep", "echo-rnn sweep --grid cell=rnn,lstm,gru --grid echo_step=2,4,6,8,10,12 --seeds 3 "
            "--state-size 8 --truncated-backprop-length 15 --total-series-length 20000 --epochs 10 --init keras "
            "-o cells (and --init tutorial, the rnn) && echo-rnn plot --heatmap cells --x echo_step --y cell "
            "-o docs/cells-heatmap.png", ("docs/cells-heatmap.png",), cell_sweep),
    Product("cell_extras", "echo-rnn train --config configs/lstm.toml --cell rnn --epochs 20 --clip-norm 0 "
            "--init INIT; echo-rnn train --cell lstm --echo-step 12 --state-size 8 --epochs 10 "
            "--total-series-length 10000 --stride K", (), cell_extras),
    Product("init", "echo-rnn train --state-size N --seeds 5 (and --num-layers 2; --init tutorial at 5, 6 units)",
            (), init_table),
    Product("messages", "echo-rnn train --optimizer sgd --learning-rate R (R = 1e30, 1e38) && echo-rnn train "
            "--optimizer sgd --learning-rate 3 --epochs 5 --total-series-length 10000", (), messages, quick=True),
    Product("init_fast", "echo-rnn train --state-size N --seeds 5 (N = 32, 64, 128: fast math)", (), init_fast,
            fast=True),
    Product("echo", "echo-rnn train --config configs/smoke.toml && echo-rnn echo run.npz 0110100111", (),
            echo_example, quick=True),
]}


# --- the pages' quotes ---------------------------------------------------------------------------

def _heatmap_row(label: str, name: str) -> tuple[str, str]:
    """A row of docs/cells.md's table: the mean held-out accuracy at echo 2, 4, ..., 12."""
    cells = " | ".join(f"{{heatmap_{name}_e{e}:.3f}}" for e in (2, 4, 6, 8, 10, 12))
    return "docs/cells.md", f"{label} | {cells} |"


#: (page, template): a passage of a page with its numbers as ``{name:format}`` fields. Whitespace
#: matches any whitespace (the pages wrap their lines); each passage occurs exactly once.
QUOTES: list[tuple[str, str]] = [
    ("README.md", "summary: `run.npz`, `completed`, held-out accuracy {default_accuracy:.4f}."),
    ("README.md", "for an epoch or two (up to {stop_first_max} for other seeds, see *Stop when learned*)"),
    ("README.md", "then all of it moves to lag 3 ({default_profile_lag3:.2f} there, at most "
                  "{default_profile_other_max:.4f} elsewhere)"),
    ("README.md", "the LSTM ends resting {cells_lstm_lag8:.2f} on lag 8 and the GRU {cells_gru_lag8:.2f}"),
    ("README.md", "where no gradient reached (accuracy {cells_rnn_accuracy:.3f})"),
    ("docs/memory.md", "(`echo-rnn train`, seed 0, held-out accuracy {default_accuracy:.4f})"),
    ("docs/memory.md", "Before training the network rests on nothing (no flip moves a prediction by more than "
                       "{default_profile_start_max:.5f})."),
    ("docs/memory.md", "The mean loss of the first epoch is still a guess's ({default_loss_epoch1:.2f}), and the "
                       "profile barely stirs ({default_profile_epoch1_max:.2f} at most); in the second (mean loss "
                       "{default_loss_epoch2:.2f}) the whole profile moves to lag 3 "
                       "({default_profile_epoch2_lag3:.2f}),"),
    ("docs/memory.md", "changes the prediction from certain to impossible ({default_profile_lag3:.2f}), every "
                       "other input by at most {default_profile_other_max:.4f}: lag 3 holds {default_share:.1%} "
                       "of the profile."),
    ("docs/memory.md", "{default_records} records for a default run of 100 epochs"),
    ("docs/memory.md", "The profile stays flat at every lag (at most {staircase_w3_profile_max:.3f}), the loss at "
                       "0.69, the accuracy at chance ({staircase_w3_accuracy:.3f})"),
    ("docs/memory.md", "the network learns it in the first epoch (mean loss {staircase_w4_loss_epoch1:.2f}, then "
                       "{staircase_w4_loss_epoch2:.3f}), and the profile is {staircase_w4_lag3:.2f} at lag 3 and "
                       "at most {staircase_w4_other_max:.5f} everywhere else (held-out accuracy "
                       "{staircase_w4_accuracy:.4f})."),
    ("docs/memory.md", "**rnn** (held-out accuracy {cells_rnn_accuracy:.3f}): rests on lag 8 most "
                       "({cells_rnn_lag8:.2f} at the end, {cells_rnn_share:.0%} of the profile), but also on lags "
                       "4, 6 and 10 ({cells_rnn_lag4:.2f}, {cells_rnn_lag6:.2f}, {cells_rnn_lag10:.2f}) and up to "
                       "{cells_rnn_past_window_max:.2f} beyond the window's edge"),
    ("docs/memory.md", "**lstm** ({cells_lstm_accuracy:.4f}): the profile gathers on lag 8 as the loss falls "
                       "({cells_lstm_epoch1_lag8:.2f} after one epoch, {cells_lstm_epoch8_lag8:.2f} after 8, "
                       "{cells_lstm_epoch16_lag8:.2f} after 16) and ends at {cells_lstm_lag8:.2f} there "
                       "({cells_lstm_share:.0%} of the profile), at most {cells_lstm_past_window_max:.4f} past the "
                       "window;"),
    ("docs/memory.md", "**gru** ({cells_gru_accuracy:.4f}): the same picture two epochs later "
                       "({cells_gru_epoch3_lag8:.2f} after 3 epochs, {cells_gru_epoch8_lag8:.2f} after 8), "
                       "{cells_gru_lag8:.2f} at lag 8 at the end ({cells_gru_share:.0%} of the profile)"),
    _heatmap_row("| rnn", "rnn"), _heatmap_row("| lstm", "lstm"), _heatmap_row("| gru", "gru"),
    _heatmap_row("the default for 8 units before `auto` chose Keras's)", "tutorial"),
    ("docs/cells.md", "20,000, clipped at 1) reach at least {preset_lstm_min:.3f} (LSTM) and "
                      "{preset_gru_min:.3f} (GRU) for every seed 0-9"),
    ("docs/cells.md", "the same settings with `--cell rnn` gave {cells_rnn20_tutorial:.3f} (`--init tutorial`), "
                      "{cells_rnn20_glorot:.3f} (`glorot`) and {cells_rnn20_keras:.3f} (`keras`)."),
    ("docs/cells.md", "| 15 (0, the default) | {stride_15_windows} | {stride_15_accuracy:.3f} |"),
    ("docs/cells.md", "| 5 | {stride_5_windows} | {stride_5_accuracy:.3f} |"),
    ("docs/cells.md", "| 1 | {stride_1_windows} | {stride_1_accuracy:.3f} |"),
    ("docs/cells.md", "accuracy rises only from {stride_15_accuracy:.3f} to {stride_1_accuracy:.3f}, at 12 times"),
    ("docs/sweeps.md", "every window learns echo 1 and 2 (accuracy at least {sweep_e12_min:.3f}); echo 3 fails "
                       "only with the 3-step window ({sweep_e3_w3:.3f}, chance); echo 5 fails with 3- and 5-step "
                       "windows ({sweep_e5_w3:.3f}, {sweep_e5_w5:.3f}) and is learned only partly with 8 and 15 "
                       "({sweep_e5_w8:.3f}, {sweep_e5_w15:.3f})"),
    ("docs/sweeps.md", "echo 1 learns with windows of 3 and 8 ({shell_e1_min:.4f} to {shell_e1_max:.4f}), echo 3 "
                       "with window 8 (at least {shell_e3_w8_min:.4f}) and not with window 3 "
                       "({shell_e3_w3_min:.2f} to {shell_e3_w3_max:.2f}:"),
    ("docs/training.md", "| `default.toml` | the tutorial: echo 3, 15-step windows, 4 units, 100 epochs | "
                         "{preset_default_min:.4f}, {preset_default_median:.4f} |"),
    ("docs/training.md", "Keras's initial weights) | {preset_smoke_min:.4f}, {preset_smoke_median:.4f} |"),
    ("docs/training.md", "16 units, glorot init, learning rate 0.1 | {preset_long_echo_min:.4f}, "
                         "{preset_long_echo_median:.4f} |"),
    ("docs/training.md", "| `multiclass.toml` | 4 symbols, 12 units, glorot init, learning rate 0.1 | "
                         "{preset_multiclass_min:.4f}, {preset_multiclass_median:.4f} |"),
    ("docs/training.md", "(see *Which cell learns which echo*) | {preset_lstm_min:.4f}, {preset_lstm_median:.4f} |"),
    ("docs/training.md", "| `gru.toml` | the same with a GRU | {preset_gru_min:.4f}, {preset_gru_median:.4f} |"),
    ("docs/training.md", "(long-echo: {variant_long_echo_s0:.3f}, {variant_long_echo_s1:.3f}, "
                         "{variant_long_echo_s2:.3f} for seeds 0-2; multiclass seed 2: {variant_multiclass_s2:.3f})"),
    ("docs/training.md", "ended at chance for {variant_smoke_tutorial_at_chance} of seeds 0-9"),
    ("docs/training.md", "ranged from {variant_lstm20_min:.3f} to {variant_lstm20_max:.3f} (LSTM) and "
                         "{variant_gru20_min:.3f} to {variant_gru20_max:.3f} (GRU) over seeds 0-9"),
    ("docs/training.md", "| 2 units | keras | {init_2_min:.3f} to {init_2_max:.3f}:"),
    ("docs/training.md", "| 3 units | keras | {init_3_s0:.4f}, {init_3_s1:.4f}, {init_3_s2:.4f}, {init_3_s3:.4f}, "
                         "{init_3_s4:.4f}:"),
    ("docs/training.md", "| 4 units (the tutorial) | tutorial | {init_4_min:.4f} to {init_4_max:.4f}"),
    ("docs/training.md", "| 5, 6 units | keras | {init_5_6_min:.4f} to {init_5_6_max:.4f} (the tutorial's weights at 5 "
                         "units: {init_tutorial_5_at_chance:s} at chance; at 6: {init_tutorial_6_at_chance:s})"),
    ("docs/training.md", "| 8, 16 units | keras | {init_8_16_min:.4f} to {init_8_16_max:.4f} |"),
    ("docs/training.md", "| 2 layers of 4 | keras | {init_2layers_min:.4f} to {init_2layers_max:.4f} |"),
    ("docs/training.md", "| 32 units | keras | {init_32_min:.4f} to {init_32_max:.4f}; collapsed: "
                         "{init_32_collapses:s} |"),
    ("docs/training.md", "| 64 units | keras | {init_64_min:.4f} to {init_64_max:.4f}; collapsed: "
                         "{init_64_collapses:s}; "
                         "with `--clip-norm 1`: {init_64_clip_min:.4f} to {init_64_clip_max:.4f}, collapsed: "
                         "{init_64_clip_collapses:s} |"),
    ("docs/training.md", "| 128 units | keras | {init_128_min:.4f} to {init_128_max:.4f}; collapsed: "
                         "{init_128_collapses:s} |"),
    ("docs/training.md", "epochs {stop_seed0_epochs}  held-out accuracy {stop_seed0_accuracy:.4f}  ...  (stopped at "
                         "epoch {stop_seed0_epochs} of 100: training accuracy {stop_seed0_training_accuracy:.3f} "
                         ">= 0.95)"),
    ("docs/training.md", "was epoch {stop_first_min} to {stop_first_max} for seeds 0-9 but seed "
                         "{stop_seeds_not_within_20}, which took more than 20 (seed 0: epoch {stop_seed0_epochs};"),
    ("docs/training.md", "| lstm | off | {clip_lstm_off_s0:.4f}, {clip_lstm_off_s1:.4f}, {clip_lstm_off_s2:.4f}, "
                         "{clip_lstm_off_s3:.4f}, {clip_lstm_off_s4:.4f} | {clip_lstm_off_collapses:s} |"),
    ("docs/training.md", "| lstm | 1 | {clip_lstm_on_s0:.4f}, {clip_lstm_on_s1:.4f}, {clip_lstm_on_s2:.4f}, "
                         "{clip_lstm_on_s3:.4f}, {clip_lstm_on_s4:.4f} | {clip_lstm_on_collapses:s} |"),
    ("docs/training.md", "| gru | off | {clip_gru_off_s0:.4f}, {clip_gru_off_s1:.4f}, {clip_gru_off_s2:.4f}, "
                         "{clip_gru_off_s3:.4f}, {clip_gru_off_s4:.4f} | {clip_gru_off_collapses:s} |"),
    ("docs/training.md", "| gru | 1 | {clip_gru_on_s0:.4f}, {clip_gru_on_s1:.4f}, {clip_gru_on_s2:.4f}, "
                         "{clip_gru_on_s3:.4f}, {clip_gru_on_s4:.4f} | {clip_gru_on_collapses:s} |"),
    ("docs/training.md", '"eval_accuracy": {default_accuracy:.4f}, "eval_loss": {default_eval_loss:.4f}, '
                         '"final_loss": {default_final_loss:.4f},'),
    ("docs/training.md", '"memory_lag": {default_lag}, "memory_share": {default_share:.4f},'),
    ("docs/reliability.md", "--learning-rate 1e30` ends with `Error: {diverged_exploded_message:s}`,"),
    ("docs/reliability.md", "`--learning-rate 1e38` with `Error: {diverged_nonfinite_message:s}`"),
    ("docs/reliability.md", "--total-series-length 10000` ends with `Warning: {chance_warning:s}`."),
    ("docs/use.md", "echo       0000110100\nprediction {echo_prediction}\n"),
    ("docs/use.md", "accuracy {echo_accuracy:.1%}: 7 of 7 steps"),
]

_NUMBER = r"[-+]?(?:\d[\d,]*(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?%?|\w+"
#: A field ``{name:s}`` is text (a phrase the script writes): anything up to the passage's next words.
_TEXT = r"[\s\S]+?"


def _pattern(template: str) -> tuple[re.Pattern, list[tuple[str, str]]]:
    """The regex of a template (its numbers as groups, any whitespace as whitespace) and its fields."""
    parts, fields = [], []
    for literal, name, spec, _ in string.Formatter().parse(template):
        parts += [r"\s+" if word.isspace() else re.escape(word) for word in re.split(r"(\s+)", literal) if word]
        if name is not None:
            parts.append(f"({_TEXT if spec == 's' else _NUMBER})")
            fields.append((name, spec or ""))
    return re.compile("".join(parts)), fields


def render(template: str, values: dict) -> str:
    return template.format_map(values)


def find(page_text: str, template: str) -> list[re.Match]:
    return list(_pattern(template)[0].finditer(page_text))


def quote_pages(values: dict) -> list[str]:
    """Rewrite every quoted number in the pages from ``values``; returns the pages changed."""
    changed = []
    for page in sorted({p for p, _ in QUOTES}):
        path = ROOT / page
        text = before = path.read_text()
        for where, template in QUOTES:
            pattern, fields = _pattern(template)
            if where != page or any(name not in values for name, _ in fields):
                continue
            matches = list(pattern.finditer(text))
            if len(matches) != 1:
                raise SystemExit(f"{page}: the passage {template!r} occurs {len(matches)} times (once expected)")
            m = matches[0]
            pieces, last = [], m.start()
            for i, (name, spec) in enumerate(fields, start=1):
                pieces += [text[last:m.start(i)], format(values[name], spec)]
                last = m.end(i)
            text = text[:m.start()] + "".join(pieces) + text[last:]
        if text != before:
            path.write_text(text)
            changed.append(page)
    return changed


# --- the machine and numbers.json ----------------------------------------------------------------

def machine() -> str:
    """The machine a number was measured on, as the pages name it: cores, CPU, its vector units,
    whether virtual, Python and TensorFlow."""
    from importlib.metadata import version

    model, flags = platform.processor() or platform.machine(), ""
    try:
        info = Path("/proc/cpuinfo").read_text()
        model = re.search(r"model name\s*:\s*(.+)", info).group(1).strip()
        flags = re.search(r"^flags\s*:\s*(.+)$", info, re.M).group(1).split()
    except (OSError, AttributeError):
        pass
    extras = [x for x, flag in (("AVX-512", "avx512f"), ("KVM", "hypervisor")) if flag in flags]
    return ", ".join([f"{os.cpu_count()}-core {model}", *extras, f"Python {platform.python_version()}",
                      f"TensorFlow {version('tensorflow')}", f"NumPy {np.__version__}"])


def plain(value):
    """A JSON value of a number as stored: ints stay ints, NumPy floats become the floats they are."""
    if isinstance(value, (bool, str)) or value is None:
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    return float(value)


def load_numbers() -> dict:
    return json.loads(NUMBERS.read_text())["numbers"] if NUMBERS.exists() else {}


def values_of(numbers: dict) -> dict:
    return {name: entry["value"] for name, entry in numbers.items()}


def make(names: list[str], draw: bool = True) -> dict:
    numbers = load_numbers()
    where = machine()
    for name in names:
        product = PRODUCTS[name]
        start = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"docs-{name}-") as work:
            measured = product.measure(Path(work), draw)
        for key in [k for k, v in numbers.items() if v.get("product") == name]:
            del numbers[key]
        for key, value in measured.items():
            numbers[key] = {"value": plain(value), "product": name, "command": product.command, "machine": where}
        print(f"{name}: {len(measured)} numbers, {len(product.figures)} figures in {time.monotonic() - start:.0f} s",
              file=sys.stderr, flush=True)
        NUMBERS.write_text(json.dumps({"numbers": dict(sorted(numbers.items()))}, indent=1) + "\n")
    return numbers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("products", nargs="*", help=f"products to make (default: all of {', '.join(PRODUCTS)})")
    parser.add_argument("--quotes", action="store_true", help="only rewrite the pages from docs/numbers.json")
    parser.add_argument("--list", action="store_true", help="list the products")
    args = parser.parse_args(argv)
    if args.list:
        for p in PRODUCTS.values():
            print(f"{p.name}: {p.command}" + (f" -> {', '.join(p.figures)}" if p.figures else ""))
        return 0
    unknown = [n for n in args.products if n not in PRODUCTS]
    if unknown:
        parser.error(f"no such product: {', '.join(unknown)} (there are: {', '.join(PRODUCTS)})")
    start = time.monotonic()
    numbers = load_numbers() if args.quotes else make(args.products or list(PRODUCTS))
    changed = quote_pages(values_of(numbers))
    print(f"pages rewritten: {', '.join(changed) or 'none'}; {time.monotonic() - start:.0f} s in all", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
