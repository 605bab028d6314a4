"""Crafted files meet every reader (tests/hostile.py's table), and outputs are guarded (issue 10).

Every reader must refuse every row quickly, in one line containing the row's fragment; a reader
that hangs fails its test by the alarm instead of hanging the suite."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from echo_rnn_cli.guards import GuardError, check_output, open_regular, save_beside
from echo_rnn_cli.safe_npz import NpzError, parse_config_json, read_npz

from .hostile import GOOD, HOSTILE


@contextlib.contextmanager
def deadline(seconds: int = 10):
    def fail(signum, frame):
        raise TimeoutError(f"still reading after {seconds} s")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def read_run_file(path: Path) -> None:
    """What a run-file reader does first: the arrays, then the config JSON."""
    arrays = read_npz(path)
    if "config" in arrays:
        try:
            parse_config_json(str(arrays["config"].item()))
        except NpzError as e:
            raise NpzError(f"{str(path)!r} has an invalid config: {e}") from None


def open_only(path: Path) -> None:
    with open_regular(path, what="run file"):
        pass


# --- the CLI's readers: real subprocesses, killed by their timeout rather than hanging the suite

V1 = Path(__file__).parent / "data" / "run_v1.npz"  # a good run file, whose row must still show
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg"}
CLI_TIMEOUT = 60


def _cli(args: list, cwd: Path) -> tuple[int, str, str]:
    try:
        proc = subprocess.run([sys.executable, "-m", "echo_rnn_cli", *map(str, args)], capture_output=True,
                              text=True, env=ENV, cwd=cwd, timeout=CLI_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"echo-rnn {' '.join(map(str, args[:2]))} still running after {CLI_TIMEOUT} s") from None
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout, proc.stderr


def _refusal(code: int, err: str, expected_code: int, path: Path) -> None:
    """A CLI refusal as the GuardError the in-process readers raise: the line naming the file."""
    lines = [line for line in err.splitlines() if f"{os.sep}{path.name}'" in line]
    assert code == expected_code and len(lines) == 1 and lines[0].startswith("Error: "), (code, err)
    raise GuardError(lines[0])


def cli_refuses(args: list, expected_code: int = 2):
    def reader(path: Path) -> None:
        code, _, err = _cli([a.format(path=path, folder=path.parent) for a in args], path.parent)
        assert len(err.strip().splitlines()) == 1, err  # one line and nothing else
        _refusal(code, err, expected_code, path)

    return reader


def summary_skips(path: Path) -> None:
    """summary of the file's folder skips it in one line and still prints the good run's row (exit 1:
    a file was skipped)."""
    shutil.copy(V1, path.parent / "v1-good.npz")
    code, out, err = _cli(["summary", path.parent, "--format", "json"], path.parent)
    rows = json.loads(out)
    assert [Path(r["file"]).name for r in rows] == ["v1-good.npz"] and rows[0]["status"] == "completed", out
    _refusal(code, err, 1, path)


def heatmap_skips(path: Path) -> None:
    """plot --heatmap over the file's folder skips it in one warning line and draws the good run."""
    shutil.copy(V1, path.parent / "v1-good.npz")
    figure = path.parent / "h.png"
    code, _, err = _cli(["plot", "--heatmap", path.parent, "--x", "echo_step", "--y", "state_size",
                         "-o", figure, "-q"], path.parent)
    lines = [line for line in err.splitlines() if f"{os.sep}{path.name}'" in line]
    assert code == 0 and figure.stat().st_size > 1000 and len(lines) == 1, err
    assert lines[0].startswith("Warning: skipped "), err
    raise GuardError(lines[0])


#: (name, reader, reads the content, seconds allowed): a reader that does not read content meets
#: only the rows about what a file is (FIFO, device, ...).
READERS = [
    ("safe_npz.read_npz + parse_config_json", read_run_file, True, 5),
    ("guards.open_regular", open_only, False, 5),
    ("echo-rnn summary", summary_skips, True, CLI_TIMEOUT),
    ("echo-rnn plot", cli_refuses(["plot", "{path}", "-o", "{folder}/fig.png"]), True, CLI_TIMEOUT),
    ("echo-rnn plot --heatmap", heatmap_skips, True, CLI_TIMEOUT),
    ("echo-rnn plot --memory", cli_refuses(["plot", "{path}", "--memory", "-o", "{folder}/m.png"]), True, CLI_TIMEOUT),
    ("echo-rnn train --resume", cli_refuses(["train", "--resume", "{path}", "--epochs", "5", "-o", "{folder}/o.npz"]),
     True, CLI_TIMEOUT),
    # A folder as --config is click's refusal ("is a directory"), tested in test_reliability.
    ("echo-rnn train --config", cli_refuses(["train", "--config", "{path}", "-o", "{folder}/o.npz"]), False,
     CLI_TIMEOUT),
]
_SKIP = {("echo-rnn train --config", "folder")}


