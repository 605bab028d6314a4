"""The tutorial's figure: the loss over the training windows above, and below it bars of input, echo
target and prediction for a few rows of the batch at one snapshot.

``TrainingPanels`` draws it once and then updates it: the same code draws the still figure
(``training_figure``), each frame of the replay (``animation``) and the live figure (``live``).
"""

from __future__ import annotations

import numpy as np

from ..config import Config
from ..runs import Run
from .common import (
    COLORS,
    HEIGHTS,
    KINDS,
    LABELS,
    TITLE_KEYS,
    add_epoch_axis,
    check_rows,
    choose_log,
    epoch_legend_handle,
    epoch_marks,
    finite_loss,
    require_windows,
    run_headline,
    settings_text,
    smoothing_width,
    snapshot_index,
    suptitle,
    trailing_mean,
    x_limits,
)

# The figure's layout, in inches. Fixed rather than solved by constrained layout: every label's size
# is known, and solving it cost a third of drawing the figure.
_WIDTH, _LEFT, _RIGHT = 11.0, 0.85, 0.6        # left: y labels; right: the rows' scores
_TOP, _LOSS, _GAP = 0.95, 2.4, 0.85             # title and epoch axis; loss panel; its x label, caption, legend
_ROW, _ROW_GAP, _BOTTOM = 0.62, 0.1, 0.62


class TrainingPanels:
    """The loss panel over the whole planned run and one bar panel per sample row."""

    def __init__(self, fig, config: Config, rows: int, log: bool = False, planned_windows: int | None = None,
                 log_note: str = ""):
        self.fig, self.config, self.rows, self.log = fig, config, rows, log
        W = config.windows_per_epoch
        self.W = max(W, 1)
        self.window: int | None = None  # the snapshot drawn
        self.planned = max(planned_windows or config.epochs * W, 1)
        self.width = smoothing_width(config)
        loss_rect, row_rects = _panel_rects(rows)
        self._draw_loss_panel(loss_rect, log_note)
        self._draw_row_panels(row_rects, config.truncated_backprop_length)

    def _draw_loss_panel(self, rect, log_note: str) -> None:
        ax = self.loss_ax = self.fig.add_axes(rect)
        ax.set_label("loss")
        self.raw_line, = ax.plot([], [], color="0.55", lw=0.6, alpha=0.8, label="loss per window")
        self.smooth_line, = ax.plot([], [], color="tab:purple", lw=1.6,
                                    label=f"mean of last {self.width:,} windows" if self.width > 1 else "loss")
        if self.width <= 1:
            self.raw_line.set_visible(False)
            self.raw_line.set_label("_raw")
        starts, _, self.epoch_label = epoch_marks(self.planned, self.W)
        self.epoch_lines = ax.vlines(starts, 0, 1, transform=ax.get_xaxis_transform(), colors="tab:orange",
                                     lw=0.8, alpha=0.5, label="_epochs")
        self.marker = ax.axvline(0, color="black", lw=1.2, ls="--", zorder=3, label="_snapshot")
        self.marker.set_visible(False)
        self.diverged, = ax.plot([], [], "x", color="red", ms=8, mew=2, label="_diverged")
        ax.set_xlim(*x_limits(self.planned))
        ax.set_xlabel("training window")
        ax.set_ylabel("loss (cross-entropy)" + (", log scale" if self.log else ""))
        if self.log:
            ax.set_yscale("log")
        if log_note:
            ax.text(0.005, 0.02, log_note, transform=ax.transAxes, fontsize=7.5, color="0.3", ha="left",
                    va="bottom")
        ax.grid(True, axis="y", alpha=0.3)
        add_epoch_axis(ax, self.W)
        self._legend()

    def _legend(self) -> None:
        """The loss panel's legend, from samples drawn boldly: the faint epoch lines and the snapshot
        marker (hidden until a snapshot is shown) would otherwise show as blanks in it."""
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], color="0.55", lw=1.0, label=self.raw_line.get_label()),
                   self.smooth_line, self.diverged]
        handles = [h for h in handles if not h.get_label().startswith("_")]
        if self.epoch_lines.get_segments():
            handles.append(epoch_legend_handle(self.epoch_label))
        if self.rows:
            handles.append(Line2D([], [], color="black", lw=1.2, ls="--", label="snapshot below"))
        self.loss_ax.legend(handles=handles, loc="upper right", fontsize=8, framealpha=0.9)

    def _draw_row_panels(self, rects, T: int) -> None:
        from matplotlib.collections import PolyCollection

        self.row_axes, self.bars, self.wrong, self.scores = [], [], [], []
        x = np.arange(T)
        # Each row's bars are one collection of rectangles (input, then target, then prediction on
        # top, T of each), so a new snapshot only moves their top edges.
        left = np.tile(x - 0.45, 3)
        self._verts = np.zeros((3 * T, 4, 2))
        self._verts[:, :, 0] = np.stack([left, left, left + 0.9, left + 0.9], axis=1)
        colors = [COLORS[kind] for kind in KINDS for _ in range(T)]
        for r in range(self.rows):
            ax = self.fig.add_axes(rects[r], sharex=self.row_axes[0] if self.row_axes else None)
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
            ax.tick_params(labelbottom=(r == self.rows - 1), labelsize=8)
            self.row_axes.append(ax)
        if self.rows:
            self._label_rows(x, T)

    def _label_rows(self, x: np.ndarray, T: int) -> None:
        """The time axis under the last row; the caption and the bars' legend above the first."""
        from matplotlib.patches import Patch

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

    def show_loss(self, loss: np.ndarray, upto: int | None = None, x: np.ndarray | None = None) -> None:
        """Draw windows [0, upto) of the loss (all of it when None); ``x``: the window of each value
        (``Run.loss_points``: a bounded run file's epochs in between are one mean each)."""
        x = np.arange(np.size(loss)) if x is None else np.asarray(x)
        n = np.size(loss) if upto is None else int(np.searchsorted(x, upto))
        y, x = finite_loss(loss[:n]), x[:n]
        self.raw_line.set_data(x, y)
        self.smooth_line.set_data(x, trailing_mean(y, self.width))
        bad = np.flatnonzero(~np.isfinite(np.asarray(loss[:n], np.float64)))
        if bad.size:
            top = np.nanmax(y) if np.isfinite(y).any() else 1.0
            self.diverged.set_data([x[bad[0]]], [top])
            if self.diverged.get_label().startswith("_"):
                self.diverged.set_label("loss not finite (diverged)")
                self._legend()
        else:
            self.diverged.set_data([], [])
        self._rescale(y)

    def rescale_for(self, loss: np.ndarray) -> None:
        """Fix the loss axis to the whole run, so that a growing curve does not rescale every frame."""
        self._rescale(finite_loss(loss))

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


