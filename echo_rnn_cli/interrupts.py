"""Ctrl-C and SIGTERM during training: the first asks for a clean stop, the second stops at once.

The first signal sets a flag that the trainer polls between epochs, so the run so far is saved
with status 'interrupted'. A second signal ends the process on the spot with the same exit code
(130 for SIGINT, 143 for SIGTERM), even in the middle of a compiled epoch; nothing is corrupted,
because run files are only ever renamed into place whole, and a save in progress (``critical``)
is let finish first, so no temporary file is left behind.

Why a watcher thread: Python runs signal handlers in the main thread only, and only between
bytecodes, so while the main thread sits in a compiled epoch (seconds, or minutes for a big one)
a handler would not run until the epoch ends, and a second Ctrl-C would not count. The C-level
handler does write each signal's number to the wakeup fd at once, though; a thread reading that
pipe sees every signal as it arrives (TensorFlow releases the GIL while it computes).

Once a command's outcome is on disk, ``settle`` makes both signals ignored until the process
ends, so its exit code always says what was written (issue 27: a SIGTERM as `train` shut down
killed it after it had saved its run). Outside training, ``raise_on_sigterm`` turns them into
exceptions, and ``files.atomic_write`` publishes nothing once one was received.

Two signals within ``SAME_REQUEST_S`` of each other are one request: ``timeout`` signals the
process and then its whole group, and a hurried double Ctrl-C means "stop", not "lose the run".
While nothing could be saved yet (``nothing_to_lose``: before the first epoch ends, e.g. during a
long compile), the first signal ends the process at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
SAME_REQUEST_S = 0.5
NOTHING_WRITTEN = b"Error: interrupted before the first epoch ended; nothing written\n"


class Terminated(BaseException):
    """SIGTERM outside training (export, plot, summary): raised in the main thread so that every
    ``finally`` runs and no temporary file or folder is left; exit 143. A BaseException, like
    KeyboardInterrupt, so that no ``except Exception`` takes it for a failure to recover from."""


#: The signals that reached ``raise_on_sigterm``'s handlers in this process (SIGTERM, SIGINT).
_received: set[int] = set()
_first_int_at = 0.0


def terminated() -> bool:
    """Whether SIGTERM asked this process to end (see ``raise_on_sigterm``): code that caught
    ``Terminated`` midway (TensorFlow's SavedModel writer turns it into an AttributeError) still
    ends as a termination."""
    return signal.SIGTERM in _received


def interrupted() -> bool:
    """Whether Ctrl-C reached ``raise_on_sigterm``'s handler: Keras turns a KeyboardInterrupt
    raised inside a layer into a TypeError, and TensorFlow may swallow one; the command still ends
    as interrupted (exit 130), and ``files.atomic_write`` publishes nothing after it."""
    return signal.SIGINT in _received


def raise_received() -> None:
    """Raise what a signal received so far asked for (SIGTERM first): for a step that must not
    happen after one, even if the exception it raised was swallowed on its way out."""
    if terminated():
        raise Terminated()
    if interrupted():
        raise KeyboardInterrupt()


#: Depth of ``sigterm_held`` blocks, and the signal that waits for the outermost to end (or None).
_held = 0
_pending: int | None = None
#: Set by ``settle``: the command's outcome is on disk, and no signal changes its exit code now.
_settled = False


def _terminate(signum, frame) -> None:
    global _pending
    _received.add(signal.SIGTERM)
    # The request is made: the same signal sent to the group a moment later (`timeout`) must neither
    # raise again inside the clean-up nor kill the process by default before it has said so.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if _held:
        _pending = signal.SIGTERM
        return
    raise Terminated()


def _interrupt(signum, frame) -> None:
    global _pending, _first_int_at
    now = time.monotonic()
    again = signal.SIGINT in _received
    _received.add(signal.SIGINT)
    if again and now - _first_int_at < SAME_REQUEST_S:
        return  # the same Ctrl-C delivered to the process and its group
    _first_int_at = now
    if _held:
        _pending = _pending or signal.SIGINT
        return
    raise KeyboardInterrupt()


@contextlib.contextmanager
def sigterm_held() -> Iterator[None]:
    """A SIGTERM or Ctrl-C (under ``raise_on_sigterm``) that lands inside is raised when the block
    ends, not midway: for steps that must happen together or not at all, such as creating a
    temporary file and taking its name (a ``Terminated`` raised inside ``mkstemp``, after the file
    exists and before its name is known, left it behind: seen under load, where the signal came as
    the file appeared), or publishing a file and settling the exit code (``settle``)."""
    global _held, _pending
    _held += 1
    try:
        yield
    finally:
        _held -= 1
    if not _held and _pending is not None:
        signum, _pending = _pending, None
        if not _settled:
            raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def settle() -> None:
    """The command's outcome is on disk: from here to the process's last instruction no signal
    changes its exit code (a late SIGTERM killed `train` after it had saved its run, issue 27).
    Both signals are ignored by the kernel, which holds through Python's shutdown too (Python
    resets its own handlers to the default there, and TensorFlow's threads end after that), and
    a signal held by ``sigterm_held`` around the publishing step is dropped: it came too late."""
    global _settled, _pending
    _settled = True
    _pending = None
    if threading.current_thread() is threading.main_thread():
        for s in EXIT_CODES:
            signal.signal(s, signal.SIG_IGN)


def settled() -> bool:
    return _settled


def begin() -> None:
    """A command begins: no signal received, nothing settled (tests run many commands in one process)."""
    global _pending, _settled, _held
    _received.clear()
    _pending, _settled, _held = None, False, 0


@contextlib.contextmanager
def raise_on_sigterm() -> Iterator[None]:
    """While in it, SIGTERM raises ``Terminated`` and Ctrl-C ``KeyboardInterrupt`` (both held by
    ``sigterm_held``; ``stop_on_signals`` replaces them while training)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, _terminate)}
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # ignored in a shell's `&` job: it stays so
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, _interrupt)
    try:
        yield
    finally:
        if not _settled:
            if signal.SIGINT in previous:
                signal.signal(signal.SIGINT, previous[signal.SIGINT])
            if not terminated():  # else SIGTERM stays ignored while the process ends with 143
                signal.signal(signal.SIGTERM, previous[signal.SIGTERM])


