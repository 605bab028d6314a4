"""What benchmarks/bench.py and benchmarks/scaling.py share: running a measurement in a process of
its own, timing echo-rnn's trainer in steady state, and the report's machine line, checks and output.

Not a script; both import it from beside them (benchmarks/ is not a package).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# --- running things ---------------------------------------------------------------------------

def timed_process(cmd: list[str], *, env: dict | None = None, cwd: str | Path | None = None) -> dict:
    """Run cmd to its end: wall seconds from start to exit, its own peak RSS (MB), exit code and
    output. os.wait4 gives this child's resource use alone (RUSAGE_CHILDREN mixes all children);
    the output goes to files so that no pipe needs draining while we wait."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = code = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return {"wall_s": wall, "peak_mb": usage.ru_maxrss / scale, "code": code, "stdout": stdout, "stderr": stderr}


def env_with(**changes: str) -> dict:
    env = dict(os.environ)
    env.update(changes)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


def worker(args: list[str], env: dict, script: str | Path) -> dict:
    """Run `script --worker args` (bench.py or scaling.py) in a process of its own; its last line of
    output is its JSON."""
    r = timed_process([sys.executable, str(Path(script).resolve()), "--worker", *args], env=env)
    if r["code"] != 0:
        raise RuntimeError(f"worker {' '.join(args)} failed: {r['stderr'].strip().splitlines()[-1:]}")
    return json.loads(r["stdout"].strip().splitlines()[-1])


# --- the worker side: echo-rnn's trainer in this process ---------------------------------------

def stop_after(min_epochs: int, cap_s: float):
    """A `should_stop` for train_many: true once min_epochs are done and cap_s seconds have passed."""
    calls, start = [0], time.perf_counter()

    def should_stop() -> bool:  # polled before every epoch
        calls[0] += 1
        return calls[0] > min_epochs and time.perf_counter() - start > cap_s

    return should_stop


def steady_state(configs: list, cap_s: float | None = None) -> dict:
    """Train `configs` together twice in this process: the first training (trace, compile, or load
    from the on-disk cache) and its runs, then the time per window of the second, everything
    compiled: the median epoch, each epoch's data preparation and bookkeeping included. (In the
    first training the evaluation compiles on another thread during the early epochs, which a busy
    machine feels; in the second it runs once there, which the median leaves out.) With cap_s, the
    first training stops after one epoch and the second after 3 epochs once cap_s seconds passed."""
    import numpy as np

    from echo_rnn_cli.trainer import train_many

    first = stop_after(1, 0.0) if cap_s is not None else None
    second = stop_after(3, cap_s) if cap_s is not None else None
    t1 = time.perf_counter()
    runs = train_many(configs, should_stop=first)
    train_s = time.perf_counter() - t1
    seconds = train_many(configs, should_stop=second)[0].epoch_seconds
    return {"runs": runs, "train_s": train_s, "first_epoch_s": float(runs[0].epoch_seconds[0]),
            "steady_window_us": float(np.median(seconds) / configs[0].windows_per_epoch * 1e6)}


# --- the report ---------------------------------------------------------------------------------

def machine() -> dict:
    info = {"python": platform.python_version(), "os": platform.platform(), "cores": os.cpu_count()}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        info["cpu"] = next((ln.split(":", 1)[1].strip() for ln in lscpu.splitlines()
                            if ln.startswith("Model name")), platform.processor())
    except (OSError, subprocess.SubprocessError):
        info["cpu"] = platform.processor() or platform.machine()
    from importlib.metadata import version

    info["tensorflow"] = version("tensorflow")
    return info


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def header() -> dict:
    """What every report starts with: the machine, the command line, the load, the time."""
    return {"machine": machine(), "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "load_before": os.getloadavg(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}


def ok(value, target, at_most=True) -> str:
    """'yes' when value meets the target (at most, or at least), '**no**' when not, 'n/a' without one."""
    if value is None or value != value:
        return "n/a"
    return "yes" if (value <= target if at_most else value >= target) else "**no**"


def publish(text: str, res: dict, opts) -> None:
    """The report on stdout, and where asked, as Markdown (--markdown) and every number as JSON (--json)."""
    print(text)
    if opts.markdown:
        opts.markdown.write_text(text)
    if opts.json:
        opts.json.write_text(json.dumps(res, indent=2, default=str))


def preamble(res: dict, device: str) -> list[str]:
    """The machine, the load average (1, 5, 15 min) before and after, the start and the command."""
    mach = res["machine"]

    def load(la):
        return "/".join(f"{x:.1f}" for x in (la if isinstance(la, (list, tuple)) else [la]))

    extra = "".join(f", {k} {v}" for k, v in mach.items() if k not in ("cpu", "cores", "tensorflow", "python", "os"))
    return [
        f"Machine: {mach['cpu']}, {mach['cores']} cores; TensorFlow {mach['tensorflow']}, "
        f"Python {mach['python']}{extra}; {mach['os']}. Device for echo-rnn: {device}.",
        f"Load average (1/5/15 min) {load(res['load_before'])} before, {load(res['load_after'])} after. "
        f"Started {res['started']}.",
        f"Command: `{res['command']}`",
    ]
