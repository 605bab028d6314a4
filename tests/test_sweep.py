"""echo-rnn sweep, summary and the heatmap: real (tiny) training in real worker processes, real files.

The 2x2 sweep (echo_step 1,2 x truncated_backprop_length 5,15, two seeds) is trained once per module
with two worker processes; most tests read its folder. Ray is tested against a local cluster that
the test starts."""

import csv
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from echo_rnn_cli import Config, load_run
from echo_rnn_cli.cli import cli
from echo_rnn_cli.config import FIELD_TYPES, ConfigError
from echo_rnn_cli.figures.heatmap import HeatmapError, cell_text, heatmap_data, heatmap_figure
from echo_rnn_cli.summary import RESULT_KEYS, collect
from echo_rnn_cli.sweep.grid import expand_grid, parse_grid, point_name
from echo_rnn_cli.sweep.manifest import read_manifest
from echo_rnn_cli.sweep.run import make_tasks, run_sweep
from tests.conftest import SMALL, kill_sweep_once_workers_run, run_cli, small_flags, sweep_cmd
from tests.conftest import SWEEP_ENV as ENV

GRID = ["--grid", "echo_step=1,2", "--grid", "truncated_backprop_length=5,15"]


# ---------------------------------------------------------------- grid, names, groups (no training)


def test_parse_grid_types_values_by_the_config_field():
    grid = parse_grid(["echo-step=1, 2,3", "learning_rate=0.1,1e-3", "optimizer=Adam,sgd"])
    assert grid == {"echo_step": [1, 2, 3], "learning_rate": [0.1, 0.001], "optimizer": ["adam", "sgd"]}
    assert all(type(v) is int for v in grid["echo_step"])
    assert all(type(v) is float for v in grid["learning_rate"])


@pytest.mark.parametrize("spec, fragment", [
    ("echo_step", "KEY=V1,V2"),
    ("colour=1,2", "unknown key 'colour'"),
    ("echo_step=1,x", "'x' is not a whole number"),
    ("echo_step=2.5", "'2.5' is not a whole number"),
    ("learning_rate=fast", "'fast' is not a number"),
    ("learning_rate=nan", "not a finite number"),
    ("echo_step=1,2,1", "value 1 is listed twice"),
    ("echo_step=", "'' is not a whole number"),
])
def test_parse_grid_errors_name_the_argument(spec, fragment):
    with pytest.raises(ConfigError, match="--grid") as info:
        parse_grid([spec])
    assert fragment in str(info.value)


def test_grid_key_given_twice_is_refused():
    with pytest.raises(ConfigError, match="given twice"):
        parse_grid(["echo_step=1", "echo-step=2"])


def test_expand_grid_every_combination_with_seeds_and_names():
    base = Config(**SMALL, seed=7)
    points = expand_grid(base, {"truncated_backprop_length": [5, 15], "echo_step": [1, 2]}, seeds=2)
    assert len(points) == 8
    assert len({p.name for p in points}) == 8
    p = points[0]
    assert p.settings == {"truncated_backprop_length": 5, "echo_step": 1, "seed": 7}
    # Keys in the name are alphabetical with the seed last, whatever order the grid was given in.
    assert p.name == "echo_step=1_truncated_backprop_length=5_seed=7"
    assert p.file == p.name + ".npz"
    assert p.config == base.replace(truncated_backprop_length=5, echo_step=1, seed=7)
    assert {q.config.seed for q in points} == {7, 8}
    swapped = expand_grid(base, {"echo_step": [1, 2], "truncated_backprop_length": [5, 15]}, seeds=2)
    assert {q.name for q in swapped} == {q.name for q in points}


def test_a_sweep_of_absurd_size_is_refused_before_expanding():
    start = time.monotonic()
    with pytest.raises(ConfigError, match="make 200,000,000 runs; allowed: at most 100,000"):
        expand_grid(Config(**SMALL), {"echo_step": [1, 2]}, seeds=100_000_000)
    assert time.monotonic() - start < 1


def test_point_names_are_safe_and_bounded():
    assert point_name({"learning_rate": 1e-05, "optimizer": "adam", "seed": 0}) == \
        "learning_rate=1e-05_optimizer=adam_seed=0"
    assert point_name({"seed": 3}) == "seed=3"
    long = point_name({k: "x" * 40 for k in ("device", "init", "optimizer", "epochs", "echo_step", "seed")})
    assert len(long) <= 200 and "/" not in long
    assert long != point_name({k: "x" * 40 for k in ("device", "init", "optimizer", "epochs", "echo_step")})


