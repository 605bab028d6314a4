"""Every `echo-rnn` command shown in README.md and docs/ is one the CLI takes (issue 22): its command
exists and every option it passes is one of that command's, with a value where it needs one. The
commands run for real in the test modules of each command; here each shown command's --help runs."""

import re
import shlex

import click
import pytest
from click.testing import CliRunner

from echo_rnn_cli.cli import cli
from tests.test_readme import PAGES

PREFIXES = ("echo-rnn ", ".venv/bin/echo-rnn ", "python -m echo_rnn_cli ")


def shown_commands() -> list[tuple[str, str]]:
    """(page, command) for every echo-rnn command line of the pages' ```sh blocks, continuation
    lines joined, comments, redirections and pipes cut off."""
    out = []
    for page, text in PAGES.items():
        for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.split("  #", 1)[0].strip()
                line = re.split(r" (?:[|>]|2>|&&|;) ", line, maxsplit=1)[0]
                for prefix in PREFIXES:
                    if line.startswith(prefix):
                        out.append((page, line[len(prefix):]))
    return out


COMMANDS = shown_commands()


def test_the_pages_show_many_commands():
    assert len(COMMANDS) >= 30
    assert {page for page, _ in COMMANDS} >= {"README.md", "docs/training.md", "docs/plots.md", "docs/sweeps.md"}


def _options(command: click.Command) -> dict[str, click.Option]:
    return {name: p for p in command.params if isinstance(p, click.Option) for name in p.opts + p.secondary_opts}


@pytest.mark.parametrize(("page", "line"), COMMANDS, ids=[f"{p}:{c[:40]}" for p, c in COMMANDS])
def test_every_shown_command_parses(page, line):
    words = [w for w in shlex.split(line) if w != "..."]
    group_options = _options(cli)
    while words and words[0] in group_options:  # --version, --help on the group
        words.pop(0)
    if not words:
        return
    command = cli.commands.get(words[0])
    assert command is not None, f"{page}: no command {words[0]!r} in {line!r}"
    options = _options(command) | {"--help": None, "-h": None}
    rest = iter(words[1:])
    for word in rest:
        if not word.startswith("-") or word == "-":
            continue
        name, has_value, _ = word.partition("=")
        assert name in options, f"{page}: {words[0]} has no option {name} ({line!r})"
        option = options[name]
        if option is not None and not option.is_flag and not option.count and not has_value:
            assert next(rest, None) is not None, f"{page}: {name} needs a value ({line!r})"


@pytest.mark.parametrize("name", sorted({shlex.split(c)[0] for _, c in COMMANDS if not c.startswith("-")}))
def test_each_shown_command_answers_its_help(name):
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert f"Usage: echo-rnn {name}" in result.output or "Usage:" in result.output
