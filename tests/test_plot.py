"""echo-rnn plot and the figures behind it, headless (Agg), from runs really trained (SMALL config)."""

import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from echo_rnn_cli import Config, Run, load_run, save_run, train
from echo_rnn_cli.cli import cli
from echo_rnn_cli.figures.animation import animation_frames, ffmpeg_path
from echo_rnn_cli.figures.common import HEIGHTS, snapshot_index
from echo_rnn_cli.figures.compare import comparison_figure, differing_labels
from echo_rnn_cli.figures.live import LiveFigure
from echo_rnn_cli.figures.training import training_figure
from tests.conftest import SMALL, small_flags

#: Three epochs of 20 windows: snapshots at windows 0, 20 and 40.
EPOCHS = 3


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two trained runs that differ only in echo_step, saved as a.npz and b.npz."""
    folder = tmp_path_factory.mktemp("runs")
    a = train(Config(**{**SMALL, "epochs": EPOCHS}))
    b = train(Config(**{**SMALL, "epochs": EPOCHS, "echo_step": 2}))
    save_run(a, folder / "a.npz")
    save_run(b, folder / "b.npz")
    return folder


def plot(args, **kw):
    return CliRunner().invoke(cli, ["plot", *map(str, args)], **kw)


def run_cli(args):
    """Through the real entry point: one-line errors and exit codes."""
    with pytest.raises(SystemExit) as info:
        cli.main(["plot", *map(str, args)], prog_name="echo-rnn")
    return info.value.code


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"), np.float64)


def test_snapshots_are_where_the_tests_assume(runs):
    run = load_run(runs / "a.npz")
    assert run.snapshot_window.tolist() == [0, 20, 40] and run.loss.size == 60


def test_plot_writes_a_png_beside_the_run(runs, tmp_path):
    src = tmp_path / "a.npz"
    src.write_bytes((runs / "a.npz").read_bytes())
    result = plot([src])
    assert result.exit_code == 0, result.output
    png = tmp_path / "a.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pixels(png).std() > 20  # a figure, not a blank page
    assert "wrote" in result.stderr and "window 40" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "a.png"]  # no temporary file left


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".svg", b"<?xml"), (".pdf", b"%PDF")])
def test_output_format_follows_the_extension(runs, tmp_path, suffix, magic):
    out = tmp_path / "sub" / f"fig{suffix}"
    result = plot([runs / "a.npz", "-o", out, "--dpi", 50, "-q"])
    assert result.exit_code == 0, result.output
    assert result.output == ""
    data = out.read_bytes()
    assert data.startswith(magic)
    if suffix == ".png":
        assert Image.open(out).width == 550 and pixels(out).std() > 20  # 11 inches at --dpi 50
    elif suffix == ".svg":
        assert data.count(b"<path") > 50  # the bars and curves are there
    else:
        assert len(data) > 10_000


def test_figure_panels_and_tutorial_bars(runs):
    run = load_run(runs / "a.npz")
    fig = training_figure(run)
    assert [ax.get_label() for ax in fig.axes] == ["loss", "row 0", "row 1", "row 2", "row 3", "row 4"]
    assert len(training_figure(run, rows=2).axes) == 3
    # The bars of row 1: input at height 1, echo target 0.5, prediction 0.3, as the tutorial draws them.
    T = run.config.truncated_backprop_length
    tops = np.array([path.vertices[1, 1] for path in fig.panels.bars[1].get_paths()])
    k = snapshot_index(run)
    expected = np.concatenate([run.snapshot_inputs[k, 1] * HEIGHTS["input"],
                               run.snapshot_targets[k, 1] * HEIGHTS["target"],
                               run.snapshot_predictions[k, 1] * HEIGHTS["prediction"]])
    assert tops.shape == (3 * T,) and np.allclose(tops, expected)
    # The loss panel holds every training window.
    assert fig.panels.raw_line.get_xdata().size == run.loss.size


def test_step_picks_the_nearest_snapshot(runs):
    run = load_run(runs / "a.npz")
    assert snapshot_index(run) == 2
    assert [snapshot_index(run, s) for s in (0, 9, 11, 27, 31, 59)] == [0, 0, 1, 1, 2, 2]
    assert training_figure(run, step=27).panels.window == 20
    result = plot([runs / "a.npz", "--step", 12, "-o", runs / "step.png"])
    assert result.exit_code == 0 and "snapshot at window 20" in result.stderr


def test_comparison_labels_runs_by_what_differs(runs, tmp_path):
    a, b = load_run(runs / "a.npz"), load_run(runs / "b.npz")
    fig = comparison_figure([a, b], names=["a.npz", "b.npz"])
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert texts[0].startswith("echo_step 3 (held-out acc") and texts[1].startswith("echo_step 2 (")
    # Runs with the same settings are told apart by their file names.
    assert differing_labels([a, a], ["x.npz", "y.npz"]) == ["x.npz", "y.npz"]
    out = tmp_path / "compare.svg"
    result = plot([runs / "a.npz", runs / "b.npz", "-o", out])
    assert result.exit_code == 0, result.output
    assert b"echo_step 2" in out.read_bytes() and "2 runs" in result.stderr


def test_comparison_compares_the_init_a_run_trained_with(runs, tmp_path):
    """An rnn's `init auto` is the tutorial's weights: beside an rnn given `--init tutorial` the two
    runs share that init, so nothing tells them apart but their file names."""
    save_run(train(Config(**{**SMALL, "epochs": EPOCHS, "init": "tutorial"})), tmp_path / "t.npz")
    auto, tutorial = load_run(runs / "a.npz"), load_run(tmp_path / "t.npz")
    assert (auto.config.init, tutorial.config.init) == ("auto", "tutorial")
    fig = comparison_figure([auto, tutorial], names=["a.npz", "t.npz"])
    assert "init tutorial" in " ".join(fig.get_suptitle().split()).split("shared settings: ", 1)[1]
    assert differing_labels([auto, tutorial], ["a.npz", "t.npz"]) == ["a.npz", "t.npz"]


@pytest.mark.slow  # compiles an lstm and a gru
def test_comparison_of_cells_shares_only_the_settings_they_trained_with(runs, tmp_path):
    """`plot rnn.npz lstm.npz gru.npz`: all three have `init auto`, which the rnn takes as the
    tutorial's weights and the lstm and gru as Keras's, so init is not a shared setting; the lstm
    and gru alone do share Keras's, and say so; no run's cell is claimed for all."""
    for cell in ("lstm", "gru"):
        save_run(train(Config(**{**SMALL, "epochs": 1, "cell": cell})), tmp_path / f"{cell}.npz")
    rnn, lstm, gru = load_run(runs / "a.npz"), load_run(tmp_path / "lstm.npz"), load_run(tmp_path / "gru.npz")
    assert {r.config.init for r in (rnn, lstm, gru)} == {"auto"}

    def shared(fig) -> str:
        return " ".join(fig.get_suptitle().split()).split("shared settings: ", 1)[1]

    for order in ([rnn, lstm, gru], [lstm, gru, rnn]):
        fig = comparison_figure(order, names=["x", "y", "z"])
        assert "init" not in shared(fig) and "lstm" not in shared(fig), shared(fig)
        labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        expected = {"rnn": "init tutorial", "lstm": "init keras", "gru": "init keras"}
        for run, label in zip(order, labels, strict=False):
            assert f"cell {run.config.cell}" in label and expected[run.config.cell] in label, label
    both = comparison_figure([lstm, gru], names=["y", "z"])
    assert "init keras" in shared(both) and "lstm" not in shared(both), shared(both)
    result = plot([runs / "a.npz", tmp_path / "lstm.npz", tmp_path / "gru.npz", "-o", tmp_path / "c.png", "-q"])
    assert result.exit_code == 0, result.output


def test_comparison_default_file_is_beside_the_first_run(runs):
    result = plot([runs / "a.npz", runs / "b.npz", "--log", "-q"])
    assert result.exit_code == 0, result.output
    assert pixels(runs / "compare.png").std() > 20


def test_animation_replays_every_snapshot(runs, tmp_path):
    gif = tmp_path / "replay.gif"
    result = plot([runs / "a.npz", "--animate", gif, "--fps", 5])
    assert result.exit_code == 0, result.output
    with Image.open(gif) as im:
        assert im.n_frames == 3 and im.info["duration"] == 200
        frames = []
        for i in range(im.n_frames):
            im.seek(i)
            frames.append(np.asarray(im.convert("L"), np.float64))
    assert frames[0].std() > 20
    assert all(np.abs(f - frames[0]).sum() > 0 for f in frames[1:])  # the loss grows, the bars change
    assert "3 frames" in result.stderr and sorted(p.name for p in tmp_path.iterdir()) == ["replay.gif"]


def test_animation_frames_limit(runs, tmp_path):
    run = load_run(runs / "a.npz")
    assert animation_frames(run, 2).tolist() == [0, 2]
    gif = tmp_path / "two.gif"
    assert plot([runs / "a.npz", "--animate", gif, "--frames", 2, "-q"]).exit_code == 0
    with Image.open(gif) as im:
        assert im.n_frames == 2


def test_animation_mp4(runs, tmp_path):
    if ffmpeg_path() is None:
        pytest.skip("no ffmpeg here (pip install imageio-ffmpeg, or the video extra)")
    mp4 = tmp_path / "replay.mp4"
    result = plot([runs / "a.npz", "--animate", mp4, "-q"])
    assert result.exit_code == 0, result.output
    assert mp4.read_bytes()[4:8] == b"ftyp"


def test_more_classes_draw_heights_in_proportion(tmp_path):
    """A hand-made run with 3 symbols: symbol c of C draws c/(C-1) of the tutorial's height."""
    c = Config(num_classes=3, batch_size=2, truncated_backprop_length=4, total_series_length=80, epochs=1)
    x = np.array([[[0, 1, 2, 1], [2, 2, 0, 0]]], np.int32)
    probs = np.eye(3, dtype=np.float32)[x]  # predicts the input itself
    run = Run(config=c, loss=np.linspace(1, 0.1, 10).astype(np.float32), accuracy=np.ones(10, np.float32),
              epoch=np.zeros(10, np.int32), snapshot_window=np.array([0]), snapshot_inputs=x,
              snapshot_targets=x, snapshot_probs=probs)
    fig = training_figure(run)
    assert len(fig.axes) == 3
    tops = np.array([path.vertices[1, 1] for path in fig.panels.bars[0].get_paths()])
    assert np.allclose(tops[:4], [0, 0.5, 1, 0.5]) and np.allclose(tops[8:], [0, 0.15, 0.3, 0.15])


