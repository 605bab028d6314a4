"""Compiled XLA programs kept on disk, so a new process skips compiling shapes it has seen before.

The cache is only ever an accelerator: whatever is wrong with it (a truncated, garbage or
misplaced entry, an unreadable or unwritable folder, a full disk, a file where the folder should
be) costs compile time and nothing else, without a word, and gives the same numbers bit for bit.

TensorFlow can persist what XLA compiles (``--tf_xla_persistent_cache_directory``), but its cache
fails the compiled call, and so training, when an entry it finds is damaged or does not match, and
when it cannot write a new one. So TensorFlow never sees the shared folder. Each process gets a
private staging folder, on a file system with room (the temp folder first, so a full cache disk
cannot fail a write), holding links to the shared entries that passed every check; what TensorFlow
writes there is checked and copied into the shared folder under a name that carries a digest of its
content, by an atomic rename, once the compiled call has returned.

An entry is linked only when it is a complete ``XlaSerializedCacheEntry`` whose key is the one its
name says (TensorFlow checks that key and fails the call on a mismatch) and whose content has the
digest its name says; anything else in the folder named like an entry is deleted.

The shared folder is per TensorFlow build, user XLA flags and CPU, so a program compiled for one
machine's instruction set is never loaded on another; GPU programs are not kept. Default:
``~/.cache/echo-rnn/xla`` (or ``$XDG_CACHE_HOME``); ``ECHO_RNN_XLA_CACHE=DIR`` puts it elsewhere,
``ECHO_RNN_XLA_CACHE=0`` turns it off. It keeps the MAX_ENTRIES newest programs; deleting the
folder is always safe.

No TensorFlow import here: ``setup`` must run before TensorFlow reads its flags.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import platform
import re
import resource
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENV = "ECHO_RNN_XLA_CACHE"
OFF = ("0", "off", "no", "false", "none")
#: Entries kept per folder (each 0.2-2 MB); past this the oldest are removed when a process starts.
MAX_ENTRIES = 256
#: An entry bigger than this is not one of ours (our programs are a few MB at most).
MAX_ENTRY_BYTES = 512 * 2**20
#: Free space a staging folder's file system needs: TensorFlow fails the call if it cannot write.
STAGE_ROOM = 64 * 2**20
#: Bumped whenever the shared folder's layout changes, so an old layout is never read.
LAYOUT = "v2"
_STAGE_PREFIX = "echo-rnn-xla-"
#: TensorFlow's own file name (prefix__signature__cluster__device) plus our digest of its content.
_SHARED_NAME = re.compile(r"^(?P<tf>[^.]+__\d+__\d+__[A-Za-z0-9_]+)\.(?P<digest>[0-9a-f]{32})\.pb$")
_TF_NAME = re.compile(r"^(?P<prefix>[^.]*)__(?P<sig>\d+)__(?P<cluster>\d+)__(?P<device>[A-Za-z0-9_]+)\.pb$")

#: Lines TensorFlow's C++ side prints at level ERROR whenever it loads a cached program, although
#: nothing is wrong (see ``_tf``, which keeps them off stderr while the cache is on):
#: - its reader tries the text format before the binary one, and logs the failed text parse;
#: - on a CPU with AVX-512, XLA compiles with the tuning flags +prefer-no-gather/+prefer-no-scatter,
#:   which its loader then looks for among the host's instruction sets and, not finding them (they
#:   are not instructions), warns of SIGILL. A missing instruction set still gets through.
NOISE = (
    r"\] Error parsing text-format tensorflow\.XlaSerializedCacheEntry: ",
    r"\] Loading XLA:CPU AOT result\. Target machine feature \+(?:prefer|tuning|fast|slow)-[\w.-]+ is not ",
)

_shared: Path | None = None
_stage: Path | None = None
#: Entries this process compiled and published (0 when everything came from the cache).
published = 0
#: Why the cache is not used, or what went wrong with it (for tests and debugging; never printed).
problem: str | None = None


def root() -> Path | None:
    """The cache's top folder, or None when turned off."""
    value = os.environ.get(ENV)
    if value is not None:
        if value.strip().lower() in OFF or not value.strip():
            return None
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "echo-rnn" / "xla"


