"""A sweep's learnability at a glance: held-out accuracy over two settings, averaged over seeds.

Matplotlib only, never TensorFlow; draws on a bare ``Figure`` (no pyplot state). Takes the rows of
``summary.collect`` so a notebook does what ``echo-rnn plot --heatmap`` does::

    from echo_rnn_cli.summary import collect
    from echo_rnn_cli.figures.heatmap import heatmap_figure
    heatmap_figure(collect(["sweep"]).rows, "truncated_backprop_length", "echo_step")
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import FIELD_TYPES, SETTINGS
from ..summary import Row, varying_keys
from ..sweep.grid import format_value

#: Settings named under the title (those the axes do not show), so a figure says what was trained.
_FIXED_SHOWN = (("cell", ""), ("num_layers", "layers"), ("truncated_backprop_length", "window"),
                ("epochs", "epochs"), ("total_series_length", "series"), ("state_size", "state"),
                ("batch_size", "batch"), ("num_classes", "classes"), ("optimizer", ""), ("learning_rate", "lr"),
                ("init", "init"), ("math", "math"), ("dropout", "dropout"), ("stride", "stride"))


#: The figure's least width in inches: 800 pixels at the default dpi of 100.
_MIN_WIDTH = 8.0


def _shown(rows: list[Row], key: str) -> Any:
    """A setting all rows share, as the runs used it: 'auto' resolved where every run resolved it
    alike (an rnn and an lstm of one sweep may have drawn different weights: then 'auto')."""
    value = rows[0].config[key]
    used = {getattr(r, f"{key}_used", "") for r in rows} if key in ("init", "math") else set()
    return used.pop() if value == "auto" and len(used) == 1 and "" not in used else value


class HeatmapError(ValueError):
    """Rows that cannot make this heatmap; the message is one line meant for the user."""


@dataclass
class HeatmapData:
    x: str
    y: str
    xs: list[Any]              # column values, sorted
    ys: list[Any]              # row values, sorted (drawn bottom to top)
    mean: np.ndarray           # [len(ys), len(xs)] mean held-out accuracy of completed runs; NaN if none
    counted: np.ndarray        # completed runs averaged in each cell
    total: np.ndarray          # runs in each cell, whatever their status
    failed: np.ndarray         # diverged runs, and points that failed without a run file
    chance: float              # accuracy of guessing (1 / num_classes), the colour scale's floor


def _key(name: str, flag: str) -> str:
    key = name.replace("-", "_")
    if key not in FIELD_TYPES:
        raise HeatmapError(f"{flag} {name!r} is not a setting (allowed: {', '.join(FIELD_TYPES)})")
    return key


def _sorted(values, key: str | None = None) -> list[Any]:
    """Numbers in order; a setting's choices in the order it lists them (rnn, lstm, gru), other text
    alphabetically."""
    choices = SETTINGS[key].choices if key in SETTINGS else ()

    def order(v):
        if isinstance(v, (int, float)):
            return (0, v, "")
        return (1, choices.index(v), "") if v in choices else (2, 0, str(v))
    return sorted(set(values), key=order)


def heatmap_data(rows: Sequence[Row], x: str, y: str) -> HeatmapData:
    """Group runs by (x, y) and average the completed ones' held-out accuracy (over seeds)."""
    x, y = _key(x, "--x"), _key(y, "--y")
    if x == y:
        raise HeatmapError(f"--x and --y are both {x!r}; give two different settings")
    if not rows:
        raise HeatmapError("no runs to draw")
    others = [k for k in varying_keys(rows) if k not in (x, y, "seed")]
    if others:
        detail = ", ".join(f"{k} ({', '.join(map(str, _sorted(r.config[k] for r in rows)))})" for k in others)
        seed = "" if "seed" in (x, y) else " (and seed)"
        raise HeatmapError(f"these runs also differ in {detail}, which is neither --x nor --y: the heatmap "
                           f"averages over seeds only; draw a folder where only {x} and {y}{seed} vary")
    xs, ys = _sorted((r.config[x] for r in rows), x), _sorted((r.config[y] for r in rows), y)
    total = np.zeros((len(ys), len(xs)), int)
    counted = np.zeros_like(total)
    failed = np.zeros_like(total)
    sums = np.zeros(total.shape)
    for r in rows:
        i, j = ys.index(r.config[y]), xs.index(r.config[x])
        total[i, j] += 1
        if r.status == "completed" and math.isfinite(r.eval_accuracy):
            counted[i, j] += 1
            sums[i, j] += r.eval_accuracy
        elif r.status in ("diverged", "error"):
            failed[i, j] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counted > 0, sums / np.maximum(counted, 1), np.nan)
    classes = {r.config.get("num_classes", 2) for r in rows}
    chance = 1.0 / classes.pop() if len(classes) == 1 else 0.0
    return HeatmapData(x, y, xs, ys, mean, counted, total, failed, chance)


def cell_text(data: HeatmapData, i: int, j: int) -> str:
    """What a cell says: the mean accuracy, how many runs it averages if not all, or why it is empty
    ('failed' if a run diverged or failed, else 'unfinished': pending or interrupted)."""
    n, k = data.total[i, j], data.counted[i, j]
    if n == 0:
        return ""
    if k == 0:
        return "failed" if data.failed[i, j] else "unfinished"
    text = f"{data.mean[i, j]:.3f}"
    return text if k == n else f"{text}\n({k} of {n})"


def heatmap_figure(rows: Sequence[Row], x: str, y: str, figure=None, title: str | None = None):
    """The figure: one cell per (x, y), coloured and labelled with the mean held-out accuracy."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    data = heatmap_data(rows, x, y)
    nx, ny = len(data.xs), len(data.ys)
    # At least 8 inches (800 pixels at the default dpi), so the title and the settings under it fit.
    fig = figure if figure is not None else Figure(figsize=(max(_MIN_WIDTH, 2.4 + 1.0 * nx), 2.0 + 0.75 * ny))
    ax = fig.add_subplot()
    cmap = colormaps["viridis"].with_extremes(bad="0.85")
    norm = Normalize(vmin=data.chance, vmax=1.0)
    image = ax.imshow(np.ma.masked_invalid(data.mean), cmap=cmap, norm=norm, origin="lower", aspect="auto")
    for i in range(ny):
        for j in range(nx):
            text = cell_text(data, i, j)
            if not text:
                continue
            value = data.mean[i, j]
            if math.isfinite(value):
                r, g, b, _ = cmap(norm(value))
                colour = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"
            else:
                colour = "0.3"
            ax.text(j, i, text, ha="center", va="center", color=colour, fontsize=10 if "\n" not in text else 8)
    ax.set_xticks(range(nx), [str(v) for v in data.xs])
    ax.set_yticks(range(ny), [str(v) for v in data.ys])
    ax.set_xlabel(data.x)
    ax.set_ylabel(data.y)
    seeds = int(data.total.max()) if data.total.size else 0
    if title is None:
        title = f"held-out accuracy, mean over {seeds} seed{'s' if seeds != 1 else ''} (chance {data.chance:.2f})"
        fixed = [f"{short}\u00a0{format_value(_shown(rows, k))}".strip("\u00a0") for k, short in _FIXED_SHOWN
                 if k not in (data.x, data.y) and k in rows[0].config]
        width = int(fig.get_figwidth() * 11)  # characters that fit at this font size
        title += "\n" + textwrap.fill(", ".join(fixed), width)
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, label="held-out accuracy")
    fig.tight_layout()
    return fig
