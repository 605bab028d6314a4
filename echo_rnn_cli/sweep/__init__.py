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
a crash or Ctrl-C picks up where it stopped when run again. Nothing replaces a completed run file
(not a worker whose driver was killed, nor a second sweep), a point stopped before its first epoch
ended writes nothing, and a sweep holds ``DIR/.sweep.lock`` while it runs, so that a second sweep on
the same folder is refused rather than training every point again. Nothing here imports TensorFlow
in the calling process unless it trains there itself (one worker).

The modules, each importing only those above it:

- ``grid``: ``--grid`` parsing, expansion into points, run names;
- ``manifest``: ``sweep.json``, each point's result, what is finished already;
- ``executors``: ``task`` (the unit of work), ``local`` (this process or a process pool), ``ray``;
- ``run``: the orchestration, ``run_sweep`` and its events and result.

This package's names below are loaded on first use, so that importing ``grid`` or ``manifest``
(as ``summary`` and ``heatmap`` do) does not load the executors.
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "MAX_POINTS": "grid", "Point": "grid", "expand_grid": "grid", "format_value": "grid",
    "learnability_warnings": "grid", "parse_grid": "grid", "point_name": "grid",
    "MANIFEST": "manifest", "ManifestError": "manifest", "PointResult": "manifest", "read_manifest": "manifest",
    "default_jobs": "executors.local",
    "EXECUTORS": "run", "check_out_dir": "run", "SweepEvent": "run", "SweepResult": "run", "make_tasks": "run",
    "run_sweep": "run",
}


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])


__all__ = sorted(_PUBLIC)
