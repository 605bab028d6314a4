"""Figures from run records: the tutorial's training figure, comparisons of runs, a replay animation
and the live figure of ``train --live``.

Matplotlib only, never TensorFlow. The functions take ``Run`` objects and return matplotlib Figures,
so a notebook calls them as the command line does::

    from echo_rnn_cli import load_run
    from echo_rnn_cli.plotting import training_figure
    training_figure(load_run("run.npz"), rows=3, log=True)

Files are drawn on a bare ``Figure`` (the Agg renderer; pyplot and its GUI backends are never
touched), so writing figures works headless and leaves no global state behind. Only ``--show`` and
``--live`` use pyplot, after ``display_problem`` has said a window can open.

The bars are the tutorial's: input blue (height 1), echo target red (0.5), predicted class green
(0.3), all at the same step so a green bar sits inside a red one when the network is right. With more
than two classes a bar's height is proportional to its symbol: symbol c of C draws c/(C-1) of that
height, so 0 draws nothing, as in the binary case, and the largest symbol the full bar.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from .config import Config
from .files import atomic_write
from .runs import Run

#: The tutorial's colours and bar heights.
COLORS = {"input": "tab:blue", "target": "tab:red", "prediction": "tab:green"}
HEIGHTS = {"input": 1.0, "target": 0.5, "prediction": 0.3}
LABELS = {"input": "input", "target": "echo target", "prediction": "prediction"}
KINDS = ("input", "target", "prediction")  # drawing order: each covers the one before
#: Still formats offered by --output (matplotlib draws more; these are the useful ones).
STILL_FORMATS = ("png", "svg", "pdf", "jpg", "jpeg", "webp", "tif", "tiff", "eps", "ps", "svgz")
ANIMATION_FORMATS = ("gif", "mp4")
#: Config keys shown in titles, in this order, with a short name.
_TITLE_KEYS = (("echo_step", "echo_step"), ("truncated_backprop_length", "window"), ("state_size", "state"),
               ("batch_size", "batch"), ("num_classes", "classes"), ("optimizer", ""), ("learning_rate", "lr"),
               ("init", "init"), ("seed", "seed"), ("total_series_length", "series"), ("epochs", "epochs"))
#: Keys that never change what a run learns, so never tell runs apart in a comparison.
_NOT_COMPARED = ("device",)


class PlotError(ValueError):
    """A run or a request that cannot be drawn; the message is one line meant for the user."""


# ----------------------------------------------------------------------------------------------
# Small pieces


def snapshot_index(run: Run, step: int | None = None) -> int:
    """Index of the snapshot nearest training window ``step`` (the last one when None)."""
    windows = run.snapshot_window
    if windows.size == 0:
        raise PlotError("the run holds no prediction snapshots")
    if step is None:
        return int(windows.size - 1)
    last = int(run.loss.size) - 1
    if step < 0 or step > max(last, int(windows[-1])):
        raise PlotError(f"--step {step}: the run has training windows 0..{last}")
    return int(np.argmin(np.abs(windows - step)))  # ties go to the earlier snapshot


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


def _finite(loss: np.ndarray) -> np.ndarray:
    out = np.asarray(loss, np.float64).copy()
    out[~np.isfinite(out)] = np.nan
    return out


def settings_text(config: Config, keys: Sequence[str] | None = None) -> str:
    """'echo_step 3 · window 15 · ...' for the keys given (all title keys by default)."""
    d = config.to_dict()
    parts = []
    for key, short in _TITLE_KEYS:
        if keys is not None and key not in keys:
            continue
        value = d[key]
        if key == "total_series_length":
            parts.append(f"{value:,} symbols/epoch")
        elif key == "learning_rate":
            parts.append(f"lr {value:g}")
        else:
            parts.append(f"{short} {value}".strip())
    return " · ".join(parts)


def run_headline(run: Run, name: str | None = None) -> str:
    accuracy = "n/a" if not np.isfinite(run.eval_accuracy) else f"{run.eval_accuracy:.4f}"
    head = f"{name}: " if name else ""
    status = "" if run.status == "completed" else f"{run.status}, "
    epochs = (f"{run.epochs_completed}" if run.epochs_completed == run.config.epochs
              else f"{run.epochs_completed} of {run.config.epochs}")
    return f"{head}{status}{epochs} epochs, held-out accuracy {accuracy}"


def differing_labels(runs: Sequence[Run], names: Sequence[str] | None = None) -> list[str]:
    """A label per run made of the settings that differ between them ('echo_step 3, seed 1'); runs
    whose settings are all equal are told apart by their names (file names) instead."""
    dicts = [r.config.to_dict() for r in runs]
    keys = [k for k in dicts[0] if k not in _NOT_COMPARED and len({repr(d[k]) for d in dicts}) > 1]
    labels = [", ".join(f"{k} {d[k]:g}" if isinstance(d[k], float) else f"{k} {d[k]}" for k in keys)
              for d in dicts]
    if len(set(labels)) < len(labels):
        given = list(names) if names else [f"run {i + 1}" for i in range(len(runs))]
        if len(set(given)) < len(given):
            given = [f"{n} ({i + 1})" for i, n in enumerate(given)]
        labels = [f"{n}: {lab}" if lab else n for n, lab in zip(given, labels)]
    return labels


def _wrap(text: str, width: int) -> str:
    """Break a ' · '-separated line into lines of at most ``width`` characters, between items."""
    lines: list[str] = []
    for item in text.split(" · "):
        if lines and len(lines[-1]) + 3 + len(item) <= width:
            lines[-1] += " · " + item
        else:
            lines.append(item)
    return "\n".join(lines)


def _check_rows(run: Run, rows: int | None) -> int:
    batch = run.config.batch_size
    if rows is None:
        return min(5, batch)
    if rows < 1 or rows > batch:
        raise PlotError(f"--rows {rows}: the run's batch has rows 1..{batch} (batch_size {batch})")
    return rows


# ----------------------------------------------------------------------------------------------
# The training figure's panels, drawn once and updated: the same code draws the still figure, each
# frame of the replay and the live figure during training.


def epoch_starts(windows: int, per_epoch: int, most: int = 200) -> np.ndarray:
    """Where epochs start, thinned to every k-th epoch beyond ``most`` lines: a run planned for a
    million epochs (interrupted early, say) would otherwise draw a million lines, for minutes."""
    step = per_epoch * max(1, -(-windows // (per_epoch * most)))
    return np.arange(0, windows, step)


class TrainingPanels:
    """The loss panel over the whole planned run and one bar panel per sample row."""

    def __init__(self, fig, config: Config, rows: int, log: bool = False, planned_windows: int | None = None):
        self.fig, self.config, self.rows, self.log = fig, config, rows, log
        W = config.windows_per_epoch
        self.W = max(W, 1)
        self.window: int | None = None  # the snapshot drawn
        self.planned = max(planned_windows or config.epochs * W, 1)
        self.width = smoothing_width(config)
        T = config.truncated_backprop_length
        loss_rect, row_rects = _panel_rects(rows)

        ax = self.loss_ax = fig.add_axes(loss_rect)
        ax.set_label("loss")
        self.raw_line, = ax.plot([], [], color="0.55", lw=0.6, alpha=0.8, label="loss per window")
        self.smooth_line, = ax.plot([], [], color="tab:purple", lw=1.6,
                                    label=f"mean of last {self.width:,} windows" if self.width > 1 else "loss")
        if self.width <= 1:
            self.raw_line.set_visible(False)
            self.raw_line.set_label("_raw")
        starts = epoch_starts(self.planned, self.W)
        self.epoch_lines = ax.vlines(starts, 0, 1, transform=ax.get_xaxis_transform(), colors="tab:orange",
                                     lw=0.6, alpha=0.4 if starts.size <= 30 else 0.25,
                                     label="epoch start (new series)")
        self.marker = ax.axvline(0, color="black", lw=1.0, ls="--", label="snapshot below")
        self.marker.set_visible(False)
        self.diverged, = ax.plot([], [], "x", color="red", ms=8, mew=2, label="_diverged")
        ax.set_xlim(0, self.planned)
        ax.set_xlabel("training window")
        ax.set_ylabel("loss (cross-entropy)")
        if log:
            ax.set_yscale("log")
        ax.grid(True, axis="y", alpha=0.3)
        sec = ax.secondary_xaxis("top", functions=(lambda w: w / self.W, lambda e: e * self.W))
        sec.set_xlabel("epoch", fontsize=9)
        sec.tick_params(labelsize=8)
        ax.legend(loc="upper right", fontsize=8, framealpha=0.9)

        from matplotlib.collections import PolyCollection
        from matplotlib.patches import Patch

        self.row_axes, self.bars, self.wrong, self.scores = [], [], [], []
        x = np.arange(T)
        # Each row's bars are one collection of rectangles (input, then target, then prediction on
        # top, T of each), so a new snapshot only moves their top edges.
        left = np.tile(x - 0.45, 3)
        self._verts = np.zeros((3 * T, 4, 2))
        self._verts[:, :, 0] = np.stack([left, left, left + 0.9, left + 0.9], axis=1)
        colors = [COLORS[kind] for kind in KINDS for _ in range(T)]
        for r in range(rows):
            ax = fig.add_axes(row_rects[r], sharex=self.row_axes[0] if self.row_axes else None)
            ax.set_label(f"row {r}")
            bars = PolyCollection(self._verts.copy(), facecolors=colors, edgecolors="none")
            ax.add_collection(bars, autolim=False)
            self.bars.append(bars)
            wrong, = ax.plot([], [], linestyle="none", marker="v", color="black", ms=4, label="wrong prediction")
            self.wrong.append(wrong)
            ax.set_ylim(0, 1.22)
            ax.set_yticks([])
            ax.set_ylabel(f"row {r}", rotation=0, ha="right", va="center", fontsize=9)
            self.scores.append(ax.text(1.008, 0.5, "", transform=ax.transAxes, ha="left", va="center", fontsize=8))
            ax.set_xlim(-0.5, T - 0.5)
            ax.tick_params(labelbottom=(r == rows - 1), labelsize=8)
            self.row_axes.append(ax)
        if rows:
            self.row_axes[-1].set_xlabel("time step in the window")
            self.row_axes[-1].set_xticks(x if T <= 30 else np.linspace(0, T - 1, 11).round())
            first = self.row_axes[0]
            self.caption = first.set_title("", loc="left", fontsize=9)
            handles = [self.wrong[0]] + [Patch(color=COLORS[kind], label=LABELS[kind]) for kind in KINDS]
            first.legend(handles=handles, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=4, fontsize=8,
                         frameon=False, borderaxespad=0.1)

    def changing_artists(self) -> list:
        """What a new snapshot or more loss changes (an animation redraws only these)."""
        fixed = [self.raw_line, self.smooth_line, self.marker, self.diverged]
        return fixed + ([self.caption] if self.rows else []) + self.bars + self.wrong + self.scores

    def show_loss(self, loss: np.ndarray, upto: int | None = None) -> None:
        """Draw windows [0, upto) of the loss (all of it when None)."""
        y = _finite(loss if upto is None else loss[:upto])
        x = np.arange(y.size)
        self.raw_line.set_data(x, y)
        self.smooth_line.set_data(x, trailing_mean(y, self.width))
        bad = np.flatnonzero(~np.isfinite(np.asarray(loss[: y.size], np.float64)))
        if bad.size:
            top = np.nanmax(y) if np.isfinite(y).any() else 1.0
            self.diverged.set_data([bad[0]], [top])
            if self.diverged.get_label().startswith("_"):
                self.diverged.set_label("loss not finite (diverged)")
                self.loss_ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
        else:
            self.diverged.set_data([], [])
        self._rescale(y)

    def rescale_for(self, loss: np.ndarray) -> None:
        """Fix the loss axis to the whole run, so that a growing curve does not rescale every frame."""
        self._rescale(_finite(loss))

    def _rescale(self, y: np.ndarray) -> None:
        ax = self.loss_ax
        finite = y[np.isfinite(y)]
        if finite.size == 0:
            return
        if self.log:
            positive = finite[finite > 0]
            if positive.size:
                ax.set_ylim(positive.min() / 1.5, positive.max() * 1.5)
        else:
            top = float(finite.max())
            ax.set_ylim(0, top * 1.05 if top > 0 else 1.0)

    def show_snapshot(self, window: int, x: np.ndarray, y: np.ndarray, p: np.ndarray) -> None:
        """Bars of one snapshot: inputs x [B,T], targets y [B,T], probabilities p [B,T,C]."""
        C = self.config.num_classes
        scale = 1.0 / (C - 1)
        valid = np.isfinite(p).all(axis=-1)  # a diverged run's last snapshot may hold NaN: no prediction
        pred = np.where(valid, np.argmax(np.nan_to_num(p, nan=-1.0), axis=-1), 0)
        full = np.repeat([HEIGHTS[kind] for kind in KINDS], x.shape[1]) * scale
        for r in range(self.rows):
            tops = np.concatenate([x[r], y[r], pred[r]]) * full
            verts = self._verts.copy()
            verts[:, 1:3, 1] = tops[:, None]
            self.bars[r].set_verts(verts)
            miss = np.flatnonzero((pred[r] != y[r]) | ~valid[r])
            self.wrong[r].set_data(miss, np.full(miss.size, 1.1))
            T = y.shape[1]
            self.scores[r].set_text(f"{T - miss.size}/{T}\nright")
        epoch, within = divmod(int(window), self.W)
        self.caption.set_text(f"predictions at window {int(window):,} (epoch {epoch + 1}, window {within} of {self.W})")
        self.window = int(window)
        self.marker.set_xdata([window, window])
        self.marker.set_visible(True)


# The training figure's layout, in inches. Fixed rather than solved by constrained layout: every
# label's size is known, and solving it cost a third of drawing the figure.
_WIDTH, _LEFT, _RIGHT = 11.0, 0.85, 0.6        # left: y labels; right: the rows' scores
_TOP, _LOSS, _GAP = 0.95, 2.4, 0.85             # title and epoch axis; loss panel; its x label, caption, legend
_ROW, _ROW_GAP, _BOTTOM = 0.62, 0.1, 0.62


def figure_size(rows: int) -> tuple[float, float]:
    rows_height = rows * _ROW + max(rows - 1, 0) * _ROW_GAP + (_GAP if rows else 0.0)
    return _WIDTH, _TOP + _LOSS + rows_height + _BOTTOM


def _panel_rects(rows: int):
    """[left, bottom, width, height] in figure fractions of the loss panel and each row panel."""
    width, height = figure_size(rows)
    w = (width - _LEFT - _RIGHT) / width

    def rect(top_in: float, h_in: float):
        return [_LEFT / width, 1 - (top_in + h_in) / height, w, h_in / height]

    loss = rect(_TOP, _LOSS)
    first = _TOP + _LOSS + _GAP
    return loss, [rect(first + r * (_ROW + _ROW_GAP), _ROW) for r in range(rows)]


def _title(fig, run: Run, name: str | None) -> None:
    keys = [k for k, _ in _TITLE_KEYS if k != "epochs"]  # the headline says how many
    _suptitle(fig, run_headline(run, name) + "\n" + settings_text(run.config, keys))


def _suptitle(fig, text: str) -> None:
    fig.suptitle(text, fontsize=10, y=1 - 0.08 / fig.get_figheight(), va="top")


def _new_figure(figure, rows: int):
    from matplotlib.figure import Figure

    size = figure_size(rows)
    if figure is None:
        return Figure(figsize=size)
    figure.set_size_inches(*size)
    return figure


def require_windows(run: Run, name: str | None = None) -> None:
    if run.loss.size == 0:
        raise PlotError(f"{repr(name) if name else 'the run'} has no training windows yet (status {run.status}, "
                        f"{run.epochs_completed} epochs done): nothing to plot")


# ----------------------------------------------------------------------------------------------
# The public figures


def training_figure(run: Run, rows: int | None = None, step: int | None = None, log: bool = False,
                    *, name: str | None = None, figure=None):
    """The tutorial's figure: the loss over windows, and bars of input, echo target and prediction
    for ``rows`` rows of the batch (5, or all if fewer) at the snapshot nearest window ``step``
    (the last when None). ``figure``: draw into this (e.g. a pyplot figure) instead of a new one."""
    require_windows(run, name)
    rows = _check_rows(run, rows)
    has_snapshots = run.snapshot_window.size > 0
    k = snapshot_index(run, step) if has_snapshots else None
    fig = _new_figure(figure, rows if has_snapshots else 0)
    # The windows trained, not those planned: a long run stopped early would be a sliver otherwise.
    planned = max(run.loss.size, run.config.windows_per_epoch)
    panels = TrainingPanels(fig, run.config, rows if has_snapshots else 0, log, planned)
    panels.show_loss(run.loss)
    if k is not None:
        panels.show_snapshot(int(run.snapshot_window[k]), run.snapshot_inputs[k], run.snapshot_targets[k],
                             run.snapshot_probs[k])
    _title(fig, run, name)
    fig.panels = panels  # for callers who update it (a notebook stepping through snapshots)
    return fig


def comparison_figure(runs: Sequence[Run], labels: Sequence[str] | None = None, log: bool = False,
                      *, names: Sequence[str] | None = None, figure=None):
    """Loss curves of several runs on one axis, each labelled by the settings that differ."""
    from matplotlib.figure import Figure

    runs = list(runs)
    if not runs:
        raise PlotError("no runs to compare")
    names = list(names) if names else [f"run {i + 1}" for i in range(len(runs))]
    for run, n in zip(runs, names):
        require_windows(run, n)
    labels = list(labels) if labels else differing_labels(runs, names)
    if figure is None:
        fig = Figure(figsize=(11.0, 5.5), layout="constrained")
    else:
        fig = figure
        fig.set_size_inches(11.0, 5.5)
        fig.set_layout_engine("constrained")
    ax = fig.add_subplot()
    ax.set_label("loss")
    Ws = {r.config.windows_per_epoch for r in runs}
    width = min(smoothing_width(r.config) for r in runs)  # one width, so the curves compare
    finite_max, positive_min = 0.0, np.inf
    for i, (run, label) in enumerate(zip(runs, labels)):
        color = f"C{i % 10}"
        y = _finite(run.loss)
        x = np.arange(y.size)
        if width > 1:
            ax.plot(x, y, color=color, lw=0.5, alpha=0.3)
        accuracy = "n/a" if not np.isfinite(run.eval_accuracy) else f"{run.eval_accuracy:.4f}"
        status = "" if run.status == "completed" else f", {run.status}"
        ax.plot(x, trailing_mean(y, width), color=color, lw=1.6,
                label=f"{label} (held-out acc {accuracy}{status})")
        good = y[np.isfinite(y)]
        if good.size:
            finite_max = max(finite_max, float(good.max()))
            if (good > 0).any():
                positive_min = min(positive_min, float(good[good > 0].min()))
    longest = max(r.loss.size for r in runs)
    if len(Ws) == 1:
        W = max(Ws.pop(), 1)
        starts = epoch_starts(longest, W)
        ax.vlines(starts, 0, 1, transform=ax.get_xaxis_transform(), colors="tab:orange", lw=0.6,
                  alpha=0.35 if starts.size <= 30 else 0.2, label="epoch start (new series)")
        sec = ax.secondary_xaxis("top", functions=(lambda w: w / W, lambda e: e * W))
        sec.set_xlabel("epoch", fontsize=9)
        sec.tick_params(labelsize=8)
    ax.set_xlim(0, longest)
    if log:
        ax.set_yscale("log")
        if np.isfinite(positive_min):
            ax.set_ylim(positive_min / 1.5, finite_max * 1.5)
    else:
        ax.set_ylim(0, finite_max * 1.05 if finite_max > 0 else 1.0)
    ax.set_xlabel("training window")
    ax.set_ylabel("loss (cross-entropy)" + (", log scale" if log else ""))
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
    dicts = [r.config.to_dict() for r in runs]
    shared = [k for k, _ in _TITLE_KEYS if len({repr(d[k]) for d in dicts}) == 1]
    common = settings_text(runs[0].config, shared)
    what = f"mean of the last {width:,} windows, raw loss faint" if width > 1 else "loss per window"
    title = f"{len(runs)} runs: {what}" + (f"; shared settings: {common}" if common else "")
    fig.suptitle(_wrap(title, 110), fontsize=10)
    return fig


def animation_frames(run: Run, frames: int | None = 100) -> np.ndarray:
    """Snapshot indices replayed: all of them, or ``frames`` spread evenly from the first to the last."""
    K = run.snapshot_window.size
    if K == 0:
        raise PlotError("the run holds no prediction snapshots to replay")
    if frames is None or frames >= K:
        return np.arange(K)
    if frames < 1:
        raise PlotError(f"--frames {frames}: must be at least 1")
    return np.unique(np.linspace(0, K - 1, frames).round().astype(int))


def animate(run: Run, path: str | os.PathLike, fps: int = 10, rows: int | None = None, log: bool = False,
            frames: int | None = 100, dpi: int = 80, *, name: str | None = None) -> int:
    """Replay the snapshots in order: the loss curve grows, the bars change, as the tutorial's live
    figure did during training. GIF through Pillow, MP4 through matplotlib's ffmpeg writer.
    Written atomically; returns the number of frames."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    path = Path(path)
    kind = animation_format(path)
    require_windows(run, name)
    rows = _check_rows(run, rows)
    order = animation_frames(run, frames)
    fig = _new_figure(None, rows)
    fig.set_dpi(dpi)
    # The windows trained, not those planned: a long run stopped early would be a sliver otherwise.
    planned = max(run.loss.size, run.config.windows_per_epoch)
    panels = TrainingPanels(fig, run.config, rows, log, planned)
    panels.show_loss(run.loss)  # legend entries for all the run will show (a divergence, say)
    _title(fig, run, name)

    def show(i: int) -> None:
        k = order[i]
        window = int(run.snapshot_window[k])
        panels.show_loss(run.loss, upto=window + 1)
        panels.rescale_for(run.loss)
        panels.show_snapshot(window, run.snapshot_inputs[k], run.snapshot_targets[k], run.snapshot_probs[k])

    # Blitting: the axes, ticks and titles are drawn once as a background, and each frame redraws
    # only what changes (a full redraw per frame is ten times slower).
    show(0)
    canvas = FigureCanvasAgg(fig)
    changing = panels.changing_artists()
    for artist in changing:
        artist.set_animated(True)
    canvas.draw()
    background = canvas.copy_from_bbox(fig.bbox)

    def render(i: int) -> np.ndarray:
        show(i)
        canvas.restore_region(background)
        for artist in changing:
            artist.axes.draw_artist(artist)
        return np.asarray(canvas.buffer_rgba())[..., :3]

    def write(tmp: Path) -> None:
        (_write_gif if kind == "gif" else _write_mp4)(tmp, render, len(order), fps)

    atomic_write(path, write)
    return int(len(order))


