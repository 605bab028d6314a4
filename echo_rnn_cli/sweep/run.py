"""The sweep itself: check everything, group the points into tasks, hand them to an executor, and
record each result (run file, ``sweep.json``, an event) as it comes back."""

from __future__ import annotations

import contextlib
import math
import os
import stat
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Config, ConfigError, program_key
from ..files import NameTaken, atomic_write_bytes, probe_write
from ..memory import check_models
from .executors.local import default_jobs, run_here, run_pool
from .executors.ray import cluster_cpus, connect_ray, disconnect_ray, import_ray, resolve_ray_address, run_ray
from .executors.task import Board, Task, TaskResult
from .grid import Point, expand_grid
from .manifest import MANIFEST, Manifest, PointResult, finished_points, kept_run

EXECUTORS = ("local", "ray")
#: In the output folder, locked while a sweep runs there.
LOCK = ".sweep.lock"


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


def make_tasks(points: Sequence[Point], workers: int) -> list[list[Point]]:
    """Group points that one compiled program can train together, where that is faster than one
    at a time (``Config.groups_well``; other points are tasks of their own); split the largest
    groups while there are fewer groups than workers. Largest first, so the long tasks start early."""
    groups: dict[tuple, list[Point]] = {}
    for p in points:
        key = program_key(p.config) if p.config.groups_well else (p.name,)
        groups.setdefault(key, []).append(p)
    tasks = list(groups.values())
    while len(tasks) < workers:
        big = max(tasks, key=len, default=None)
        if big is None or len(big) < 2:
            break
        tasks.remove(big)
        half = (len(big) + 1) // 2
        tasks += [big[:half], big[half:]]
    return sorted(tasks, key=lambda t: -len(t) * t[0].config.epochs * t[0].config.total_series_length)


def prepare(base: Config, grid: Mapping[str, Sequence[Any]], seeds: int, out_dir: str | os.PathLike,
            tensorboard: str | os.PathLike | None = None) -> tuple[list[Point], Path]:
    """Everything checked before any training and before the folder is touched: the points, that
    each program's group fits in memory, the folder (created, writable, no non-file in the way),
    and the TensorBoard folders, with ``tensorboard``."""
    from ..guards import check_output

    out = check_out_dir(out_dir)
    # The name, what is there, its parents (created) and a write in it: one line, exit 2, as every output.
    check_output(out, folder=True, replace=True, what="--out-dir", ways_out=None, make_parents=True)
    points = expand_grid(base, grid, seeds)
    check_group_memory(points)
    if tensorboard is not None:
        from ..tensorboard import check_logdirs

        check_logdirs(tensorboard, [p.name for p in points])
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out-dir {str(out)!r} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe_write(out)
    except OSError as e:
        raise ConfigError(f"--out-dir {str(out)!r} cannot be written: {e.strerror or e}") from None
    for name in [MANIFEST, *(p.file for p in points)]:
        if (out / name).exists() and not (out / name).is_file():  # a FIFO or device would block or be lost
            raise ConfigError(f"{str(out / name)!r} is not a regular file; a sweep writes there: remove it "
                              f"or use another --out-dir")
    return points, out


def check_out_dir(out_dir: str | os.PathLike) -> Path:
    """``--out-dir`` as given: an empty name is refused (``Path('')`` is the current folder, which
    the user did not name)."""
    if not os.fspath(out_dir).strip():
        raise ConfigError("--out-dir: an empty name; give a folder such as 'sweep'")
    return Path(out_dir)


def check_group_memory(points: Sequence[Point]) -> None:
    """Each group of points one program trains must fit in memory, checked as ``train --seeds``
    checks its models: before anything is built or written."""
    groups: dict[tuple, list[Point]] = {}
    for p in points:
        groups.setdefault(program_key(p.config), []).append(p)
    for group in groups.values():
        check_models(group[0].config, len(group), "--grid and --seeds put in one program")