def test_diverged_run_still_draws(tmp_path):
    c = Config(batch_size=2, truncated_backprop_length=4, total_series_length=80, epochs=2)
    loss = np.array([0.7, 0.6, 5.0, np.inf], np.float32)
    run = Run(config=c, status="diverged", loss=loss, accuracy=np.zeros(4, np.float32),
              epoch=np.zeros(4, np.int32), snapshot_window=np.array([0]),
              snapshot_inputs=np.zeros((1, 2, 4), np.int32), snapshot_targets=np.zeros((1, 2, 4), np.int32),
              snapshot_probs=np.full((1, 2, 4, 2), np.nan, np.float32))
    fig = training_figure(run, log=True)
    assert "loss not finite (diverged)" in [t.get_text() for t in fig.panels.loss_ax.get_legend().get_texts()]
    assert fig.panels.scores[0].get_text().startswith("0/4")  # NaN probabilities are no prediction
    save_run(run, tmp_path / "d.npz")
    result = plot([tmp_path / "d.npz", "--log", "--animate", tmp_path / "d.gif", "-o", tmp_path / "d.png"])
    assert result.exit_code == 0, result.output
    assert pixels(tmp_path / "d.png").std() > 20
    with Image.open(tmp_path / "d.gif") as im:
        assert im.n_frames == 1


