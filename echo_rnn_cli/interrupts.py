"""Ctrl-C and SIGTERM during training: the first asks for a clean stop, the second stops at once.

The first signal only sets a flag that the trainer polls between epochs, so the run so far is saved
with status 'interrupted'. It also puts the signal's default action back, so a second signal kills
the process on the spot, even inside a compiled epoch; nothing is corrupted because run files are
only ever renamed into place whole.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class StopRequest:
    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.signum, 1) if self.signum is not None else 0


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request  # signals can only be caught in the main thread; nothing to do elsewhere
        return

    def handler(signum, frame):  # noqa: ARG001
        request.signum = signum
        signal.signal(signum, signal.SIG_DFL)

    previous = {s: signal.signal(s, handler) for s in EXIT_CODES}
    try:
        yield request
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