#: The /proc/cpuinfo lines that name the CPU and its instruction sets: x86's "model name" and "flags",
#: ARM's "CPU implementer"/"CPU part" (the core) and "Features" (SVE, SME, ... are not on every core).
CPUINFO_KEYS = ("model name", "flags", "CPU implementer", "CPU architecture", "CPU variant", "CPU part",
                "CPU revision", "Features")
CPUINFO = "/proc/cpuinfo"


def _cpu_signature(cpuinfo: str | None = None) -> str | None:
    """What the compiled code depends on: the CPU's model and instruction set extensions, from
    /proc/cpuinfo on Linux and sysctl on macOS (no /proc there); None where neither tells, and then
    nothing is cached: a program compiled for one Mac's instructions must not reach another."""
    try:
        with open(cpuinfo or CPUINFO) as f:
            lines = [ln for ln in f if ln.startswith(CPUINFO_KEYS)]
        if lines:
            return "".join(sorted(set(lines)))
    except OSError:
        pass
    if sys.platform == "darwin":
        try:  # the chip's name and every hw.optional feature flag (FEAT_SME, AVX2, ...)
            out = subprocess.run(["/usr/sbin/sysctl", "machdep.cpu.brand_string", "hw.optional"],
                                 capture_output=True, text=True, timeout=10, check=True).stdout
        except (OSError, subprocess.SubprocessError):
            return None
        return platform.machine() + out if out.strip() else None
    return None


def _tf_build() -> tuple[str, str]:
    """TensorFlow's version, and a digest of its installed files' hashes: two builds of one version
    (a nightly, a source build) do not share programs."""
    from importlib.metadata import PackageNotFoundError, distribution

    for name in ("tensorflow", "tensorflow-cpu", "tf-nightly", "tensorflow-intel"):
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        record = dist.read_text("RECORD") or ""
        return dist.version, hashlib.sha256(record.encode()).hexdigest()
    return "unknown", ""


def _key() -> str | None:
    cpu = _cpu_signature()
    if cpu is None:
        return None
    tf_version, build = _tf_build()
    parts = [LAYOUT, tf_version, build, os.environ.get("XLA_FLAGS", ""), os.environ.get("TF_XLA_FLAGS", ""), cpu]
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]
    return f"tf{tf_version}-{digest}"


# --- checking entries -------------------------------------------------------------------------

def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data) or shift > 63:
            raise ValueError("cut varint")
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """The top-level fields of a protocol buffer message (number, value), or ValueError where its
    wire format is broken: a truncated file breaks it, as each field states its length."""
    out: list[tuple[int, int | bytes]] = []
    i = 0
    while i < len(data):
        tag, i = _varint(data, i)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise ValueError("field 0")
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 2:
            size, i = _varint(data, i)
            if i + size > len(data):
                raise ValueError("cut field")
            value, i = data[i:i + size], i + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if i + size > len(data):
                raise ValueError("cut field")
            value, i = data[i:i + size], i + size
        else:
            raise ValueError(f"wire type {wire}")
        out.append((number, value))
    return out


def entry_problem(tf_name: str, data: bytes) -> str | None:
    """Why ``data`` is not a complete entry TensorFlow would accept under the file name ``tf_name``
    (None when it is): XlaSerializedCacheEntry{key=1, hlo_module=2, executable=3}, whose key
    {signature=1, cluster=2, device=3, prefix} must be the one the name spells."""
    name = _TF_NAME.match(tf_name)
    if name is None:
        return "not an entry's name"
    try:
        fields = dict(_fields(data))
        key = dict(_fields(fields[1])) if isinstance(fields.get(1), bytes) else {}
    except ValueError as e:
        return f"broken ({e})"
    if not isinstance(fields.get(2), bytes) or not fields.get(3) or not isinstance(fields[3], bytes):
        return "incomplete"
    strings = {v.decode("utf-8", "replace") for k, v in key.items() if isinstance(v, bytes) and k > 3}
    expected = (int(name["sig"]), int(name["cluster"]), name["device"].encode())
    if (key.get(1), key.get(2), key.get(3)) != expected or name["prefix"] not in strings | {""}:
        return "its key is another entry's"
    return None


