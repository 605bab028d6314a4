"""Compiled XLA programs kept on disk, so a new process skips compiling shapes it has seen before.

TensorFlow can persist what XLA compiles (``--tf_xla_persistent_cache_directory``), but its cache is
fragile when shared: files are written in place, so a reader in a parallel process (a sweep) can
meet half a file, and TensorFlow then fails the call instead of compiling again; an unwritable
folder fails it too. So TensorFlow never sees the shared folder. Each process gets a private
staging folder inside it, holding links to the finished entries; what TensorFlow writes there is
published into the shared folder by an atomic rename once the compiled call has returned.

The shared folder is per TensorFlow version, XLA flags and CPU, so a program compiled for one
machine's instruction set is never loaded on another; GPU programs are not kept. Default: ``~/.cache/echo-rnn/xla`` (or
``$XDG_CACHE_HOME``); ``ECHO_RNN_XLA_CACHE=DIR`` puts it elsewhere, ``ECHO_RNN_XLA_CACHE=0``
turns it off. It keeps the MAX_ENTRIES newest programs; deleting the folder is always safe.

No TensorFlow import here: ``setup`` must run before TensorFlow reads its flags.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import platform
import shutil
import tempfile
from pathlib import Path

ENV = "ECHO_RNN_XLA_CACHE"
OFF = ("0", "off", "no", "false", "none")
#: Entries kept per folder (each 0.2-2 MB); past this the oldest are removed when a process starts.
MAX_ENTRIES = 256
_STAGE_PREFIX = "stage-"

_shared: Path | None = None
_stage: Path | None = None
#: Entries this process compiled and published (0 when everything came from the cache).
published = 0


def root() -> Path | None:
    """The cache's top folder, or None when turned off."""
    value = os.environ.get(ENV)
    if value is not None:
        if value.strip().lower() in OFF or not value.strip():
            return None
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "echo-rnn" / "xla"


def _cpu_signature() -> str:
    """What the compiled code depends on: the CPU's model and instruction set extensions."""
    try:
        with open("/proc/cpuinfo") as f:
            lines = [ln for ln in f if ln.startswith(("model name", "flags"))]
        return "".join(sorted(set(lines)))
    except OSError:
        return platform.machine() + platform.processor()


def _key() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        tf_version = version("tensorflow")
    except PackageNotFoundError:
        tf_version = "unknown"
    parts = [tf_version, os.environ.get("XLA_FLAGS", ""), _cpu_signature()]
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]
    return f"tf{tf_version}-{digest}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but not ours
        return True
    return True


def _clear_stale_stages(shared: Path) -> None:
    """Remove the staging folders of processes that died without cleaning up (killed, or
    multiprocessing workers, which skip atexit)."""
    for d in shared.glob(_STAGE_PREFIX + "*"):
        try:
            pid = int(d.name[len(_STAGE_PREFIX):].split("-")[0])
        except ValueError:
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            shutil.rmtree(d, ignore_errors=True)


def _prune(shared: Path) -> None:
    def age(entry: Path) -> float:
        try:
            return entry.stat().st_mtime
        except OSError:  # removed meanwhile by another process
            return 0.0

    entries = sorted(shared.glob("*.pb"), key=age)
    for old in entries[:max(0, len(entries) - MAX_ENTRIES)]:
        old.unlink(missing_ok=True)  # a process that linked it finds it gone and compiles again


def setup() -> str | None:
    """Prepare this process's staging folder and return the TF_XLA_FLAGS entry that points
    TensorFlow at it; None when the cache is off, already set up, set by the user, or unusable."""
    global _shared, _stage
    if _stage is not None or "tf_xla_persistent_cache_directory" in os.environ.get("TF_XLA_FLAGS", ""):
        return None
    top = root()
    if top is None:
        return None
    try:
        shared = top / _key()
        shared.mkdir(parents=True, exist_ok=True)
        _clear_stale_stages(shared)
        _prune(shared)
        stage = Path(tempfile.mkdtemp(prefix=f"{_STAGE_PREFIX}{os.getpid()}-", dir=shared))
        for entry in shared.glob("*.pb"):
            os.symlink(entry, stage / entry.name)
    except OSError:
        return None  # a read-only or full disk: compile every time, as without a cache
    _shared, _stage = shared, stage
    atexit.register(_finish)
    # CPU programs only: the key knows the CPU, not the GPU, and a program built for one GPU
    # model is not for another.
    return f"--tf_xla_persistent_cache_directory={stage} --tf_xla_persistent_cache_device_types=CPU"


def publish() -> None:
    """Move what TensorFlow wrote into the staging folder to the shared one. Call it after a
    compiled call returns (the entry is complete then); it never raises."""
    global published
    if _stage is None or _shared is None:
        return
    try:
        entries = [p for p in _stage.glob("*.pb") if not p.is_symlink()]
    except OSError:
        return
    for entry in entries:
        target = _shared / entry.name
        try:
            if not target.exists():
                # Same file system: a rename is atomic, so readers see no file or all of it.
                os.replace(entry, target)
            else:
                entry.unlink()
            os.symlink(target, entry)
            published += 1
        except OSError:
            continue


def _finish() -> None:
    publish()
    if _stage is not None:
        shutil.rmtree(_stage, ignore_errors=True)


def staging_folder() -> Path | None:
    return _stage


def shared_folder() -> Path | None:
    return _shared
