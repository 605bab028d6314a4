"""What every figure shares: the error, the tutorial's style, titles, checks of a run, loss helpers,
the still formats, saving and whether a window can open.

The bars are the tutorial's: input blue (height 1), echo target red (0.5), predicted class green
(0.3), all at the same step so a green bar sits inside a red one when the network is right. With more
than two classes a bar's height is proportional to its symbol: symbol c of C draws c/(C-1) of that
height, so 0 draws nothing, as in the binary case, and the largest symbol the full bar.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..config import Config, network_text
from ..files import atomic_write
from ..runs import Run

#: The tutorial's colours and bar heights.
COLORS = {"input": "tab:blue", "target": "tab:red", "prediction": "tab:green"}
HEIGHTS = {"input": 1.0, "target": 0.5, "prediction": 0.3}
LABELS = {"input": "input", "target": "echo target", "prediction": "prediction"}
KINDS = ("input", "target", "prediction")  # drawing order: each covers the one before
#: Still formats offered by --output (matplotlib draws more; these are the useful ones).
STILL_FORMATS = ("png", "svg", "pdf", "jpg", "jpeg", "webp", "tif", "tiff", "eps", "ps", "svgz")
#: Config keys shown in titles, in this order, with a short name.
TITLE_KEYS = (("echo_step", "echo_step"), ("truncated_backprop_length", "window"), ("state_size", "state"),
              ("batch_size", "batch"), ("num_classes", "classes"), ("optimizer", ""), ("learning_rate", "lr"),
              ("init", "init"), ("seed", "seed"), ("total_series_length", "series"), ("epochs", "epochs"))


class PlotError(ValueError):
    """A run or a request that cannot be drawn; the message is one line meant for the user."""


# ----------------------------------------------------------------------------------------------
# Titles


def settings_text(config: Config, keys: Sequence[str] | None = None, *, network: bool = True,
                  init: str | None = None) -> str:
    """'echo_step 3 · window 15 · ...' for the keys given (all title keys by default), after the
    network's description ('lstm · 2 layers') unless ``network`` is False. ``init``: the scheme a
    run drew (``Run.init_used``), where known, rather than what 'auto' means today."""
    d = config.to_dict()
    parts = [network_text(config)] if network and network_text(config) else []
    for key, short in TITLE_KEYS:
        if keys is not None and key not in keys:
            continue
        value = (init or config.init_scheme) if key == "init" else d[key]  # 'auto' as the scheme it stands for
        if key == "total_series_length":
            parts.append(f"{value:,} symbols/epoch")
        elif key == "learning_rate":
            parts.append(f"lr {value:g}")
        else:
            parts.append(f"{short} {value}".strip())
    return " · ".join(parts)


def run_headline(run: Run, name: str | None = None) -> str:
    """'NAME: interrupted, 2 of 3 epochs, held-out accuracy 0.9876'. The status is always named: a
    reader cannot tell a finished run from one cut short by the curve alone."""
    accuracy = "n/a" if not np.isfinite(run.eval_accuracy) else f"{run.eval_accuracy:.4f}"
    head = f"{name}: " if name else ""
    status = f"{run.status}, "
    epochs = (f"{run.epochs_completed}" if run.epochs_completed == run.config.epochs
              else f"{run.epochs_completed} of {run.config.epochs}")
    return f"{head}{status}{epochs} epochs, held-out accuracy {accuracy}"


def wrap_items(text: str, width: int) -> str:
    """Break a ' · '-separated line into lines of at most ``width`` characters, between items."""
    lines: list[str] = []
    for item in text.split(" · "):
        if lines and len(lines[-1]) + 3 + len(item) <= width:
            lines[-1] += " · " + item
        else:
            lines.append(item)
    return "\n".join(lines)


def suptitle(fig, text: str) -> None:
    """The title at a fixed distance from the figure's top edge, whatever the figure's height."""
    fig.suptitle(text, fontsize=10, y=1 - 0.08 / fig.get_figheight(), va="top")


# ----------------------------------------------------------------------------------------------
# What a run can show


def require_windows(run: Run, name: str | None = None) -> None:
    if run.loss.size == 0:
        raise PlotError(f"{repr(name) if name else 'the run'} has no training windows yet (status {run.status}, "
                        f"{run.epochs_completed} epochs done): nothing to plot")


def check_rows(run: Run, rows: int | None) -> int:
    """The sample rows to draw: ``rows`` if the run's batch has them, else 5 or all if fewer."""
    batch = run.config.batch_size
    if rows is None:
        return min(5, batch)
    if rows < 1 or rows > batch:
        raise PlotError(f"--rows {rows}: the run's batch has rows 1..{batch} (batch_size {batch})")
    return rows


