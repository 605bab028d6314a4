"""Guards around the files a command reads and writes: checked before any work, one line each.

- ``check_output``: before training or plotting, refuse an output that would lose something (an
  existing file not to be replaced, a FIFO or device that would be replaced by a file, one of the
  command's own inputs) or that could not be written at all (a name too long for the file system,
  a missing or read-only folder).
- ``open_regular``: open a file to read it, refusing at once anything but a regular file, so a
  FIFO never blocks and ``/dev/zero`` is never read.
- ``save_beside``: when the final save fails after the work is done, keep the result under a new
  name beside the target and say where.

No TensorFlow or NumPy here: the commands call these before importing either.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from .files import probe_write

#: What ``train`` offers when its output exists (``plot`` replaces its figures and offers nothing).
TRAIN_WAYS_OUT = "use --force to replace it, another -o to keep both, or --resume to continue it"

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


class GuardError(ValueError):
    """A file the command must not or cannot use; the message is one line, and the exit code 2."""

    exit_code = 2


def kind(mode: int) -> str:
    """'a folder', 'a FIFO (named pipe)', ...; 'a regular file' for one."""
    return next((name for test, name in _KINDS if test(mode)), "a regular file" if stat.S_ISREG(mode) else
                "not a regular file")


def _name_limits(folder: Path) -> tuple[int, int]:
    """NAME_MAX and PATH_MAX of the file system the folder (or its nearest existing parent) is on."""
    probe = next((p for p in (folder, *folder.parents) if os.path.isdir(p)), Path("."))  # no raise if too long
    try:
        return os.pathconf(probe, "PC_NAME_MAX"), os.pathconf(probe, "PC_PATH_MAX")
    except (OSError, ValueError):
        return 255, 4096


def _check_name(path: Path, what: str, folder: bool = False) -> None:
    """Every part of the name within the file system's limits: a part over NAME_MAX (255 bytes on
    most) fails every call on it with ENAMETOOLONG, the last part or a folder's."""
    if not folder and (not path.name or str(path).endswith(os.sep)):
        raise GuardError(f"{what} {str(path)!r} names no file; give a file name such as 'run.npz'")
    name_max, path_max = _name_limits(path.parent)
    for part in path.parts:
        size = len(os.fsencode(part))
        if size > name_max:
            which = "name" if part == path.name else f"folder name {part[:40]!r}..."
            raise GuardError(f"{what} {which} is {size} bytes long, more than the {name_max} its file system "
                             f"allows: {part[:40]}...")
    if len(os.fsencode(os.path.abspath(path))) >= path_max:
        raise GuardError(f"{what} path is longer than the {path_max} bytes the system allows")


def same_file(path: str | os.PathLike, other: str | os.PathLike) -> bool:
    """Whether two names reach one file: through symlinks, hard links, ``..`` and relative names."""
    with contextlib.suppress(OSError):
        if os.path.samefile(path, other):  # through symlinks and hard links
            return True
    return os.path.realpath(path) == os.path.realpath(other)


def _make_folder(folder: Path, path: Path, what: str) -> None:
    """Create a missing folder (and its parents), as a user naming runs/x.npz expects; one line if not."""
    blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise GuardError(f"cannot write the {what} {str(path)!r}: {str(blocker)!r} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GuardError(f"cannot write the {what} {str(path)!r}: cannot create its folder "
                         f"({e.strerror or e})") from None


