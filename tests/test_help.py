"""Help that helps (issue 12, item 7): every option of every command says what it does, defaults are
shown in one style ('[X].' at the end of the help line), the command list is never cut off with
'...', and every command's help ends with examples."""

import os
import re
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from echo_rnn_cli.cli import cli

COMMANDS = sorted(cli.commands)


def options(command: click.Command) -> list[click.Option]:
    return [p for p in command.params if isinstance(p, click.Option) and not p.hidden]


def words(text: str) -> str:
    """Whitespace collapsed, and a word the wrapper broke at its hyphen joined again."""
    return re.sub(r"-\s+", "-", " ".join(text.split()))


def test_there_are_commands_to_check():
    assert {"train", "plot", "sweep", "summary"} <= set(COMMANDS)


@pytest.mark.parametrize("name", ["", *COMMANDS])
def test_every_option_has_a_help_line(name):
    command = cli.commands[name] if name else cli
    for option in options(command):
        assert option.help and option.help.strip(), f"{name or 'echo-rnn'} {option.opts[0]} has no help"


@pytest.mark.parametrize("name", COMMANDS)
def test_defaults_are_shown_in_one_style(name):
    """'[X].' closes the help of every option with a default; click's '[default: X]' never appears."""
    command = cli.commands[name]
    for option in options(command):
        flag = option.opts[0]
        assert not option.show_default, f"{name} {flag}: use '[X].' in the help, not show_default"
        default = option.to_info_dict()["default"]  # None when unset, whatever click's sentinel
        if option.is_flag or default is None:
            continue
        assert option.help.endswith(f"[{default}]."), f"{name} {flag}: {option.help!r}"
    for option in options(command):
        if option.help.rstrip().endswith("]"):  # a bracket at the end is a default: it closes the sentence
            pytest.fail(f"{name} {option.opts[0]}: end the help with '[X].'")
    text = CliRunner().invoke(cli, [name, "--help"], terminal_width=100).output
    assert "[default:" not in text and "[required]" not in text


@pytest.mark.parametrize("width", [60, 80, 120])
def test_the_command_list_is_never_cut_off(width):
    out = CliRunner().invoke(cli, ["--help"], terminal_width=width).output
    commands = out.split("Commands:", 1)[1]
    assert "..." not in commands  # the usage line's '[ARGS]...' is click's notation, not a cut
    for name in COMMANDS:
        first = cli.commands[name].get_short_help_str(limit=1_000)
        assert words(first) in words(commands), name
        assert first.endswith("."), f"{name}: the first sentence is what the list shows; end it"


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_help_ends_with_examples(name):
    help_text = cli.commands[name].help.strip()
    last = [line.strip() for line in help_text.split("\n\n")[-1].splitlines() if line.strip() != "\b"]
    assert last and all(line.startswith(f"echo-rnn {name}") or line.startswith("echo-rnn ") for line in last), last
    assert any(line.startswith(f"echo-rnn {name}") for line in last)
    out = CliRunner().invoke(cli, [name, "--help"], terminal_width=120).output
    assert re.search(rf"\n    echo-rnn {name}\b", out.split("Options:")[0])


def test_version_and_completion_use_the_program_name():
    """`echo-rnn --version`, and click's completion under _ECHO_RNN_COMPLETE as the README shows it."""
    code = "from echo_rnn_cli.commands import main; main()"
    version = subprocess.run([sys.executable, "-c", code, "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("echo-rnn, version ")
    env = {"_ECHO_RNN_COMPLETE": "bash_source"}
    source = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env})
    assert source.returncode == 0 and "complete -o nosort -F _echo_rnn_completion echo-rnn" in source.stdout
    env = {"_ECHO_RNN_COMPLETE": "bash_complete", "COMP_WORDS": "echo-rnn train --ep", "COMP_CWORD": "2"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env})
    assert done.returncode == 0 and "plain,--epochs" in done.stdout.split()
