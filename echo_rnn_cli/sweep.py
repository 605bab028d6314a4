"""Sweeps: train every point of a grid of settings, one run file per point, resumably.

A plain Python API that the ``sweep`` command and a notebook share::

    from echo_rnn_cli import Config
    from echo_rnn_cli.sweep import run_sweep
    result = run_sweep(Config(epochs=20), {"echo_step": [1, 3], "truncated_backprop_length": [3, 15]},
                       seeds=2, out_dir="sweep")

Points that differ only in settings one compiled program can hold for several models at once
(``config.PER_MODEL_KEYS``: seed, learning_rate, echo_step, init) are trained together by one
``train_many`` call, so a sweep pays one compile per shape, not per point. These groups are the
tasks that run in parallel worker processes (or on a Ray cluster); a group is split when there are
fewer groups than workers. Run files are written whole (temporary file + rename), and a point whose
file already holds a completed run of the same settings is not trained again, so a sweep stopped by
a crash or Ctrl-C picks up where it stopped when run again. Nothing here imports TensorFlow in the
calling process unless it trains there itself (one worker).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import re
import signal
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from .config import program_key, FIELD_TYPES, PER_MODEL_KEYS, Config, ConfigError, config_warnings, validate
from .files import atomic_write_bytes
from .runs import RunFileError, load_run

MANIFEST = "sweep.json"
MANIFEST_VERSION = 1
EXECUTORS = ("local", "ray")
#: Sweep-level statuses: a run file's status, or 'error' (the point's training raised; no file).
FAILED = ("diverged", "error")
#: Settings a finished run may differ in from the point and still count as that point.
_IGNORED_ON_RESUME = frozenset({"device"})
_SAFE = re.compile(r"[^A-Za-z0-9.+-]")


# ---------------------------------------------------------------- grid and points


def key_order(keys: Iterable[str]) -> list[str]:
    """How keys are ordered in run names, tables and sorts: alphabetical, the seed last."""
    keys = set(keys)
    return sorted(keys - {"seed"}) + (["seed"] if "seed" in keys else [])


def parse_value(key: str, text: str, name: str) -> Any:
    """One grid value from the command line, typed like the config field."""
    kind = FIELD_TYPES[key]
    text = text.strip()
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{name}: {text!r} is not a whole number") from None
    if kind == "float":
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(f"{name}: {text!r} is not a number") from None
        if not math.isfinite(value):
            raise ConfigError(f"{name}: {text!r} is not a finite number")
        return value
    if not text:
        raise ConfigError(f"{name}: empty value")
    return text.lower()


def parse_grid(specs: Iterable[str]) -> dict[str, list[Any]]:
    """``["echo_step=1,2,3", "learning-rate=0.1,0.3"]`` -> ``{"echo_step": [1, 2, 3], ...}``.

    Keys may be written with ``-`` or ``_``; values are typed by the config field. Any problem is one
    ``ConfigError`` naming the ``--grid`` argument."""
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ConfigError(f"--grid {spec!r}: expected KEY=V1,V2,... (e.g. echo_step=1,2,3)")
        if key not in FIELD_TYPES:
            raise ConfigError(f"--grid {spec!r}: unknown key {key!r} (allowed: {', '.join(FIELD_TYPES)})")
        if key in grid:
            raise ConfigError(f"--grid {key}: given twice; list all its values in one --grid")
        name = f"--grid {key}"
        parsed = [parse_value(key, v, name) for v in values.split(",")]
        if len(set(parsed)) != len(parsed):
            dup = next(v for v in parsed if parsed.count(v) > 1)
            raise ConfigError(f"{name}: value {dup!r} is listed twice")
        grid[key] = parsed
    return grid


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)  # shortest form that reads back the same: 0.3, 1e-05
    return str(value)


def point_name(settings: Mapping[str, Any]) -> str:
    """``{"echo_step": 3, "seed": 0}`` -> ``echo_step=3_seed=0``: readable, safe in a file name,
    the same for the same settings whatever order the grid was given in."""
    parts = [f"{k}={_SAFE.sub('-', format_value(settings[k]))}" for k in key_order(settings)]
    name = "_".join(parts) or "run"
    if len(name) > 200:  # file systems allow 255 bytes; keep the name unique with a digest
        name = name[:180] + "_" + hashlib.sha1(name.encode()).hexdigest()[:12]
    return name


@dataclass(frozen=True)
class Point:
    """One run of the sweep: its settings that vary (and seed), full config and file stem."""

    name: str
    config: Config
    settings: dict[str, Any]

    @property
    def file(self) -> str:
        return self.name + ".npz"


#: More runs than this in one sweep is surely a typo (and would take days).
MAX_POINTS = 100_000


def expand_grid(base: Config, grid: Mapping[str, Sequence[Any]], seeds: int = 1) -> list[Point]:
    """Every combination of the grid's values (last key fastest), each with ``seeds`` seeds
    ``base.seed .. base.seed + seeds - 1``; every point's config is validated before it is returned."""
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    count = math.prod(len(v) for v in grid.values()) * seeds
    if count > MAX_POINTS:
        # Checked before any point is built: expanding a huge grid would hang for minutes.
        raise ConfigError(f"--grid and --seeds {seeds} make {count:,} runs; allowed: at most {MAX_POINTS:,} "
                          f"in one sweep (split it into several)")
    if "seed" in grid and seeds > 1:
        raise ConfigError("--grid seed and --seeds both choose seeds; give one of them")
    for key, values in grid.items():
        if key not in FIELD_TYPES:
            raise ConfigError(f"--grid: unknown key {key!r} (allowed: {', '.join(FIELD_TYPES)})")
        if not len(values):
            raise ConfigError(f"--grid {key}: no values")
    combos: list[dict[str, Any]] = [{}]
    for key, values in grid.items():
        combos = [{**c, key: v} for c in combos for v in values]
    names = {k: f"--grid {k}" for k in grid}
    points = []
    for combo in combos:
        seed_values = [combo["seed"]] if "seed" in combo else [base.seed + k for k in range(seeds)]
        for seed in seed_values:
            settings = {**combo, "seed": seed}
            values = base.to_dict() | settings
            try:
                config = validate(Config(**values), names)
            except ConfigError as e:
                raise ConfigError(f"point {point_name(settings)}: {e}") from None
            except TypeError as e:  # a value of the wrong type from the Python API
                raise ConfigError(f"point {point_name(settings)}: {e}") from None
            points.append(Point(point_name(settings), config, settings))
    return points


