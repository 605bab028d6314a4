"""``train --tensorboard`` and ``sweep --tensorboard`` with real training, read back with TensorBoard's
own reader; ``--stop-at-accuracy`` through the command line."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from echo_rnn_cli import Config, load_run, train_many
from echo_rnn_cli.cli import cli
from tests.conftest import event_series as _series
from tests.conftest import read_events as _read
from tests.conftest import small_flags, timeout

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

TAGS = {"train/window_loss", "train/window_accuracy", "train/epoch_loss", "train/epoch_accuracy",
        "eval/loss", "eval/accuracy", "config", "status"}




def _check_run_folder(logdir, run):
    """The events of one run folder hold exactly what its run file says."""
    ea = _read(logdir)
    assert set(ea.Tags()["tensors"]) >= TAGS
    windows = _series(ea, "train/window_loss")
    assert [s for s, _ in windows] == list(range(run.loss.size))  # short run: every window
    np.testing.assert_allclose([v for _, v in windows], run.loss, rtol=1e-6)
    np.testing.assert_allclose([v for _, v in _series(ea, "train/window_accuracy")], run.accuracy, rtol=1e-6)
    epochs = _series(ea, "train/epoch_accuracy")
    assert [s for s, _ in epochs] == [1, 2]
    np.testing.assert_allclose([v for _, v in epochs], [run.accuracy[run.epoch == e].mean() for e in (0, 1)],
                               rtol=1e-5)
    assert _series(ea, "eval/accuracy") == [(2, pytest.approx(run.eval_accuracy))]
    assert _series(ea, "eval/loss") == [(2, pytest.approx(run.eval_loss))]
    assert f"| seed | {run.config.seed} |" in _series(ea, "config")[-1][1].decode()
    assert _series(ea, "status")[-1][1].decode() == "completed"
    return ea


def test_train_tensorboard_one_folder_per_seed(tmp_path):
    tb, out = tmp_path / "tb", tmp_path / "r.npz"
    result = CliRunner().invoke(cli, ["train", *small_flags(), "--seeds", "2", "-o", str(out), "--quiet",
                                      "--tensorboard", str(tb)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tb.iterdir()) == ["r-seed0", "r-seed1"]
    losses = []
    for seed in (0, 1):
        run = load_run(tmp_path / f"r-seed{seed}.npz")
        _check_run_folder(tb / f"r-seed{seed}", run)
        losses.append(run.loss)
    assert not np.array_equal(*losses)  # each folder has its own model's windows, not the first model's


def test_events_are_on_disk_after_every_epoch(tmp_path, small_config):
    """A run in progress shows in TensorBoard: each epoch's means are flushed when it ends."""
    from echo_rnn_cli.tensorboard import GroupLogger

    board = GroupLogger([tmp_path], [small_config])
    seen = []

    def on_epoch(report):
        board.on_epoch(report)
        ea = _read(tmp_path)
        seen.append([s for s, _ in _series(ea, "train/epoch_loss")])
        assert "config" in ea.Tags()["tensors"]

    try:
        train_many([small_config], on_epoch=on_epoch)
    finally:
        board.close()
    assert seen == [[1], [1, 2]]


def test_tensorboard_path_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "tb").write_text("not a folder")
    (tmp_path / "tb2").mkdir()
    (tmp_path / "tb2" / "r").write_text("in the way")
    for tb in ("tb", "tb2"):
        result = CliRunner().invoke(cli, ["train", *small_flags(), "-o", str(tmp_path / "r.npz"),
                                          "--tensorboard", str(tmp_path / tb)])
        assert result.exit_code == 2
        assert "exists and is not a folder" in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "r.npz").exists()
    result = CliRunner().invoke(cli, ["sweep", *small_flags(), "--grid", "echo_step=1,2", "-o",
                                      str(tmp_path / "sw"), "--tensorboard", str(tmp_path / "tb")])
    assert result.exit_code == 2 and "exists and is not a folder" in result.stderr
    assert not (tmp_path / "sw").exists()


