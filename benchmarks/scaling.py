"""Scaling: time per training window against the state size, for each cell, one model and many at
once (`--seeds`), beside the peers: a JAX program written as a strong engineer would write this task
(``jax_peer.py``: one jit per epoch over ``lax.scan``, ``vmap`` for many models) and PyTorch's eager loop.

    .venv/bin/python benchmarks/scaling.py              # the default path, about 5 minutes on 2 cores
    .venv/bin/python benchmarks/bench.py --sizes        # the same
    .venv/bin/python benchmarks/scaling.py --states 4,64 --cells rnn --seeds 1,16 --no-torch
    .venv/bin/python benchmarks/scaling.py --math exact,fast --seeds 1 --no-torch --states 4,8,16,32
                                                        # where fast math starts paying (FAST_MATH_FROM)
    .venv/bin/python benchmarks/scaling.py --markdown out.md --json out.json --plot out.png

Prints a Markdown report on stdout and saves the plot (benchmarks/scaling.png unless --plot says
otherwise). Every measurement runs in a process of its own, as in bench.py. JAX and PyTorch are
optional (`pip install -e '.[bench]'`); without them their rows say so. With ``--rounds N`` every
row of a (cell, state) is measured N times, the rounds interleaved, and the fastest kept: on a shared
machine a burst of load then spoils one round of one row, not the comparison.

What is measured, per training window of the default shape (5 rows x 15 steps, two classes):
  echo-rnn: ``train_many`` with 1, 16 or 256 configs that differ only in the seed; the median epoch
      of a second training in the same process (everything compiled, each epoch's data preparation
      included), divided by the windows of an epoch (fewer windows for larger sizes, so that the
      whole table stays short); per model-window is that divided by the number of models. Each
      row in each ``--math`` mode asked for: by default only ``auto``, what users get without the flag
      (exact or fast by the cell and the state size, ``Config.math_used``).
      Cells other than the tutorial's rnn are measured only where this build's Config has ``cell``.
  JAX: ``jax_peer.py``, the same task as the program a strong engineer would write (one jit per
      epoch, ``lax.scan`` over windows and steps, ``jax.value_and_grad``, batch-major), one model
      and ``jax.vmap`` over 16; the median epoch after a first (compiling) one, each epoch's data
      made inside the timing from echo-rnn's own series, every window's loss read back.
  PyTorch: ``nn.RNN(nonlinearity='tanh')`` / ``nn.LSTM`` / ``nn.GRU`` (batch_first) and a Linear
      layer, cross-entropy, ``torch.optim.Adagrad(lr=0.3, initial_accumulator_value=0.1, eps=1e-7)``
      as Keras's; one optimizer step per window, the state carried to the next window and detached
      (truncated backprop), each window's loss read back (``loss.item()``), each epoch's fresh
      series drawn and converted inside the timing, as echo-rnn does. Eager, first with torch's
      default threads (what a user gets; recorded), then with one thread: on a busy machine the
      default's threads wait on each other and run many times slower, so ratios are taken against
      the faster of the two. The median of the epochs after a first, untimed one.
  On a busy machine large sizes can take minutes per measurement: both workers cut their timed
  epochs short once about 1.5 x --budget x --epochs seconds have passed (at least 3 epochs of
  echo-rnn, 10 windows of each PyTorch epoch).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import math
import os
import sys
import time
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import env_with, header, log, ok, preamble, publish, steady_state, worker  # noqa: E402 - common.py beside it, once on the path

from echo_rnn_cli.config import MATH_MODES  # noqa: E402 - with the imports (config loads no TensorFlow)

STATES = (4, 16, 64, 128)
CELLS = ("rnn", "lstm", "gru")
MODELS = (1, 16)
MATHS = ("auto",)
GATES = {"rnn": 1, "gru": 3, "lstm": 4}
TUTORIAL_STATE = 4
MIN_WINDOWS = 3
UNAVAILABLE = "not available in this build (its Config has no 'cell')"

TARGETS = {  # on the default path (no --math flag), on an idle 2-core CPU
    "echo_over_jax": 1.0,       # echo-rnn / JAX, every cell and size, at most (stretch: 0.8)
    "lstm64_us": 250.0,         # lstm, state 64, per window, at most
    "torch_everywhere": 1.0,    # PyTorch / echo-rnn, every cell and size measured, at least
    "seeds16_share": 0.5,       # --seeds 16 at state 64: per model-window / one model's window, at most
    "rnn64_us": 250.0,          # rnn, state 64, per window, at most (an earlier target, kept)
}


# --- what can be measured -----------------------------------------------------------------------

def cells_available() -> tuple[str, ...]:
    """The tutorial's rnn always; the others where this build's Config has a `cell` setting."""
    from echo_rnn_cli.config import Config

    has_cell = "cell" in {f.name for f in dataclasses.fields(Config)}
    return CELLS if has_cell else ("rnn",)


def torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


def jax_installed() -> bool:
    return importlib.util.find_spec("jax") is not None


def plan_windows(cell: str, state: int, models: int, budget_s: float, math_mode: str = "exact") -> int:
    """Windows per epoch so that a timed epoch takes about budget_s: a rough cost model (it only
    sizes the epochs), never more than the tutorial's epoch, never fewer than MIN_WINDOWS. Fast
    math's library products cost far less per unit at large states: sized by the exact model, its
    epochs would be so short that each epoch's fixed costs would weigh on its time per window."""
    from echo_rnn_cli.config import Config

    work = GATES[cell] * state * state * models
    est_us = 60 + 0.015 * work if math_mode == "fast" else 20 + 0.2 * work * (1 + state / 64)
    return max(MIN_WINDOWS, min(Config().windows_per_epoch, int(budget_s * 1e6 / est_us)))