def learnability_warnings(points: Sequence[Point]) -> list[str]:
    """The trainer's per-run warnings, counted once for the whole sweep."""
    unlearnable = [p for p in points if config_warnings(p.config)]
    if not unlearnable:
        return []
    return [f"echo_step >= truncated_backprop_length in {len(unlearnable)} of {len(points)} points: no window "
            f"holds a symbol and its echo, so those cannot learn it (expected in a learnability sweep)"]



def make_tasks(points: Sequence[Point], workers: int) -> list[list[Point]]:
    """Group points that one compiled program can train together; split the largest groups while
    there are fewer groups than workers. Largest first, so the long tasks start early."""
    groups: dict[tuple, list[Point]] = {}
    for p in points:
        groups.setdefault(program_key(p.config), []).append(p)
    tasks = list(groups.values())
    while len(tasks) < workers:
        big = max(tasks, key=len, default=None)
        if big is None or len(big) < 2:
            break
        tasks.remove(big)
        half = (len(big) + 1) // 2
        tasks += [big[:half], big[half:]]
    return sorted(tasks, key=lambda t: -len(t) * t[0].config.epochs * t[0].config.total_series_length)


# ---------------------------------------------------------------- results and events


@dataclass
class PointResult:
    """What became of one point. ``summary`` is the run's ``Run.summary`` (what ``train --json``
    prints), or None when no run file was written (status 'error')."""

    name: str
    status: str
    message: str = ""
    summary: dict[str, Any] | None = None
    skipped: bool = False  # finished by an earlier run of the sweep

    @property
    def failed(self) -> bool:
        return self.status in FAILED


