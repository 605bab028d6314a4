"""The echo task's data (NumPy only): a random symbol series, its echo, rows and windows.

Every random stream is derived from the seed and its purpose, so an epoch's data depends only on
(seed, epoch): a resumed run sees exactly the data an uninterrupted one would have.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # only a type here: config may then import from this module without a cycle
    from .config import Config

INIT_STREAM, TRAIN_STREAM, EVAL_STREAM, DROPOUT_STREAM, MEMORY_STREAM = 0, 1, 2, 3, 4


def input_width(num_classes: int) -> int:
    """Binary symbols go in as the scalar 0/1 (the tutorial's encoding); more classes one-hot.

    Here, beside the data, and not in ``model``, so that modules which must not import TensorFlow
    (the run file's checks, the memory estimate) use the same rule."""
    return 1 if num_classes == 2 else num_classes


def rng_for(seed: int, stream: int, *extra: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream, *extra])


def echo_series(rng: np.random.Generator, length: int, echo_step: int, num_classes: int = 2):
    """Random symbols 0..C-1 and their echo: the series shifted right by echo_step, head zeroed."""
    x = rng.integers(0, num_classes, size=length, dtype=np.int32)
    y = np.roll(x, echo_step)
    y[:echo_step] = 0
    return x, y


def to_rows(series: np.ndarray, batch_size: int) -> np.ndarray:
    """[L] -> [B, L // B], the tutorial's reshape; a remainder that fills no column is dropped."""
    row = series.shape[0] // batch_size
    return series[: row * batch_size].reshape(batch_size, row)


def to_windows(rows: np.ndarray, steps: int, stride: int | None = None) -> np.ndarray:
    """[B, R] -> [W, B, T]: windows of T steps starting every ``stride`` steps (default T: side by
    side) along the rows, (R - T) // stride + 1 of them, a short tail dropped."""
    batch, row = rows.shape
    stride = stride or steps
    if stride == steps:
        n = row // steps
        return np.ascontiguousarray(rows[:, : n * steps].reshape(batch, n, steps).transpose(1, 0, 2))
    starts = np.arange(0, row - steps + 1, stride)
    return np.ascontiguousarray(rows[:, starts[:, None] + np.arange(steps)].transpose(1, 0, 2))


def windows_for(c: Config, rng: np.random.Generator, stride: int | None = None):
    """One series drawn from rng, as windows: (xs, ys), each [W, B, T] int32."""
    x, y = echo_series(rng, c.total_series_length, c.echo_step, c.num_classes)
    t = c.truncated_backprop_length
    return to_windows(to_rows(x, c.batch_size), t, stride), to_windows(to_rows(y, c.batch_size), t, stride)


def epoch_data(c: Config, epoch: int):
    """The fresh training series of one epoch (the tutorial draws new data every epoch), in windows
    ``c.stride_steps`` apart."""
    return windows_for(c, rng_for(c.seed, TRAIN_STREAM, epoch), c.stride_steps)


def dropout_masks(c: Config, epoch: int) -> np.ndarray | None:
    """[W, L, B, T, S] float32 inverted-dropout multipliers of one epoch's training windows (0, or
    1 / (1 - p) for the units kept), from the seed and the epoch alone, so that a resumed run and a
    model trained among others draw the same ones; None without dropout."""
    if c.dropout == 0:
        return None
    rng = rng_for(c.seed, DROPOUT_STREAM, epoch)
    shape = (c.windows_per_epoch, c.num_layers, c.batch_size, c.truncated_backprop_length, c.state_size)
    keep = rng.random(shape, dtype=np.float32) >= np.float32(c.dropout)
    return keep.astype(np.float32) * np.float32(1.0 / (1.0 - c.dropout))


def eval_data(c: Config):
    """A held-out series from its own random stream, never used for training (windows side by
    side, whatever the training's stride)."""
    return windows_for(c, rng_for(c.seed, EVAL_STREAM))


def eval_weights(c: Config) -> np.ndarray:
    """[W, B, T] float32: 0 for the series' first echo_step targets (zeros by construction)."""
    w = np.ones((c.batch_size, c.row_length), np.float32)
    w[0, : c.echo_step] = 0.0
    return to_windows(w, c.truncated_backprop_length)
