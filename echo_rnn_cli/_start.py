"""Ctrl-C while the command is starting: the process ends at once, one line, exit 130 (SIGTERM:
143, as ``timeout`` or a batch scheduler may send it at any moment).

Importing the commands (click, NumPy) takes a good part of a second, and a KeyboardInterrupt
raised inside an import would escape every handler of the commands as a traceback. Nothing has
been done yet that could be left half done, so ending on the spot is safe. Only ``_signal`` (the
C module, built in) and ``os`` (imported by Python's own start) are used here, so the handler is
in place within microseconds of the first line of ``echo_rnn_cli.cli`` or ``__main__``; what
comes before that is Python's own start-up, which no program can guard.
"""

import _signal
import os


def _interrupted(signum, frame):
    os.write(2, b"Error: interrupted\n")
    os._exit(130)


def _terminated(signum, frame):
    os.write(2, b"Error: terminated (SIGTERM)\n")
    os._exit(143)


def take_ctrl_c() -> bool:
    """Make Ctrl-C end the process at once; False (nothing changed) off the main thread, where
    handlers cannot be set, or where Ctrl-C is ignored (a shell's background job)."""
    try:
        if _signal.getsignal(_signal.SIGTERM) == _signal.SIG_DFL:  # SIGTERM too: exit 143, one line, even
            _signal.signal(_signal.SIGTERM, _terminated)  # in a shell's background job (Ctrl-C ignored)
        if _signal.getsignal(_signal.SIGINT) == _signal.SIG_IGN:
            return False
        _signal.signal(_signal.SIGINT, _interrupted)
    except ValueError:
        return False
    return True