@dataclass(frozen=True)
class SweepEvent:
    """What ``on_event`` gets. kind: 'planned' (every point, before any training; ``skipped``: those
    finished by an earlier run, each then reported 'finished' with ``result.skipped``), 'started'
    (``names`` began training), 'epoch' (progress of ``names``: ``epoch`` of ``epochs``, mean
    ``loss`` and ``accuracy``), 'finished' (``result`` for one point)."""

    kind: str
    names: tuple[str, ...] = ()
    result: PointResult | None = None
    epoch: int = 0
    epochs: int = 0
    loss: float = math.nan
    accuracy: float = math.nan
    skipped: tuple[str, ...] = ()


@dataclass
class SweepResult:
    points: list[Point]
    results: dict[str, PointResult] = field(default_factory=dict)
    interrupted: bool = False
    wall_seconds: float = 0.0

    @property
    def failed(self) -> list[PointResult]:
        return [self.results[p.name] for p in self.points if p.name in self.results and self.results[p.name].failed]

    @property
    def unfinished(self) -> list[Point]:
        return [p for p in self.points if p.name not in self.results or self.results[p.name].status != "completed"]


# ---------------------------------------------------------------- the output folder


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _comparable(c: Config) -> dict[str, Any]:
    return {k: v for k, v in c.to_dict().items() if k not in _IGNORED_ON_RESUME}


def finished_points(points: Sequence[Point], out_dir: Path) -> dict[str, PointResult]:
    """Points whose run file already holds a completed run of their settings.

    A missing, unreadable, interrupted or diverged file means the point is trained (again). A
    completed run of *other* settings under the same name is refused: the folder holds another
    sweep, and overwriting it silently would lose work."""
    done = {}
    for p in points:
        path = out_dir / p.file
        if not path.exists():
            continue
        try:
            run = load_run(path)
        except RunFileError:
            continue
        old, new = _comparable(run.config), _comparable(p.config)
        if old != new:
            diffs = ", ".join(f"{k} {old[k]!r} vs {new[k]!r}" for k in old if old[k] != new[k])
            raise ConfigError(f"{str(path)!r} holds a run of other settings ({diffs}); "
                              f"use another --out-dir or remove it")
        if run.status == "completed":
            done[p.name] = PointResult(p.name, "completed", "", run.summary(str(path)), skipped=True)
    return done


class Manifest:
    """``DIR/sweep.json``: the sweep's settings and every point's status, rewritten whole after each
    point finishes, so it is current after a crash too."""

    def __init__(self, out_dir: Path, base: Config, grid: Mapping[str, Sequence[Any]], points: Sequence[Point],
                 executor: str) -> None:
        self.path = out_dir / MANIFEST
        self.data: dict[str, Any] = {
            "format_version": MANIFEST_VERSION,
            "created": _now(),
            "updated": _now(),
            "executor": executor,
            "base_config": base.to_dict(),
            "grid": {k: list(v) for k, v in grid.items()},
            "seeds": sorted({p.config.seed for p in points}),
            "points": {p.name: {"file": p.file, "settings": p.settings, "status": "pending", "message": ""}
                       for p in points},
        }
        self.write()

    def update(self, result: PointResult) -> None:
        entry = self.data["points"][result.name]
        entry["status"], entry["message"] = result.status, result.message
        for key in ("eval_accuracy", "final_loss", "wall_seconds"):
            entry[key] = (result.summary or {}).get(key)
        self.data["updated"] = _now()
        self.write()

    def write(self) -> None:
        doc = dict(self.data, points=list(self.data["points"].values()))
        atomic_write_bytes(self.path, (json.dumps(doc, indent=1) + "\n").encode())


