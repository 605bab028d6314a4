"""The unit of work of a sweep's executors: a group of points one ``train_many`` call trains."""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...config import Config
from ...files import NameTaken
from ..manifest import kept_run

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class Board:
    """Where a task's points write TensorBoard events: ``top``/NAME for each (``top`` absolute, as a
    Ray worker writes there itself), with the HParams of each point and of the sweep."""

    top: str
    settings: list[dict[str, Any]]  # each point's settings that the sweep varies (and its seed)
    domains: dict[str, list] = field(default_factory=dict)  # every such setting's values in the sweep


@dataclass
class Task:
    """Points trained by one ``train_many`` call. ``out_dir`` None: return the run files' bytes
    (a Ray worker may not share the driver's disk). ``board``: log to TensorBoard too."""

    names: list[str]
    configs: list[Config]
    out_dir: str | None
    board: Board | None = None


@dataclass
class TaskResult:
    name: str
    status: str
    message: str
    summary: dict[str, Any] | None
    data: bytes | None = None


#: ``emit(i, results)``: task ``i`` ended with these results.
Emit = Callable[[int, list[TaskResult]], None]


def train_task(task: Task, should_stop: Callable[[], bool] | None = None,
               on_epoch: Callable[[Any], None] | None = None) -> list[TaskResult]:
    """Train a task's points together; write (or return) their run files."""
    # Several workers may share one GPU: TensorFlow would otherwise map all its memory to the first.
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    from ...trainer import train_many

    board = None
    if task.board is not None:
        from ...tensorboard import open_sweep_points

        b = task.board
        board = open_sweep_points(b.top, task.names, task.configs, b.settings, b.domains)

    def each_epoch(report) -> None:
        if on_epoch is not None:
            on_epoch(report)
        if board is not None:
            board.on_epoch(report)

    try:
        # The sweep warns once for all points; per-run warnings would repeat it for every group.
        runs = train_many(task.configs, should_stop=should_stop, on_epoch=each_epoch, warn=lambda m: None)
        if board is not None:
            board.end(runs)
    finally:
        if board is not None:
            board.close()
    return [_task_result(name, run, task.out_dir) for name, run in zip(task.names, runs, strict=True)]


def _task_result(name: str, run, out_dir: str | None) -> TaskResult:
    from ...runs import save_run

    if run.status == "diverged":
        # Its weights are not finite: an evaluation of them (in a program shared with healthy
        # models) yields a number that means nothing. Held-out results of a diverged model are NaN.
        run.eval_loss = run.eval_accuracy = math.nan
    if run.status == "interrupted" and run.epochs_completed == 0:
        # Stopped (Ctrl-C, or its driver died) before one epoch ended: nothing worth a file, and a
        # file would replace whatever the point had.
        return TaskResult(name, "interrupted", "stopped before its first epoch ended; nothing saved", None)
    if out_dir is None:  # the driver writes the file (and checks it may)
        with tempfile.TemporaryDirectory() as tmp:
            path = save_run(run, Path(tmp) / f"{name}.npz")
            data = path.read_bytes()
        return TaskResult(name, run.status, run.message, run.summary(None), data)
    path = Path(out_dir) / f"{name}.npz"
    existed = os.path.lexists(path)  # what kept_run judges is all this point may replace
    kept = kept_run(path, run.config, run.status, run.epochs_completed)
    if kept is not None:
        return TaskResult(name, kept.status, kept.message, kept.summary)
    try:
        save_run(run, path, replace=existed)
    except NameTaken:  # a file appeared meanwhile (a lone `train -o` into the folder): it is judged too
        kept = kept_run(path, run.config, run.status, run.epochs_completed)
        if kept is not None:
            return TaskResult(name, kept.status, kept.message, kept.summary)
        return TaskResult(name, "error", f"{str(path)!r} appeared while the point trained (another writer?); "
                                         "this point's run was not saved over it", None)
    return TaskResult(name, run.status, run.message, run.summary(str(path)))


def error_results(task: Task, message: str) -> list[TaskResult]:
    return [TaskResult(n, "error", message, None) for n in task.names]


def describe(e: BaseException) -> str:
    """One line: the exception's type and first line (a Ray task error: the error it wraps)."""
    cause = getattr(e, "cause", None)
    if isinstance(cause, BaseException) and cause is not e:
        e = cause
    text = _ANSI.sub("", str(e)).strip()
    text = text.splitlines()[0] if text else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
