"""The on-disk cache of compiled programs: shared between processes, never in the way.

Whatever is wrong with the cache, a run through the CLI must succeed with the very numbers of a
run without it (issue 10, items 14 and 15): each damage below is made for real (files truncated or
overwritten, folders without permissions, a full file system) and the CLI runs in a subprocess.
"""

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from echo_rnn_cli import xla_cache
from tests.conftest import timeout

SCRIPT = """
import json
from echo_rnn_cli import Config, train, xla_cache
run = train(Config(total_series_length=1500, epochs=1, snapshot_every=25))
print(json.dumps({"published": xla_cache.published, "stage": str(xla_cache.staging_folder()),
                  "shared": str(xla_cache.shared_folder()), "loss": run.loss.tolist(),
                  "eval": run.eval_loss}))
"""
REPO = Path(__file__).resolve().parents[1]
# Learning rate 1: this short run learns the echo, so the only warning it may print is the cache's
# (one at chance level would add its own).
TRAIN = ["--total-series-length", "1500", "--epochs", "2", "--learning-rate", "1"]


def run_small(cache, tmpdir=None) -> dict:
    env = dict(os.environ, ECHO_RNN_XLA_CACHE=str(cache), TF_CPP_MIN_LOG_LEVEL="3")
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ECHO_RNN_XLA_CACHE", str(tmp_path / "c"))
    assert xla_cache.root() == tmp_path / "c"
    for off in ("0", "off", "", "false"):
        monkeypatch.setenv("ECHO_RNN_XLA_CACHE", off)
        assert xla_cache.root() is None
    monkeypatch.delenv("ECHO_RNN_XLA_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert xla_cache.root() == tmp_path / "xdg" / "echo-rnn" / "xla"


@pytest.mark.slow  # two processes, the first compiling afresh
def test_second_process_loads_what_the_first_compiled(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    first = run_small(tmp_path, tmp)
    shared = tmp_path / first["shared"]
    assert first["published"] >= 2  # the epoch and the evaluation
    entries = sorted(p.name for p in shared.glob("*.pb"))
    assert len(entries) == first["published"]
    assert not os.path.exists(first["stage"])  # the staging folder goes with its process

    # A staging folder left by a killed process is cleared by the next one.
    stale = tmp / "echo-rnn-xla-999999999-x"
    stale.mkdir()
    second = run_small(tmp_path, tmp)
    assert second["published"] == 0  # nothing compiled: everything came from the cache
    assert sorted(p.name for p in shared.glob("*.pb")) == entries
    assert not stale.exists()
    assert (second["loss"], second["eval"]) == (first["loss"], first["eval"])


@pytest.mark.slow  # processes compiling without a usable cache
def test_unusable_cache_folder_only_costs_compile_time(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run_small(blocker / "cache")
    assert result["published"] == 0 and result["stage"] == "None"


def test_only_the_newest_entries_are_kept(monkeypatch, tmp_path):
    monkeypatch.setattr(xla_cache, "MAX_ENTRIES", 2)
    for i in range(4):
        entry = tmp_path / f"e{i}.pb"
        entry.write_bytes(b"x")
        os.utime(entry, (1000 + i, 1000 + i))
    xla_cache._prune(tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.pb")) == ["e2.pb", "e3.pb"]


def test_child_processes_do_not_inherit_the_staging_folder():
    from echo_rnn_cli._tf import tf  # noqa: F401 - sets the cache up, if it is on

    assert "tf_xla_persistent_cache_directory" not in os.environ.get("TF_XLA_FLAGS", "")


# --- entries are checked before TensorFlow may read them ------------------------------------

def _varint(n: int) -> bytes:
    """A protocol buffer varint."""
    out = b""
    while True:
        byte, n = n & 0x7F, n >> 7
        out += bytes([byte | (0x80 if n else 0)])
        if not n:
            return out


def _entry(sig=12, cluster=34, device=b"XLA_CPU_JIT", prefix=b"xla_compile_cache", executable=b"\x01" * 9):
    """A minimal XlaSerializedCacheEntry in protobuf wire format."""
    def field(number, payload):
        return _message([(number, payload)])

    key = _varint(1 << 3) + _varint(sig) + _varint(2 << 3) + _varint(cluster) + field(3, device) + field(4, prefix)
    return field(1, key) + field(2, b"\x0a\x01m") + field(3, executable)


def test_an_entry_must_be_whole_and_carry_its_own_key():
    name = "xla_compile_cache__12__34__XLA_CPU_JIT.pb"
    good = _entry()
    assert xla_cache.entry_problem(name, good) is None
    for cut in (1, len(good) // 2, len(good) - 1):
        assert xla_cache.entry_problem(name, good[:cut]) is not None, cut
    assert "another" in xla_cache.entry_problem("xla_compile_cache__12__35__XLA_CPU_JIT.pb", good)
    assert xla_cache.entry_problem(name, os.urandom(4096)) is not None
    assert xla_cache.entry_problem(name, _entry(executable=b"")) == "incomplete"
    assert xla_cache.entry_problem("../x.pb", good) == "not an entry's name"


# --- a damaged cache through the CLI: same numbers, no noise ---------------------------------

def _can(command: list[str]) -> bool:
    try:
        return subprocess.run(command + ["true"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


#: Root ignores file permissions; in a user namespace of its own it is held to them like anyone.
AS_USER = ["unshare", "-U"] if os.geteuid() == 0 else []
USERNS = _can(["unshare", "-Urm"])


def train(cache, out: Path, *, env=None, prefix=(), level="3", preexec=None) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, ECHO_RNN_XLA_CACHE=str(cache), TF_CPP_MIN_LOG_LEVEL=level,
                    PYTHONPATH=str(REPO), **(env or {}))
    command = [*prefix, sys.executable, "-m", "echo_rnn_cli", "train", *TRAIN, "-o", str(out)]
    proc = subprocess.run(command, capture_output=True, text=True, env=full_env, timeout=300,
                          preexec_fn=preexec, cwd=out.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "Error" not in proc.stderr, proc.stderr[-3000:]
    assert sum("warning" in line.lower() for line in proc.stderr.splitlines()) <= 1, proc.stderr
    return proc


def trace(path: Path) -> tuple[bytes, float]:
    with np.load(path) as data:
        return data["loss"].tobytes(), float(data["eval_loss"])


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    """A cache filled by one run, and the trace of a run without any cache."""
    base = tmp_path_factory.mktemp("warm")
    train("0", base / "nocache.npz")
    train(base / "cache", base / "first.npz")
    folders = list((base / "cache").iterdir())
    assert len(folders) == 1 and len(list(folders[0].glob("*.pb"))) >= 2
    assert trace(base / "first.npz") == trace(base / "nocache.npz")
    return base / "cache", trace(base / "nocache.npz")


def _entries(cache: Path) -> list[Path]:
    return sorted(next(cache.iterdir()).glob("*.pb"))


def truncate_and_garble(cache: Path) -> None:
    first, second, *_ = _entries(cache)
    first.write_bytes(first.read_bytes()[: first.stat().st_size // 2])
    second.write_bytes(os.urandom(second.stat().st_size))
    folder = first.parent
    # Things named like entries that are none: none may block, feed forever or be linked.
    os.mkfifo(folder / f"{first.stem[:-33]}.{'0' * 32}.pb")
    os.symlink("/dev/zero", folder / f"{second.stem[:-33]}.{'1' * 32}.pb")
    (folder / "xla_compile_cache__1__2__XLA_CPU_JIT.pb").write_bytes(b"plain garbage")


def flip_and_swap(cache: Path) -> None:
    first, second, *_ = _entries(cache)
    data = first.read_bytes()
    second.write_bytes(data)  # another entry's program under this name
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF  # the wire format still parses: only the digest can tell
    first.write_bytes(bytes(flipped))


def _message(fields) -> bytes:
    """Protocol buffer wire format of (number, bytes) fields."""
    return b"".join(_varint(number << 3 | 2) + _varint(len(value)) + value for number, value in fields)


def forge(cache: Path) -> None:
    """Issue 21, case 9: the evaluation's entry holds the epoch program's executable under its own
    key and HLO, its digest made anew, so that it passes every check the cache can make; running it
    fails ('invalid number of arguments'), which ended the run after training with nothing saved."""
    contents = {e: dict(xla_cache._fields(e.read_bytes())) for e in _entries(cache)}
    epoch = next(c for c in contents.values() if b"train_epoch" in c[2])
    evaluations = [e for e, c in contents.items() if b"evaluate" in c[2]]
    assert evaluations
    for entry in evaluations:
        data = _message([(1, contents[entry][1]), (2, contents[entry][2]), (3, epoch[3])])
        tf_name = entry.name.split(".")[0] + ".pb"
        assert xla_cache.entry_problem(tf_name, data) is None
        entry.unlink()
        (entry.parent / f"{tf_name[:-3]}.{xla_cache.digest(tf_name, data)}.pb").write_bytes(data)


def unreadable(cache: Path) -> None:
    next(cache.iterdir()).chmod(0)


def read_only(cache: Path) -> None:
    folder = next(cache.iterdir())
    for entry in folder.glob("*.pb"):
        entry.unlink()  # so that the run must compile and then fails to publish
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)


#: (name, damage done to a warm cache, run as an unprivileged user)
DAMAGES = [
    ("truncated, garbage, FIFO, /dev/zero", truncate_and_garble, False),
    ("flipped byte, swapped entries", flip_and_swap, False),
    ("forged: the epoch's program under the evaluation's key, digest made anew", forge, False),
    ("unreadable folder", unreadable, True),
    ("read-only folder", read_only, True),
]


@pytest.mark.slow  # a process per kind of damage, each compiling again
@pytest.mark.parametrize("damage,as_user", [d[1:] for d in DAMAGES], ids=[d[0] for d in DAMAGES])
def test_a_damaged_cache_costs_compile_time_only(warm, tmp_path, damage, as_user):
    cache, expected = warm
    work = tmp_path / "w"
    shutil.copytree(cache, work / "cache", symlinks=True)
    work.chmod(0o777)
    damage(work / "cache")
    try:
        train(work / "cache", work / "out.npz", prefix=AS_USER if as_user else ())
    finally:
        for folder in (work / "cache").iterdir():
            folder.chmod(0o755)
    assert trace(work / "out.npz") == expected
    for entry in _entries(work / "cache"):  # what is left in the cache is whole and right
        tf_name = entry.name.split(".")[0] + ".pb"
        data = entry.read_bytes()
        assert xla_cache.entry_problem(tf_name, data) is None
        assert entry.name.split(".")[1] == xla_cache.digest(tf_name, data)


@pytest.mark.slow  # a process compiling without the cache
def test_a_cache_path_that_is_a_file(warm, tmp_path):
    blocker = tmp_path / "cache"
    blocker.write_text("a file")
    train(blocker, tmp_path / "out.npz")
    assert trace(tmp_path / "out.npz") == warm[1]
    assert blocker.read_text() == "a file"


@pytest.mark.slow  # a process compiling into a full tmpfs
@pytest.mark.skipif(not USERNS, reason="needs user namespaces (unshare -Urm) to mount a small tmpfs")
def test_a_full_disk_under_the_cache(warm, tmp_path):
    """The cache (and the temp folder) on a 1 MB file system: the bigger program cannot be written
    there (ENOSPC); the run file, on another disk, is saved."""
    small = tmp_path / "small"
    small.mkdir()
    (tmp_path / "out").mkdir()
    script = f"mount -t tmpfs -o size=1m tmpfs {small} && mkdir {small}/tmp && exec \"$@\""
    train(small / "cache", tmp_path / "out" / "out.npz", env={"TMPDIR": f"{small}/tmp"},
          prefix=["unshare", "-Urm", "sh", "-c", script, "sh"])
    assert trace(tmp_path / "out" / "out.npz") == warm[1]


@pytest.mark.slow  # a process compiling under a file size limit
def test_a_file_size_limit(warm, tmp_path):
    """``ulimit -f 1024``: TensorFlow could not write a program, so the cache stays off."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (2**20, 2**20))

    train(tmp_path / "cache", tmp_path / "out.npz", preexec=limit)
    assert trace(tmp_path / "out.npz") == warm[1]
    assert not list((tmp_path / "cache").glob("*/*.pb"))


@pytest.mark.slow  # needs the warm cache, one process compiling it
def test_loading_cached_programs_prints_no_false_alarm(warm, tmp_path):
    """TF_CPP_MIN_LOG_LEVEL=2 shows ERROR lines: loading cached programs makes TensorFlow log a
    failed text parse, and on AVX-512 machines a warning of SIGILL. Neither may reach the user;
    everything else on stderr (the progress lines) still does."""
    cache, expected = warm
    shutil.copytree(cache, tmp_path / "cache")
    proc = train(tmp_path / "cache", tmp_path / "out.npz", level="2")
    assert "SIGILL" not in proc.stderr and "text-format" not in proc.stderr, proc.stderr[-3000:]
    assert "epoch 2/2" in proc.stderr and "completed:" in proc.stderr
    assert trace(tmp_path / "out.npz") == expected


def test_the_stderr_filter_drops_whole_noise_lines_only(tmp_path):
    """The filter process itself, fed a mix of lines and a partial line that must not wait."""
    from echo_rnn_cli import native_stderr

    child = f"""
import sys, time
sys.path.insert(0, {str(REPO)!r})
from echo_rnn_cli import native_stderr, xla_cache
assert native_stderr.install(xla_cache.NOISE)
import os
os.write(2, b"E0000 00:00:1.2 7 text_format.cc:378] Error parsing text-format "
            b"tensorflow.XlaSerializedCacheEntry: 2:1: x\\n")
os.write(2, b"E0000 00:00:1.3 7 cpu_aot_loader.cc:220] Loading XLA:CPU AOT result. Target machine feature "
            b"+prefer-no-scatter is not  supported on the host machine. SIGILL.\\nkept line\\n")
os.write(2, b"E0000 cpu_aot_loader.cc:220] Loading XLA:CPU AOT result. Target machine feature +avx512f is not  x\\n")
os.write(2, b"partial ")
# Until the filter has read all of it (its start takes seconds under emulation), then its 0.2 s
# wait for the rest of a partial line, and more.
import fcntl, struct, termios
while struct.unpack("i", fcntl.ioctl(2, termios.FIONREAD, b"0000"))[0]:
    time.sleep(0.05)
time.sleep(1)
print("python line", file=sys.stderr)
os.write(2, b"E0000 unfinished")
"""
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=timeout(60))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.split("\n") == [
        "kept line",
        "E0000 cpu_aot_loader.cc:220] Loading XLA:CPU AOT result. Target machine feature +avx512f is not  x",
        "partial python line", "E0000 unfinished"], proc.stderr
    assert native_stderr._installed is None  # nothing of it in this (pytest's) process


# /proc/cpuinfo of two ARM servers (AWS Graviton 2 and 3, abridged): no "model name" or "flags"
# lines, which is all the signature used to read, so both shared one folder, and a program compiled
# with SVE (Graviton 3) would have been loaded where there is none.
NEOVERSE_N1 = """processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x3
CPU part\t: 0xd0c
CPU revision\t: 1
"""
NEOVERSE_V1 = NEOVERSE_N1.replace("asimddp ssbs", "asimddp sha512 sve asimdfhm dit uscat ilrcpc flagm ssbs").replace(
    "0xd0c", "0xd40")


def test_the_cpu_signature_tells_arm_cores_and_their_instruction_sets_apart(tmp_path):
    signatures = []
    for text in (NEOVERSE_N1, NEOVERSE_V1, NEOVERSE_V1.replace("0xd40", "0xd4f")):
        (tmp_path / "cpuinfo").write_text(text)
        signatures.append(xla_cache._cpu_signature(str(tmp_path / "cpuinfo")))
    assert None not in signatures and len(set(signatures)) == 3
    assert "sve" in signatures[1] and "sve" not in signatures[0]
    assert xla_cache._cpu_signature() is not None  # this machine's own


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS reads sysctl, not /proc")
def test_no_cache_where_the_cpu_cannot_be_told(tmp_path):
    """A CPU that cannot be told (/proc/cpuinfo unreadable or silent) gets no cache, rather than a
    folder shared with every other such machine."""
    (tmp_path / "silent").write_text("processor\t: 0\nBogoMIPS\t: 50.00\n")
    code = ("import sys; from echo_rnn_cli import xla_cache; xla_cache.CPUINFO = sys.argv[1]; "
            "print(xla_cache.setup(), xla_cache.problem)")
    for cpuinfo in (tmp_path / "missing", tmp_path / "silent"):
        env = dict(os.environ, ECHO_RNN_XLA_CACHE=str(tmp_path / "cache"))
        env.pop("TF_XLA_FLAGS", None)
        out = subprocess.run([sys.executable, "-c", code, str(cpuinfo)], capture_output=True, text=True, env=env,
                             timeout=120, check=True).stdout
        assert out.startswith("None the CPU's instruction sets cannot be read"), out
    assert not (tmp_path / "cache").exists()