def _write_gif(path: Path, render, count: int, fps: int) -> None:
    """Frames as one GIF, all mapped to one palette made from the first and last frames (what
    matplotlib's PillowWriter does, less a palette search per frame, which cost more than drawing)."""
    from PIL import Image

    last = Image.fromarray(np.array(render(count - 1)))
    first = Image.fromarray(np.array(render(0)))
    both = Image.new("RGB", (first.width, first.height * 2))
    both.paste(first, (0, 0))
    both.paste(last, (0, first.height))
    palette = both.quantize(colors=255, method=Image.Quantize.MEDIANCUT)

    def frames():
        for i in range(1, count):
            yield Image.fromarray(render(i)).quantize(palette=palette, dither=Image.Dither.NONE)

    head = first.quantize(palette=palette, dither=Image.Dither.NONE)
    head.save(path, format="GIF", save_all=True, append_images=frames(), duration=round(1000 / fps), loop=0)


def _write_mp4(path: Path, render, count: int, fps: int) -> None:
    """Frames as H.264 through matplotlib's ffmpeg writer, which encodes a bare "screen" figure
    showing each frame as an image (at dpi 1 its size in inches is its size in pixels, exactly)."""
    import matplotlib
    from matplotlib import animation
    from matplotlib.figure import Figure

    first = np.array(render(0))
    height, width = first.shape[:2]
    screen = Figure(figsize=(width, height), dpi=1)
    image = screen.figimage(first, resize=False)
    writer = animation.FFMpegWriter(fps=fps, codec="h264", extra_args=[  # H.264 in yuv420p needs even sizes
        "-pix_fmt", "yuv420p", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"])
    with matplotlib.rc_context({"animation.ffmpeg_path": ffmpeg_path()}):
        with writer.saving(screen, str(path), dpi=1):
            writer.grab_frame()
            for i in range(1, count):
                image.set_data(np.array(render(i)))
                writer.grab_frame()


def ffmpeg_path() -> str | None:
    """ffmpeg as matplotlib finds it (on PATH), else the one the optional imageio-ffmpeg ships."""
    import shutil

    import matplotlib

    found = shutil.which(matplotlib.rcParams["animation.ffmpeg_path"])
    if found:
        return found
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # noqa: BLE001 - not installed, or no binary for this platform
        return None


# ----------------------------------------------------------------------------------------------
# Writing and showing


def animation_format(path: str | os.PathLike) -> str:
    """'gif' or 'mp4' from the file's extension; PlotError for others, or MP4 without ffmpeg."""
    path = Path(path)
    kind = path.suffix.lower().lstrip(".")
    if path.is_dir():
        raise PlotError(f"--animate {str(path)!r} is a folder; give a file name such as "
                        f"{str(path / 'replay.gif')!r}")
    if kind not in ANIMATION_FORMATS:
        got = f": {path.suffix!r} is not an animation format" if path.suffix else " has no extension"
        raise PlotError(f"--animate {str(path)!r}{got}; use .gif (or .mp4 with ffmpeg)")
    if kind == "mp4" and ffmpeg_path() is None:
        raise PlotError(f"--animate {str(path)!r}: MP4 needs ffmpeg (on PATH, or pip install "
                        f"'echo-rnn-cli[video]'); use .gif")
    return kind


def figure_format(path: str | os.PathLike) -> str:
    """The still format named by the file's extension; PlotError for one we do not write."""
    path = Path(path)
    kind = path.suffix.lower().lstrip(".")
    if kind not in STILL_FORMATS:
        got = f": {path.suffix!r} is not a figure format" if path.suffix else " has no extension"
        raise PlotError(f"--output {str(path)!r}{got}; use .png, .svg or .pdf "
                        f"(also {', '.join('.' + k for k in STILL_FORMATS[3:])})")
    return kind


def save_figure(fig, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Write a figure atomically (temporary file beside it, then renamed), format by extension."""
    path = Path(path)
    kind = figure_format(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format=kind, dpi=dpi))
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


class LiveFigure:
    """The tutorial's live figure during training: updated after every epoch with the loss so far
    and the bars of that epoch's last snapshot (of the first model when several train together)."""

    def __init__(self, config: Config, rows: int | None = None, warn=None, every: float = 0.25):
        import matplotlib.pyplot as plt

        self.plt = plt
        self.every = every  # seconds between redraws at most: a redraw costs more than a short epoch
        self._drawn = 0.0
        self.warn = warn or (lambda m: print(f"Warning: {m}", file=sys.stderr))
        self.rows = min(5, config.batch_size) if rows is None else rows
        self.loss: list[np.ndarray] = []
        self.alive = True
        plt.ion()
        self.fig = plt.figure(figsize=figure_size(self.rows))
        self.fig.canvas.manager.set_window_title("echo-rnn train")
        self.panels = TrainingPanels(self.fig, config, self.rows, planned_windows=None)
        _suptitle(self.fig, "training: " + settings_text(config))
        plt.show(block=False)
        plt.pause(0.001)

    def update(self, report) -> None:
        """An ``on_epoch`` callback; a closed window or a GUI error ends the updates, not training."""
        samples = getattr(report, "samples", None)
        if not self.alive or samples is None:
            return
        try:
            if not self.plt.fignum_exists(self.fig.number):
                self.alive = False
                return
            self.loss.append(np.asarray(samples.loss))
            now = time.monotonic()
            if report.epoch < report.epochs and now - self._drawn < self.every:
                self.fig.canvas.flush_events()  # keep the window responsive between redraws
                return
            self._drawn = now
            loss = np.concatenate(self.loss)
            # Windows before this call (a resumed run) are not drawn; place this call's at their windows.
            offset = samples.window_offset + samples.loss.size - loss.size
            self.panels.show_loss(np.concatenate([np.full(offset, np.nan), loss]))
            if samples.snapshot_window.size:
                self.panels.show_snapshot(int(samples.snapshot_window[-1]), samples.inputs[-1],
                                          samples.targets[-1], samples.probs[-1])
            _suptitle(self.fig, f"training: epoch {report.epoch}/{report.epochs}, loss {report.loss:.4f}\n"
                      + settings_text(self.panels.config))
            self.fig.canvas.draw_idle()
            self.fig.canvas.flush_events()
        except Exception as e:  # noqa: BLE001 - a broken window must not stop training
            self.alive = False
            self.warn(f"--live: the figure stopped updating ({type(e).__name__}: {e}); training goes on")

    def finish(self) -> None:
        """Keep the final figure open until its window is closed, as the tutorial's plt.show() did."""
        if self.alive and self.plt.fignum_exists(self.fig.number):
            self.plt.ioff()
            self.plt.show()
