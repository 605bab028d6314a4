"""Writing files so that no reader ever sees half of one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from .interrupts import sigterm_held


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """``write(tmp)`` fills a temporary file beside ``path``; it is then flushed to disk, given the
    permissions a plain ``open`` would give, and renamed over ``path``. On any failure the temporary
    file is removed and an existing file at ``path`` is left as it was."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    tmp = None
    try:
        with sigterm_held():  # the file and its name together, or a SIGTERM would leave it nameless
            # Same suffix as the target: writers that pick a format by extension (ffmpeg) still can.
            fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=folder)
            os.close(fd)
            tmp = Path(name)
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would hide the file from other users
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        # Name the target, not our temporary file, which is gone and means nothing to the user.
        raise type(e)(e.errno, e.strerror or str(e), str(path)) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def probe_write(folder: str | os.PathLike, name: str = "") -> None:
    """Whether a file can be written in ``folder``, by writing one (``os.access`` is wrong for root,
    read-only mounts and ACLs) and removing it; OSError if not. The probe is made and removed with
    SIGTERM held, so a signal then never leaves it behind."""
    with sigterm_held():
        fd, probe = tempfile.mkstemp(prefix=f".{name[:32]}." if name else ".probe.", suffix=".probe", dir=folder)
        try:
            os.close(fd)
        finally:
            os.unlink(probe)
