"""The command line through click's CliRunner (in-process) and once as a real subprocess."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from echo_rnn_cli import load_run
from echo_rnn_cli.cli import cli
from tests.conftest import small_flags


def invoke(args, **kw):
    return CliRunner().invoke(cli, args, catch_exceptions=False, **kw)


def run_cli(args, **kw):
    """Through the real entry point (one-line errors, exit codes), in-process."""
    with pytest.raises(SystemExit) as info:
        cli.main(args, prog_name="echo-rnn")
    return info.value.code


def test_help_lists_every_config_flag():
    out = invoke(["train", "--help"]).output
    for flag in ("--echo-step", "--truncated-backprop-length", "--state-size", "--batch-size", "--epochs",
                 "--total-series-length", "--num-classes", "--learning-rate", "--optimizer", "--seed",
                 "--device", "--snapshot-every", "--config", "--output", "--json", "--quiet", "--init"):
        assert flag in out


def test_train_writes_run_and_json(tmp_path):
    out = tmp_path / "r.npz"
    result = CliRunner().invoke(cli, ["train", *small_flags(), "-o", str(out), "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["output"] == str(out) and data["status"] == "completed"
    for key in ("eval_accuracy", "eval_loss", "final_loss", "wall_seconds", "config"):
        assert key in data
    assert data["config"]["total_series_length"] == 1500
    run = load_run(out)
    assert run.final_loss == pytest.approx(data["final_loss"])


def test_quiet_prints_nothing(tmp_path):
    # A run that learns the echo: one that ends at chance would rightly say so, even with -q.
    result = CliRunner().invoke(cli, ["train", *small_flags(learning_rate=1.0), "-o", str(tmp_path / "r.npz"), "-q"])
    assert result.exit_code == 0
    assert result.output == ""


def test_plain_progress_in_a_pipe(tmp_path):
    result = CliRunner().invoke(cli, ["train", *small_flags(), "-o", str(tmp_path / "r.npz")])
    assert result.exit_code == 0
    assert "epoch 2/2" in result.stderr and "completed" in result.stderr
    assert "\x1b[" not in result.output  # no escape codes off a terminal
    assert result.stdout == ""


def test_flags_override_config_file(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("echo_step = 2\nstate_size = 3\n")
    result = CliRunner().invoke(cli, ["train", *small_flags(), "--config", str(cfg), "--state-size", "5",
                                      "-o", str(tmp_path / "r.npz"), "--json", "-q"])
    assert result.exit_code == 0, result.output
    config = json.loads(result.stdout)["config"]
    assert config["echo_step"] == 2 and config["state_size"] == 5


def test_seeds_write_one_file_each(tmp_path):
    result = CliRunner().invoke(cli, ["train", *small_flags(), "--seeds", "2", "-o", str(tmp_path / "r.npz"),
                                      "--json", "-q"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["config"]["seed"] for d in lines] == [0, 1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r-seed0.npz", "r-seed1.npz"]


@pytest.mark.parametrize("args, fragment", [
    (["--epochs", "0"], "--epochs"),
    (["--echo-step", "x"], "--echo-step"),
    (["--optimizer", "lbfgs"], "--optimizer"),
    (["--learning-rate", "-1"], "--learning-rate"),
    (["--learning-rate", "nan"], "--learning-rate"),
    (["--truncated-backprop-length", "400"], "longer than a row"),
    (["--config", "missing.toml"], "missing.toml"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, args, fragment):
    out = tmp_path / "r.npz"
    code = run_cli(["train", *small_flags(), "-o", str(out), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert fragment in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_gpu_without_one_is_a_clear_error(tmp_path, capsys):
    from echo_rnn_cli._tf import tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    code = run_cli(["train", *small_flags(), "--device", "gpu", "-o", str(tmp_path / "r.npz")])
    err = capsys.readouterr().err
    assert code == 2 and "no GPU" in err
    assert not (tmp_path / "r.npz").exists()


def test_help_does_not_import_tensorflow():
    code = ("import sys; from echo_rnn_cli.cli import cli\n"
            "try:\n    cli.main(['--help'])\nexcept SystemExit: pass\n"
            "try:\n    cli.main(['train', '--help'])\nexcept SystemExit: pass\n"
            "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


@pytest.mark.slow  # a fresh process: TensorFlow's import and a compile
def test_real_subprocess(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, "-m", "echo_rnn_cli", "train", *small_flags(), "--json"],
                          cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["output"] == "run.npz" and (tmp_path / "run.npz").exists()
    assert "\x1b[" not in proc.stderr and "Traceback" not in proc.stderr
    run = load_run(tmp_path / "run.npz")
    assert np.isfinite(run.loss).all()


@pytest.mark.parametrize(("args", "meant"), [(["train", "--echo-stpe", "3"], "--echo-step"),
                                             (["train", "--batch-sise", "3"], "--batch-size"),
                                             (["plot", "run.npz", "--memroy"], "--memory"),
                                             (["sweep", "--gird", "seed=1"], "--grid")])
def test_a_misspelt_flag_suggests_the_nearest_first(args, meant, capsys):
    """Click lists its close matches alphabetically, so --echo-stpe was answered with --batch-size
    first (issue 29); the nearest flag is the one suggested, in one line, exit 2."""
    assert run_cli(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"Did you mean {meant}?" in err and "one of" not in err