def digest(tf_name: str, data: bytes) -> str:
    """Of the name and the content: an entry copied under another entry's name does not pass."""
    return hashlib.blake2b(tf_name.encode() + b"\0" + data, digest_size=16).hexdigest()


def _read_regular(path: Path) -> bytes | None:
    """The file's bytes, or None for anything but a plain file of sensible size: a FIFO or a device
    named like an entry must neither block nor feed us forever."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_ENTRY_BYTES:
            return None
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read(MAX_ENTRY_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)


def _scan(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as it:
            return list(it)
    except OSError:  # unreadable: as if empty
        return []


def _verified_entries(shared: Path) -> dict[str, Path]:
    """TensorFlow's file name -> the shared entry to link it to, for every entry that passes; a
    damaged one is removed, so the next process that compiles that program puts a good one back."""
    good: dict[str, Path] = {}
    for item in _scan(shared):
        match = _SHARED_NAME.match(item.name)
        if match is None and not _TF_NAME.match(item.name):
            continue
        path = Path(item.path)
        data = _read_regular(path) if match else None  # TensorFlow's own name: not put there by us
        tf_name = match["tf"] + ".pb" if match else item.name
        if data is None or digest(tf_name, data) != match["digest"] or entry_problem(tf_name, data):
            try:
                if not item.is_dir(follow_symlinks=False):
                    path.unlink()
            except OSError:
                pass
            continue
        good[tf_name] = path
    return good


# --- folders --------------------------------------------------------------------------------

def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but not ours
        return True
    return True


def _clear_stale_stages(base: Path) -> None:
    """Remove the staging folders of processes that died without cleaning up (killed, or
    multiprocessing workers, which skip atexit); only our own user's."""
    for item in _scan(base):
        if not item.name.startswith(_STAGE_PREFIX):
            continue
        try:
            pid = int(item.name[len(_STAGE_PREFIX):].split("-")[0])
            mine = item.stat(follow_symlinks=False).st_uid == os.getuid()
        except (ValueError, OSError):
            continue
        if mine and item.is_dir(follow_symlinks=False) and pid != os.getpid() and not _pid_alive(pid):
            shutil.rmtree(item.path, ignore_errors=True)


def _prune(shared: Path) -> None:
    """Keep the MAX_ENTRIES newest entries; drop temporary files that publishers killed mid-copy left."""
    def age(entry: Path) -> float:
        try:
            return entry.stat().st_mtime
        except OSError:  # removed meanwhile by another process
            return 0.0

    entries = sorted(shared.glob("*.pb"), key=age)
    for old in entries[:max(0, len(entries) - MAX_ENTRIES)]:
        old.unlink(missing_ok=True)  # a process that linked it finds it gone and compiles again
    for tmp in shared.glob(".*.tmp"):
        if age(tmp) < time.time() - 3600:
            tmp.unlink(missing_ok=True)


def _file_size_limited() -> bool:
    """``ulimit -f``: TensorFlow's write of an entry would fail (and fail the call)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    return soft != resource.RLIM_INFINITY and soft < 2**30


def _make_stage(shared: Path) -> Path | None:
    """A private folder on a file system with room: the temp folder, /dev/shm, else the cache's."""
    candidates = [Path(tempfile.gettempdir()), Path("/dev/shm"), shared]
    for base in dict.fromkeys(candidates):
        try:
            room = os.statvfs(base)
            if room.f_bavail * room.f_frsize < STAGE_ROOM:
                continue
            _clear_stale_stages(base)
            stage = Path(tempfile.mkdtemp(prefix=f"{_STAGE_PREFIX}{os.getpid()}-", dir=base))
        except OSError:
            continue
        probe = stage / ".probe"
        try:
            probe.write_bytes(b"x")
            probe.unlink()
            return stage
        except OSError:
            shutil.rmtree(stage, ignore_errors=True)
    return None


