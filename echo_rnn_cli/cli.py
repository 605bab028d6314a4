"""The stable entry point of the ``echo-rnn`` command (``echo_rnn_cli.cli:main``); the group and its
commands live in ``echo_rnn_cli.commands``."""

from .commands import cli, main

__all__ = ["cli", "main"]

if __name__ == "__main__":  # pragma: no cover
    main()