def read_manifest(out_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((Path(out_dir) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("points"), list) else None


# ---------------------------------------------------------------- training one task (in a worker)


@dataclass
class Task:
    """Points trained by one ``train_many`` call. ``out_dir`` None: return the run files' bytes
    (a Ray worker may not share the driver's disk)."""

    names: list[str]
    configs: list[Config]
    out_dir: str | None


@dataclass
class TaskResult:
    name: str
    status: str
    message: str
    summary: dict[str, Any] | None
    data: bytes | None = None


def train_task(task: Task, should_stop: Callable[[], bool] | None = None,
               on_epoch: Callable[[Any], None] | None = None) -> list[TaskResult]:
    """Train a task's points together; write (or return) their run files."""
    # Several workers may share one GPU: TensorFlow would otherwise map all its memory to the first.
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    from .runs import save_run
    from .trainer import train_many

    # The sweep warns once for all points; per-run warnings would repeat it for every group.
    runs = train_many(task.configs, should_stop=should_stop, on_epoch=on_epoch, warn=lambda m: None)
    out = []
    for name, run in zip(task.names, runs):
        if task.out_dir is not None:
            path = Path(task.out_dir) / f"{name}.npz"
            save_run(run, path)
            out.append(TaskResult(name, run.status, run.message, run.summary(str(path))))
        else:
            with tempfile.TemporaryDirectory() as tmp:
                path = save_run(run, Path(tmp) / f"{name}.npz")
                data = path.read_bytes()
            out.append(TaskResult(name, run.status, run.message, run.summary(None), data))
    return out


# Per worker process: set by _init_worker.
_worker_stop = None
_worker_events = None
_worker_parent = None


def _init_worker(stop_event, events, parent_pid: int) -> None:
    global _worker_stop, _worker_events, _worker_parent
    # Ctrl-C on a terminal reaches the whole process group; the parent decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _worker_stop, _worker_events, _worker_parent = stop_event, events, parent_pid
    threading.Thread(target=_exit_with_parent, name="echo-rnn-orphan-watch", daemon=True).start()


def _exit_with_parent() -> None:
    """A parent killed outright (a second Ctrl-C, SIGKILL) leaves no one to read the results, and a
    pool worker would wait for work forever (it holds its own queue's write end): leave too."""
    while os.getppid() == _worker_parent:
        time.sleep(1.0)
    os._exit(1)


def _worker_should_stop() -> bool:
    return _worker_stop.is_set() or os.getppid() != _worker_parent


def _worker_run(task_id: int, task: Task) -> list[TaskResult]:
    def on_epoch(r) -> None:
        _worker_events.put((task_id, r.epoch, r.epochs, r.loss, r.accuracy))

    return train_task(task, should_stop=_worker_should_stop, on_epoch=on_epoch)


def _error_results(task: Task, message: str) -> list[TaskResult]:
    return [TaskResult(n, "error", message, None) for n in task.names]


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _describe(e: BaseException) -> str:
    """One line: the exception's type and first line (a Ray task error: the error it wraps)."""
    cause = getattr(e, "cause", None)
    if isinstance(cause, BaseException) and cause is not e:
        e = cause
    text = _ANSI.sub("", str(e)).strip()
    text = text.splitlines()[0] if text else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


# ---------------------------------------------------------------- executors


Emit = Callable[[int, list[TaskResult]], None]


def _run_here(tasks: list[Task], emit: Emit, started, progress, should_stop) -> None:
    """One worker: train in this process (no pool to start, the compile cache is this process's)."""
    for i, task in enumerate(tasks):
        if should_stop():
            return
        started(i)

        def on_epoch(r, i=i) -> None:
            progress(i, r.epoch, r.epochs, r.loss, r.accuracy)

        try:
            results = train_task(task, should_stop=should_stop, on_epoch=on_epoch)
        except Exception as e:  # noqa: BLE001 - one task's failure must not stop the others
            results = _error_results(task, _describe(e))
        emit(i, results)


def _run_pool(tasks: list[Task], workers: int, emit: Emit, started, progress, should_stop) -> None:
    """A pool of ``workers`` spawned processes, at most one task each at a time."""
    import multiprocessing as mp
    import queue as queue_mod
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    ctx = mp.get_context("spawn")  # fork after TensorFlow (or Ray) threads start is unsafe
    stop_event, events = ctx.Event(), ctx.Queue()
    todo = deque(enumerate(tasks))

    def drain() -> None:
        while True:
            try:
                progress(*events.get_nowait())
            except queue_mod.Empty:
                return

    stopping = False
    while todo and not stopping:
        pool = ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx,
                                   initializer=_init_worker, initargs=(stop_event, events, os.getpid()))
        running: dict = {}
        broken = False
        try:
            while todo or running:
                while todo and len(running) < workers and not stopping and not broken:
                    i, task = todo.popleft()
                    running[pool.submit(_worker_run, i, task)] = i
                    started(i)
                if not running:
                    break
                done, _ = wait(running, timeout=0.25, return_when=FIRST_COMPLETED)
                drain()
                if should_stop() and not stopping:
                    stopping = True
                    stop_event.set()  # running tasks end at their next epoch, saved as 'interrupted'
                for fut in done:
                    i = running.pop(fut)
                    try:
                        results = fut.result()
                    except BrokenProcessPool as e:
                        broken = True
                        results = _error_results(tasks[i], f"a worker process died ({_describe(e)})")
                    except Exception as e:  # noqa: BLE001 - one task's failure must not stop the others
                        results = _error_results(tasks[i], _describe(e))
                    emit(i, results)
                if broken and not running:
                    break
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            drain()


def _run_ray(tasks: list[Task], workers: int, emit: Emit, started, should_stop) -> None:
    """One Ray task per group, one CPU each, at most ``workers`` at a time (so 'running' means
    running); the driver writes the run files it gets back."""
    import ray

    remote = ray.remote(num_cpus=1, max_retries=0)(train_task)
    todo = deque(enumerate(tasks))
    refs: dict = {}
    try:
        while todo or refs:
            while todo and len(refs) < workers:
                i, task = todo.popleft()
                refs[remote.remote(task)] = i
                started(i)
            done, _ = ray.wait(list(refs), num_returns=1, timeout=0.25)
            if should_stop():
                for ref in refs:
                    ray.cancel(ref)  # cancelled points are trained when the sweep runs again
                return
            for ref in done:
                i = refs.pop(ref)
                try:
                    results = ray.get(ref)
                except Exception as e:  # noqa: BLE001 - a task error (RayTaskError) or a lost worker
                    results = _error_results(tasks[i], _describe(e))
                emit(i, results)
    except BaseException:
        for ref in refs:
            ray.cancel(ref)
        raise


def import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray: install it with pip install 'echo-rnn-cli[ray]'") from None
    return ray


def resolve_ray_address(address: str | None) -> str:
    """The cluster to join: ``address``, else RAY_ADDRESS; refused when neither is given, or when
    HOST:PORT does not answer (Ray itself would retry for minutes)."""
    import socket

    address = address or os.environ.get("RAY_ADDRESS")
    if not address:
        raise ConfigError("--executor ray needs a cluster: --ray-address HOST:PORT (or 'auto' for one "
                          "started with `ray start` here, 'local' for a private one), or set RAY_ADDRESS")
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if sep and host and port.isdigit():
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=10).close()
        except OSError as e:
            raise ConfigError(f"--ray-address {address!r}: no Ray cluster answers there "
                              f"({e.strerror or type(e).__name__})") from None
    return address