def plan_torch_windows(cell: str, state: int, budget_s: float) -> int:
    """PyTorch's eager loop is bound by per-call overhead (about 1 ms a window) until states grow."""
    from echo_rnn_cli.config import Config

    est_us = 1500 + 0.02 * GATES[cell] * state * state
    return max(20, min(Config().windows_per_epoch, int(budget_s * 1e6 / est_us)))


def series_length(windows: int) -> int:
    from echo_rnn_cli.config import Config

    c = Config()
    return windows * c.batch_size * c.truncated_backprop_length


# --- the workers, each in a process of its own ----------------------------------------------------

def echo_worker(cell: str, state: int, models: int, windows: int, epochs: int, device: str, cap_s: float,
                math: str = "exact") -> dict:
    """echo-rnn's trainer: `models` configs that differ in the seed, trained together, twice (the
    second training cut after 3 epochs once cap_s seconds have passed: a busy machine's guard)."""
    from echo_rnn_cli.config import resolve

    overrides = {"state_size": state, "total_series_length": series_length(windows), "epochs": epochs,
                 "device": device} | ({"math": math} if math in MATH_MODES else {})
    if cell != "rnn" or "cell" in cells_available():
        overrides["cell"] = cell  # through resolve(), as the CLI does: per-cell defaults apply
    configs = [resolve(overrides=overrides | {"seed": s}) for s in range(models)]
    steady = steady_state(configs, cap_s)
    per_window = steady["steady_window_us"]
    return {"per_window_us": per_window, "per_model_window_us": per_window / models,
            "math_used": configs[0].math_used if hasattr(configs[0], "math_used") else configs[0].math,
            "first_train_s": steady["train_s"], "device": steady["runs"][0].device,
            "eval_accuracy": steady["runs"][0].eval_accuracy}


def jax_worker(cell: str, state: int, models: int, windows: int, epochs: int, cap_s: float,
               one_core: bool = False) -> dict:
    """The JAX program (jax_peer.py) on the same series echo-rnn trains on (its data module, the
    same seeds), ``models`` of them through ``vmap``; median seconds per window after compiling.
    ``one_core``: the process (every thread XLA starts) kept on one core, which on a 2-core machine
    ran JAX's programs 1.2-1.35x faster than its default, its kernels no longer handed between cores."""
    if one_core:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # before JAX starts its threads
    import jax_peer

    from echo_rnn_cli.config import Config
    from echo_rnn_cli.data import epoch_data

    base = Config(state_size=state, total_series_length=series_length(windows))
    out = jax_peer.time_epochs(cell, state, models, lambda seed, e: epoch_data(dataclasses.replace(base, seed=seed), e),
                               epochs, cap_s)
    return out | {"per_model_window_us": out["per_window_us"] / models}


