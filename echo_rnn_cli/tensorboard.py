"""TensorBoard event files for a run, through ``tf.summary`` (imported when a logger is made).

Tags (each a scalar unless said):
- ``train/window_loss``, ``train/window_accuracy``: every Nth training window, step = window index
  since the run began (N keeps a long run to about MAX_POINTS points per tag; 1 for short runs)
- ``train/epoch_loss``, ``train/epoch_accuracy``: the means of each epoch, step = epochs done
- ``eval/loss``, ``eval/accuracy``: the held-out results, step = epochs done (only when finite)
- ``config`` (text): the settings as a table; ``status`` (text): completed/interrupted/diverged
- ``memory/lag``, ``memory/share``: at each memory record (step = epochs done), the lag the network
  rests on most and its share of the profile (absent where it rests on no input); ``memory/profile``
  and ``memory/reach`` (images): the record's memory profile and gradient's reach as a strip, lag 0
  on the left, brighter = more (the reach on a log scale over six decades); written when the call
  of ``train`` ends, for the records it made
A sweep gives each point its own folder and calls ``log_hparams`` there, so TensorBoard's HParams
table and parallel-coordinates views compare the points by their settings and eval metrics; an
optional ``log_hparams_config`` at the sweep's top folder names the columns and their values.

``train --tensorboard DIR`` and ``sweep --tensorboard DIR`` use ``check_logdirs`` (before anything
trains) and ``GroupLogger`` (one logger per model trained together, fed by the trainer's epoch
reports); a sweep's worker opens its points with ``open_sweep_points``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

MAX_POINTS = 10_000
METRICS = ("eval/accuracy", "eval/loss")
#: The HParams table's metric columns in a sweep: the held-out results, and the training means,
#: which a running point has already.
SWEEP_METRICS = (*METRICS, "train/epoch_accuracy", "train/epoch_loss")


def window_every(total_windows: int, max_points: int = MAX_POINTS) -> int:
    """The N of 'every Nth window' that keeps ``total_windows`` to at most ``max_points`` points."""
    return max(1, math.ceil(total_windows / max_points))


def _tf():
    from ._tf import tf

    return tf


def _finite(value: Any) -> bool:
    return value is not None and np.isfinite(float(value))


def config_markdown(config: Any) -> str:
    """The settings as a Markdown table (TensorBoard's text dashboard renders Markdown)."""
    rows = [f"| {k} | {json.dumps(v)} |" for k, v in sorted(config.to_dict().items())]
    return "\n".join(["| setting | value |", "|---|---|", *rows])


class TensorBoardLogger:
    """One run's event files in ``logdir``. ``every``: log every Nth window; None picks N from the
    config's epochs x windows_per_epoch (see ``window_every``)."""

    def __init__(self, logdir: str | os.PathLike, config: Any, every: int | None = None, first_epoch: int = 0):
        if every is not None and every < 1:
            raise ValueError(f"every must be at least 1, got {every}")
        tf = _tf()
        self.config = config
        self.first_epoch = first_epoch  # the run's memory records from before it were logged then
        self.every = every or window_every(config.epochs * config.windows_per_epoch)
        self.logdir = str(logdir)
        self._writer = tf.summary.create_file_writer(self.logdir)

    def log_epoch(self, epoch: int, first_window: int, losses: Any, accuracies: Any) -> None:
        """One epoch: its windows' losses and accuracies (the window index of the first is
        ``first_window``, counted from the run's start); ``epoch`` = epochs done after it."""
        tf = _tf()
        losses, accuracies = np.asarray(losses, np.float64), np.asarray(accuracies, np.float64)
        with self._writer.as_default():
            # Windows whose index is a multiple of N, wherever the epoch starts, so resumed runs line up.
            start = (-first_window) % self.every
            for i in range(start, losses.size, self.every):
                tf.summary.scalar("train/window_loss", losses[i], step=first_window + i)
                tf.summary.scalar("train/window_accuracy", accuracies[i], step=first_window + i)
            if losses.size:
                tf.summary.scalar("train/epoch_loss", float(np.nanmean(losses)), step=epoch)
                tf.summary.scalar("train/epoch_accuracy", float(np.nanmean(accuracies)), step=epoch)
        self._writer.flush()

    def log_config(self, step: int = 0) -> None:
        """The settings as text now, so a run in progress shows them."""
        tf = _tf()
        with self._writer.as_default():
            tf.summary.text("config", config_markdown(self.config), step=step)
        self._writer.flush()

    def log_end(self, run: Any) -> None:
        """The run's held-out results (when finite), its config and its status."""
        tf = _tf()
        step = int(run.epochs_completed)
        with self._writer.as_default():
            if _finite(run.eval_loss):
                tf.summary.scalar("eval/loss", float(run.eval_loss), step=step)
            if _finite(run.eval_accuracy):
                tf.summary.scalar("eval/accuracy", float(run.eval_accuracy), step=step)
            tf.summary.text("config", config_markdown(run.config), step=step)
            status = run.status + (f": {run.message}" if run.message else "")
            tf.summary.text("status", status, step=step)
            self._log_memory(tf, run)
        self._writer.flush()

    def _log_memory(self, tf, run: Any) -> None:
        from .memory_profile import peak

        for epoch, profile, reach in zip(run.memory_epoch, run.memory_profile, run.memory_reach, strict=True):
            if epoch < self.first_epoch or (epoch == self.first_epoch and epoch > 0):
                continue
            lag, share = peak(profile)
            if lag is not None:
                tf.summary.scalar("memory/lag", lag, step=int(epoch))
                tf.summary.scalar("memory/share", share, step=int(epoch))
            tf.summary.image("memory/profile", strip(profile), step=int(epoch))
            tf.summary.image("memory/reach", strip(log_scaled(reach[0])), step=int(epoch))

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> TensorBoardLogger:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def log_scaled(values: np.ndarray, decades: float = 6.0) -> np.ndarray:
    """Positive values on a log scale mapped to (0, 1] over ``decades`` below the largest; 0 stays 0."""
    top = float(values.max(initial=0.0))
    if top <= 0:
        return np.zeros_like(values, np.float64)
    with np.errstate(divide="ignore"):
        scaled = 1 + np.log10(np.where(values > 0, values, np.nan) / top) / decades
    return np.nan_to_num(np.clip(scaled, 0.02, 1.0), nan=0.0)


def strip(values: np.ndarray, cell: int = 8, height: int = 24) -> np.ndarray:
    """[1, height, cell * L, 1] float image of values in [0, 1], one ``cell`` wide block a lag."""
    row = np.repeat(np.clip(np.asarray(values, np.float64), 0, 1), cell)
    return np.broadcast_to(row[None, None, :, None], (1, height, row.size, 1)).astype(np.float32)


def _hparam_value(value: Any) -> bool | int | float | str:
    """What the HParams plugin stores: bool, number or string (others as their JSON text)."""
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    return json.dumps(value)


def _domain(values: list) -> list:
    """Distinct values of one setting, of one type as hp.Discrete needs (ints among floats as floats)."""
    vals = [_hparam_value(v) for v in values]
    if any(isinstance(v, float) for v in vals) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                       for v in vals):
        vals = [float(v) for v in vals]
    if len({type(v) for v in vals}) > 1:
        vals = [str(v) for v in vals]
    return sorted(set(vals))