CASES = [(row, name, reader, limit) for row in HOSTILE for name, reader, content, limit in READERS
         if (content or not row.npz) and (name, row.name) not in _SKIP]


@pytest.mark.parametrize("row,reader,limit", [(row, reader, limit) for row, _, reader, limit in CASES],
                         ids=[f"{row.name} - {name}" for row, name, _, _ in CASES])
def test_every_reader_refuses_every_hostile_file(tmp_path, row, reader, limit):
    path = row.make(tmp_path)
    start = time.monotonic()
    with deadline(limit + 10), pytest.raises(GuardError) as refused:
        reader(path)
    message = str(refused.value)
    assert row.fragment in message, message
    assert "\n" not in message and str(path.name) in message
    assert time.monotonic() - start < limit


#: Runs the CLI and writes its peak memory (VmHWM: this program's own, from its exec on; the
#: rusage of a child counts the forked parent's pages too) to the file named by $HWM_FILE.
PEAK_MEMORY = """
import atexit, os, runpy, sys

def peak():
    with open('/proc/self/status') as f, open(os.environ['HWM_FILE'], 'w') as out:
        out.write(next(line for line in f if line.startswith('VmHWM')).split()[1])

atexit.register(peak)
sys.argv[0] = 'echo-rnn'
runpy.run_module('echo_rnn_cli', run_name='__main__')
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc for the peak memory")
@pytest.mark.parametrize("args", [["summary", "{path}"], ["plot", "{path}", "-o", "{folder}/f.png"],
                                  ["echo", "{path}", "0110"], ["export", "{path}", "{folder}/m.keras"]],
                         ids=lambda a: a[0])
def test_a_file_that_inflates_is_refused_in_bounded_memory_and_time(tmp_path, args):
    """Issue 21, case 3: each reader peaked at 11.7 GB and took 31-81 s on such a file (999,000,000
    float32) before refusing it; here 800 MB: the refusal must come before any of it is inflated."""
    from .hostile import inflating

    folder = tmp_path / "d"
    folder.mkdir()
    path = inflating(folder)
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", PEAK_MEMORY, *[a.format(path=path, folder=folder) for a in args]],
                          capture_output=True, text=True, env={**ENV, "HWM_FILE": str(tmp_path / "hwm")},
                          cwd=folder, timeout=CLI_TIMEOUT)
    took, peak_mb = time.monotonic() - start, int((tmp_path / "hwm").read_text()) / 1024
    print(f"{args[0]}: peak {peak_mb:.0f} MB, {took:.1f} s")
    assert peak_mb < 400, f"peak {peak_mb:.0f} MB"  # Python, NumPy, and TensorFlow for export
    assert proc.returncode in (1, 2) and "more than 16 times its size" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["inflating.npz"]


def test_a_good_file_reads_back(tmp_path):
    arrays = read_npz(GOOD(tmp_path))
    assert arrays["loss"].dtype == np.float32 and arrays["loss"].shape == (4,)
    arrays["loss"][0] = 1  # writable, like np.load's
    assert parse_config_json(str(arrays["config"].item())) == {"epochs": 2}
    assert int(arrays["format_version"]) == 1


def test_a_fifo_with_a_writer_waiting_is_refused_too(tmp_path):
    os.mkfifo(tmp_path / "p")
    writer = os.open(tmp_path / "p", os.O_RDWR)  # a writer present: a plain open would not block either
    try:
        with deadline(), pytest.raises(GuardError, match="FIFO"):
            read_npz(tmp_path / "p")
    finally:
        os.close(writer)


def test_size_limits(tmp_path):
    path = GOOD(tmp_path)
    with pytest.raises(GuardError, match="more than the 10 it can be"):
        open_regular(path, max_bytes=10)
    with pytest.raises(NpzError, match="claims 4 elements, more than the 3"):
        read_npz(path, max_elements=3)
    with pytest.raises(NpzError, match="characters long"):
        parse_config_json("{" + " " * 10**6 + "}")
    with pytest.raises(GuardError, match="does not exist"):
        open_regular(tmp_path / "missing.npz")


# --- outputs -------------------------------------------------------------------------------

def test_an_existing_output_is_kept_unless_replacing_is_asked(tmp_path):
    out = tmp_path / "run.npz"
    out.write_bytes(b"yesterday")
    with pytest.raises(GuardError) as refused:
        check_output(out)
    message = str(refused.value)
    assert str(out) in message and "--force" in message and "-o" in message and "--resume" in message
    assert check_output(out, replace=True) == out
    with pytest.raises(GuardError, match=r"already exists$"):
        check_output(out, ways_out=None, what="figure")
    assert out.read_bytes() == b"yesterday"
    assert check_output(tmp_path / "new.npz") == tmp_path / "new.npz"


def _fifo(p: Path) -> None:
    os.mkfifo(p)


def _socket(p: Path) -> None:
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(p))
    s.close()


@pytest.mark.parametrize("make,fragment", [
    (_fifo, "FIFO"), (Path.mkdir, "folder"), (_socket, "socket"),
    (lambda p: p.symlink_to("/dev/null"), "character device (through a symlink)"),
    (lambda p: (os.mkfifo(p.with_suffix(".fifo")), p.symlink_to(p.with_suffix(".fifo"))), "FIFO (named pipe) (through"),
], ids=["fifo", "folder", "socket", "symlink to /dev/null", "symlink to a fifo"])
def test_an_output_that_is_not_a_regular_file_is_refused_even_with_force(tmp_path, make, fragment):
    out = tmp_path / "out.npz"
    make(out)
    with pytest.raises(GuardError, match="not a regular file") as refused:
        check_output(out, replace=True)
    assert fragment in str(refused.value)


def test_a_device_is_refused():
    with pytest.raises(GuardError, match="character device"):
        check_output("/dev/null", replace=True)


def test_the_output_is_never_an_input(tmp_path, monkeypatch):
    config = tmp_path / "c.toml"
    config.write_text("epochs = 2\n")
    (tmp_path / "link.toml").symlink_to(config)
    os.link(config, tmp_path / "hard.toml")
    monkeypatch.chdir(tmp_path)
    for out in (config, tmp_path / "link.toml", tmp_path / "hard.toml", Path("c.toml"), Path("./sub/../c.toml")):
        with pytest.raises(GuardError, match="is the input"):
            check_output(out, inputs=[config], replace=True)
    assert config.read_text() == "epochs = 2\n"


def test_names_and_folders_that_cannot_be_written(tmp_path):
    with pytest.raises(GuardError, match="more than the 255"):
        check_output(tmp_path / ("a" * 300 + ".npz"))
    with pytest.raises(GuardError, match="does not exist"):
        check_output(tmp_path / "missing" / "run.npz")
    (tmp_path / "file").write_text("x")
    with pytest.raises(GuardError, match="is a file, not a folder"):
        check_output(tmp_path / "file" / "sub" / "run.npz")
    with pytest.raises(GuardError, match="cannot write"):
        check_output("/proc/run.npz")  # no one may create files there, root included
    with pytest.raises(GuardError, match="names no file"):
        check_output("")


def test_a_failed_save_is_kept_beside_the_target(tmp_path):
    target = tmp_path / "run.npz"

    def write(path: Path) -> None:
        path.write_bytes(b"the trained run")

    first = save_beside(write, target)
    second = save_beside(write, target)
    assert first != second and first.parent == second.parent == tmp_path
    assert first.name.startswith("run.unsaved-") and first.suffix == ".npz"
    assert first.read_bytes() == second.read_bytes() == b"the trained run"
    assert not target.exists()
    # Where the target's folder cannot take it either, the next folder does.
    elsewhere = save_beside(write, Path("/proc/run.npz"), folders=["/proc", tmp_path / "other", tmp_path])
    assert elsewhere.parent == tmp_path
    with pytest.raises(OSError):
        save_beside(write, Path("/proc/run.npz"), folders=["/proc"])


def test_a_failed_atomic_write_names_the_target_and_leaves_nothing(tmp_path):
    from echo_rnn_cli.files import atomic_write

    target = tmp_path / "run.npz"
    target.mkdir()  # os.replace of a file over a folder fails, as over an immutable file
    with pytest.raises(OSError) as failed:
        atomic_write(target, lambda tmp: tmp.write_bytes(b"data"))
    assert failed.value.filename == str(target) and ".run.npz." not in str(failed.value)
    assert [p.name for p in tmp_path.iterdir()] == ["run.npz"]