def _check_folder(path: Path, what: str, make: bool = False) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.exists() and make:
        _make_folder(folder, path, what)
    if not folder.exists():
        blocker = next((p for p in folder.parents if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            raise GuardError(f"cannot write the {what} {str(path)!r}: {str(blocker)!r} is a file, not a folder")
        raise GuardError(f"cannot write the {what} {str(path)!r}: its folder {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise GuardError(f"cannot write the {what} {str(path)!r}: {str(folder)!r} is not a folder")
    try:
        probe_write(folder, path.name)
    except OSError as e:
        raise GuardError(f"cannot write the {what} {str(path)!r}: {e.strerror or e}") from None


def _existing(path: Path, what: str) -> os.stat_result | None:
    """What a write would replace (a symlink followed), or None where nothing is."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):  # the folder check says which
        return None
    except OSError as e:
        raise GuardError(f"cannot use the {what} {str(path)!r}: {e.strerror or e}") from None


def check_output(path: str | os.PathLike, *, inputs: Iterable[str | os.PathLike] = (), replace: bool = False,
                 what: str = "run file", ways_out: str | None = TRAIN_WAYS_OUT, folder: bool = False,
                 make_parents: bool = False) -> Path:
    """The one check of every output path, before any work (train, export, plot, sweep, a
    --tensorboard folder): a name within the file system's limits, nothing of the wrong kind in the
    way (a FIFO, a device, a folder for a file, a file for a folder, through a symlink too), never
    one of the command's ``inputs``, an existing one only if ``replace``, and a folder to write in
    (created first with ``make_parents``), proven writable by writing. Returns it as a Path.

    ``folder``: the output is a folder (a sweep's, a SavedModel, TensorBoard's); an existing one
    is then probed for writing itself. ``ways_out``: what the refusal of an existing one suggests.
    The check cannot see a writer that starts later: the publishing step refuses that one
    (``files.publish``)."""
    path = Path(path)
    _check_name(path, what, folder)
    info = _existing(path, what)
    for source in inputs:  # first: "is the input" says more than what kind of file it is
        if same_file(path, Path(source)):
            raise GuardError(f"{what} {str(path)!r} is the input {str(source)!r}; give another -o")
    if info is not None and (folder and not stat.S_ISDIR(info.st_mode)
                             or not folder and not stat.S_ISREG(info.st_mode)):
        link = " (through a symlink)" if path.is_symlink() else ""
        wanted = "a folder" if folder else "a regular file"
        raise GuardError(f"{what} {str(path)!r} exists and is not {wanted}: it is {kind(info.st_mode)}{link}; "
                         "give another name")
    if info is not None and not replace:
        tail = f"; {ways_out}" if ways_out else ""
        raise GuardError(f"{what} {str(path)!r} already exists{tail}")
    if info is None and not replace and os.path.islink(path):
        # A link to what is not there yet (an unmounted disk) is still an entry the user made.
        tail = f"; {ways_out}" if ways_out else ""
        raise GuardError(f"{what} {str(path)!r} is a symlink to {os.readlink(path)!r}, which does not exist; "
                         f"it is not replaced{tail}")
    _check_folder(path, what, make_parents)
    if folder and info is not None:
        try:
            probe_write(path)
        except OSError as e:
            raise GuardError(f"cannot write in the {what} {str(path)!r}: {e.strerror or e}") from None
    return path


def open_regular(path: str | os.PathLike, *, max_bytes: int | None = None, what: str = "file") -> BinaryIO:
    """Open for reading in binary, refusing anything but a regular file at once: the open does not
    wait for a FIFO's writer, and the check is on the opened file (no race with a swap)."""
    where = repr(str(path))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise GuardError(f"{what} {where} does not exist") from None
    except PermissionError:
        raise GuardError(f"{what} {where} cannot be read: permission denied") from None
    except OSError as e:  # a socket cannot be opened at all (ENXIO): say what it is
        with contextlib.suppress(OSError):
            mode = os.stat(path).st_mode
            if not stat.S_ISREG(mode):
                raise GuardError(f"{what} {where} is {kind(mode)}, not a regular file") from None
        raise GuardError(f"{what} {where} cannot be opened: {e.strerror or e}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise GuardError(f"{what} {where} is {kind(info.st_mode)}, not a regular file")
        if max_bytes is not None and info.st_size > max_bytes:
            raise GuardError(f"{what} {where} is {info.st_size:,} bytes, more than the {max_bytes:,} it can be")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _reserve(folder: Path, stem: str, suffix: str) -> Path:
    """A new, empty file of a name nobody has (created exclusively, so two savers never collide)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1, 1000):
        candidate = folder / f"{stem}.unsaved-{stamp}{'' if n == 1 else f'-{n}'}{suffix}"
        try:
            os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return candidate
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free name", str(folder / stem))


def save_beside(write: Callable[[Path], object], target: str | os.PathLike,
                folders: Iterable[str | os.PathLike] | None = None) -> Path:
    """After ``write(target)`` failed: write the result under ``STEM.unsaved-TIME[-N]SUFFIX`` beside
    the target, else in the current folder, else the temp folder; return where it went. Raises the
    last OSError when it could be written nowhere."""
    target = Path(target)
    if folders is None:
        folders = (target.parent if str(target.parent) else Path("."), Path.cwd(), Path(tempfile.gettempdir()))
    error: OSError | None = None
    for folder in dict.fromkeys(Path(f) for f in folders):
        path = None
        try:
            path = _reserve(folder, target.stem, target.suffix)
            write(path)
            return path
        except OSError as e:
            error = e
            if path is not None:
                with contextlib.suppress(OSError):
                    path.unlink()
    raise error if error is not None else OSError(errno.ENOENT, "no folder to save in")