def log_hparams(logdir: str | os.PathLike, settings: dict[str, Any], metrics: dict[str, Any] | None = None,
                step: int = 0) -> None:
    """Record one sweep point's settings (``settings``: the ones the sweep varies) for the HParams
    plugin in its own run folder ``logdir``; ``metrics`` (e.g. {'eval/accuracy': 0.98}) are written
    as scalars too, the finite ones, unless a TensorBoardLogger's ``log_end`` already wrote them there."""
    tf = _tf()  # first: the HParams API imports TensorFlow itself, before _tf has quieted it
    from tensorboard.plugins.hparams import api as hp

    writer = tf.summary.create_file_writer(str(logdir))
    with writer.as_default():
        hp.hparams({str(k): _hparam_value(v) for k, v in settings.items()}, trial_id=os.path.basename(str(logdir)))
        for tag, value in (metrics or {}).items():
            if _finite(value):
                tf.summary.scalar(tag, float(value), step=step)
    writer.close()


def log_hparams_config(logdir: str | os.PathLike, values: dict[str, list], metrics: tuple[str, ...] = METRICS) -> None:
    """At a sweep's top folder: the settings it varies with their values, and the metric columns,
    so the HParams table lists them all (and filters by value) before any point has finished."""
    tf = _tf()  # first: the HParams API imports TensorFlow itself, before _tf has quieted it
    from tensorboard.plugins.hparams import api as hp

    params = [hp.HParam(str(k), hp.Discrete(_domain(vs))) for k, vs in values.items()]
    writer = tf.summary.create_file_writer(str(logdir))
    with writer.as_default():
        hp.hparams_config(hparams=params, metrics=[hp.Metric(m, display_name=m) for m in metrics])
    writer.close()