def snapshot_index(run: Run, step: int | None = None) -> int:
    """Index of the snapshot nearest training window ``step`` (the last one when None)."""
    windows = run.snapshot_window
    if windows.size == 0:
        raise PlotError("the run holds no prediction snapshots")
    if step is None:
        return int(windows.size - 1)
    last = run.windows_trained - 1
    if step < 0 or step > max(last, int(windows[-1])):
        raise PlotError(f"--step {step}: the run has training windows 0..{last}")
    return int(np.argmin(np.abs(windows - step)))  # ties go to the earlier snapshot


# ----------------------------------------------------------------------------------------------
# Loss curves


def finite_loss(loss: np.ndarray) -> np.ndarray:
    """The loss as float64 with every non-finite value NaN (matplotlib leaves a gap, not a spike)."""
    out = np.asarray(loss, np.float64).copy()
    out[~np.isfinite(out)] = np.nan
    return out


def smoothing_width(config: Config) -> int:
    """Windows averaged by the smoothed curve: a hundredth of the planned run, at most one epoch."""
    planned = config.epochs * config.windows_per_epoch
    return int(max(1, min(config.windows_per_epoch, planned // 100)))


def trailing_mean(values: np.ndarray, width: int) -> np.ndarray:
    """Mean of the last ``width`` values at each point (fewer at the start): the value at window w
    depends only on windows up to w, so a growing curve never changes what it has drawn."""
    v = np.asarray(values, np.float64)
    if width <= 1 or v.size == 0:
        return v
    c = np.concatenate([[0.0], np.cumsum(v)])
    idx = np.arange(1, v.size + 1)
    lo = np.maximum(idx - width, 0)
    return (c[idx] - c[lo]) / (idx - lo)


#: Epoch lines closer than this many to a figure blur into a wash; beyond it, every k-th is drawn.
MOST_EPOCH_LINES = 40


def epoch_marks(windows: int, per_epoch: int, most: int = MOST_EPOCH_LINES) -> tuple[np.ndarray, int, str]:
    """The epoch-start lines worth drawing over ``windows`` training windows: the windows where they
    go, every how many epochs (1, 2, 5, 10, 20, 50, ...: a round step reads as one), and the legend's
    label, which says when lines are thinned. The first epoch's start is the axis's left edge and
    gets no line."""
    per_epoch = max(per_epoch, 1)
    epochs = -(-max(windows, 0) // per_epoch)
    every = next(k for k in _round_steps(0) if epochs / k <= max(most, 1))
    starts = np.arange(every, epochs, every) * per_epoch
    label = "epoch start (new series)" if every == 1 else f"epoch start (new series; every {every} epochs)"
    return starts, every, label


def _round_steps(after: int):
    """1, 2, 5, 10, 20, 50, ... from the first past ``after``."""
    scale = 1
    while True:
        for k in (1, 2, 5):
            if k * scale > after:
                yield k * scale
        scale *= 10


def add_epoch_axis(ax, per_epoch: int):
    """Epochs along the top of a loss axis whose x is the training window, at whole epochs."""
    from matplotlib.ticker import MaxNLocator

    sec = ax.secondary_xaxis("top", functions=(lambda w: w / per_epoch, lambda e: e * per_epoch))
    sec.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
    sec.set_xlabel("epoch", fontsize=9)
    sec.tick_params(labelsize=8)
    return sec


#: The loss axis turns logarithmic by itself when the smoothed loss spans this many decades: on a
#: linear axis everything after the first drop would lie flat on zero.
AUTO_LOG_DECADES = 2.0


def loss_decades(curves) -> float:
    """Decades between the largest and the smallest positive finite value of the curves (0 if none)."""
    values = [np.asarray(c, np.float64) for c in curves]
    good = np.concatenate([v[np.isfinite(v) & (v > 0)] for v in values]) if values else np.array([])
    if good.size == 0:
        return 0.0
    return float(np.log10(good.max() / good.min()))


def choose_log(asked: bool | None, curves) -> tuple[bool, str]:
    """Whether the loss axis is logarithmic, and a note for the figure when it was chosen here
    (``asked`` None) rather than by --log / --no-log."""
    if asked is not None:
        return bool(asked), ""
    decades = loss_decades(curves)
    if decades < AUTO_LOG_DECADES:
        return False, ""
    return True, f"log scale: the loss spans {decades:.1f} decades (--no-log for a linear axis)"


def x_limits(windows: int) -> tuple[float, float]:
    """The loss axis's extent with a little room at both ends, so a line at the first or the last
    window (the snapshot marker, say) is not hidden in the axis's border."""
    pad = max(windows, 1) * 0.015
    return -pad, max(windows, 1) + pad


def epoch_legend_handle(label: str, color: str = "tab:orange", style="-"):
    """The legend's sample of the epoch lines: drawn bolder than the faint lines themselves, which
    would otherwise leave the legend entry all but invisible."""
    from matplotlib.lines import Line2D

    return Line2D([], [], color=color, lw=1.5, ls=style, label=label)


# ----------------------------------------------------------------------------------------------
# Writing and showing


def figure_format(path: str | os.PathLike) -> str:
    """The still format named by the file's extension; PlotError for one we do not write."""
    path = Path(path)
    kind = path.suffix.lower().lstrip(".")
    if kind not in STILL_FORMATS:
        got = f": {path.suffix!r} is not a figure format" if path.suffix else " has no extension"
        raise PlotError(f"--output {str(path)!r}{got}; use .png, .svg or .pdf "
                        f"(also {', '.join('.' + k for k in STILL_FORMATS[3:])})")
    return kind


def save_figure(fig, path: str | os.PathLike, dpi: int = 100, *, replace: bool = True, final: bool = False) -> Path:
    """Write a figure atomically (temporary file beside it, then published: over what is there only
    if ``replace``, see ``files.publish``), format by extension. ``final``: see ``files.atomic_write``."""
    path = Path(path)
    kind = figure_format(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format=kind, dpi=dpi), replace=replace, final=final)
    return path


def display_problem() -> str | None:
    """Why no figure window can open here (None when one can). Imports pyplot only when a display
    exists, so a headless machine pays nothing."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display here (DISPLAY and WAYLAND_DISPLAY are not set)"
    import matplotlib.pyplot as plt
    from matplotlib.backends import BackendFilter, backend_registry

    backend = plt.get_backend()  # pyplot falls back to Agg when no GUI toolkit can start
    if backend.lower() in backend_registry.list_builtin(BackendFilter.NON_INTERACTIVE):
        asked = os.environ.get("MPLBACKEND", "")
        where = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or "this machine"
        if asked.lower() == backend.lower():
            why = f"MPLBACKEND is set to {asked}"
        elif asked:
            why = f"MPLBACKEND={asked} could not start on {where!r}"
        else:
            why = f"no GUI toolkit (Tk, Qt, GTK) could open a window on {where!r}"
        return f"matplotlib's backend {backend!r} cannot open windows ({why})"
    return None
