"""What the network remembers, through training: ``echo-rnn plot --memory`` (no TensorFlow).

Per run, one row: the memory profile as a heatmap, lag (x) against the records through training
(y, one row a record, the epochs trained on the left), with lines at echo_step and at the window's
edge; beside it the gradient's reach the same way (on a log scale: it falls by orders of magnitude
in a tanh cell), blank from the window's edge on, where backpropagation stops; and the loss at each
record, so the profile can be read against it. For several runs, a last panel overlays their final
profiles (an rnn, an lstm and a gru on the same echo, say).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib import colors as mcolors
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullFormatter

from ..memory_profile import peak
from ..runs import Run
from .common import PlotError, run_headline, settings_text

#: At most this many epoch labels on a heatmap's y axis.
MOST_EPOCH_LABELS = 12


def check_records(run: Run, name: str) -> None:
    if not run.memory_epoch.size:
        raise PlotError(f"{name} has no memory records (it was written by an echo-rnn that did not record "
                        "them); train it again to see what the network remembers")


def _epoch_ticks(ax, epochs: np.ndarray) -> None:
    step = max(1, -(-epochs.size // MOST_EPOCH_LABELS))
    ticks = np.arange(0, epochs.size, step)
    if ticks[-1] != epochs.size - 1:
        ticks = np.append(ticks, epochs.size - 1)
    ax.set_yticks(ticks, [str(int(epochs[t])) for t in ticks], fontsize=7)


def _edges(ax, runs: Sequence[Run]) -> None:
    """Dashed at echo_step (the lag to remember), solid at the window's edge (where the gradient
    stops): once for each value among ``runs``."""
    for echo in sorted({r.config.echo_step for r in runs}):
        ax.axvline(echo, color="tab:red", ls="--", lw=1.2, label=f"echo_step {echo}")
    for window in sorted({r.config.truncated_backprop_length for r in runs}):
        ax.axvline(window - 0.5, color="black", lw=1.2, label=f"window edge ({window} steps)")


def _profile_panel(fig, ax, run: Run) -> None:
    lags = run.memory_profile.shape[1]
    image = ax.imshow(run.memory_profile, aspect="auto", origin="lower", cmap="magma", vmin=0, vmax=1,
                      interpolation="nearest", extent=(-0.5, lags - 0.5, -0.5, run.memory_epoch.size - 0.5))
    _edges(ax, [run])
    _epoch_ticks(ax, run.memory_epoch)
    ax.set_ylabel("epochs trained", fontsize=8)
    ax.set_xlabel("lag k (steps back)", fontsize=8)
    lag, share = peak(run.memory_profile[-1])
    at_end = "rests on no input" if lag is None else f"rests on lag {lag} ({share:.0%} of the profile)"
    ax.set_title(f"memory profile: change in P(prediction) when input t-k flips\nat the end: {at_end}", fontsize=8)
    ax.legend(loc="upper right", fontsize=6, framealpha=0.8)
    fig.colorbar(image, ax=ax, pad=0.01, fraction=0.04)


def _reach_panel(fig, ax, run: Run) -> None:
    reach = run.memory_reach[:, 0]  # layer 1: the one that sees the input
    positive = reach[reach > 0]
    lags = reach.shape[1]
    if positive.size:
        top = float(positive.max())
        norm = mcolors.LogNorm(vmin=max(float(positive.min()), top * 1e-6), vmax=top)  # six decades at most
        image = ax.imshow(np.ma.masked_less_equal(reach, 0), aspect="auto", origin="lower", cmap="viridis", norm=norm,
                          interpolation="nearest", extent=(-0.5, lags - 0.5, -0.5, reach.shape[0] - 0.5))
        fig.colorbar(image, ax=ax, pad=0.01, fraction=0.04)
    ax.set_facecolor("0.92")  # where no gradient reaches
    _edges(ax, [run])
    _epoch_ticks(ax, run.memory_epoch)
    ax.tick_params(axis="y", labelleft=False)
    layers = run.config.num_layers
    which = f" (layer 1 of {layers})" if layers > 1 else ""
    ax.set_title(f"gradient's reach: |d loss(window end) / d h(end-k)|{which}\nnone past the window edge",
                 fontsize=8)
    ax.set_xlabel("lag k (steps back)", fontsize=8)


def _loss_panel(ax, run: Run) -> None:
    """The epoch's mean loss at each record, on a log scale (it falls by decades once the echo is
    learned), against a dotted line at a guess's loss, ln C: at chance or below it, at a glance."""
    means, _ = run.epoch_means()
    at = run.memory_epoch
    loss = np.array([means[e - 1] if 0 < e <= means.size else np.nan for e in at])
    chance = float(np.log(run.config.num_classes))
    ax.axvline(chance, color="0.4", ls=":", lw=1.2, label=f"a guess: ln {run.config.num_classes}")
    ax.plot(loss, np.arange(at.size), "o-", color="tab:blue", ms=3, lw=1)
    good = loss[np.isfinite(loss) & (loss > 0)]
    # Whole decades, at least 0.01 to 1, labelled at each decade only: the panel is narrow.
    low = 10.0 ** np.floor(np.log10(min(float(good.min()) if good.size else chance, 0.01)))
    high = 10.0 ** np.ceil(np.log10(max(float(good.max()) if good.size else chance, chance) * 1.01))
    ax.set_xscale("log")
    ax.set_xlim(low, high)
    ax.xaxis.set_major_locator(LogLocator(base=10, numticks=12))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_ylim(-0.5, at.size - 0.5)
    ax.set_title("mean loss of the epoch\n(log scale)", fontsize=8)
    ax.set_xlabel("loss", fontsize=8)
    ax.legend(loc="lower left", fontsize=6, framealpha=0.8)
    ax.tick_params(axis="y", labelleft=False)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)


