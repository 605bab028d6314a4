"""Whether a config fits in this machine's memory, estimated before anything is built.

A config whose estimate exceeds half the machine's memory is refused with one line that names the
setting to reduce and its largest value that would fit (the settings the user gave first).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Protocol

from .settings import ConfigError


class Config(Protocol):
    """What the estimate reads of a ``config.Config`` (not imported: config imports this module)."""

    epochs: int
    total_series_length: int
    truncated_backprop_length: int
    state_size: int
    num_classes: int
    batch_size: int
    snapshot_every: int
    cell: str
    num_layers: int
    dropout: float
    stride: int

    @property
    def input_width(self) -> int: ...

#: Bytes per symbol of a series: each epoch's series and its echo, as rows, as windows, stacked
#: for the compiled program and copied into it, and the held-out series beside them. Measured
#: about 58 (peak memory of 2e7 symbols less that of 2e6, on the CPU), rounded up.
SERIES_BYTES_PER_SYMBOL = 64

#: The settings that drive each part, for naming the one to reduce.
_PART_KEYS = {"weights": ("state_size", "num_classes", "num_layers"),
              "window": ("truncated_backprop_length", "batch_size", "num_layers"),
              "series": ("total_series_length",), "trace": ("epochs", "total_series_length"),
              "masks": ("total_series_length", "state_size", "num_layers")}
#: Blocks of state_size columns per layer (``cells.GATES``, here without importing TensorFlow).
_GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def _windows(c: Config) -> int:
    """Training windows per epoch (``Config.windows_per_epoch``, for any config the search tries)."""
    row, steps = c.total_series_length // c.batch_size, c.truncated_backprop_length
    return (row - steps) // (c.stride or steps) + 1 if row >= steps else 0


def _memory_parts(c: Config) -> dict[str, int]:
    """A rough upper bound of what one model of this config holds at once, by the setting that
    drives each part (all Python ints: no overflow, however absurd the sizes)."""
    g, s, layers = _GATES.get(c.cell, 4), c.state_size, c.num_layers
    # Weights (a GRU's two biases counted), both optimizer slots and the gradients.
    per_layer = (s + s + 2) * g * s
    weights = ((c.input_width - s) * g * s + layers * per_layer + s * (c.num_classes + 1) + c.num_classes) * 4 * 4
    # One window's states and gates, their derivatives, logits and probabilities inside the compiled
    # program, and a step's broadcast state-by-weights product, in case it is not fused away.
    window = c.batch_size * c.truncated_backprop_length * (s * 8 * g * layers + c.num_classes * 6) * 4
    weights += 2 * c.batch_size * s * (g * s * layers + c.num_classes) * 4
    windows = _windows(c)
    # Overlapping windows (a stride below the window's length) copy each symbol T / K times.
    series = c.total_series_length * SERIES_BYTES_PER_SYMBOL * c.truncated_backprop_length // (
        c.stride or c.truncated_backprop_length)
    # An epoch's dropout masks: drawn, kept as float32 and stacked for the compiled program.
    masks = 3 * windows * layers * c.batch_size * c.truncated_backprop_length * s * 4 if c.dropout else 0
    n_snap = -(-windows // c.snapshot_every) if windows else 0
    per_snapshot = c.batch_size * c.truncated_backprop_length * (c.num_classes + 2) * 4
    # Kept for the whole run, and concatenated once at the end (twice the size for a moment):
    # each window's loss, accuracy and epoch, the snapshots, and a little bookkeeping per epoch.
    trace = 2 * c.epochs * (windows * 12 + n_snap * per_snapshot + 1024)
    return {"weights": weights, "window": window, "series": series, "trace": trace, "masks": masks}


def memory_bytes(c: Config) -> int:
    return sum(_memory_parts(c).values())


def _largest_fitting(c: Config, key: str, budget: int) -> int:
    """The largest value of ``key`` (the others as given) whose estimate fits the budget, or 0."""
    lo, hi = 0, getattr(c, key)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if memory_bytes(dataclasses.replace(c, **{key: mid})) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _what_to_reduce(c: Config, budget: int, given: set[str]) -> tuple[str, int]:
    """The setting to name when a config does not fit, and its largest value that would (0: none).

    The settings the user gave come first, then the others; within each, the one driving the
    biggest part of the estimate first; the first whose reduction alone is enough is named."""
    parts = _memory_parts(c)
    keys = sorted(_PART_KEYS, key=parts.get, reverse=True)
    ordered = list(dict.fromkeys(k for part in keys for k in _PART_KEYS[part]))
    ordered = [k for k in ordered if k in given] + [k for k in ordered if k not in given]
    for key in ordered:
        fits = _largest_fitting(c, key, budget)
        if fits >= (2 if key == "num_classes" else 1):
            return key, fits
    return ordered[0], 0


def _show(n: int) -> str:
    """An integer as given, or in scientific notation when it is absurdly long."""
    text = str(n)
    return text if len(text) <= 24 else f"{text[0]}.{text[1:3]}e+{len(text) - 1}"


def _gib(n: int) -> str:
    return f"about {n / 2**30:,.1f} GiB" if n < 2**80 else "more than 10^15 GiB"


def available_memory() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 1 << 40


def check_fits(c: Config, name: Callable[[str], str], given: set[str]) -> None:
    """Refuse a config whose one model would not fit; ``name`` says how to call a key in the
    message, ``given`` are the keys the user set (named first when one must be reduced)."""
    need, have = memory_bytes(c), available_memory()
    if need > have // 2:
        key, fits = _what_to_reduce(c, have // 2, given=given)
        allowed = (f"at most {fits:,} with the other settings as they are" if fits
                   else "smaller values of the other settings too")
        raise ConfigError(
            f"{name(key)} {_show(getattr(c, key))} needs {_gib(need)} of memory and this machine "
            f"has {have / 2**30:,.1f} GiB (at most half of it may be used); allowed: {allowed}"
        )


def check_models(c: Config, models: int, name: str = "--seeds") -> None:
    """Refuse training ``models`` copies of a config together when they would not fit in memory
    (each holds its own weights, traces and series); before any of them is even built."""
    one, have = memory_bytes(c), available_memory()
    if models * one > have // 2:
        fits = (have // 2) // max(one, 1)
        raise ConfigError(
            f"{name} {_show(models)}: {_show(models)} models of these settings need {_gib(models * one)} of "
            f"memory and this machine has {have / 2**30:,.1f} GiB (at most half of it may be used); "
            f"allowed: at most {fits:,}"
        )
