"""The local executors: in this process (one worker), or a pool of spawned worker processes.

The pool's workers import this module by its path (``spawn``), so ``_init_worker`` and
``_worker_run`` must stay importable module-level functions here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections import deque

from .task import Emit, Task, TaskResult, describe, error_results, train_task


def default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def run_here(tasks: list[Task], emit: Emit, started, progress, should_stop) -> None:
    """One worker: train in this process (no pool to start, the compile cache is this process's)."""
    for i, task in enumerate(tasks):
        if should_stop():
            return
        started(i)

        def on_epoch(r, i=i) -> None:
            progress(i, r.epoch, r.epochs, r.loss, r.accuracy)

        try:
            results = train_task(task, should_stop=should_stop, on_epoch=on_epoch)
        except Exception as e:  # one task's failure must not stop the others
            results = error_results(task, describe(e))
        emit(i, results)


def run_pool(tasks: list[Task], workers: int, emit: Emit, started, progress, should_stop) -> None:
    """A pool of ``workers`` spawned processes, at most one task each at a time."""
    import multiprocessing as mp
    import queue as queue_mod
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    ctx = mp.get_context("spawn")  # fork after TensorFlow (or Ray) threads start is unsafe
    _quiet_resource_tracker()
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
                    with _sigterm_held():  # a worker may be started here
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
                        results = error_results(tasks[i], f"a worker process died ({describe(e)})")
                    except Exception as e:  # one task's failure must not stop the others
                        results = error_results(tasks[i], describe(e))
                    emit(i, results)
                if broken and not running:
                    break
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            drain()


#: The warning filter handed to the resource tracker (``-W``, read from ``sys.warnoptions`` as it starts).
_TRACKER_QUIET = "ignore:resource_tracker:UserWarning"


def _quiet_resource_tracker() -> None:
    """A second Ctrl-C or SIGTERM ends the sweep at once (``os._exit``), before the pool's queue
    and event are released; multiprocessing's resource tracker then removes their semaphores, as it
    should, but says so in a warning with a source path ('There appear to be 13 leaked semaphore
    objects', issue 27) after the sweep's own last line. The tracker is a process of its own,
    started with this process's warning options: it is given one that keeps it quiet."""
    if _TRACKER_QUIET not in sys.warnoptions:
        sys.warnoptions.append(_TRACKER_QUIET)


@contextlib.contextmanager
def _sigterm_held():
    """SIGTERM blocked (held pending, not lost) while workers may be started: a worker inherits the
    mask, so a SIGTERM to the group before it has set its handler waits for ``_init_worker``
    rather than killing it by default (and breaking the pool, every running point an 'error')."""
    held = threading.current_thread() is threading.main_thread()
    if held:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    finally:
        if held:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


# ---------------------------------------------------------------- in a pool worker process

# Per worker process: set by _init_worker.
_worker_stop = None
_worker_events = None
_worker_parent = None
_worker_terminated = False


def _on_sigterm(signum, frame) -> None:
    global _worker_terminated
    _worker_terminated = True


def _init_worker(stop_event, events, parent_pid: int) -> None:
    global _worker_stop, _worker_events, _worker_parent
    # Ctrl-C on a terminal reaches the whole process group; the parent decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # So does SIGTERM from a batch scheduler, `kill -TERM -PGID` or a container stop: dying on it
    # would lose the point's epochs (and break the pool). Stop at the next epoch, saved, as asked.
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # held by the parent while it started us
    _worker_stop, _worker_events, _worker_parent = stop_event, events, parent_pid
    threading.Thread(target=_exit_with_parent, name="echo-rnn-orphan-watch", daemon=True).start()


def _exit_with_parent() -> None:
    """A parent killed outright (a second Ctrl-C, SIGKILL) leaves no one to read the results, and a
    pool worker would wait for work forever (it holds its own queue's write end): leave too."""
    while os.getppid() == _worker_parent:
        time.sleep(1.0)
    os._exit(1)


def _worker_should_stop() -> bool:
    return _worker_terminated or _worker_stop.is_set() or os.getppid() != _worker_parent


def _worker_run(task_id: int, task: Task) -> list[TaskResult]:
    def on_epoch(r) -> None:
        _worker_events.put((task_id, r.epoch, r.epochs, r.loss, r.accuracy))

    return train_task(task, should_stop=_worker_should_stop, on_epoch=on_epoch)