def setup() -> str | None:
    """Prepare this process's staging folder and return the TF_XLA_FLAGS entry that points
    TensorFlow at it; None when the cache is off, already set up, set by the user, or unusable."""
    global _shared, _stage, problem
    if _stage is not None or "tf_xla_persistent_cache_directory" in os.environ.get("TF_XLA_FLAGS", ""):
        return None
    top = root()
    if top is None:
        return None
    if _file_size_limited():
        problem = "the file size limit (ulimit -f) could fail TensorFlow's writes"
        return None
    key = _key()
    if key is None:
        problem = "the CPU's instruction sets cannot be read (no /proc/cpuinfo or sysctl)"
        return None
    try:
        shared = top / key
        shared.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        problem = f"no cache folder: {e}"
        return None
    _prune_quietly(shared)
    stage = _make_stage(shared)
    if stage is None:
        problem = "no writable staging folder with room"
        return None
    for tf_name, entry in _verified_entries(shared).items():
        try:
            os.symlink(entry, stage / tf_name)
        except OSError:
            continue
    _shared, _stage = shared, stage
    atexit.register(_finish)
    # CPU programs only: the key knows the CPU, not the GPU, and a program built for one GPU
    # model is not for another.
    return f"--tf_xla_persistent_cache_directory={stage} --tf_xla_persistent_cache_device_types=CPU"


def _prune_quietly(shared: Path) -> None:
    with contextlib.suppress(OSError):  # an unreadable or read-only folder: nothing we could prune
        _prune(shared)


# --- publishing ------------------------------------------------------------------------------

def _copy_in(tf_name: str, data: bytes) -> Path:
    """Write the entry into the shared folder under its digest name: a temporary file, then an
    atomic rename, so readers see no file or all of it. OSError on a full or read-only disk."""
    assert _shared is not None
    target = _shared / f"{tf_name[:-3]}.{digest(tf_name, data)}.pb"
    if target.exists():
        return target
    fd, tmp = tempfile.mkstemp(prefix=f".{tf_name[:24]}.", suffix=".tmp", dir=_shared)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def publish() -> None:
    """Copy what TensorFlow wrote into the staging folder to the shared one. Call it after a
    compiled call returns; it never raises. A file that is not a complete entry yet (another
    thread's compile may be writing it) waits for the next call."""
    global published, problem
    if _stage is None or _shared is None:
        return
    for item in _scan(_stage):
        if item.is_symlink() or not _TF_NAME.match(item.name):
            continue
        path = Path(item.path)
        data = _read_regular(path)
        if data is None or entry_problem(item.name, data):
            continue
        try:
            target = _copy_in(item.name, data)
            published += 1
        except OSError as e:  # a full or read-only cache disk: TensorFlow has the program anyway
            problem = problem or f"cannot publish: {e}"
            target = None
        try:
            path.unlink()
            if target is not None:
                os.symlink(target, path)
        except OSError:
            pass


def distrust() -> bool:
    """After a compiled call failed: drop every entry this process was offered (from the staging
    folder and the shared one: which of them failed is not known, and each costs only a compile)
    and publish nothing more, so what is compiled next is compiled here. True when the cache was
    on, so the call is worth making again; False when the failure cannot be the cache's."""
    global _shared, problem
    if _stage is None or _shared is None:
        return False
    for item in _scan(_stage):
        with contextlib.suppress(OSError):
            if item.is_symlink():
                target = Path(os.readlink(item.path))
                os.unlink(item.path)
                if target.parent == _shared:
                    target.unlink(missing_ok=True)  # the next process must not load it either
    problem = "a cached program failed to run; the cache is off for this process"
    _shared = None
    return True


def _finish() -> None:
    publish()
    if _stage is not None:
        shutil.rmtree(_stage, ignore_errors=True)


def staging_folder() -> Path | None:
    return _stage


def shared_folder() -> Path | None:
    return _shared
