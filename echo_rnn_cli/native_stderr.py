"""Keep known false alarms of TensorFlow's C++ side off stderr, and let everything else through.

TensorFlow's C++ code writes its log lines straight to file descriptor 2, past Python. To drop
some of them, fd 2 becomes a pipe read by a small filter process that copies everything to the
real stderr except whole lines matching the given patterns. Python's own ``sys.stderr`` gets a
direct copy of the real stderr, so progress bars still see a terminal and nothing Python prints
waits on the filter.

Why a process and not a thread: it outlives this one, so what the C++ side prints just before a
crash (a failed CHECK, then abort) or an ``os._exit`` still reaches the user. It ignores Ctrl-C
and runs in its own session, and ends when the last writer (this process, and any child that
inherited fd 2) has gone.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Sequence

_FILTER = r"""
import os, re, select, signal, sys
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, signal.SIG_IGN)
noise = [re.compile(p.encode()) for p in sys.argv[1:]]
log_start = re.compile(rb"[IWEF](\d|$)")  # absl's prefix, e.g. "E0000 00:00:..."

def emit(data):
    while data:
        try:
            data = data[os.write(1, data):]
        except InterruptedError:
            continue
        except OSError:
            return

held = b""
while True:
    ready = select.select([0], [], [], 0.2 if held else None)[0]
    if not ready:  # a partial line that did not go on: let it out as it is
        emit(held)
        held = b""
        continue
    try:
        data = os.read(0, 1 << 16)
    except InterruptedError:
        continue
    if not data:
        break
    *lines, tail = (held + data).split(b"\n")
    out = b"".join(line + b"\n" for line in lines if not any(p.search(line) for p in noise))
    # Only a line that may be a C++ log line waits for its end; anything else (a progress bar's
    # carriage-return updates) goes out at once.
    held = tail if log_start.match(tail) else b""
    emit(out + (b"" if held else tail))
if held and not any(p.search(held) for p in noise):
    emit(held)
"""

_installed: tuple[int, subprocess.Popen] | None = None


def install(patterns: Sequence[str]) -> bool:
    """Filter fd 2 from now on, dropping lines that match any of the regular expressions; False
    (and nothing changed) where stderr is not this process's own fd 2 (a notebook, a test runner
    capturing it), already filtered, or the filter cannot start."""
    global _installed
    if _installed is not None or os.environ.get("ECHO_RNN_DEBUG") or sys.stderr is not sys.__stderr__:
        return False
    try:
        if sys.stderr is None or sys.stderr.fileno() != 2:
            return False
        sys.stderr.flush()
        real = os.dup(2)
    except (OSError, ValueError, AttributeError):
        return False
    try:
        read_end, write_end = os.pipe()
    except OSError:
        os.close(real)
        return False
    try:
        proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", _FILTER, *patterns], stdin=read_end,
                                stdout=real, stderr=real, close_fds=True, start_new_session=True)
    except OSError:
        for fd in (real, read_end, write_end):
            os.close(fd)
        return False
    os.close(read_end)
    direct = io.TextIOWrapper(io.FileIO(os.dup(real), "w"), encoding=sys.stderr.encoding,
                              errors=sys.stderr.errors, line_buffering=True, write_through=True)
    os.dup2(write_end, 2)
    os.close(write_end)
    sys.stderr = direct
    _installed = (real, proc)
    atexit.register(uninstall)
    return True


def uninstall(wait: float = 2.0) -> None:
    """Give fd 2 back its real stderr and let the filter finish what it holds (at exit)."""
    global _installed
    if _installed is None:
        return
    real, proc = _installed
    _installed = None
    try:
        sys.stderr.flush()
        sys.__stderr__.flush()
    except (OSError, ValueError, AttributeError):
        pass
    os.dup2(real, 2)  # closes this process's end of the pipe
    os.close(real)
    sys.stderr = sys.__stderr__
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=wait)  # a child still holding the pipe keeps it going; do not wait for that
