"""Several runs compared: their loss curves on one axis, each labelled by the settings that differ."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..config import network_text
from ..runs import Run
from .common import (
    TITLE_KEYS,
    PlotError,
    add_epoch_axis,
    choose_log,
    epoch_legend_handle,
    epoch_marks,
    finite_loss,
    require_windows,
    settings_text,
    smoothing_width,
    trailing_mean,
    wrap_items,
    x_limits,
)

#: The epoch lines: a light grey, dotted, unlike any run's colour (matplotlib's C0-C9).
EPOCH_GREY, EPOCH_STYLE = "0.78", (0, (1, 2))
#: Keys that never change what a run learns, so never tell runs apart in a comparison.
_NOT_COMPARED = ("device",)


def _resolved(run: Run) -> dict:
    """A run's settings as it trained with them: ``init`` is the scheme it drew, so the 'auto' of an
    rnn of 4 units and of an lstm are different weights (tutorial, keras), and an rnn's 'auto' and
    'tutorial' the same ones."""
    return run.config.to_dict() | {"init": run.init_used}


def differing_labels(runs: Sequence[Run], names: Sequence[str] | None = None) -> list[str]:
    """A label per run made of the settings that differ between them ('echo_step 3, seed 1'); runs
    whose settings are all equal are told apart by their names (file names) instead."""
    dicts = [_resolved(r) for r in runs]
    keys = [k for k in dicts[0] if k not in _NOT_COMPARED and len({repr(d[k]) for d in dicts}) > 1]
    labels = [", ".join(f"{k} {d[k]:g}" if isinstance(d[k], float) else f"{k} {d[k]}" for k in keys)
              for d in dicts]
    if len(set(labels)) < len(labels):
        given = list(names) if names else [f"run {i + 1}" for i in range(len(runs))]
        if len(set(given)) < len(given):
            given = [f"{n} ({i + 1})" for i, n in enumerate(given)]
        labels = [f"{n}: {lab}" if lab else n for n, lab in zip(given, labels, strict=False)]
    return labels


def comparison_figure(runs: Sequence[Run], labels: Sequence[str] | None = None, log: bool | None = None,
                      *, names: Sequence[str] | None = None, figure=None):
    """Loss curves of several runs on one axis, each labelled by the settings that differ and its
    status. ``log``: the loss axis's scale; None picks log when the loss spans several decades."""
    runs = list(runs)
    if not runs:
        raise PlotError("no runs to compare")
    names = list(names) if names else [f"run {i + 1}" for i in range(len(runs))]
    for run, n in zip(runs, names, strict=False):
        require_windows(run, n)
    labels = list(labels) if labels else differing_labels(runs, names)
    fig = _comparison_canvas(figure)
    ax = fig.add_subplot()
    ax.set_label("loss")
    width = min(smoothing_width(r.config) for r in runs)  # one width, so the curves compare
    log, note = choose_log(log, [trailing_mean(finite_loss(r.loss), width) for r in runs])
    finite_max, positive_min = _draw_curves(ax, runs, labels, width)
    longest = max(r.windows_trained for r in runs)
    handles = ax.get_legend_handles_labels()[0]
    Ws = {r.config.windows_per_epoch for r in runs}
    if len(Ws) == 1:  # epochs mean the same windows in every run: mark them
        W = max(Ws.pop(), 1)
        starts, _, label = epoch_marks(longest, W)
        # Light grey and dotted, beneath the curves: not the training figure's orange (the second
        # run's colour here), and no solid line that the first run's blue could be taken for.
        ax.vlines(starts, 0, 1, transform=ax.get_xaxis_transform(), colors=EPOCH_GREY, lw=0.8,
                  linestyles=EPOCH_STYLE, zorder=0.5)
        if starts.size:
            handles.append(epoch_legend_handle(label, EPOCH_GREY, EPOCH_STYLE))
        add_epoch_axis(ax, W)
    ax.set_xlim(*x_limits(longest))
    _scale_loss_axis(ax, log, finite_max, positive_min)
    ax.set_xlabel("training window")
    ax.set_ylabel("loss (cross-entropy)" + (", log scale" if log else ""))
    if note:
        ax.text(0.005, 0.02, note, transform=ax.transAxes, fontsize=8, color="0.3", ha="left", va="bottom")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(handles=handles, loc="upper right", fontsize=8, framealpha=0.9)
    fig.suptitle(wrap_items(_comparison_title(runs, width), 110), fontsize=10)
    return fig


def _comparison_canvas(figure):
    from matplotlib.figure import Figure

    if figure is None:
        return Figure(figsize=(11.0, 5.5), layout="constrained")
    figure.set_size_inches(11.0, 5.5)
    figure.set_layout_engine("constrained")
    return figure


def _draw_curves(ax, runs: list[Run], labels: list[str], width: int) -> tuple[float, float]:
    """Each run's smoothed loss (and its raw loss, faint); returns the largest finite loss drawn and
    the smallest positive one, for the axis limits."""
    finite_max, positive_min = 0.0, np.inf
    for i, (run, label) in enumerate(zip(runs, labels, strict=False)):
        color = f"C{i % 10}"
        x, y = run.loss_points()
        y = finite_loss(y)
        if width > 1:
            ax.plot(x, y, color=color, lw=0.5, alpha=0.3)
        accuracy = "n/a" if not np.isfinite(run.eval_accuracy) else f"{run.eval_accuracy:.4f}"
        ax.plot(x, trailing_mean(y, width), color=color, lw=1.6,
                label=f"{label} (held-out acc {accuracy}, {run.status})")
        good = y[np.isfinite(y)]
        if good.size:
            finite_max = max(finite_max, float(good.max()))
            if (good > 0).any():
                positive_min = min(positive_min, float(good[good > 0].min()))
    return finite_max, positive_min


def _scale_loss_axis(ax, log: bool, finite_max: float, positive_min: float) -> None:
    if log:
        ax.set_yscale("log")
        if np.isfinite(positive_min):
            ax.set_ylim(positive_min / 1.5, finite_max * 1.5)
    else:
        ax.set_ylim(0, finite_max * 1.05 if finite_max > 0 else 1.0)


def _comparison_title(runs: list[Run], width: int) -> str:
    """What the curves are, and the settings all the runs share, as they trained with them."""
    dicts = [_resolved(r) for r in runs]
    shared = [k for k, _ in TITLE_KEYS if len({repr(d[k]) for d in dicts}) == 1]
    # The network's words ('lstm', '2 layers', 'fast math') only where every run has them: the
    # first run's alone would claim its cell for all.
    networks = [network_text(r.config).split(" · ") for r in runs]
    network = [w for w in networks[0] if w and all(w in n for n in networks[1:])]
    settings = settings_text(runs[0].config, shared, network=False, init=runs[0].init_used)
    common = " · ".join(network + ([settings] if settings else []))
    what = f"mean of the last {width:,} windows, raw loss faint" if width > 1 else "loss per window"
    return f"{len(runs)} runs: {what}" + (f"; shared settings: {common}" if common else "")
