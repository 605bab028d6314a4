"""benchmarks/scaling.py: which rows it measures or skips, the ratios its report checks, its plot,
and one real (tiny) measurement of each worker in a process of its own."""

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
import scaling  # noqa: E402 - benchmarks/ is not a package: importable once its folder is on the path

from echo_rnn_cli.config import Config  # noqa: E402 - after the path change above, kept with the imports

HAS_CELL = "cell" in {f.name for f in dataclasses.fields(Config)}


def row(framework, cell, state, models=1, **numbers):
    base = {"framework": framework, "cell": cell, "state": state, "models": models}
    return base | ({"status": "ok", **numbers} if numbers else {"status": "skipped: not here"})


def fake_result(rows):
    return {"machine": {"cpu": "test cpu", "cores": 2, "tensorflow": "x", "python": "3.11", "os": "os"},
            "command": "scaling.py", "load_before": (1.0, 1.0, 1.0), "load_after": (2.0, 2.0, 2.0),
            "started": "today", "settings": {"epochs": 5, "budget_s": 0.2, "device": "cpu"}, "rows": rows}


def test_bench_and_scaling_share_common_and_import_neither_the_other():
    """No import circle: what both need lives in common.py; bench.py reaches scaling.py only for
    --sizes, inside main."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import {0}; "
            "assert {1!r} not in sys.modules, 'imports {1}'; assert 'common' in sys.modules")
    for mod, other in (("scaling", "bench"), ("bench", "scaling")):
        subprocess.run([sys.executable, "-c", code.format(mod, other), str(BENCH)], check=True, timeout=120)


def test_cells_follow_the_config():
    assert scaling.cells_available() == (("rnn", "lstm", "gru") if HAS_CELL else ("rnn",))


def test_jobs_skip_cells_this_build_lacks_and_pytorch_when_missing():
    opts = type("O", (), {"cells": ("rnn", "lstm"), "states": (4, 64), "seeds": (1, 16), "no_torch": False,
                          "math": ("exact", "fast")})
    jobs = scaling.jobs(opts, ("rnn",), have_torch=False)
    assert len(jobs) == 2 * 2 * (2 * 2 + 1)
    assert {j["math"] for j in jobs if j["framework"] == "echo-rnn"} == {"exact", "fast"}
    assert all(j["skip"] is None for j in jobs if j["framework"] == "echo-rnn" and j["cell"] == "rnn")
    assert all("not available" in j["skip"] for j in jobs if j["framework"] == "echo-rnn" and j["cell"] == "lstm")
    assert all("not installed" in j["skip"] for j in jobs if j["framework"] == "pytorch")


def test_windows_shrink_as_sizes_grow():
    small = scaling.plan_windows("rnn", 4, 1, 0.2)
    big = scaling.plan_windows("lstm", 128, 256, 0.2)
    assert small == Config().windows_per_epoch
    assert big == scaling.MIN_WINDOWS < small


def auto(r: dict) -> dict:
    return r | {"math": "auto"}


def test_report_checks_the_issue_targets_from_the_rows():
    rows = [auto(row("echo-rnn", "rnn", 4, per_window_us=20.0, per_model_window_us=20.0)),
            auto(row("echo-rnn", "rnn", 64, per_window_us=200.0, per_model_window_us=200.0)),
            auto(row("echo-rnn", "rnn", 64, 16, per_window_us=640.0, per_model_window_us=40.0)),
            auto(row("echo-rnn", "lstm", 64, per_window_us=1000.0, per_model_window_us=1000.0)),
            row("pytorch", "rnn", 4, per_window_us=5000.0, one_thread_us=1000.0, best_us=1000.0),
            row("pytorch", "rnn", 64, per_window_us=1200.0, one_thread_us=1300.0, best_us=1200.0),
            row("pytorch", "lstm", 64, per_window_us=1500.0, one_thread_us=1500.0, best_us=1500.0),
            auto(row("echo-rnn", "lstm", 4))]
    text = scaling.report(fake_result(rows))
    assert "with --math auto" in text
    assert "- rnn state 64, per window: 200 µs (target ≤ 250 µs): yes" in text
    assert "- rnn state 64 / state 4: 10x (target ≤ 5x): **no**" in text
    assert "- lstm / rnn at state 64: 5x (target ≤ 4x): **no**" in text
    # Ratios against the faster PyTorch (1 thread here: 1000, not 5000).
    assert "- PyTorch / echo-rnn, rnn at state 4: 50x (target ≥ 1x): yes" in text
    assert "- PyTorch / echo-rnn, lstm at state 64 (5x: the goal): 1.5x (target ≥ 2x): **no**" in text
    assert "`--seeds 16` at state 64, rnn: per model-window / one model's window: 0.20 (target ≤ 0.25x): yes" in text
    assert "| lstm | 4 | auto | skipped: not here |" in text


def test_report_reads_the_default_path_when_several_modes_were_measured():
    rows = [row("echo-rnn", "rnn", 64, per_window_us=1400.0, per_model_window_us=1400.0),
            row("echo-rnn", "rnn", 64, per_window_us=190.0, per_model_window_us=190.0) | {"math": "fast"},
            auto(row("echo-rnn", "rnn", 64, per_window_us=195.0, per_model_window_us=195.0))]
    text = scaling.report(fake_result(rows))
    assert "- rnn state 64, per window: 195 µs (target ≤ 250 µs): yes" in text
    assert "| rnn | 64 | fast | 190 µs |" in text and "| rnn | 64 | exact | 1,400 µs |" in text
    # Without auto rows, the first mode measured.
    assert "- rnn state 64, per window: 1,400 µs (target ≤ 250 µs): **no**" in scaling.report(fake_result(rows[:2]))


def test_plot_writes_a_png(tmp_path):
    rows = [row("echo-rnn", "rnn", s, per_window_us=s * 10.0, per_model_window_us=s * 10.0) for s in (4, 16)]
    rows += [row("pytorch", "rnn", s, per_window_us=1e3, one_thread_us=1e3, best_us=1e3) for s in (4, 16)]
    scaling.plot(fake_result(rows), tmp_path / "s.png")
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def run_worker(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", ECHO_RNN_XLA_CACHE="0")
    proc = subprocess.run([sys.executable, str(BENCH / "scaling.py"), "--worker", *args],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # a worker process compiling with the cache off
def test_echo_worker_times_a_real_training():
    out = run_worker("--framework", "echo-rnn", "--cell", "rnn", "--state", "4", "--models", "2",
                     "--windows", "3", "--epochs", "2", "--device", "cpu")
    assert out["per_window_us"] > 0
    assert out["per_model_window_us"] == pytest.approx(out["per_window_us"] / 2)
    assert out["device"] == "/CPU:0"


@pytest.mark.slow  # a worker process compiling with the cache off
def test_echo_worker_times_fast_math():
    out = run_worker("--framework", "echo-rnn", "--cell", "lstm", "--state", "8", "--models", "1",
                     "--windows", "3", "--epochs", "2", "--device", "cpu", "--math", "fast")
    assert out["per_window_us"] > 0


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch (the bench extra) not installed")
def test_torch_worker_times_a_real_loop():
    out = run_worker("--framework", "pytorch", "--cell", "gru", "--state", "4", "--windows", "20", "--epochs", "1")
    assert 0 < out["best_us"] == min(out["per_window_us"], out["one_thread_us"])
    assert out["torch_threads"] >= 1


@pytest.mark.slow  # two default epochs, trained and then timed alone
@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_bench_worker_times_the_program_the_trainer_ran(cell):
    """bench.py's worker, on the default path (``--math auto``): it asked the compiled epoch for
    the config's 'auto' and failed ('unknown math mode') until it took the mode the trainer used."""
    import bench

    out = bench.run_worker(1, 2, "cpu", cell)
    assert out["compiled_window_us"] > 0 and out["retraced"] == 0 and out["device"] == "/CPU:0"
