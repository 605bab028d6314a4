import os

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