class StopRequest:
    """Callable as ``should_stop``; ``signum`` is the first signal received (None if none)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._seen = 0  # signals the watcher has read (the handler may set signum before it does)
        self._first_at = 0.0
        self._critical = threading.RLock()
        self.stderr = 2  # the user's stderr: fd 2 itself is /dev/null while TensorFlow loads
        #: True while there is nothing to save: the first signal then ends the process at once.
        self.nothing_to_lose = False

    def __call__(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.signum, 1) if self.signum is not None else 0

    @contextlib.contextmanager
    def critical(self) -> Iterator[None]:
        """A stretch (writing run files) that a second signal lets finish before it ends the process."""
        with self._critical:
            yield

    def _signal(self, signum: int) -> None:
        """Called from the watcher thread for every signal, in order of arrival."""
        now = time.monotonic()
        self._seen += 1
        if self._seen == 1:
            self._first_at = now
            if self.signum is None:
                self.signum = signum
            if not self.nothing_to_lose:
                return
            with contextlib.suppress(OSError):
                os.write(self.stderr, NOTHING_WRITTEN)
        elif now - self._first_at < SAME_REQUEST_S:
            return  # the same request, delivered twice (to the process and to its group)
        with self._critical:  # wait for a save in progress, then go at once
            if _settled:  # it is saved and its exit code follows what was saved
                return
            os._exit(EXIT_CODES.get(signum, 1))


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request  # signals can only be caught in the main thread; nothing to do elsewhere
        return

    def handler(signum, frame):
        # Runs late (after the compiled call returns); the watcher has usually seen it already.
        if request.signum is None:
            request.signum = signum

    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)  # the C-level handler must never block

    def watch() -> None:
        while True:
            try:
                data = os.read(read_fd, 64)
            except OSError:
                return
            if not data:
                return
            for signum in data:
                if signum in EXIT_CODES:
                    request._signal(signum)

    with contextlib.suppress(OSError):
        request.stderr = os.dup(2)
    previous = {s: signal.signal(s, handler) for s in EXIT_CODES}
    previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    watcher = threading.Thread(target=watch, name="echo-rnn-signals", daemon=True)
    watcher.start()
    try:
        yield request
    finally:
        signal.set_wakeup_fd(previous_fd)
        for s, h in previous.items():
            if not _settled:  # settled: ignored until the process ends
                signal.signal(s, h)
        os.close(write_fd)  # the watcher reads end-of-file and returns
        watcher.join(timeout=5)
        os.close(read_fd)
        if request.stderr != 2:
            os.close(request.stderr)
