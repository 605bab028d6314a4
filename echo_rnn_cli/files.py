"""Writing files so that no reader ever sees half of one."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from .interrupts import raise_received, settle, sigterm_held


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def short_name(name: str, limit: int = 96) -> str:
    """At most ``limit`` bytes of a file name, for a temporary's prefix: a name near the file
    system's limit, with a prefix and a random tail added, would be too long itself."""
    return os.fsencode(name)[:limit].decode(errors="ignore") if len(os.fsencode(name)) > limit else name


class NameTaken(FileExistsError):
    """The final name was taken while the work was done (another writer, another run): nothing was
    replaced, and the finished work is still in hand (``guards.save_beside`` keeps it)."""


#: Errors of ``os.link`` on a file system without hard links (FAT, some FUSE and network mounts).
_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}


def publish(tmp: Path, path: Path, *, replace: bool) -> None:
    """Give the finished ``tmp`` (a file or a folder) its final name in one step. ``replace``: what
    is there is replaced atomically (--force); else the step fails with ``NameTaken`` if anything
    has the name, however it got there meanwhile: the check and the publishing are one system call
    (``link`` for a file, ``mkdir`` for a folder), so of two writers racing for a name one wins and
    the other is told, never both 'succeed' with one run silently lost (issue 27)."""
    if replace:
        os.replace(tmp, path)
        return
    try:
        if tmp.is_dir():
            os.mkdir(path)  # the name, reserved; the finished folder then takes the empty one's place
            try:
                os.replace(tmp, path)
            except BaseException:
                os.rmdir(path)
                raise
            return
        try:
            os.link(tmp, path)
        except OSError as e:
            if e.errno not in _NO_LINKS:
                raise
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # reserved, then replaced
            os.replace(tmp, path)
        else:
            os.unlink(tmp)
    except FileExistsError:
        raise NameTaken(errno.EEXIST, "it appeared while this command worked (another writer?) and is kept",
                        str(path)) from None


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None], *, replace: bool = True,
                 final: bool = False) -> Path:
    """``write(tmp)`` fills a temporary file beside ``path``; it is then flushed to disk, given the
    permissions a plain ``open`` would give, and published (``publish``: over what is there only if
    ``replace``). On any failure the temporary file is removed and an existing file at ``path`` is
    left as it was. A Ctrl-C or SIGTERM received meanwhile (``raise_on_sigterm``) publishes nothing,
    even if a library swallowed its exception. ``final``: this file is the command's outcome, and
    the exit code is settled with its publishing (``interrupts.settle``)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    tmp = None
    try:
        with sigterm_held():  # the file and its name together, or a SIGTERM would leave it nameless
            # Same suffix as the target: writers that pick a format by extension (ffmpeg) still can.
            fd, name = tempfile.mkstemp(prefix=f".{short_name(path.name)}.", suffix=path.suffix[:16], dir=folder)
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
        with sigterm_held():  # published and settled together, or a signal in between would belie the file
            raise_received()
            publish(tmp, path, replace=replace)
            if final:
                settle()
    except NameTaken:
        tmp.unlink(missing_ok=True)
        raise
    except OSError as e:
        tmp.unlink(missing_ok=True)
        # Name the target, not our temporary file, which is gone and means nothing to the user.
        raise type(e)(e.errno, e.strerror or str(e), str(path)) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, replace: bool = True) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data), replace=replace)


def probe_write(folder: str | os.PathLike, name: str = "") -> None:
    """Whether a file can be written in ``folder``, by writing one (``os.access`` is wrong for root,
    read-only mounts and ACLs) and removing it; OSError if not. The probe is made and removed with
    SIGTERM held, so a signal then never leaves it behind."""
    with sigterm_held():
        fd, probe = tempfile.mkstemp(prefix=f".{short_name(name, 32)}." if name else ".probe.", suffix=".probe",
                                     dir=folder)
        try:
            os.close(fd)
        finally:
            os.unlink(probe)