def _overlay_edges(ax, runs: Sequence[Run], names: Sequence[str], colours: Sequence[str]) -> None:
    """The echo_step and window-edge lines of the overlay: as ``_edges`` when every run shares the
    value, else one line per value in the colour of the (first) run it belongs to, naming its runs,
    so that two runs' window edges are told apart."""
    for key, style, what, shift in (("echo_step", "--", "echo_step", 0.0),
                                    ("truncated_backprop_length", "-", "window edge", 0.5)):
        values = [getattr(r.config, key) for r in runs]
        if len(set(values)) == 1:
            ax.axvline(values[0] - shift, color="tab:red" if shift == 0 else "black", ls=style, lw=1.2,
                       label=f"{what} {values[0]}" if shift == 0 else f"window edge ({values[0]} steps)")
            continue
        for value in sorted(set(values)):
            which = [i for i, v in enumerate(values) if v == value]
            ax.axvline(value - shift, color=colours[which[0]], ls=style, lw=1.4, alpha=0.9,
                       label=f"{what} {value}: " + ", ".join(names[i] for i in which))


def _overlay(ax, runs: Sequence[Run], names: Sequence[str]) -> None:
    colours = [f"C{i % 10}" for i in range(len(runs))]
    for run, name, colour in zip(runs, names, colours, strict=True):
        c = run.config
        ax.plot(run.memory_profile[-1], marker="o", ms=3, color=colour, label=f"{name} ({c.cell}, echo "
                f"{c.echo_step}, window {c.truncated_backprop_length})")
    _overlay_edges(ax, runs, names, colours)
    ax.set_xlabel("lag k (steps back)", fontsize=8)
    ax.set_ylabel("change in P(prediction)", fontsize=8)
    ax.set_title("final memory profiles", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def memory_figure(runs: Sequence[Run], names: Sequence[str], figure: Figure | None = None) -> Figure:
    """One row per run (profile, gradient's reach, loss), and for several runs their final profiles
    overlaid below."""
    for run, name in zip(runs, names, strict=True):
        check_records(run, name)
    n = len(runs)
    if figure is None:
        figure = Figure(figsize=(13, 4.2 * n + (3.4 if n > 1 else 0)), layout="constrained")
    rows = figure.subfigures(n + (1 if n > 1 else 0), 1, squeeze=False,
                             height_ratios=[4.2] * n + ([3.4] if n > 1 else []))[:, 0]
    for sub, run, name in zip(rows, runs, names, strict=False):
        profile, reach, loss = sub.subplots(1, 3, sharey=True, gridspec_kw={"width_ratios": [4, 4, 1.8]})
        _profile_panel(sub, profile, run)
        _reach_panel(sub, reach, run)
        _loss_panel(loss, run)
        sub.suptitle(run_headline(run, name) + "\n" + settings_text(run.config, init=run.init_used), fontsize=9)
    if n > 1:
        _overlay(rows[n].subplots(), runs, names)
    return figure
