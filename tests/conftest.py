import os
import sys

import pytest

# Tests run headless and quietly; a plain CPU is what CI has.
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from echo_rnn_cli import Config

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
