"""The one table of settings (``config.Config``'s declarations) and what is derived from it: the
README's table, the flags of ``train`` and ``sweep``, grid values, the per-model and resumable sets."""

import re

import click
import pytest
from click.testing import CliRunner

from echo_rnn_cli.cli import cli
from echo_rnn_cli.config import (
    GRID_KEYS,
    PER_MODEL_KEYS,
    RESUMABLE_CHANGES,
    SETTINGS,
    Config,
    ConfigError,
    key_order,
    parse_setting,
    program_key,
    resolve,
)
from echo_rnn_cli.settings import setting, table


def readme_settings(repo_root) -> list[tuple[str, str, str]]:
    """(flag, key, default) of every row of the docs/training.md's settings table, in its order."""
    text = (repo_root / "docs" / "training.md").read_text()
    section = text.split("### Settings", 1)[1].split("\n#", 1)[0]
    table_text = section.split("| flag | key | default | meaning |", 1)[1].split("\n\n", 1)[0]
    rows = []
    for line in table_text.strip().splitlines()[1:]:  # after the | --- | line
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows.append((cells[0].strip("`"), cells[1].strip("`"), cells[2]))
    return rows


def test_readme_lists_exactly_the_settings_with_their_defaults(repo_root):
    rows = readme_settings(repo_root)
    assert [key for _, key, _ in rows] == list(SETTINGS), "docs/training.md's settings table is out of step with Config"
    for flag, key, default in rows:
        assert flag == SETTINGS[key].flag
        assert default == str(SETTINGS[key].default), f"docs/training.md says {key} defaults to {default}"


def test_auto_math_turns_fast_where_the_benchmark_measured_fast_faster(repo_root):
    """``FAST_MATH_FROM`` (what --math auto compiles fast) is, per cell, the smallest state in the
    recorded crossover table (benchmarks/crossover.json, `scaling.py --math exact,fast`) from which
    fast beat exact at every size measured; --math's help names the same size."""
    import json

    from echo_rnn_cli.config import FAST_MATH_FROM

    rows = json.loads((repo_root / "benchmarks" / "crossover.json").read_text())["rows"]
    us = {(r["cell"], r["state"], r["math"]): r["per_window_us"] for r in rows
          if r["framework"] == "echo-rnn" and r["models"] == 1 and r["status"] == "ok"}
    states = sorted({state for _, state, _ in us})
    for cell in FAST_MATH_FROM:
        pays = min(s for s in states if all(us[cell, t, "fast"] < us[cell, t, "exact"] for t in states if t >= s))
        assert FAST_MATH_FROM[cell] == pays, (cell, pays)
    said = SETTINGS["math"].help
    assert f"fast from {FAST_MATH_FROM['rnn']} units for the rnn" in said
    assert f"from {FAST_MATH_FROM['lstm']} for lstm and gru" in said and FAST_MATH_FROM["lstm"] == FAST_MATH_FROM["gru"]

def test_the_table_is_the_dataclass():
    assert list(SETTINGS) == list(Config().to_dict())
    assert {k: s.default for k, s in SETTINGS.items()} == Config().to_dict()


def test_derived_sets_are_todays_rules():
    assert {"seed", "learning_rate", "echo_step", "init"} == PER_MODEL_KEYS
    assert {"epochs", "device", "stop_at_accuracy"} == RESUMABLE_CHANGES
    assert set(GRID_KEYS) == set(SETTINGS)
    assert program_key(Config(seed=3, echo_step=1, learning_rate=0.1, init="glorot")) == program_key(Config())
    assert program_key(Config(state_size=5)) != program_key(Config())


@pytest.mark.parametrize("command", ["train", "sweep"])
def test_every_setting_is_a_flag_with_its_default(command):
    out = " ".join(CliRunner().invoke(cli, [command, "--help"], terminal_width=200).output.split())
    for s in SETTINGS.values():
        assert re.search(rf"{s.flag} \S+ {re.escape(s.help)} \[{re.escape(str(s.default))}\]\.", out), s.flag


def test_a_declared_setting_becomes_a_checked_flag():
    """Adding a setting is one declaration: its flag, type, range and help follow."""
    from dataclasses import dataclass

    from echo_rnn_cli.commands.common import setting_option

    @dataclass(frozen=True)
    class Toy:
        stride: int = setting(1, "Steps between windows", min=1, max=8, grid=False)

    (s,) = table(Toy).values()
    assert (s.name, s.kind, s.default, s.min, s.max, s.grid) == ("stride", "int", 1, 1, 8, False)

    @click.command()
    @setting_option(s)
    def show(stride):
        click.echo(repr(stride))

    assert CliRunner().invoke(show, ["--stride", "3"]).output == "3\n"
    assert CliRunner().invoke(show, []).output == "None\n"
    bad = CliRunner().invoke(show, ["--stride", "9"])
    assert bad.exit_code == 2 and "allowed: 1 to 8" in bad.output
    assert "Steps between windows [1]." in CliRunner().invoke(show, ["--help"]).output
    with pytest.raises(ConfigError, match="'stride' must be at most 8, got 9"):
        s.check(9, "'stride'")
    with pytest.raises(ConfigError, match="'stride' must be at least 1, got 0"):
        s.check(0, "'stride'")


@pytest.mark.parametrize("key, text, value", [
    ("echo_step", " 3 ", 3),
    ("learning_rate", "1e-5", 1e-5),
    ("optimizer", "Adam", "adam"),
])
def test_parse_setting(key, text, value):
    assert parse_setting(key, text, "--grid " + key) == value


@pytest.mark.parametrize("key, text, message", [
    ("echo_step", "2.5", "--grid echo_step: '2.5' is not a whole number"),
    ("learning_rate", "fast", "--grid learning_rate: 'fast' is not a number"),
    ("learning_rate", "inf", "--grid learning_rate: 'inf' is not a finite number"),
    ("init", " ", "--grid init: empty value"),
])
def test_parse_setting_refuses(key, text, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_setting(key, text, "--grid " + key)


def test_key_order_puts_the_seed_last():
    assert key_order(["seed", "state_size", "echo_step"]) == ["echo_step", "state_size", "seed"]


@pytest.mark.parametrize("key, value, message", [
    ("learning_rate", "0.3", "must be a positive finite number, got '0.3' (a string: write the number without "
                             "quotes)"),
    ("init", 3, "must be one of auto, tutorial, glorot, keras, got 3"),
    ("dropout", "0.5", "must be a number from 0 up to (not including) 1, got '0.5' (a string"),
    ("seed", 1.0, "must be a whole number, got 1.0"),
])
def test_types_are_checked_by_the_table(key, value, message):
    with pytest.raises(ConfigError, match=re.escape(f"{SETTINGS[key].flag} {message}")):
        resolve(None, {key: value})
