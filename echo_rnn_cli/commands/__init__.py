"""The ``echo-rnn`` command: a thin click shell over the Python API.

Each command lives in its own module (``train``, ``plot``, ``sweep``, ``summary``, ``echo``,
``export``) and parses flags, resolves the config, calls the library and prints. What they share
(exit codes, one-line errors, the group, option types and the settings' flags) is in ``common``,
beneath them all. TensorFlow is imported only when a command actually trains or exports, so
``--help``, ``plot`` and ``echo`` start fast.

A new command is a module here with one click command, added to the group below.
"""

from __future__ import annotations

import click

from .._version import __version__
from .common import EchoGroup
from .echo import echo
from .export import export
from .plot import plot
from .summary import summary
from .sweep import sweep
from .train import train


@click.group(cls=EchoGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="echo-rnn")
def cli() -> None:
    """Train, watch and sweep the Echo-RNN of the tutorial "How to Build a Recurrent Neural
    Network in TensorFlow"."""


for _command in (train, plot, sweep, summary, echo, export):
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="echo-rnn")


__all__ = ["cli", "main"]
