"""--math auto (issue 19): exact or fast chosen from the cell and the state size only, recorded as
``math_used`` in the run file, --json and summaries; resumed in the mode a run trained in."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from echo_rnn_cli import Config, load_run, train
from echo_rnn_cli.cli import cli
from echo_rnn_cli.config import FAST_MATH_FROM, program_key
from echo_rnn_cli.runs import RunFileError, save_run
from echo_rnn_cli.summary import collect


def test_auto_resolves_from_the_cell_and_the_state_size():
    assert Config().math == "auto" and Config().math_used == "exact"  # the tutorial's network stays exact
    for cell, size in FAST_MATH_FROM.items():
        assert Config(cell=cell, state_size=size).math_used == "fast"
        if size > 1:
            assert Config(cell=cell, state_size=size - 1).math_used == "exact"
        # never from the number of layers or anything per model
        assert Config(cell=cell, state_size=size, num_layers=3, seed=7, learning_rate=0.1).math_used == "fast"
    assert Config(state_size=64, math="exact").math_used == "exact"
    assert Config(math="fast").math_used == "fast"


def test_auto_shares_a_program_with_the_mode_it_resolves_to():
    assert program_key(Config()) == program_key(Config(math="exact"))
    assert program_key(Config(state_size=64)) == program_key(Config(state_size=64, math="fast"))
    assert program_key(Config()) != program_key(Config(math="fast"))


def test_the_mode_used_is_recorded_everywhere(tmp_path):
    out = tmp_path / "r.npz"
    result = CliRunner().invoke(cli, ["train", "--state-size", "32", "--epochs", "1", "--total-series-length", "600",
                                      "-o", str(out), "--json", "-q"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["math_used"] == "fast" and summary["config"]["math"] == "auto"
    run = load_run(out)
    assert run.math_used == "fast" and run.config.math == "auto"
    row = collect([out]).rows[0].flat()
    assert (row["math"], row["math_used"], row["init_used"]) == ("auto", "fast", "keras")  # what each run did
    # Files from before the record: no 'auto' then, so exact unless they said fast.
    old = dict(np.load(out))
    del old["math_used"]
    np.savez(tmp_path / "old.npz", **old)
    assert load_run(tmp_path / "old.npz").math_used == "exact"
    old["math_used"] = np.str_("approximate")
    np.savez(tmp_path / "bad.npz", **old)
    with pytest.raises(RunFileError, match="math_used 'approximate' does not fit its config"):
        load_run(tmp_path / "bad.npz")


def test_a_resumed_run_keeps_the_mode_it_trained_in(tmp_path):
    """Had 'auto' chosen otherwise when the run began (an older version, another crossover), the
    run goes on as it began, so that it stays the run trained straight through."""
    c = Config(state_size=32, epochs=1, total_series_length=600)
    first = train(c)
    assert first.math_used == "fast"
    as_fast = train(c.replace(epochs=2), resume=first)
    first.math_used = "exact"  # as if trained when 32 units were exact
    save_run(first, tmp_path / "r.npz")
    resumed = train(c.replace(epochs=2), resume=load_run(tmp_path / "r.npz"))
    assert resumed.math_used == "exact" and as_fast.math_used == "fast"
    # the second epoch really ran in the other program: the same start, other last bits
    second = slice(c.windows_per_epoch, None)
    np.testing.assert_array_equal(resumed.loss[:c.windows_per_epoch], as_fast.loss[:c.windows_per_epoch])
    assert not np.array_equal(resumed.loss[second], as_fast.loss[second])
    np.testing.assert_allclose(resumed.loss[second], as_fast.loss[second], rtol=1e-3)
