"""Smoke test for benchmarks/tutorial_baseline.py (baseline (a)).

Runs in a subprocess because the baseline calls
``tf.compat.v1.disable_eager_execution()``, which is process-global.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "tutorial_baseline.py"


@pytest.mark.slow  # the tutorial's tf.compat.v1 graph in a process
def test_tutorial_baseline_cli_max_windows():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--max-windows", "200", "--seed", "0"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    assert lines, proc.stderr[-2000:]
    result = json.loads(lines[-1])
    assert result["windows"] == 200
    assert result["per_window_seconds"] > 0
    assert result["seconds"] > 0
    assert result["build_seconds"] > 0
    assert "loss" not in result
    assert 0.0 <= result["final_loss_mean"] < 5.0
