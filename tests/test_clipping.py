"""--clip-norm: each model's global gradient norm clipped, as Keras's global_clipnorm and PyTorch's
clip_grad_norm_, with echo-rnn's promises kept (--seeds bit for bit, resume, run files, sweeps)."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from echo_rnn_cli import Config, load_run, train, train_many
from echo_rnn_cli.cli import cli
from echo_rnn_cli.config import program_key, resolve
from echo_rnn_cli.summary import collect, to_csv
from echo_rnn_cli.sweep.grid import expand_grid, parse_grid
from tests.conftest import SMALL
from tests.test_reliability import assert_same_run


def test_a_bound_no_gradient_reaches_changes_nothing_and_a_tight_one_changes_the_run():
    """The factor is exactly 1 within the bound, so clipping at 1e30 is no clipping, bit for bit;
    at 0.01 every step is clipped and the trace moves."""
    c = Config(**SMALL)
    plain, loose, tight = (train(c.replace(clip_norm=v)) for v in (0.0, 1e30, 0.01))
    np.testing.assert_array_equal(loose.loss, plain.loss)
    assert not np.array_equal(tight.loss, plain.loss)
    assert np.isfinite(tight.loss).all()


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_models_clipped_together_are_clipped_as_alone(cell):
    c = Config(**SMALL, cell=cell, clip_norm=0.05)
    together = train_many([c.replace(seed=s) for s in (4, 5, 6)])
    alone = train(c.replace(seed=5))
    assert_same_run(together[1], alone)


def test_a_clipped_run_resumes_bit_for_bit():
    c = Config(**(SMALL | {"epochs": 3}), clip_norm=0.05)
    straight = train(c)
    first = train(c.replace(epochs=1))
    assert_same_run(train(c, resume=first), straight)


def test_the_flag_the_file_the_grid_and_the_summary(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text("clip_norm = 2\n")
    assert resolve(toml).clip_norm == 2.0 and Config().clip_norm == 0.0
    assert program_key(Config(clip_norm=1.0)) != program_key(Config())  # its own compiled program
    points = expand_grid(Config(), parse_grid(["clip_norm=0,1.5"]))
    assert [p.config.clip_norm for p in points] == [0.0, 1.5]
    out = tmp_path / "r.npz"
    flags = ["train", "--total-series-length", "1500", "--epochs", "1", "--clip-norm", "0.5", "-o", str(out)]
    result = CliRunner().invoke(cli, [*flags, "--json", "-q"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["config"]["clip_norm"] == 0.5 == load_run(out).config.clip_norm
    header, row = to_csv(collect([out]).rows).splitlines()[:2]
    assert row.split(",")[header.split(",").index("clip_norm")] == "0.5"


@pytest.mark.parametrize("bad", ["-1", "nan", "x", "1e39"])
def test_a_bad_bound_is_one_line(tmp_path, bad):
    result = CliRunner().invoke(cli, ["train", "--clip-norm", bad, "-o", str(tmp_path / "r.npz")])
    assert result.exit_code == 2, result.output
    assert "--clip-norm" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r.npz").exists()