@pytest.mark.slow  # a sweep's worker processes
def test_sweep_tensorboard_points_and_hparams_from_a_process_pool(tmp_path):
    from tensorboard.plugins.hparams import metadata

    tb, out = tmp_path / "tb", tmp_path / "sw"
    # Two state sizes are two programs: two tasks, each in its own worker process.
    result = CliRunner().invoke(cli, ["sweep", *small_flags(), "--grid", "state_size=3,4", "--jobs", "2",
                                      "-o", str(out), "--tensorboard", str(tb), "--quiet"])
    assert result.exit_code == 0, result.output
    names = ["state_size=3_seed=0", "state_size=4_seed=0"]
    assert sorted(p.name for p in tb.iterdir() if p.is_dir()) == names

    top = _read(tb).PluginTagToContent(metadata.PLUGIN_NAME)
    experiment = metadata.parse_experiment_plugin_data(top[metadata.EXPERIMENT_TAG])
    domains = {h.name: [v.number_value for v in h.domain_discrete.values] for h in experiment.hparam_infos}
    assert domains == {"state_size": [3, 4], "seed": [0]}
    assert {"eval/accuracy", "eval/loss"} <= {m.name.tag for m in experiment.metric_infos}

    for name, state_size in zip(names, (3, 4), strict=True):
        run = load_run(out / f"{name}.npz")
        ea = _check_run_folder(tb / name, run)
        content = ea.PluginTagToContent(metadata.PLUGIN_NAME)[metadata.SESSION_START_INFO_TAG]
        start = metadata.parse_session_start_info_plugin_data(content)
        assert {k: v.number_value for k, v in start.hparams.items()} == {"state_size": state_size, "seed": 0}
        assert start.group_name == name


@pytest.mark.slow  # the default configuration, up to 10 full epochs
def test_stop_at_accuracy_ends_a_default_run_early(tmp_path):
    """It stops after the first epoch whose mean training accuracy reaches the target. Which epoch
    that is depends on the seed's trajectory (and would on the CPU, were it not exact), so the target
    is taken from a run without it: the best epoch mean but the last's, reached first at some
    earlier epoch, which the run with the target must stop after."""
    flags = ["train", "--epochs", "6", "--total-series-length", "10000", "--json", "--quiet"]
    full = tmp_path / "full.npz"
    assert CliRunner().invoke(cli, [*flags, "-o", str(full)]).exit_code == 0
    means = [load_run(full).accuracy[load_run(full).epoch == e].mean() for e in range(6)]
    target = float(max(means[:-1]))
    stop_after = means.index(max(means[:-1])) + 1
    out = tmp_path / "r.npz"
    result = CliRunner().invoke(cli, [*flags, "--stop-at-accuracy", repr(target), "-o", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    run = load_run(out)
    assert data["status"] == run.status == "completed"
    assert run.epochs_completed == stop_after < 6 == run.config.epochs
    np.testing.assert_array_equal(run.loss, load_run(full).loss[: run.loss.size])  # the same run, cut short
    last = run.accuracy[run.epoch == run.epochs_completed - 1].mean()
    assert run.message == f"stopped at epoch {stop_after} of 6: training accuracy {last:.3f} >= {target:g}"
    assert np.isfinite(run.eval_accuracy) and run.config.stop_at_accuracy == target


def test_stop_at_accuracy_off_and_out_of_range(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text("stop_at_accuracy = 0\n")
    from echo_rnn_cli.config import resolve

    assert resolve(toml).stop_at_accuracy == 0.0 == Config().stop_at_accuracy
    for bad in ("1.5", "-0.5", "x"):
        result = CliRunner().invoke(cli, ["train", "--stop-at-accuracy", bad, "-o", str(tmp_path / "r.npz")])
        assert result.exit_code == 2, result.output
        assert "--stop-at-accuracy" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_stop_at_accuracy_never_reached_trains_every_epoch(small_config):
    run = train_many([small_config.replace(stop_at_accuracy=1.0)])[0]  # a 1500-symbol series learns nothing
    assert (run.status, run.epochs_completed, run.message) == ("completed", 2, "")


@pytest.mark.parametrize("command", ["sweep", "train"])
def test_tensorboard_quiet_prints_nothing_of_tensorflows_log(tmp_path, command):
    """Issue 21, case 6: the HParams API imported TensorFlow before echo-rnn had set its log level
    and oneDNN's options, so `sweep --tensorboard tb -q` printed TensorFlow's own start-up log
    ('oneDNN custom operations are on', ...). Run as a user would, without the suite's quiet env."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")}
    extra = ["--grid", "echo_step=2,3", "--jobs", "2", "-o", "sw"] if command == "sweep" else ["-o", "r.npz"]
    proc = subprocess.run([sys.executable, "-m", "echo_rnn_cli", command, *small_flags(), *extra,
                           "--tensorboard", "tb", "-q"], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=timeout(300))
    assert proc.returncode == 0, proc.stderr[-3000:]
    # -q keeps warnings (a short run at chance level says so); nothing else may be there.
    assert all(line.startswith("Warning: ") for line in proc.stderr.splitlines()), proc.stderr[-3000:]
    assert "oneDNN" not in proc.stderr
    assert len([p for p in (tmp_path / "tb").iterdir() if p.is_dir()]) == (2 if command == "sweep" else 1)