def test_expand_grid_validates_every_point_before_training():
    with pytest.raises(ConfigError) as info:
        expand_grid(Config(**SMALL), {"truncated_backprop_length": [5, 400]})
    message = str(info.value)
    assert "truncated_backprop_length=400" in message and "--grid truncated_backprop_length" in message
    with pytest.raises(ConfigError, match="--grid seed and --seeds"):
        expand_grid(Config(**SMALL), {"seed": [1, 2]}, seeds=2)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_points_train_together_only_below_the_measured_crossover(cell):
    """Below GROUP_BELOW a model among others costs less per window than alone, so a sweep's seeds
    share a program; from it on, grouping was measured slower, so each point trains alone."""
    from echo_rnn_cli.config import GROUP_BELOW

    for state, grouped in ((GROUP_BELOW[cell] // 2, True), (GROUP_BELOW[cell], False)):
        points = expand_grid(Config(**SMALL, cell=cell, state_size=state), {}, seeds=4)
        tasks = make_tasks(points, workers=1)
        assert [len(t) for t in tasks] == ([4] if grouped else [1, 1, 1, 1]), (cell, state)
        assert sorted(p.name for t in tasks for p in t) == sorted(p.name for p in points)


def test_points_sharing_shapes_train_together_and_groups_split_for_workers():
    base = Config(**SMALL)
    points = expand_grid(base, {"echo_step": [1, 2, 3, 5], "truncated_backprop_length": [3, 5, 8, 15]})
    tasks = make_tasks(points, workers=2)
    assert len(tasks) == 4 and all(len(t) == 4 for t in tasks)
    for t in tasks:  # one window length per task, all echo steps in it
        assert len({p.config.truncated_backprop_length for p in t}) == 1
        assert sorted(p.config.echo_step for p in t) == [1, 2, 3, 5]
    # One shape, more workers than groups: split so every worker has something.
    seeds_only = expand_grid(base, {"echo_step": [1, 2]}, seeds=4)
    split = make_tasks(seeds_only, workers=3)
    assert len(split) >= 3 and sorted(len(t) for t in split) in ([2, 2, 4], [2, 2, 2, 2])
    assert sorted(p.name for t in split for p in t) == sorted(p.name for p in seeds_only)


# ---------------------------------------------------------------- a 2x2 sweep, end to end


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """The 2x2 sweep with 2 seeds, trained by `echo-rnn sweep` with two worker processes."""
    out = tmp_path_factory.mktemp("sweep") / "grid"
    result = CliRunner().invoke(cli, ["sweep", *small_flags(), *GRID, "--seeds", "2", "--jobs", "2",
                                      "-o", str(out), "--json"])
    return out, result


def test_sweep_writes_one_run_per_point_and_a_manifest(swept):
    out, result = swept
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.glob("*.npz"))
    assert len(names) == 8
    assert "echo_step=1_truncated_backprop_length=5_seed=0.npz" in names
    for path in out.glob("*.npz"):
        run = load_run(path)
        assert run.status == "completed" and run.epochs_completed == SMALL["epochs"]
        assert point_name({"echo_step": run.config.echo_step,
                           "truncated_backprop_length": run.config.truncated_backprop_length,
                           "seed": run.config.seed}) + ".npz" == path.name
        assert run.config.total_series_length == SMALL["total_series_length"]  # the other flags apply
    manifest = read_manifest(out)
    assert manifest["grid"] == {"echo_step": [1, 2], "truncated_backprop_length": [5, 15]}
    assert manifest["seeds"] == [0, 1]
    assert [p["status"] for p in manifest["points"]] == ["completed"] * 8
    # --json: one line per point, the train --json shape plus the point's name.
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 8
    for line in lines:
        assert line["status"] == "completed" and not line["skipped"]
        assert Path(line["output"]).name == line["point"] + ".npz"
        assert load_run(line["output"]).eval_accuracy == pytest.approx(line["eval_accuracy"])
    # Plain progress in a pipe: a line per finished point, no escape codes, a closing line.
    assert result.stderr.count("completed: ") == 8 and "\x1b[" not in result.stderr
    assert "sweep: 8 points" in result.stderr


def test_points_trained_together_equal_a_single_run(swept):
    """Grouping is invisible in the results: a point equals `train` of its config alone."""
    from echo_rnn_cli import train

    out, _ = swept
    swept_run = load_run(out / "echo_step=2_truncated_backprop_length=15_seed=1.npz")
    alone = train(swept_run.config)
    np.testing.assert_allclose(swept_run.loss, alone.loss, rtol=1e-5, atol=1e-6)
    assert swept_run.eval_accuracy == pytest.approx(alone.eval_accuracy, abs=1e-6)


def test_rerun_skips_finished_points(swept, tmp_path):
    out, _ = swept
    copy = tmp_path / "grid"
    shutil.copytree(out, copy)
    before = {p.name: (p.stat().st_mtime_ns, load_run(p).created) for p in copy.glob("*.npz")}
    result = CliRunner().invoke(cli, ["sweep", *small_flags(), *GRID, "--seeds", "2", "-o", str(copy), "--json"])
    assert result.exit_code == 0, result.output
    after = {p.name: (p.stat().st_mtime_ns, load_run(p).created) for p in copy.glob("*.npz")}
    assert after == before
    assert all(json.loads(line)["skipped"] for line in result.stdout.splitlines())
    assert "8 done already" in result.stderr


def test_rerun_with_other_settings_into_the_same_folder_is_refused(swept, capsys):
    out, _ = swept
    code = run_cli(["sweep", *small_flags(epochs=3), *GRID, "--seeds", "2", "-o", out])
    err = capsys.readouterr().err
    assert code == 2 and "other settings (epochs 2 vs 3)" in err and len(err.strip().splitlines()) == 1


def test_live_table_on_a_terminal(tmp_path, monkeypatch):
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich: treat stderr as a terminal
    monkeypatch.setenv("TTY_INTERACTIVE", "1")
    result = CliRunner().invoke(cli, ["sweep", *small_flags(), "--grid", "echo_step=1,2", "--jobs", "1",
                                      "-o", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    err = result.stderr
    assert "\x1b[" in err  # drawn and redrawn in place
    for column in ("point", "state", "epoch", "held-out acc", "final loss", "wall"):
        assert column in err
    assert "echo_step=2 seed=0" in err and "2 done, 0 running, 0 pending, 0 failed" in err


# ---------------------------------------------------------------- summary


def test_summary_csv_has_config_keys_and_results(swept):
    out, _ = swept
    result = CliRunner().invoke(cli, ["summary", str(out), "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 8
    assert list(rows[0]) == [*FIELD_TYPES, *RESULT_KEYS]
    for key in ("eval_accuracy", "final_loss", "wall_seconds", "status"):
        assert key in rows[0]
    assert {r["status"] for r in rows} == {"completed"}
    # Sorted by the settings that vary (echo_step, truncated_backprop_length, seed), numbers as numbers.
    order = [(int(r["echo_step"]), int(r["truncated_backprop_length"]), int(r["seed"])) for r in rows]
    assert order == sorted(order)
    for r in rows:
        run = load_run(r["file"])
        assert float(r["eval_accuracy"]) == pytest.approx(run.eval_accuracy)
        assert float(r["final_loss"]) == pytest.approx(run.final_loss)


def test_readme_names_the_csv_header_as_written(swept, repo_root):
    """The README's column list is the header `summary --format csv` really writes, in its order."""
    out, _ = swept
    header = next(csv.reader(io.StringIO(CliRunner().invoke(cli, ["summary", str(out), "--format", "csv"]).stdout)))
    item = (repo_root / "docs" / "sweeps.md").read_text().split("- `--format csv`:", 1)[1].split("\n- ", 1)[0]
    assert re.findall(r"`(\w+)`", item.split("Columns:", 1)[1].split("Empty cells", 1)[0]) == header


def test_summary_json_is_a_list_of_flat_objects(swept):
    out, _ = swept
    files = sorted(out.glob("*.npz"))[:3]
    result = CliRunner().invoke(cli, ["summary", *map(str, files), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert isinstance(data, list) and len(data) == 3
    assert set(data[0]) == {*FIELD_TYPES, *RESULT_KEYS}
    assert all(0 <= d["eval_accuracy"] <= 1 and d["status"] == "completed" for d in data)


def test_summary_table_shows_the_settings_that_vary(swept):
    out, _ = swept
    result = CliRunner().invoke(cli, ["summary", str(out)])
    assert result.exit_code == 0, result.output
    header = result.stdout.splitlines()[0]
    for column in ("echo_step", "truncated_backprop_length", "seed", "status", "held-out acc", "final loss",
                   "wall"):
        assert column in header
    assert "state_size" not in header  # not varied, not shown
    assert result.stdout.count("completed") == 8
    assert "\x1b[" not in result.stdout


def test_summary_in_a_pipe_is_plain_lines_for_a_shell_loop(swept):
    """Off a terminal (issue 29): a header line and a line per run, no title and no box-drawing
    characters, so `summary sweep | while read ...` and awk see the fields; on a terminal the table."""
    out, _ = swept
    lines = CliRunner().invoke(cli, ["summary", str(out)]).stdout.splitlines()
    assert len(lines) == 1 + 8 and not any(set(line) & set("─│┃━┏┡└╇┌┐┘┼") for line in lines)
    fields = [line.split() for line in lines[1:]]
    assert all(len(f) == len(fields[0]) and f[3] == "completed" and f[-1].endswith(".npz") for f in fields)
    assert [int(f[0]) for f in fields] == sorted(int(f[0]) for f in fields)  # echo_step, as a number
    terminal = CliRunner().invoke(cli, ["summary", str(out)], env={"TTY_COMPATIBLE": "1"}).stdout
    assert "echo-rnn summary: 8 runs" in terminal and "━" in terminal


def test_summary_lists_unreadable_files_and_exits_1(swept, tmp_path):
    out, _ = swept
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(next(out.glob("*.npz")), folder)
    (folder / "broken.npz").write_bytes(b"not a zip")
    result = CliRunner().invoke(cli, ["summary", str(folder), "--format", "csv"])
    assert result.exit_code == 1
    assert len(list(csv.DictReader(io.StringIO(result.stdout)))) == 1
    assert "broken.npz" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_summary_shows_points_without_a_run_file_as_pending(swept, tmp_path):
    out, _ = swept
    folder = tmp_path / "grid"
    shutil.copytree(out, folder)
    (folder / "echo_step=2_truncated_backprop_length=5_seed=1.npz").unlink()
    result = CliRunner().invoke(cli, ["summary", str(folder), "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 8
    pending = [r for r in rows if r["status"] == "pending"]
    assert len(pending) == 1 and pending[0]["eval_accuracy"] == ""
    assert (pending[0]["echo_step"], pending[0]["truncated_backprop_length"], pending[0]["seed"]) == ("2", "5", "1")
    assert pending[0]["epochs"] == str(SMALL["epochs"])  # the sweep's settings, from sweep.json


def test_summary_of_nothing_is_exit_2(tmp_path, capsys):
    assert run_cli(["summary", tmp_path]) == 2
    assert "no run files" in capsys.readouterr().err
    assert run_cli(["summary", tmp_path / "missing"]) == 2


# ---------------------------------------------------------------- heatmap


def test_heatmap_averages_over_seeds(swept):
    out, _ = swept
    rows = collect([out]).rows
    data = heatmap_data(rows, "truncated-backprop-length", "echo_step")
    assert data.xs == [5, 15] and data.ys == [1, 2]
    assert data.total.tolist() == [[2, 2], [2, 2]] and data.counted.tolist() == [[2, 2], [2, 2]]
    for i, echo in enumerate(data.ys):
        for j, window in enumerate(data.xs):
            accs = [load_run(out / f"echo_step={echo}_truncated_backprop_length={window}_seed={s}.npz").eval_accuracy
                    for s in (0, 1)]
            assert data.mean[i, j] == pytest.approx(np.mean(accs))
            assert cell_text(data, i, j) == f"{np.mean(accs):.3f}"


def test_heatmap_figure_draws_cells_with_their_values(swept, tmp_path):
    out, _ = swept
    rows = collect([out]).rows
    fig = heatmap_figure(rows, "truncated_backprop_length", "echo_step")
    data = heatmap_data(rows, "truncated_backprop_length", "echo_step")
    texts = sorted(t.get_text() for t in fig.axes[0].texts)
    assert texts == sorted(f"{v:.3f}" for v in data.mean.ravel())
    path = tmp_path / "heatmap.png"
    fig.savefig(path, dpi=80)
    image = np.asarray(Image.open(path).convert("RGB"), np.float64)
    assert image.std() > 20  # cells, labels and a colour bar: not a blank page


def test_heatmap_refuses_other_varying_settings_and_unknown_keys(swept):
    out, _ = swept
    rows = collect([out]).rows
    with pytest.raises(HeatmapError, match=r"differ in truncated_backprop_length \(5, 15\)"):
        heatmap_data(rows, "echo_step", "seed")
    with pytest.raises(HeatmapError, match="--x 'colour' is not a setting"):
        heatmap_data(rows, "colour", "echo_step")


def test_plot_heatmap_command_writes_the_figure(swept, tmp_path):
    out, _ = swept
    folder = tmp_path / "grid"
    shutil.copytree(out, folder)
    result = CliRunner().invoke(cli, ["plot", "--heatmap", str(folder), "--x", "truncated_backprop_length",
                                      "--y", "echo-step"])
    assert result.exit_code == 0, result.output
    png = folder / "heatmap.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "wrote" in result.stderr
    image = np.asarray(Image.open(png).convert("RGB"), np.float64)
    assert image.std() > 20
    target = tmp_path / "h.svg"
    assert CliRunner().invoke(cli, ["plot", "--heatmap", str(folder), "--x", "truncated_backprop_length",
                                    "--y", "echo_step", "-o", str(target), "-q"]).exit_code == 0
    assert "<svg" in target.read_text()[:500]


@pytest.mark.parametrize("args, fragment", [
    (["--x", "echo_step"], "--heatmap needs --x KEY and --y KEY"),
    (["--x", "echo_step", "--y", "seed"], "differ in truncated_backprop_length"),
    (["--x", "colour", "--y", "seed"], "--x 'colour' is not a setting"),
    (["--x", "echo_step", "--y", "echo_step"], "both 'echo_step'"),
    (["--x", "echo_step", "--y", "seed", "--step", "3"], "--step does not apply to --heatmap"),
])
def test_plot_heatmap_bad_input_is_one_line_exit_2(swept, capsys, args, fragment):
    out, _ = swept
    code = run_cli(["plot", "--heatmap", out, *args])
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1
    assert not (out / "heatmap.png").exists()


def test_summary_and_heatmap_never_import_tensorflow(swept, tmp_path):
    out, _ = swept
    code = (
        "import sys\nfrom echo_rnn_cli.cli import cli\n"
        f"for args in (['summary', {str(out)!r}, '--format', 'csv'], ['sweep', '--help'],\n"
        f"             ['plot', '--heatmap', {str(out)!r}, '--x', 'echo_step', '--y', 'truncated_backprop_length',\n"
        f"              '-o', {str(tmp_path / 'cli.png')!r}]):\n"
        "    try:\n        cli.main(args)\n    except SystemExit as e:\n        assert e.code == 0, e.code\n"
        "from echo_rnn_cli.summary import collect\nfrom echo_rnn_cli.figures.heatmap import heatmap_figure\n"
        f"heatmap_figure(collect([{str(out)!r}]).rows, 'truncated_backprop_length', 'echo_step')"
        f".savefig({str(tmp_path / 'h.png')!r})\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, env=ENV, timeout=120)


def test_summary_and_heatmap_load_only_the_sweep_grid_and_manifest():
    """They need three small helpers: not the executors (Ray, process pools), which load only when a
    sweep runs; the package's documented names still import from ``echo_rnn_cli.sweep``."""
    code = (
        "import sys\nimport echo_rnn_cli.summary, echo_rnn_cli.figures.heatmap\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('echo_rnn_cli.sweep'))\n"
        "assert loaded == ['echo_rnn_cli.sweep', 'echo_rnn_cli.sweep.grid', 'echo_rnn_cli.sweep.manifest'], loaded\n"
        "heavy = {'ray', 'multiprocessing', 'concurrent.futures', 'tensorflow'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
        "from echo_rnn_cli.sweep import expand_grid, run_sweep\n"
        "from echo_rnn_cli.sweep import grid, run\n"
        "assert run_sweep is run.run_sweep and expand_grid is grid.expand_grid\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, env=ENV, timeout=120)


# ---------------------------------------------------------------- failures and bad input


def test_a_failing_point_does_not_stop_the_others(tmp_path):
    """A learning rate of 1e38 diverges at once; its neighbour trains in the same program regardless."""
    out = tmp_path / "lr"
    result = CliRunner().invoke(cli, ["sweep", *small_flags(), "--grid", "learning_rate=0.3,1e38",
                                      "--jobs", "1", "-o", str(out)])
    assert result.exit_code == 1, result.output
    good = load_run(out / "learning_rate=0.3_seed=0.npz")
    bad = load_run(out / "learning_rate=1e+38_seed=0.npz")
    assert good.status == "completed" and good.epochs_completed == SMALL["epochs"]
    assert bad.status == "diverged"
    assert "1 of 2 points failed" in result.stderr
    assert "learning_rate=1e+38_seed=0: diverged" in result.stderr
    statuses = {p["file"]: p["status"] for p in read_manifest(out)["points"]}
    assert statuses == {"learning_rate=0.3_seed=0.npz": "completed", "learning_rate=1e+38_seed=0.npz": "diverged"}
    summary = CliRunner().invoke(cli, ["summary", str(out), "--format", "json"])
    assert [d["status"] for d in json.loads(summary.stdout)] == ["completed", "diverged"]
    data = heatmap_data(collect([out]).rows, "learning_rate", "seed")
    assert data.xs == [0.3, 1e38]
    assert cell_text(data, 0, 0) == f"{good.eval_accuracy:.3f}" and cell_text(data, 0, 1) == "failed"


@pytest.mark.parametrize("args, fragment", [
    (["--grid", "echo_step=1,x"], "--grid echo_step: 'x' is not a whole number"),
    (["--grid", "colour=1"], "unknown key 'colour'"),
    (["--grid", "truncated_backprop_length=5,400"], "truncated_backprop_length=400"),
    (["--grid", "optimizer=adam,lbfgs"], "must be one of adagrad"),
    (["--grid", "echo_step=1", "--echo-step", "2"], "--echo-step and --grid echo_step"),
    (["--ray-address", "auto"], "--ray-address applies to --executor ray"),
    (["--jobs", "0"], "--jobs"),
])
def test_bad_sweep_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, args, fragment):
    out = tmp_path / "never"
    code = run_cli(["sweep", *small_flags(), "-o", out, *args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert fragment in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


# ---------------------------------------------------------------- Ctrl-C and resume


@pytest.mark.slow  # a real sweep process, interrupted, then resumed
def test_interrupted_sweep_resumes_without_redoing_finished_points(tmp_path):
    """SIGINT a real `echo-rnn sweep` once its first point is written: it stops cleanly (exit 130,
    manifest current); the same command again trains only what is missing."""
    out = tmp_path / "sweep"
    # Four window lengths: four programs (each compiled on its own), two workers: when the first
    # point is written the third has only begun.
    args = ["--epochs", "10", "--grid", "truncated_backprop_length=3,5,8,10", "--jobs", "2", "-o", out]
    proc = subprocess.Popen(sweep_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.monotonic() + 240
    while not list(out.glob("*.npz")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Interrupted:" in err
    runs = {p.name: load_run(p) for p in out.glob("*.npz")}
    finished = {n: r for n, r in runs.items() if r.status == "completed"}
    assert 1 <= len(finished) < 4
    manifest = {p["file"]: p["status"] for p in read_manifest(out)["points"]}
    assert all(manifest[n] == "completed" for n in finished)
    assert sum(s != "completed" for s in manifest.values()) == 4 - len(finished)
    stamps = {n: ((out / n).stat().st_mtime_ns, r.created) for n, r in finished.items()}

    events = []
    result = run_sweep(Config(**{**SMALL, "epochs": 10}), {"truncated_backprop_length": [3, 5, 8, 10]},
                       out_dir=out, jobs=1, on_event=events.append)
    assert not result.failed and not result.interrupted
    assert {n: ((out / n).stat().st_mtime_ns, load_run(out / n).created) for n in finished} == stamps
    assert {e.result.name + ".npz" for e in events if e.kind == "finished" and e.result.skipped} == set(finished)
    assert all(load_run(p).status == "completed" for p in out.glob("*.npz")) and len(list(out.glob("*.npz"))) == 4
    assert [p["status"] for p in read_manifest(out)["points"]] == ["completed"] * 4


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc to find the workers")
def test_workers_leave_when_the_sweep_is_killed(tmp_path):
    """SIGKILL leaves a pool's workers orphaned, waiting for work that never comes: they must go."""
    kill_sweep_once_workers_run(["--grid", "truncated_backprop_length=3,5", "--jobs", "2", "-o", tmp_path / "s"],
                                tmp_path)


# ---------------------------------------------------------------- the shell example


@pytest.mark.slow  # a shell loop of echo-rnn processes
def test_shell_example_sweep_runs(repo_root, tmp_path):
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    env = {**ENV, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{ENV.get('PATH', '')}",
           "OUT": str(tmp_path / "runs"), "ECHO_STEPS": "1 2", "WINDOWS": "5", "EPOCHS": "2"}
    proc = subprocess.run([bash, str(repo_root / "scripts" / "sweep_echo.sh"), "--total-series-length", "1500",
                           "--snapshot-every", "25"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in (tmp_path / "runs" / "results.jsonl").read_text().splitlines()]
    assert [(d["config"]["echo_step"], d["config"]["truncated_backprop_length"]) for d in lines] == [(1, 5), (2, 5)]
    for d in lines:
        assert d["status"] == "completed" and Path(d["output"]).exists()
        assert load_run(d["output"]).config.total_series_length == 1500
    table = [line.split() for line in proc.stdout.splitlines()]
    assert table[0][:3] == ["echo_step", "window", "status"]
    assert [row[:3] for row in table[1:3]] == [["1", "5", "completed"], ["2", "5", "completed"]]
    assert float(table[1][3]) == pytest.approx(lines[0]["eval_accuracy"], abs=1e-4)


# ---------------------------------------------------------------- Ray


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # starts a Ray cluster
def test_ray_executor_on_a_local_cluster(tmp_path):
    """`ray start --head` as a child of the test (stopped by SIGTERM, which stops its processes),
    then `echo-rnn sweep --executor ray --ray-address` as a separate driver."""
    pytest.importorskip("ray", reason="Ray is not installed (pip install '.[ray]'); the Ray executor is untested")
    ray_cli = Path(sys.executable).parent / "ray"
    if not ray_cli.exists():
        pytest.skip(f"the ray command is not beside {sys.executable}")
    port = _free_port()
    # Token authentication, as Ray now enables for local clusters, with a token of the test's own.
    env = {**ENV, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": os.urandom(16).hex(), "RAY_USAGE_STATS_ENABLED": "0"}
    head = subprocess.Popen([str(ray_cli), "start", "--head", "--port", str(port), "--num-cpus", "2",
                             "--include-dashboard", "false", "--disable-usage-stats", "--block"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and head.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        assert head.poll() is None, head.stderr.read()
        out = tmp_path / "ray-sweep"
        proc = subprocess.run(sweep_cmd("--grid", "echo_step=1,2", "--executor", "ray", "--jobs", "1",
                                        "--ray-address", f"127.0.0.1:{port}", "-o", out, "--json"),
                              capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        lines = [json.loads(line) for line in proc.stdout.splitlines()]
        assert sorted(d["point"] for d in lines) == ["echo_step=1_seed=0", "echo_step=2_seed=0"]
        for d in lines:  # the driver wrote each trial's run file into --out-dir
            run = load_run(out / (d["point"] + ".npz"))
            assert run.status == "completed" and run.eval_accuracy == pytest.approx(d["eval_accuracy"])
        assert read_manifest(out)["executor"] == "ray"
    finally:
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()


def test_ray_executor_needs_an_address(tmp_path, capsys, monkeypatch):
    pytest.importorskip("ray", reason="Ray is not installed")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    code = run_cli(["sweep", *small_flags(), "--executor", "ray", "-o", tmp_path / "r"])
    err = capsys.readouterr().err
    assert code == 2 and "--ray-address" in err and "RAY_ADDRESS" in err
    code = run_cli(["sweep", *small_flags(), "--executor", "ray", "--ray-address", f"127.0.0.1:{_free_port()}",
                    "-o", tmp_path / "r"])
    err = capsys.readouterr().err
    assert code == 2 and "no Ray cluster answers there" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()
