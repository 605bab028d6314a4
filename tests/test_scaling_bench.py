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
                          "math": ("exact", "fast"), "no_jax": True})
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


def test_report_checks_the_targets_from_the_rows():
    rows = [auto(row("echo-rnn", "rnn", 4, per_window_us=20.0, per_model_window_us=20.0)),
            auto(row("echo-rnn", "rnn", 64, per_window_us=200.0, per_model_window_us=200.0)),
            auto(row("echo-rnn", "rnn", 64, 16, per_window_us=640.0, per_model_window_us=40.0)),
            auto(row("echo-rnn", "lstm", 64, per_window_us=1000.0, per_model_window_us=1000.0)),
            row("jax", "rnn", 4, per_window_us=50.0, per_model_window_us=50.0),
            row("jax", "rnn", 64, per_window_us=100.0, per_model_window_us=100.0),
            row("jax", "rnn", 64, 16, per_window_us=1200.0, per_model_window_us=75.0),
            row("pytorch", "rnn", 4, per_window_us=5000.0, one_thread_us=1000.0, best_us=1000.0),
            row("pytorch", "rnn", 64, per_window_us=1200.0, one_thread_us=1300.0, best_us=1200.0),
            row("pytorch", "lstm", 64, per_window_us=1500.0, one_thread_us=1500.0, best_us=1500.0),
            auto(row("echo-rnn", "lstm", 4))]
    text = scaling.report(fake_result(rows))
    assert "with --math auto" in text
    assert "- rnn state 64, per window: 200 µs (target ≤ 250 µs): yes" in text
    assert "- lstm state 64, per window: 1,000 µs (target ≤ 250 µs): **no**" in text
    assert "- echo-rnn / JAX, rnn at state 4 (stretch: 0.8x): 0.40x (target ≤ 1x): yes" in text
    assert "- echo-rnn / JAX, rnn at state 64 (stretch: 0.8x): 2.00x (target ≤ 1x): **no**" in text
    assert "- echo-rnn / JAX, lstm at state 64 (stretch: 0.8x): - (target ≤ 1x): n/a" in text
    # Ratios against the faster PyTorch (1 thread here: 1000, not 5000).
    assert "- PyTorch / echo-rnn, rnn at state 4: 50x (target ≥ 1x): yes" in text
    assert "- PyTorch / echo-rnn, lstm at state 64: 1.50x (target ≥ 1x): yes" in text
    assert "`--seeds 16` at state 64, rnn: per model-window / one model's window: 0.20 (target ≤ 0.5x): yes" in text
    # The table: JAX's one model, its vmap per model-window, and the ratio.
    assert "| rnn | 64 | auto | 200 µs | 40 µs | 100 µs | 75 µs | 2.00x |" in text
    assert "| lstm | 4 | auto | skipped: not here |" in text


def test_rounds_keep_the_fastest_measurement_of_each_row():
    ok = {"status": "ok"}
    first = scaling.faster(None, ok | {"per_window_us": 30.0})
    assert scaling.faster(first, ok | {"per_window_us": 20.0}) == ok | {"per_window_us": 20.0, "rounds": 2}
    assert scaling.faster(first, ok | {"per_window_us": 40.0}) == ok | {"per_window_us": 30.0, "rounds": 2}
    assert scaling.faster(first, {"status": "failed: x"})["per_window_us"] == 30.0
    assert scaling.faster({"status": "failed: x"}, first) == first


def test_jobs_add_jax_rows_per_seed_count_unless_left_out():
    opts = type("O", (), {"cells": ("gru",), "states": (4,), "seeds": (1, 16), "no_torch": True,
                          "math": ("auto",), "no_jax": False})
    jax_rows = [j for j in scaling.jobs(opts, ("gru",), have_torch=False, have_jax=False) if j["framework"] == "jax"]
    assert [j["models"] for j in jax_rows] == [1, 16] and all("not installed" in j["skip"] for j in jax_rows)
    opts.no_jax = True
    assert not [j for j in scaling.jobs(opts, ("gru",), False, True) if j["framework"] == "jax"]


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


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_jax_peer_learns_the_echo_and_its_vmap_trains_each_model_alone(cell):
    """The peer is a real solution of the task, not a loop that merely runs: its loss falls from
    chance (0.69) to near zero on the default echo, and through vmap each model is that model."""
    pytest.importorskip("jax")
    import jax_peer
    import numpy as np

    from echo_rnn_cli.config import Config
    from echo_rnn_cli.data import epoch_data

    base = Config(total_series_length=30_000)

    def data(seed, e):
        return epoch_data(dataclasses.replace(base, seed=seed), e)

    one = jax_peer.time_epochs(cell, 8, 1, data, 6, 60.0)
    assert one["final_loss"] < 0.1, one
    # Two models through vmap, the first of which is the model above (same key, same data).
    fn, (p, acc) = jax_peer.compiled(cell, 2), jax_peer.initial(cell, 8, 2)
    p1, acc1 = jax_peer.initial(cell, 8, 1)
    xs = np.stack([data(s, 0)[0] for s in range(2)])
    ys = np.stack([data(s, 0)[1] for s in range(2)])
    _, _, losses2 = fn(p, acc, xs, ys)
    _, _, losses1 = jax_peer.compiled(cell, 1)(p1, acc1, xs[0], ys[0])
    np.testing.assert_allclose(np.asarray(losses2)[0], np.asarray(losses1), rtol=1e-4, atol=1e-6)


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


def test_a_ratio_just_over_the_target_never_reads_as_met(tmp_path):
    """1.04x is shown so, not rounded to "1x" beside a **no**; and --from-json renders an earlier
    run's report and plot again without measuring (the committed run: its LSTM rows as measured)."""
    assert scaling.times(1.04) == "1.04x" and scaling.times(12.4) == "12x"
    md, png = tmp_path / "report.md", tmp_path / "plot.png"
    assert scaling.main(["--from-json", str(BENCH / "scaling.json"), "--markdown", str(md),
                         "--plot", str(png)]) == 0
    rows = json.loads((BENCH / "scaling.json").read_text())["rows"]
    lstm = next(r for r in rows if (r["framework"], r["cell"], r["state"], r["models"]) == ("echo-rnn", "lstm", 64, 1))
    assert f"| lstm | 64 | auto | {lstm['per_window_us']:,.0f} µs |" in md.read_text()
    assert png.stat().st_size > 10_000
