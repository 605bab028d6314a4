"""The states figure renders for every cell, without TensorFlow, and shows what the network computed."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

from echo_rnn_cli.figures.states import states_figure
from echo_rnn_cli.inference import SequenceError, WeightsError, random_symbols
from tests.use_runs import NetConfig, random_weights, trained_rnn_run

ROOT = Path(__file__).resolve().parents[1]


def _png(figure, path):
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=80)
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


@pytest.mark.parametrize("cell, layers, classes", [("rnn", 1, 2), ("lstm", 2, 2), ("gru", 2, 4)])
def test_states_figure_renders_each_cell(tmp_path, cell, layers, classes):
    config = NetConfig(cell, layers, classes, state_size=4)
    weights = random_weights(cell, layers, classes, 4)
    figure = states_figure(weights, config, random_symbols(40, 0, classes))
    panels = layers * (2 if cell == "lstm" else 1) + 1
    state_axes = [ax for ax in figure.axes if ax.get_images() and ax.get_ylabel().startswith("layer")]
    assert len(state_axes) == panels - 1
    title = figure._suptitle.get_text()
    assert cell.upper() in title and f"{layers} layer" in title and "echo_step 3" in title and "%" in title
    pixels = _png(figure, tmp_path / f"{cell}.png")
    assert pixels.std() > 20  # not blank
    # Reds and blues of the diverging colormap both appear: states of both signs are drawn.
    red = (pixels[..., 0] > 150) & (pixels[..., 2] < 120)
    blue = (pixels[..., 2] > 150) & (pixels[..., 0] < 120)
    assert red.sum() > 100 and blue.sum() > 100


def test_the_heat_strips_hold_the_recomputed_states():
    run = trained_rnn_run()
    symbols = random_symbols(30, 2, 2)
    figure = states_figure(run.params, run.config, symbols)
    from echo_rnn_cli.inference import echo

    strip = next(ax for ax in figure.axes if ax.get_ylabel().startswith("layer 1 h")).get_images()[0]
    np.testing.assert_array_equal(strip.get_array(), echo(run, symbols).trace.h[0].T)
    assert strip.get_clim() == (-1.0, 1.0)
    rows = next(ax for ax in figure.axes if ax.get_ylabel() == "" and ax.get_images()).get_images()[0].get_array()
    assert rows[0].tolist() == symbols.tolist()


def test_lstm_cell_state_panel_is_scaled_to_its_values():
    weights = random_weights("lstm", 1, 2, 3)
    weights["bias_0"][3:6] = 5.0  # forget gate open: the cell state accumulates past 1
    figure = states_figure(weights, NetConfig("lstm", 1, 2, state_size=3), np.ones(30, np.int32))
    c_strip = next(ax for ax in figure.axes if ax.get_ylabel().startswith("layer 1 c")).get_images()[0]
    low, high = c_strip.get_clim()
    assert high == -low and high == pytest.approx(np.abs(c_strip.get_array()).max()) and high > 1


def test_bad_input_is_refused():
    config = NetConfig("rnn", 1, 2)
    with pytest.raises(SequenceError):
        states_figure(random_weights("rnn", 1, 2, 4), config, [0, 2])
    with pytest.raises(WeightsError):
        states_figure(random_weights("gru", 1, 2, 4), config, [0, 1])


def test_state_figure_does_not_import_tensorflow():
    code = ("import sys; import numpy as np; from echo_rnn_cli.figures.states import states_figure; "
            "from tests.use_runs import NetConfig, random_weights; "
            "states_figure(random_weights('lstm', 1, 2, 3), NetConfig('lstm', 1, 2, 3), [0, 1, 1, 0]); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))")
    env = os.environ | {"MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, cwd=ROOT)
    assert out.stdout.strip() == "[]"
