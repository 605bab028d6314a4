"""The Ray executor: one Ray task per group on a cluster; the driver writes the run files.

Ray is imported only inside these functions: ``import ray`` here is the installed package (imports
are absolute), and nothing imports Ray unless the sweep runs on it.
"""

from __future__ import annotations

import os
from collections import deque

from ...config import ConfigError
from .task import Emit, Task, describe, error_results, train_task


def run_ray(tasks: list[Task], workers: int, emit: Emit, started, should_stop) -> None:
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
                except Exception as e:  # a task error (RayTaskError) or a lost worker or node
                    results = error_results(tasks[i], failure_message(e))
                emit(i, results)
    except BaseException:
        for ref in refs:
            ray.cancel(ref)
        raise


def failure_message(e: BaseException) -> str:
    """One line for a task that came back as an error. A worker, node or owner that died takes the
    task's points with it (reported failed, trained when the sweep runs again); any other error is
    the training's own."""
    from ray import exceptions as rx

    lost = tuple(getattr(rx, n) for n in ("NodeDiedError", "WorkerCrashedError", "RayActorError", "ObjectLostError",
                                          "LocalRayletDiedError", "TaskUnschedulableError") if hasattr(rx, n))
    if isinstance(e, lost):
        return f"lost with its Ray worker or node ({type(e).__name__}); run the sweep again to train it"
    return describe(e)


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
        raise ConfigError(f"--ray-address {address!r}: cannot connect to a Ray cluster ({describe(e)})") from None
    return True


def cluster_cpus() -> int:
    """The connected cluster's CPUs: how many tasks to split a sweep into when --jobs is not given."""
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def disconnect_ray() -> None:
    import ray

    ray.shutdown()  # disconnects; stops the cluster only if it was a private ('local') one
