import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

# Tests run headless and quietly; a plain CPU is what CI has.
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from echo_rnn_cli import Config

#: How much slower than a plain CPU this machine runs the suite: scripts/test_aarch64.sh sets it for
#: QEMU's emulation (tens of times slower), where a subprocess's fixed timeout would fire first.
TIME_FACTOR = float(os.environ.get("ECHO_RNN_TEST_TIME_FACTOR", "1"))


def timeout(seconds: float) -> float:
    """A subprocess's timeout on this machine: ``seconds`` on a plain CPU."""
    return seconds * TIME_FACTOR


#: A small configuration shared by most tests, so the compiled epoch is traced once per process.
SMALL = dict(total_series_length=1500, epochs=2, snapshot_every=25)


@pytest.fixture
def small_config() -> Config:
    return Config(**SMALL)


def small_flags(**extra) -> list[str]:
    flags = {**SMALL, **extra}
    out = []
    for k, v in flags.items():
        out += ["--" + k.replace("_", "-"), str(v)]
    return out


@pytest.fixture
def repo_root():
    from pathlib import Path

    return Path(__file__).resolve().parents[1]


#: The environment of sweep subprocesses: output unbuffered, TensorFlow's C++ side quiet.
SWEEP_ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}


def run_cli(args):
    """Through the real entry point: one-line errors and exit codes."""
    from echo_rnn_cli.cli import cli

    with pytest.raises(SystemExit) as info:
        cli.main([*map(str, args)], prog_name="echo-rnn")
    return info.value.code


def run_cli_output(args, capsys):
    """``run_cli``, and what it wrote: (code, stdout, stderr)."""
    code = run_cli(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def sweep_cmd(*args):
    return [sys.executable, "-m", "echo_rnn_cli", "sweep", *small_flags(), *map(str, args)]


def read_events(logdir):
    """TensorBoard's own reader over one run folder, every tensor event kept."""
    from tensorboard.backend.event_processing import event_accumulator

    ea = event_accumulator.EventAccumulator(str(logdir), size_guidance={event_accumulator.TENSORS: 0})
    ea.Reload()
    return ea


def event_series(ea, tag):
    """(step, value) of every event of a scalar tag."""
    from tensorboard.util import tensor_util

    return [(e.step, tensor_util.make_ndarray(e.tensor_proto).item()) for e in ea.Tensors(tag)]


def processes_with(marker: str, but: int | None = None) -> list[int]:
    """Processes whose environment holds ``marker`` (Linux /proc), other than ``but``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != but:
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def kill_sweep_once_workers_run(flags, tmp_path, *, settle: float = 0.0) -> None:
    """Start ``echo-rnn sweep FLAGS`` (the small settings first), SIGKILL it once at least two of its
    workers run (and ``settle`` seconds more), then wait for every process it started to go.

    Its processes are found by a marker in their environment, which workers inherit: a killed
    driver's pool workers are orphans, and only the environment still ties them to the test."""
    marker = f"ECHO_RNN_TEST_MARKER={os.getpid()}-{time.monotonic_ns()}"
    env = {**SWEEP_ENV, marker.split("=")[0]: marker.split("=")[1]}
    with open(tmp_path / "err", "w") as err:  # not a pipe: orphans would hold it open
        proc = subprocess.Popen(sweep_cmd(*flags), stdout=subprocess.DEVNULL, stderr=err, env=env)
    try:
        deadline = time.monotonic() + 120
        while len(processes_with(marker, but=proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(processes_with(marker, but=proc.pid)) >= 2, (tmp_path / "err").read_text()
        time.sleep(settle)
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 30
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_with(marker) == [], "the killed sweep's workers are still there"


@pytest.fixture(autouse=True)
def _signal_handlers_restored():
    """A command run in-process settles its exit code by ignoring SIGINT and SIGTERM until the
    process ends (``interrupts.settle``); the test process gets its handlers back after each test."""
    import signal

    from echo_rnn_cli import interrupts

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, handler in before.items():
        signal.signal(s, handler)
    interrupts.begin()
