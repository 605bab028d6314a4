"""The hidden state over a sequence: how the network keeps the last echo_step symbols (NumPy, no TensorFlow).

One heat strip per unit and layer (the state recomputed from the saved weights, from a zero state),
the cell state too for an LSTM, with the input symbols, the echo they should produce and the
network's prediction under them, wrong steps marked.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib import colors as mcolors
from matplotlib.figure import Figure

from ..inference import (
    EchoResult,
    check_echo_work,
    check_symbols,
    network_of,
    network_weights,
    run_network,
    score,
)

#: Digits are written in the cells of the symbol rows up to this many steps; beyond, colour alone.
ANNOTATE_MAX_STEPS = 80


def _panels(result: EchoResult, cell: str) -> list[tuple[str, np.ndarray, float]]:
    """(label, values [S, T], colour limit) of every state panel, top layer last."""
    panels = []
    for layer, h in enumerate(result.trace.h):
        panels.append((f"layer {layer + 1} h", h.T, 1.0))
        if cell == "lstm" and result.trace.c is not None:
            c = result.trace.c[layer]
            # The cell state is not bounded by tanh: a symmetric range that shows its largest value.
            panels.append((f"layer {layer + 1} c", c.T, max(1.0, float(np.abs(c).max()))))
    return panels


def _draw_state(ax, label: str, values: np.ndarray, limit: float):
    image = ax.imshow(values, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    ax.set_yticks(range(values.shape[0]), [f"{u}" for u in range(values.shape[0])], fontsize=7)
    ax.set_ylabel(f"{label}\nunit", fontsize=8)
    ax.tick_params(axis="x", labelbottom=False)
    return image


def _symbol_colours(classes: int):
    if classes == 2:
        return mcolors.ListedColormap(["#f7f7f7", "#404040"])
    if classes <= 20:
        return mcolors.ListedColormap(colormaps["tab10" if classes <= 10 else "tab20"].colors[:classes])
    return colormaps["viridis"]


def _draw_symbols(ax, result: EchoResult):
    rows = np.stack([result.input, result.target, result.prediction])
    classes = result.num_classes
    cmap = _symbol_colours(classes)
    image = ax.imshow(rows, aspect="auto", cmap=cmap, vmin=-0.5, vmax=classes - 0.5, interpolation="nearest")
    steps = rows.shape[1]
    if steps <= ANNOTATE_MAX_STEPS:
        for (r, t), s in np.ndenumerate(rows):
            dark = classes == 2 and s == 1
            ax.text(t, r, str(int(s)), ha="center", va="center", fontsize=7, color="white" if dark else "black")
    wrong = np.flatnonzero(~result.correct[: steps])
    wrong = wrong[wrong >= result.echo_step]
    ax.scatter(wrong, np.full(wrong.size, 2.0), s=120, facecolors="none", edgecolors="red", linewidths=1.5,
               label="wrong prediction", zorder=3)
    # The first echo_step steps have nothing to echo yet: greyed, not counted.
    ax.axvspan(-0.5, min(result.echo_step, steps) - 0.5, color="0.5", alpha=0.35, lw=0)
    ax.set_yticks(range(3), ["input", "echo", "prediction"], fontsize=8)
    ax.set_xlabel("step")
    if wrong.size:
        ax.legend(loc="upper right", bbox_to_anchor=(1.0, -0.35), fontsize=7, frameon=False)
    return image


def _title(result: EchoResult, net: dict[str, Any]) -> str:
    layers = net["num_layers"]
    acc = "n/a (sequence not longer than echo_step)" if result.accuracy is None else f"{result.accuracy:.1%}"
    return (f"{net['cell'].upper()} state, {layers} layer{'s' if layers != 1 else ''}, "
            f"echo_step {result.echo_step}: accuracy {acc} on this sequence (from a zero state)")


def states_figure(weights: dict[str, Any], config: Any, symbols: Any, figure: Figure | None = None,
                  source: str | None = None) -> Figure:
    """Draw the states of the network with ``weights`` (either naming) and ``config`` fed ``symbols``;
    ``source``, where the symbols come from, is a second line of the title."""
    net = network_of(config)
    symbols = check_symbols(symbols, net["num_classes"])
    check_echo_work(config, symbols.size)  # the same bound as echo's (SequenceError: one line, exit 2)
    checked = network_weights(weights, state_size=int(config.state_size), **net)
    result = score(symbols, run_network(checked, symbols=symbols, **net), int(config.echo_step), net["num_classes"])
    panels = _panels(result, net["cell"])
    steps = symbols.size
    if figure is None:
        height = 1.6 + sum(0.9 + 0.22 * p[1].shape[0] for p in panels)
        figure = Figure(figsize=(min(20.0, max(8.0, 0.22 * steps + 2.0)), height), layout="constrained")
    heights = [max(1.0, 0.25 * p[1].shape[0]) for p in panels] + [0.9]
    axes = figure.subplots(len(panels) + 1, 1, sharex=True, gridspec_kw={"height_ratios": heights})
    for ax, (label, values, limit) in zip(axes[:-1], panels, strict=True):
        image = _draw_state(ax, label, values, limit)
        figure.colorbar(image, ax=ax, pad=0.01, fraction=0.03)
    # A colour key for the symbols too, which also keeps every panel's steps aligned above each other.
    key = figure.colorbar(_draw_symbols(axes[-1], result), ax=axes[-1], pad=0.01, fraction=0.03)
    key.set_ticks(range(result.num_classes) if result.num_classes <= 10 else [0, result.num_classes - 1])
    axes[-1].set_xlim(-0.5, steps - 0.5)
    figure.suptitle(_title(result, net) + (f"\n{source}" if source else ""), fontsize=10)
    return figure


def heldout_row(config: Any, row: int, steps: int) -> np.ndarray:
    """The first ``steps`` symbols of row ``row`` (0-based) of the run's held-out series: data the
    network never trained on, which the evaluation too feeds from a zero state at the row's start."""
    from ..data import EVAL_STREAM, echo_series, rng_for, to_rows

    x, _ = echo_series(rng_for(config.seed, EVAL_STREAM), config.total_series_length, config.echo_step,
                       config.num_classes)
    return to_rows(x, config.batch_size)[row, :steps]