def bad_npz(folder):
    (folder / "text.npz").write_text("not a zip\n")
    np.savez(folder / "other.npz", a=np.arange(3))
    np.savez(folder / "newer.npz", format_version=np.int64(99))
    save_run(Run(config=Config()), folder / "empty.npz")


@pytest.mark.parametrize("args, fragment", [
    (["missing.npz"], "does not exist"),
    (["text.npz"], "not an .npz"),
    (["other.npz"], "not an echo-rnn run file"),
    (["newer.npz"], "newer than this echo-rnn reads"),
    (["empty.npz"], "no training windows yet"),
    (["{a}", "empty.npz"], "'empty.npz' has no training windows"),
    ([], "give one run file"),
    (["{a}", "-o", "fig.xyz"], "--output"),
    (["{a}", "-o", "fig"], "has no extension"),
    (["{a}", "-o", "."], "is a folder"),
    (["{a}", "--rows", "9"], "--rows 9"),
    (["{a}", "--rows", "0"], "--rows"),
    (["{a}", "--step", "500"], "--step 500"),
    (["{a}", "--dpi", "5"], "--dpi"),
    (["{a}", "--animate", "r.txt"], "--animate"),
    (["{a}", "{b}", "--animate", "r.gif"], "replays one run"),
    (["{a}", "--animate", "r.gif", "--step", "3"], "--step"),
    (["{a}", "{b}", "--rows", "2"], "--rows applies to one run"),
    (["{a}", "--fps", "3"], "--fps applies to --animate"),
])
def test_bad_input_is_one_line(runs, tmp_path, capsys, monkeypatch, args, fragment):
    monkeypatch.chdir(tmp_path)
    bad_npz(tmp_path)
    args = [a.format(a=runs / "a.npz", b=runs / "b.npz") for a in args]
    before = sorted(p.name for p in tmp_path.iterdir())
    code = run_cli(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert fragment in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("Error: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_show_without_a_display_writes_the_file(runs, tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    out = tmp_path / "shown.png"
    result = plot([runs / "a.npz", "--show", "-o", out])
    assert result.exit_code == 0, result.output
    assert "--show" in result.stderr and "display" in result.stderr
    assert out.exists()


def test_train_live_without_a_display_warns_and_trains(tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    out = tmp_path / "r.npz"
    result = CliRunner().invoke(cli, ["train", *small_flags(), "--live", "-q", "-o", str(out)])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if "--live" in line]
    assert len(warnings) == 1 and "training goes on" in warnings[0]
    assert load_run(out).epochs_completed == SMALL["epochs"]


def test_live_figure_follows_training():
    """The live figure's updates, on pyplot's Agg backend (what a window would show)."""
    import matplotlib.pyplot as plt

    config = Config(**{**SMALL, "epochs": EPOCHS})
    live = LiveFigure(config)
    try:
        run = train(config, on_epoch=live.update)
        panels = live.panels
        assert np.allclose(panels.raw_line.get_ydata(), run.loss)
        assert panels.window == int(run.snapshot_window[-1])
        assert "epoch 3/3" in live.fig._suptitle.get_text()
    finally:
        plt.close(live.fig)
        plt.ioff()


def test_plot_does_not_import_tensorflow(runs):
    code = ("import sys; from echo_rnn_cli.cli import cli\n"
            f"try:\n    cli.main(['plot', {str(runs / 'a.npz')!r}, '-q'])\nexcept SystemExit as e:\n"
            "    assert e.code == 0, e.code\n"
            "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)


def test_comparison_epoch_lines_are_not_taken_for_a_run(runs):
    """The epoch lines are light, dotted and beneath the curves, and unlike the first run's blue
    (issue 29: its curve blended into solid grey lines)."""
    from matplotlib.colors import to_rgb

    fig = comparison_figure([load_run(runs / "a.npz"), load_run(runs / "b.npz")], names=["a", "b"])
    ax = fig.axes[0]
    (epochs,) = ax.collections
    curves = [line for line in ax.lines if not line.get_label().startswith("_")]
    assert epochs.get_zorder() < min(line.get_zorder() for line in curves)
    assert all(style[1] is not None for style in epochs.get_linestyle()), "dotted, not solid"
    grey = to_rgb(epochs.get_edgecolor()[0])
    assert grey[0] == grey[1] == grey[2] and grey[0] > 0.7  # a light grey: no C0..C9 is one
    for line in curves:
        assert max(abs(a - b) for a, b in zip(to_rgb(line.get_color()), grey, strict=True)) > 0.2