def torch_peer(cell: str, state: int, inputs: int, classes: int):
    """The PyTorch model a user would write: the recurrent layer and a Linear softmax layer."""
    from torch import nn

    layers = {"rnn": lambda: nn.RNN(inputs, state, nonlinearity="tanh", batch_first=True),
              "lstm": lambda: nn.LSTM(inputs, state, batch_first=True),
              "gru": lambda: nn.GRU(inputs, state, batch_first=True)}
    return nn.ModuleDict({"cell": layers[cell](), "out": nn.Linear(state, classes)})


def torch_epoch(model, opt, c, epoch: int, cap_s: float = math.inf) -> float:
    """One epoch as a user's eager loop: fresh series, state zero at its start, carried between
    windows and detached (truncated backprop), one optimizer step per window. Returns seconds per
    window; cut after 10 windows once cap_s seconds have passed (a busy machine's guard)."""
    import torch
    import torch.nn.functional as F

    from echo_rnn_cli.data import epoch_data

    t0 = time.perf_counter()
    xs, ys = epoch_data(c, epoch)
    x = torch.from_numpy(xs).float().unsqueeze(-1)  # two classes: the symbol itself is the input
    y = torch.from_numpy(ys).long()
    h, losses = None, []
    for i, (xw, yw) in enumerate(zip(x, y, strict=True)):
        if i >= 10 and time.perf_counter() - t0 > cap_s:
            break
        seq, h = model["cell"](xw, h)
        logits = model["out"](seq)
        loss = F.cross_entropy(logits.reshape(-1, c.num_classes), yw.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        h = tuple(t.detach() for t in h) if isinstance(h, tuple) else h.detach()
        losses.append(loss.item())
    return (time.perf_counter() - t0) / len(losses)


def torch_worker(cell: str, state: int, windows: int, epochs: int, cap_s: float) -> dict:
    """PyTorch's loop with its default threads (what a user gets), then with one thread: on a busy
    machine the default's threads wait on each other and it can be many times slower; ratios in
    the report are taken against the faster of the two, so they never flatter echo-rnn."""
    import statistics

    import torch

    from echo_rnn_cli.config import Config

    torch.manual_seed(0)
    c = Config(state_size=state, total_series_length=series_length(windows))
    model = torch_peer(cell, state, 1 if c.num_classes == 2 else c.num_classes, c.num_classes)
    opt = torch.optim.Adagrad(model.parameters(), lr=c.learning_rate, initial_accumulator_value=0.1, eps=1e-7)
    threads = torch.get_num_threads()
    us = {}
    for n in (threads, 1):
        torch.set_num_threads(n)
        torch_epoch(model, opt, c, 0, cap_s / epochs)  # untimed: first calls allocate and warm up
        us[n] = statistics.median(torch_epoch(model, opt, c, e, cap_s / epochs) for e in range(1, epochs + 1)) * 1e6
    return {"per_window_us": us[threads], "one_thread_us": us[1], "best_us": min(us.values()),
            "per_model_window_us": us[threads], "torch_threads": threads, "torch": torch.__version__}


# --- the table ----------------------------------------------------------------------------------

def jobs(opts, available: tuple[str, ...], have_torch: bool, have_jax: bool = False) -> list[dict]:
    """Every row to measure, or to report as skipped, in the order they run: per cell and state,
    echo-rnn's rows, then JAX's (one model and each --seeds count, through vmap), then PyTorch's."""
    out = []
    for cell in opts.cells:
        for state in opts.states:
            for math_mode in opts.math:
                for models in opts.seeds:
                    out.append({"framework": "echo-rnn", "cell": cell, "state": state, "models": models,
                                "math": math_mode, "skip": None if cell in available else UNAVAILABLE})
            if not opts.no_jax:
                for models in opts.seeds:
                    out.append({"framework": "jax", "cell": cell, "state": state, "models": models,
                                "skip": None if have_jax else "JAX is not installed (the `bench` extra)"})
            if not opts.no_torch:
                out.append({"framework": "pytorch", "cell": cell, "state": state, "models": 1,
                            "skip": None if have_torch else "PyTorch is not installed (the `bench` extra)"})
    return out


def measure(job: dict, opts) -> dict:
    """Run one job's worker and return its row (or the reason it has no numbers)."""
    row = {k: job[k] for k in ("framework", "cell", "state", "models", "math") if k in job}
    if job["skip"]:
        return row | {"status": "skipped: " + job["skip"]}
    windows = (plan_windows(job["cell"], job["state"], job["models"], opts.budget, compiled_mode(job))
               if job["framework"] == "echo-rnn"
               else plan_windows(job["cell"], job["state"], job["models"], opts.budget, "fast")
               if job["framework"] == "jax"
               else plan_torch_windows(job["cell"], job["state"], opts.budget))
    args = ["--framework", job["framework"], "--cell", job["cell"], "--state", str(job["state"]),
            "--models", str(job["models"]), "--windows", str(windows), "--epochs", str(opts.epochs),
            "--device", opts.device, "--cap", str(opts.budget * opts.epochs * 1.5),
            "--math", math_of(job) if job["framework"] == "echo-rnn" else "exact"]
    # No compile cache: every program here is compiled once per process and timed after that.
    t0 = time.perf_counter()
    try:
        result = worker(args, env_with(ECHO_RNN_XLA_CACHE="0"), script=__file__)
        if job["framework"] == "jax":  # the faster of its default and one core, as PyTorch's threads
            pinned = worker([*args, "--one-core"], env_with(), script=__file__)
            best = min(result["per_window_us"], pinned["per_window_us"])
            result |= {"default_us": result["per_window_us"], "one_core_us": pinned["per_window_us"],
                       "per_window_us": best, "per_model_window_us": best / job["models"]}
    except RuntimeError as e:
        return row | {"status": f"failed: {e}", "windows": windows}
    return row | result | {"status": "ok", "windows": windows, "process_s": time.perf_counter() - t0}


def faster(old: dict | None, new: dict) -> dict:
    """Of two measurements of one row, the faster (a row that failed or was skipped loses)."""
    if old is None or old["status"] != "ok":
        return new
    if new["status"] != "ok" or new["per_window_us"] >= old["per_window_us"]:
        return old | {"rounds": old.get("rounds", 1) + 1}
    return new | {"rounds": old.get("rounds", 1) + 1}


def run_table(opts) -> dict:
    res = header()
    res["command"] = " ".join([Path(sys.executable).name, *sys.argv])
    available, have_torch, have_jax = cells_available(), torch_installed(), jax_installed()
    if have_torch:
        res["machine"]["pytorch"] = version("torch")
    if have_jax and not opts.no_jax:
        res["machine"]["jax"] = version("jax")
    todo = jobs(opts, available, have_torch, have_jax)
    # Rounds interleaved per (cell, state): every row of the group once, then again.
    groups = list(dict.fromkeys((j["cell"], j["state"]) for j in todo))
    order = [j for g in groups for _ in range(opts.rounds) for j in todo if (j["cell"], j["state"]) == g]
    best: dict[int, dict] = {}
    start = time.perf_counter()
    for i, job in enumerate(order, 1):
        what = f"{job['framework']} {job['cell']} state {job['state']}" + (
            f" x{job['models']} models" if job["models"] > 1 else "") + (
            f" --math {math_of(job)}" if job["framework"] == "echo-rnn" else "")
        row = measure(job, opts)
        best[id(job)] = faster(best.get(id(job)), row)
        shown = (f"{row['per_window_us']:,.1f} us per window" if row["status"] == "ok" else row["status"])
        log(f"[{i}/{len(order)}, {time.perf_counter() - start:.0f} s] {what}: {shown}")
    res["rows"] = [best[id(j)] for j in todo]
    res["load_after"] = os.getloadavg()
    res["settings"] = {"budget_s": opts.budget, "epochs": opts.epochs, "device": opts.device,
                       "math": list(opts.math), "rounds": opts.rounds}
    return res


# --- the report -----------------------------------------------------------------------------------

def lookup(rows: list[dict], framework: str, cell: str, state: int, models: int = 1, key: str = "per_window_us",
           math: str = "exact"):
    """The number of one measured row, or None (skipped, failed or not in this run). PyTorch's
    rows have no math mode; echo-rnn's rows without one are exact."""
    for r in rows:
        if (r["framework"], r["cell"], r["state"], r["models"]) == (framework, cell, state, models) and (
                framework != "echo-rnn" or math_of(r) == math):
            return r.get(key) if r["status"] == "ok" else None
    return None


def compiled_mode(job: dict) -> str:
    """The mode a job's program compiles in ('auto' resolved as the trainer resolves it)."""
    from echo_rnn_cli.config import Config

    return Config(cell=job["cell"], state_size=job["state"], math=math_of(job)).math_used


def math_of(r: dict) -> str:
    """An echo-rnn row's (or job's) math mode: rows without one are exact."""
    return r.get("math", "exact")


def modes(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(math_of(r) for r in rows if r["framework"] == "echo-rnn")) or ["exact"]


def us(value) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f} µs" if value >= 100 else f"{value:.3g} µs"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def times(value) -> str:
    # two decimals below 10: a ratio of 1.04 shown as "1x" read as a target met
    return "-" if value is None else f"{value:.2f}x" if value < 10 else f"{value:.0f}x"