@contextlib.contextmanager
def folder_lock(out: Path) -> Iterator[None]:
    """Hold ``DIR/.sweep.lock`` exclusively for the sweep's lifetime, so that a second sweep on the
    same folder is refused instead of training every point again. The kernel releases the lock
    when this process ends, however it ends (kill -9 too); the file itself stays (removing it would
    let two sweeps lock two different files)."""
    import fcntl

    path = out / LOCK
    flags = os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as e:
        raise ConfigError(f"--out-dir {str(out)!r}: cannot open its lock file {LOCK}: {e.strerror or e}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfigError(f"{str(path)!r} is not a regular file; remove it")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            raise ConfigError(f"--out-dir {str(out)!r} is in use by another sweep"
                              + (f" (process {holder})" if holder.isdigit() else "")
                              + "; wait for it to end, or use another --out-dir") from None
        except OSError:  # a file system without locks: sweep regardless, as before locks existed
            pass
        else:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def run_sweep(base: Config, grid: Mapping[str, Sequence[Any]], seeds: int = 1,
              out_dir: str | os.PathLike = "sweep", jobs: int | None = None, executor: str = "local",
              on_event: Callable[[SweepEvent], None] | None = None,
              should_stop: Callable[[], bool] | None = None, ray_address: str | None = None,
              tensorboard: str | os.PathLike | None = None) -> SweepResult:
    """Train every point of ``grid`` (a dict key -> values) over ``base``, ``seeds`` seeds each, into
    ``out_dir`` (one run file per point, named by :func:`~echo_rnn_cli.sweep.grid.point_name`, and
    ``sweep.json``).

    Points already finished there are skipped. A point that fails (diverges, or its training
    raises) does not stop the others; see ``SweepResult.failed``. ``should_stop`` is polled
    throughout: when it turns true, running points stop at their next epoch (saved as
    'interrupted'), no new ones start, and the result has ``interrupted`` set.

    ``tensorboard``: a folder for TensorBoard event files, one run folder per point (named like its
    run file) with the point's settings as HParams. The workers write there themselves: on Ray it
    must be a folder every node sees at the same path (a shared file system)."""
    if executor not in EXECUTORS:
        raise ConfigError(f"--executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if jobs is not None and jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    if executor == "ray" and not import_ray().is_initialized():
        resolve_ray_address(ray_address)  # before anything is written
    points, out = prepare(base, grid, seeds, out_dir, tensorboard)
    emit_event = on_event or (lambda e: None)
    should_stop = should_stop or (lambda: False)
    t0 = time.perf_counter()
    with folder_lock(out):
        done = finished_points(points, out)
        todo = [p for p in points if p.name not in done]
        connected = False
        if executor == "ray" and todo:
            connected = connect_ray(ray_address)  # before anything is written: a wrong address changes nothing
            if jobs is None:
                jobs = cluster_cpus()
        try:
            return _sweep(base, grid, points, out, done, todo, jobs or default_jobs(), executor, emit_event,
                          should_stop, t0, tensorboard)
        finally:
            if connected:
                disconnect_ray()


def _sweep(base, grid, points, out, done, todo, jobs, executor, emit_event, should_stop, t0,
           tensorboard=None) -> SweepResult:
    groups = make_tasks(todo, jobs)
    tasks = [Task([p.name for p in g], [p.config for p in g], None if executor == "ray" else str(out),
                  _board(tensorboard, points, g)) for g in groups]

    result = SweepResult(points, dict(done))
    by_name = {p.name: p for p in points}
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
            pr = _write_returned(out, r, by_name[r.name].config) if r.data is not None else \
                PointResult(r.name, r.status, r.message, r.summary)
            result.results[r.name] = pr
            manifest.update(pr)
            emit_event(SweepEvent("finished", (r.name,), pr))

    _execute(executor, tasks, jobs, emit, started, progress, should_stop)
    result.interrupted = should_stop() or any(r.status == "interrupted" for r in result.results.values())
    result.wall_seconds = time.perf_counter() - t0
    return result


def _board(tensorboard, points: Sequence[Point], group: Sequence[Point]) -> Board | None:
    """A task's TensorBoard folder and HParams: its points' settings, every varied setting's values."""
    if tensorboard is None:
        return None
    domains = {k: sorted({p.settings[k] for p in points}) for k in points[0].settings}
    return Board(str(Path(tensorboard).absolute()), [dict(p.settings) for p in group], domains)


def _write_returned(out: Path, r: TaskResult, config: Config) -> PointResult:
    """A Ray worker's run file, written by the driver, unless a finished run is there already."""
    path = out / f"{r.name}.npz"
    existed = os.path.lexists(path)  # what kept_run judges is all this point may replace
    kept = kept_run(path, config, r.status, (r.summary or {}).get("epochs_completed", 0))
    if kept is not None:
        return kept
    try:
        atomic_write_bytes(path, r.data, replace=existed)
    except NameTaken:
        return kept_run(path, config, r.status, (r.summary or {}).get("epochs_completed", 0)) or PointResult(
            r.name, "error", f"{str(path)!r} appeared while the point trained (another writer?); this point's "
                             "run was not saved over it")
    return PointResult(r.name, r.status, r.message, dict(r.summary or {}, output=str(path)))


def _execute(executor: str, tasks: list[Task], jobs: int, emit, started, progress, should_stop) -> None:
    """Hand the tasks to the executor; one worker (or one task) trains in this process."""
    if not tasks:
        return
    if executor == "ray":
        run_ray(tasks, jobs, emit, started, should_stop)
    elif min(jobs, len(tasks)) == 1:
        run_here(tasks, emit, started, progress, should_stop)
    else:
        run_pool(tasks, jobs, emit, started, progress, should_stop)
