"""The stable entry point of the ``echo-rnn`` command (``echo_rnn_cli.cli:main``, and
``python -m echo_rnn_cli``); the group and its commands live in ``echo_rnn_cli.commands``.

Ctrl-C must never show a traceback, however early it comes. Importing the commands (click, NumPy)
takes a good part of a second, and a KeyboardInterrupt raised in an import would escape every
handler of the commands. So ``main`` first makes Ctrl-C end the process at once, with one line and
exit 130 (see ``_start``), then imports the commands. This module and the package's ``__init__``
import nothing slow, so that happens at once when the interpreter has started.
"""

from ._start import take_ctrl_c  # first of all: see ``_start``


def main() -> None:
    """Run the command. Once it has ended its exit code stands: a late Ctrl-C or SIGTERM (while
    Python and TensorFlow shut down) neither changes it nor prints a traceback nor kills the
    process by default (Python resets its handlers to the default while it shuts down; an
    ignored signal stays ignored)."""
    took = take_ctrl_c()  # False off the main thread: signals are then not ours to handle
    import signal
    import sys
    import threading

    from .commands import cli as group

    try:
        try:
            if took:  # from here the commands handle Ctrl-C (KeyboardInterrupt, stop_on_signals)
                signal.signal(signal.SIGINT, signal.default_int_handler)
            group(prog_name="echo-rnn")
        finally:
            if took:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
    except KeyboardInterrupt:  # one that came between the handlers above and the command's own
        print("Error: interrupted", file=sys.stderr, flush=True)
        sys.exit(130)


def __getattr__(name: str):
    if name == "cli":  # the click group, for callers that import it from here (tests, docs)
        from .commands import cli

        return cli
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["main"]  # and ``cli``, on first use

if __name__ == "__main__":  # pragma: no cover
    main()