def check_logdirs(top: str | os.PathLike, names: Sequence[str], flag: str = "--tensorboard") -> list[Path]:
    """The run folders ``top/NAME`` of a --tensorboard folder, created (with ``top``) and checked
    writable before anything trains; anything in the way that is not a folder is one ConfigError."""
    from .guards import GuardError, check_output
    from .settings import ConfigError

    top = Path(top)
    if not str(top).strip():
        raise ConfigError(f"{flag}: an empty name; give a folder such as 'tb'")
    dirs = [top / n for n in names]
    try:  # the names' lengths and what is in the way, as every output is checked (guards.check_output)
        check_output(top, folder=True, replace=True, what=flag, ways_out=None, make_parents=True)
        top.mkdir(exist_ok=True)
        for d in dirs:
            check_output(d, folder=True, replace=True, what=flag, ways_out=None)
    except GuardError as e:
        raise ConfigError(str(e)) from None
    except OSError as e:
        raise ConfigError(f"{flag} {str(top)!r} cannot be written: {e.strerror or e}") from None
    try:
        for d in dirs or [top]:
            d.mkdir(parents=True, exist_ok=True)
            if not os.access(d, os.W_OK | os.X_OK):
                raise PermissionError(13, "Permission denied")
    except OSError as e:
        raise ConfigError(f"{flag} {str(top)!r} cannot be written: {e.strerror or e}") from None
    return dirs


class GroupLogger:
    """A TensorBoardLogger per model trained together (each its own run folder), fed by the
    trainer's epoch reports, so TensorBoard shows the runs while they train."""

    def __init__(self, logdirs: Sequence[str | os.PathLike], configs: Sequence[Any], first_epoch: int = 0):
        self.loggers = [TensorBoardLogger(d, c, first_epoch=first_epoch) for d, c in zip(logdirs, configs, strict=True)]
        for logger in self.loggers:
            logger.log_config(first_epoch)

    def on_epoch(self, report: Any) -> None:
        """``report``: the trainer's EpochReport; a model that diverged before this epoch has no windows."""
        for logger, model in zip(self.loggers, report.models, strict=True):
            if model is not None:
                logger.log_epoch(report.epoch, model.first_window, model.loss, model.accuracy)

    def end(self, runs: Sequence[Any]) -> None:
        for logger, run in zip(self.loggers, runs, strict=True):
            logger.log_end(run)

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()


def open_sweep_points(top: str | os.PathLike, names: Sequence[str], configs: Sequence[Any],
                      settings: Sequence[Mapping[str, Any]], domains: Mapping[str, list]) -> GroupLogger:
    """A sweep worker's points: the HParams columns at the sweep's folder ``top`` (each worker writes
    the same, so whichever runs first, the table has them), each point's settings in its own
    folder ``top/NAME``, and a logger for each."""
    log_hparams_config(top, domains, SWEEP_METRICS)
    dirs = [Path(top) / n for n in names]
    for d, point in zip(dirs, settings, strict=True):
        log_hparams(d, point)
    return GroupLogger(dirs, configs)