def connect_ray(address: str | None) -> bool:
    """Join the cluster at ``address`` (or RAY_ADDRESS); 'local' starts a private one on this machine.
    False if this process was connected already (by its caller: leave that connection alone)."""
    import logging

    ray = import_ray()
    if ray.is_initialized():
        return False
    address = resolve_ray_address(address)
    try:
        ray.init(address=address, include_dashboard=False if address == "local" else None,
                 log_to_driver=False, logging_level=logging.WARNING, configure_logging=True)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise ConfigError(f"--ray-address {address!r}: cannot connect to a Ray cluster ({_describe(e)})") from None
    return True


# ---------------------------------------------------------------- the sweep


def default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def prepare(base: Config, grid: Mapping[str, Sequence[Any]], seeds: int, out_dir: str | os.PathLike
            ) -> tuple[list[Point], Path, dict[str, PointResult]]:
    """Everything checked before any training: the points, the folder, what is done already."""
    points = expand_grid(base, grid, seeds)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out-dir {str(out)!r} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe.", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ConfigError(f"--out-dir {str(out)!r} cannot be written: {e.strerror or e}") from None
    return points, out, finished_points(points, out)


def run_sweep(base: Config, grid: Mapping[str, Sequence[Any]], seeds: int = 1,
              out_dir: str | os.PathLike = "sweep", jobs: int | None = None, executor: str = "local",
              on_event: Callable[[SweepEvent], None] | None = None,
              should_stop: Callable[[], bool] | None = None, ray_address: str | None = None) -> SweepResult:
    """Train every point of ``grid`` (a dict key -> values) over ``base``, ``seeds`` seeds each, into
    ``out_dir`` (one run file per point, named by :func:`point_name`, and ``sweep.json``).

    Points already finished there are skipped. A point that fails (diverges, or its training
    raises) does not stop the others; see ``SweepResult.failed``. ``should_stop`` is polled
    throughout: when it turns true, running points stop at their next epoch (saved as
    'interrupted'), no new ones start, and the result has ``interrupted`` set."""
    if executor not in EXECUTORS:
        raise ConfigError(f"--executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if jobs is not None and jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    if executor == "ray" and not import_ray().is_initialized():
        resolve_ray_address(ray_address)  # before anything is written
    points, out, done = prepare(base, grid, seeds, out_dir)
    emit_event = on_event or (lambda e: None)
    should_stop = should_stop or (lambda: False)
    t0 = time.perf_counter()
    todo = [p for p in points if p.name not in done]
    connected = False
    if executor == "ray" and todo:
        connected = connect_ray(ray_address)  # before anything is written: a wrong address changes nothing
        if jobs is None:
            import ray

            jobs = max(1, int(ray.cluster_resources().get("CPU", 1)))
    try:
        return _sweep(base, grid, points, out, done, todo, jobs or default_jobs(), executor, emit_event,
                      should_stop, t0)
    finally:
        if connected:
            import ray

            ray.shutdown()  # disconnects; stops the cluster only if it was a private ('local') one


def _sweep(base, grid, points, out, done, todo, jobs, executor, emit_event, should_stop, t0) -> SweepResult:
    groups = make_tasks(todo, jobs)
    tasks = [Task([p.name for p in g], [p.config for p in g], None if executor == "ray" else str(out))
             for g in groups]

    result = SweepResult(points, dict(done))
    manifest = Manifest(out, base, grid, points, executor)
    for r in done.values():
        manifest.update(r)
    emit_event(SweepEvent("planned", tuple(p.name for p in points), skipped=tuple(done)))
    for r in done.values():
        emit_event(SweepEvent("finished", (r.name,), r))

    def started(i: int) -> None:
        emit_event(SweepEvent("started", tuple(tasks[i].names)))

    def progress(i: int, epoch: int, epochs: int, loss: float, accuracy: float) -> None:
        emit_event(SweepEvent("epoch", tuple(tasks[i].names), epoch=epoch, epochs=epochs, loss=loss,
                              accuracy=accuracy))

    def emit(i: int, results: list[TaskResult]) -> None:
        for r in results:
            summary = r.summary
            if r.data is not None:  # from a Ray worker: the driver writes the file
                path = out / f"{r.name}.npz"
                atomic_write_bytes(path, r.data)
                summary = dict(summary or {}, output=str(path))
            pr = PointResult(r.name, r.status, r.message, summary)
            result.results[r.name] = pr
            manifest.update(pr)
            emit_event(SweepEvent("finished", (r.name,), pr))

    if tasks:
        if executor == "ray":
            _run_ray(tasks, jobs, emit, started, should_stop)
        elif min(jobs, len(tasks)) == 1:
            _run_here(tasks, emit, started, progress, should_stop)
        else:
            _run_pool(tasks, jobs, emit, started, progress, should_stop)
    result.interrupted = should_stop() or any(r.status == "interrupted" for r in result.results.values())
    result.wall_seconds = time.perf_counter() - t0
    return result


__all__ = ["EXECUTORS", "MANIFEST", "Point", "PointResult", "SweepEvent", "SweepResult", "expand_grid",
           "key_order", "make_tasks", "parse_grid", "point_name", "run_sweep", "read_manifest"]