def figure_size(rows: int) -> tuple[float, float]:
    """Width and height in inches of the figure with ``rows`` bar panels."""
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


def new_figure(figure, rows: int):
    """A bare Figure sized for ``rows`` bar panels, or ``figure`` (a pyplot one, say) resized."""
    from matplotlib.figure import Figure

    size = figure_size(rows)
    if figure is None:
        return Figure(figsize=size)
    figure.set_size_inches(*size)
    return figure


def run_title(fig, run: Run, name: str | None) -> None:
    """The run's headline and its settings (all but epochs: the headline says how many)."""
    keys = [k for k, _ in TITLE_KEYS if k != "epochs"]
    suptitle(fig, run_headline(run, name) + "\n" + settings_text(run.config, keys, init=run.init_used))


def trained_windows(run: Run) -> int:
    """The loss axis's extent: the windows trained, not those planned, so a long run stopped early
    is not a sliver; at least one epoch."""
    return max(run.windows_trained, run.config.windows_per_epoch)


def run_log_scale(run: Run, log: bool | None) -> tuple[bool, str]:
    """``log`` as asked, or (None) a log axis when the run's smoothed loss spans several decades,
    with the note that says so."""
    return choose_log(log, [trailing_mean(finite_loss(run.loss), smoothing_width(run.config))])


def training_figure(run: Run, rows: int | None = None, step: int | None = None, log: bool | None = None,
                    *, name: str | None = None, figure=None):
    """The tutorial's figure: the loss over windows, and bars of input, echo target and prediction
    for ``rows`` rows of the batch (5, or all if fewer) at the snapshot nearest window ``step``
    (the last when None). ``log``: the loss axis's scale; None picks log when the loss spans
    several decades. ``figure``: draw into this (e.g. a pyplot figure) instead of a new one."""
    require_windows(run, name)
    rows = check_rows(run, rows)
    has_snapshots = run.snapshot_window.size > 0
    k = snapshot_index(run, step) if has_snapshots else None
    fig = new_figure(figure, rows if has_snapshots else 0)
    log, note = run_log_scale(run, log)
    panels = TrainingPanels(fig, run.config, rows if has_snapshots else 0, log, trained_windows(run), note)
    x, y = run.loss_points()
    panels.show_loss(y, x=x)
    if k is not None:
        panels.show_snapshot(int(run.snapshot_window[k]), run.snapshot_inputs[k], run.snapshot_targets[k],
                             run.snapshot_probs[k])
    run_title(fig, run, name)
    fig.panels = panels  # for callers who update it (a notebook stepping through snapshots)
    return fig
