"""Figures of long runs stay readable (issue 12, item 5): epoch lines that can be told apart, a log
loss axis when the loss spans decades (and the figure says so), a legend that shows its entries, a
snapshot marker off the border, the status in every title, whole epochs on the comparison's epoch
axis, a heatmap at least 800 pixels wide. Checked on the matplotlib Figure objects themselves."""

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from echo_rnn_cli import Config, Run, save_run, train
from echo_rnn_cli.cli import cli
from echo_rnn_cli.figures.common import MOST_EPOCH_LINES, choose_log, epoch_marks, run_headline
from echo_rnn_cli.figures.compare import comparison_figure
from echo_rnn_cli.figures.heatmap import heatmap_figure
from echo_rnn_cli.figures.training import training_figure
from echo_rnn_cli.summary import Row
from tests.conftest import SMALL

#: 300 epochs of 40 windows (3,000 symbols an epoch, batch 5, window 15), as `--epochs 300
#: --total-series-length 3000` trains.
LONG = Config(epochs=300, total_series_length=3000)


def long_run(status: str = "completed", windows: int | None = None) -> Run:
    """A hand-made run shaped like a long real one: the loss falls from 0.7 to about 1e-4 over
    12,000 windows (3.8 decades), with snapshots at the first and the last window."""
    n = LONG.epochs * LONG.windows_per_epoch if windows is None else windows
    rng = np.random.default_rng(0)
    t = np.arange(n)
    loss = (0.7 * np.exp(-t / 800) + 1e-4) * rng.uniform(0.8, 1.2, n)
    B, T = LONG.batch_size, LONG.truncated_backprop_length
    x = rng.integers(0, 2, (2, B, T)).astype(np.int32)
    probs = np.eye(2, dtype=np.float32)[x]
    return Run(config=LONG, status=status, loss=loss.astype(np.float32), accuracy=np.ones(n, np.float32),
               epoch=(t // LONG.windows_per_epoch).astype(np.int32), snapshot_window=np.array([0, n - 1]),
               snapshot_inputs=x, snapshot_targets=x, snapshot_probs=probs,
               epochs_completed=n // LONG.windows_per_epoch, eval_accuracy=0.99)


@pytest.fixture(scope="module")
def short_runs():
    """Two runs really trained for 3 epochs of 20 windows (their loss spans less than a decade)."""
    return [train(Config(**{**SMALL, "epochs": 3})), train(Config(**{**SMALL, "epochs": 3, "echo_step": 2}))]


def legend_entries(ax) -> dict:
    """Legend text -> its handle (the sample line drawn in the legend box)."""
    legend = ax.get_legend()
    return {t.get_text(): h for t, h in zip(legend.get_texts(), legend.legend_handles, strict=True)}


def axes_x(ax, x: float) -> float:
    """Where data x lies across the axes, 0 (left border) to 1 (right border)."""
    return float(ax.transAxes.inverted().transform(ax.transData.transform((x, 1.0)))[0])


# ------------------------------------------------------------------------------- epoch lines


@pytest.mark.parametrize("epochs", [1, 3, 40, 41, 300, 10_000, 1_000_000])
def test_epoch_lines_never_crowd(epochs):
    starts, every, label = epoch_marks(epochs * 40, 40)
    assert starts.size <= MOST_EPOCH_LINES
    assert every in {1, 2, 5} or str(every).rstrip("0") in {"1", "2", "5"}  # a round step
    assert np.all(starts % (40 * every) == 0) and 0 not in starts  # the first start is the left border
    if epochs <= MOST_EPOCH_LINES:
        assert every == 1 and starts.size == epochs - 1 and label == "epoch start (new series)"
    else:
        assert every > 1 and f"every {every} epochs" in label


def test_a_long_run_draws_few_epoch_lines_and_a_legend_that_shows_them():
    fig = training_figure(long_run())
    panels = fig.panels
    assert 0 < len(panels.epoch_lines.get_segments()) <= MOST_EPOCH_LINES
    entries = legend_entries(panels.loss_ax)
    epoch = [text for text in entries if text.startswith("epoch start")]
    assert epoch == ["epoch start (new series; every 10 epochs)"]
    assert "snapshot below" in entries
    for text in (epoch[0], "snapshot below"):
        handle = entries[text]
        assert handle.get_visible() and handle.get_linewidth() >= 1.0
        assert handle.get_alpha() is None or handle.get_alpha() >= 0.8


def test_a_short_run_marks_every_epoch(short_runs):
    fig = training_figure(short_runs[0])
    assert len(fig.panels.epoch_lines.get_segments()) == 2  # epochs 2 and 3 start inside the axis
    assert "epoch start (new series)" in legend_entries(fig.panels.loss_ax)


# ------------------------------------------------------------------------------- the loss axis


def test_a_loss_over_decades_gets_a_log_axis_and_says_so():
    fig = training_figure(long_run())
    ax = fig.panels.loss_ax
    assert ax.get_yscale() == "log" and "log scale" in ax.get_ylabel()
    notes = [t.get_text() for t in ax.texts]
    assert any(n.startswith("log scale: the loss spans") and "--no-log" in n for n in notes)
    linear = training_figure(long_run(), log=False).panels.loss_ax
    assert linear.get_yscale() == "linear" and len(linear.texts) == 0 and "log" not in linear.get_ylabel()


def test_a_loss_within_a_decade_stays_linear(short_runs):
    assert choose_log(None, [short_runs[0].loss]) == (False, "")
    assert training_figure(short_runs[0]).panels.loss_ax.get_yscale() == "linear"
    asked = training_figure(short_runs[0], log=True).panels.loss_ax
    assert asked.get_yscale() == "log" and len(asked.texts) == 0  # asked for: no note needed
    assert comparison_figure(short_runs).axes[0].get_yscale() == "linear"
    assert comparison_figure([long_run(), long_run()]).axes[0].get_yscale() == "log"


def test_no_log_on_the_command_line(tmp_path):
    save_run(long_run(), tmp_path / "long.npz")
    for flag in ("--log", "--no-log"):
        result = CliRunner().invoke(cli, ["plot", str(tmp_path / "long.npz"), flag, "-q",
                                          "-o", str(tmp_path / f"{flag}.png"), "--dpi", "30"])
        assert result.exit_code == 0, result.output
    assert "--no-log" in CliRunner().invoke(cli, ["plot", "--help"]).output


# ------------------------------------------------------------------------------- the snapshot line


@pytest.mark.parametrize("step", [0, None])
def test_the_snapshot_line_is_off_the_border(step):
    run = long_run()
    fig = training_figure(run, step=step)
    ax = fig.panels.loss_ax
    where = axes_x(ax, fig.panels.marker.get_xdata()[0])
    assert fig.panels.marker.get_visible()
    assert 0.005 < where < 0.995, where  # at least a few pixels inside either border


def test_the_snapshot_line_of_a_real_run_at_window_0_is_visible(short_runs):
    fig = training_figure(short_runs[0], step=0)
    assert fig.panels.window == 0 and axes_x(fig.panels.loss_ax, 0) > 0.005


# ------------------------------------------------------------------------------- titles


@pytest.mark.parametrize("status", ["completed", "interrupted", "diverged"])
def test_every_title_states_the_status(status):
    run = long_run(status, windows=4000)
    assert f"x.npz: {status}, " in run_headline(run, "x.npz")
    assert f": {status}, " in training_figure(run, name="x.npz")._suptitle.get_text()
    labels = [t.get_text() for t in comparison_figure([run, long_run()]).axes[0].get_legend().get_texts()]
    assert labels[0].endswith(f", {status})") and labels[1].endswith(", completed)")


# ------------------------------------------------------------------------------- epoch axis, heatmap


def test_the_comparison_epoch_axis_has_whole_epochs(short_runs):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = comparison_figure(short_runs)
    FigureCanvasAgg(fig).draw()
    (epoch_axis,) = [a for a in fig.axes[0].child_axes if a.get_xlabel() == "epoch"]
    lo, hi = epoch_axis.get_xlim()
    ticks = [t for t in epoch_axis.get_xticks() if lo <= t <= hi]
    assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), ticks


def test_the_heatmap_is_at_least_800_pixels_wide(tmp_path):
    rows = [Row(file=f"p{e}{w}.npz", config={**Config(echo_step=e, truncated_backprop_length=w).to_dict()},
                status="completed", eval_accuracy=0.5 + 0.1 * e) for e in (1, 2) for w in (5, 15)]
    fig = heatmap_figure(rows, "truncated_backprop_length", "echo_step")
    assert fig.get_figwidth() * fig.dpi >= 800
    # And through the command line, at its default dpi, from run files.
    for e in (1, 2):
        for w in (5, 15):
            run = Run(config=Config(echo_step=e, truncated_backprop_length=w), eval_accuracy=0.9)
            save_run(run, tmp_path / f"echo_step={e}_window={w}.npz")
    result = CliRunner().invoke(cli, ["plot", "--heatmap", str(tmp_path), "--x", "truncated_backprop_length",
                                      "--y", "echo_step", "-q"])
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "heatmap.png") as image:
        assert image.width >= 800