def table(res: dict) -> list[str]:
    rows, s = res["rows"], res["settings"]
    seeds = sorted({r["models"] for r in rows if r["framework"] == "echo-rnn" and r["models"] > 1})
    head = ["cell", "state", "math", "echo-rnn, 1 model", *(f"`--seeds {m}`, per model-window" for m in seeds),
            "JAX scan, 1 model", *(f"JAX vmap {m}, per model-window" for m in seeds), "echo-rnn / JAX",
            "PyTorch eager (default threads)", "PyTorch, 1 thread", "PyTorch (faster) / echo-rnn",
            "windows per epoch (each row measured, in order)"]
    lines = [f"Per training window (5 rows x 15 steps), steady state, median of {s['epochs']} epochs:", "",
             "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for cell in dict.fromkeys(r["cell"] for r in rows):
        for state in dict.fromkeys(r["state"] for r in rows if r["cell"] == cell):
            for mode in modes(rows):
                lines.append(f"| {cell} | {state} | {mode} | " + " | ".join(table_cells(rows, cell, state, mode, seeds))
                             + " |")
    return lines


def table_cells(rows: list[dict], cell: str, state: int, mode: str, seeds: list[int]) -> list[str]:
    mine = [r for r in rows if (r["cell"], r["state"]) == (cell, state)
            and (r["framework"] != "echo-rnn" or math_of(r) == mode)]
    echo = lookup(rows, "echo-rnn", cell, state, math=mode)
    peer = lookup(rows, "pytorch", cell, state, key="best_us")
    skipped = next((r["status"] for r in mine if r["framework"] == "echo-rnn" and r["status"] != "ok"), "")
    jax = lookup(rows, "jax", cell, state)
    jax_skipped = next((r["status"] for r in mine if r["framework"] == "jax" and r["status"] != "ok"), "-")
    return [us(echo) if echo is not None or not skipped else skipped,
            *(us(lookup(rows, "echo-rnn", cell, state, m, "per_model_window_us", mode)) for m in seeds),
            us(jax) if jax is not None else jax_skipped,
            *(us(lookup(rows, "jax", cell, state, m, "per_model_window_us")) for m in seeds),
            "-" if ratio(echo, jax) is None else f"{ratio(echo, jax):.2f}x",
            us(lookup(rows, "pytorch", cell, state)) if peer is not None else next(
                (r["status"] for r in mine if r["framework"] == "pytorch"), "-"),
            us(lookup(rows, "pytorch", cell, state, key="one_thread_us")),
            times(ratio(peer, echo)),
            "/".join(str(r["windows"]) for r in mine if "windows" in r)]


def check(what: str, values, target: float, at_most: bool, show=us) -> str:
    """One target, met when any math mode meets it: ``values`` maps each mode measured to its
    number (or is one number, for a single mode); the line names the mode of the best."""
    values = values if isinstance(values, dict) else {"exact": values}
    sign = "≤" if at_most else "≥"
    shown_target = show(target) if show is us else f"{target:g}x"
    known = {m: v for m, v in values.items() if v is not None}
    best = (min if at_most else max)(known, key=known.get) if known else next(iter(values))
    shown = show(values[best])
    if len(values) > 1:
        others = ", ".join(f"{m}: {show(v)}" for m, v in values.items() if m != best)
        shown += f" with --math {best} ({others})"
    return f"- {what}: {shown} (target {sign} {shown_target}): {ok(values[best], target, at_most)}"


def targets(res: dict) -> list[str]:
    """The speed targets, on the default path ('auto'; the first mode measured if it was not)."""
    rows, t = res["rows"], TARGETS
    measured = modes(rows)
    mode = "auto" if "auto" in measured else measured[0]
    cells = list(dict.fromkeys(r["cell"] for r in rows))
    states = sorted({r["state"] for r in rows})

    def echo(cell, state, models=1, key="per_window_us"):
        return lookup(rows, "echo-rnn", cell, state, models, key, mode)

    def peer_over(cell, state):
        return ratio(lookup(rows, "pytorch", cell, state, key="best_us"), echo(cell, state))

    out = [f"Against the targets, with --math {mode}; '-' and n/a: not measured in this run.", "",
           check("lstm state 64, per window", echo("lstm", 64), t["lstm64_us"], True),
           check("rnn state 64, per window", echo("rnn", 64), t["rnn64_us"], True)]
    for cell in cells:
        for state in states:
            out.append(check(f"echo-rnn / JAX, {cell} at state {state} (stretch: 0.8x)",
                             ratio(echo(cell, state), lookup(rows, "jax", cell, state)), t["echo_over_jax"], True,
                             times))
    for cell in cells:
        for state in states:
            out.append(check(f"PyTorch / echo-rnn, {cell} at state {state}", peer_over(cell, state),
                             t["torch_everywhere"], False, times))
    for cell in cells:
        share = ratio(echo(cell, 64, 16, "per_model_window_us"), echo(cell, 64))
        out.append(check(f"`--seeds 16` at state 64, {cell}: per model-window / one model's window", share,
                         t["seeds16_share"], True, lambda v: "-" if v is None else f"{v:.2f}"))
    return out


def report(res: dict) -> str:
    rows = res["rows"]
    device = next((r["device"] for r in rows if r.get("device")), res["settings"]["device"])
    threads = sorted({r["torch_threads"] for r in rows if "torch_threads" in r})
    lines = [*preamble(res, device), "", *table(res), ""]
    if any(r["framework"] == "jax" and r["status"] == "ok" for r in rows):
        lines += [f"JAX {res['machine'].get('jax')}, one jit per epoch: the faster of its default threads and the "
                  "process kept on one core (each row's `default_us` and `one_core_us` are in the JSON).", ""]
    if threads:
        lines += [f"PyTorch {res['machine'].get('pytorch')}, eager: first with its default threads "
                  f"(torch.get_num_threads() = {', '.join(map(str, threads))}), then with one; the ratios "
                  "use the faster of the two (on a busy machine the default's threads wait on each other).", ""]
    lines += targets(res)
    return "\n".join(lines) + "\n"


def plot(res: dict, path: Path) -> None:
    """Time per window against the state size, log-log: one line per cell and framework (and the
    per model-window cost of the largest --seeds, dotted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = res["rows"]
    most = max((r["models"] for r in rows if r["framework"] == "echo-rnn"), default=1)
    colors = {"rnn": "tab:blue", "lstm": "tab:orange", "gru": "tab:green"}
    styles = {"auto": ("-", "o", "echo-rnn"), "exact": ("-", "v", "echo-rnn --math exact"),
              "fast": ("-.", "^", "echo-rnn --math fast")}
    measured = modes(rows)
    lines = [("echo-rnn", 1, "per_window_us", *styles[m], m) for m in measured]
    lines.append(("jax", 1, "per_window_us", (0, (5, 1, 1, 1)), "D", "JAX scan (one jit per epoch)", None))
    lines.append(("pytorch", 1, "best_us", "--", "s", "PyTorch eager", None))
    if most > 1:
        lines.append(("echo-rnn", most, "per_model_window_us", ":", ".", f"echo-rnn --seeds {most}, per model",
                      measured[0]))
    fig, ax = plt.subplots(figsize=(10, 5))
    for cell in dict.fromkeys(r["cell"] for r in rows):
        for framework, models, key, style, marker, label, mode in lines:
            pts = [(r["state"], r[key]) for r in rows if r["status"] == "ok" and r["cell"] == cell
                   and r["framework"] == framework and r["models"] == models
                   and (mode is None or math_of(r) == mode)]
            if pts:
                ax.plot(*zip(*sorted(pts), strict=True), linestyle=style, marker=marker, color=colors.get(cell),
                        label=f"{label}, {cell}")
    ax.set(xscale="log", yscale="log", xlabel="state size (units)", ylabel="time per training window (µs)",
           title="Time per window of 5 rows x 15 steps (lower is better)")
    states = sorted({r["state"] for r in rows})
    ax.set_xticks(states, [str(s) for s in states])
    ax.minorticks_off()
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)  # beside: lines fill the plot
    fig.text(0.01, 0.01, f"{res['machine']['cpu']}, {res['machine']['cores']} cores; {res['started']}", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected whole numbers of at least 1, got {text!r}")
    return values


def choice_list(choices: tuple[str, ...], what: str):
    """An argparse type: names from ``choices``, separated by commas."""
    def parse(text: str) -> tuple[str, ...]:
        values = tuple(v.strip().lower() for v in text.split(","))
        if not set(values) <= set(choices):
            raise argparse.ArgumentTypeError(f"{what} are {', '.join(choices)}; got {text!r}")
        return values
    return parse


cell_list = choice_list(CELLS, "cells")
math_list = choice_list(MATH_MODES, "math modes")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scaling.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--states", type=int_list, default=STATES, help="state sizes [4,16,64,128]")
    p.add_argument("--cells", type=cell_list, default=CELLS, help="cells [rnn,lstm,gru]")
    p.add_argument("--seeds", type=int_list, default=MODELS, help="models trained at once [1,16,256]")
    p.add_argument("--device", choices=("cpu", "gpu", "auto"), default="cpu", help="echo-rnn's device [cpu]")
    p.add_argument("--math", type=math_list, default=MATHS, help="echo-rnn's --math modes, of auto,exact,fast [auto]")
    p.add_argument("--budget", type=float, default=0.2, help="about this many seconds per timed epoch [0.2]")
    p.add_argument("--epochs", type=int, default=5, help="epochs per training, median kept [5]")
    p.add_argument("--no-torch", action="store_true", help="leave out the PyTorch rows")
    p.add_argument("--no-jax", action="store_true", help="leave out the JAX rows")
    p.add_argument("--one-core", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--rounds", type=int, default=1, help="measure each row this many times, interleaved; "
                   "keep the fastest [1]")
    p.add_argument("--markdown", type=Path, help="also write the report here")
    p.add_argument("--json", type=Path, help="write every number measured here")
    p.add_argument("--plot", type=Path, default=HERE / "scaling.png", help="the plot [benchmarks/scaling.png]")
    p.add_argument("--from-json", type=Path, metavar="JSON",
                   help="measure nothing: the report and plot of an earlier run's --json file")
    for name, kind in (("--worker", None), ("--framework", str), ("--cell", str), ("--state", int),
                       ("--models", int), ("--windows", int), ("--cap", float)):
        if kind is None:
            p.add_argument(name, action="store_true", help=argparse.SUPPRESS)
        else:
            p.add_argument(name, type=kind, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    opts = parser().parse_args(argv)
    if opts.worker:
        if opts.framework == "pytorch":
            out = torch_worker(opts.cell, opts.state, opts.windows, opts.epochs, opts.cap or math.inf)
        elif opts.framework == "jax":
            out = jax_worker(opts.cell, opts.state, opts.models, opts.windows, opts.epochs, opts.cap or math.inf,
                             opts.one_core)
        else:
            out = echo_worker(opts.cell, opts.state, opts.models, opts.windows, opts.epochs, opts.device, opts.cap,
                              opts.math[0])
        print(json.dumps(out))
        return 0
    if 1 not in opts.seeds:
        opts.seeds = (1, *opts.seeds)  # per model-window is read against one model's window
    res = json.loads(opts.from_json.read_text()) if opts.from_json else run_table(opts)
    text = report(res)
    publish(text, res, opts)
    if any(r["status"] == "ok" for r in res["rows"]):
        plot(res, opts.plot)
        log(f"plot: {opts.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
