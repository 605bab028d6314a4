"""Exported Keras models predict what ``echo`` predicts, for every cell and for stacked layers."""

import numpy as np
import pytest

from echo_rnn_cli import Config, Run, save_run
from echo_rnn_cli.export import ExportError, build_keras_model, export_model, keras_inputs
from echo_rnn_cli.inference import WeightsError, echo, random_symbols, run_network
from tests.use_runs import random_weights, trained_rnn_run

keras = pytest.importorskip("keras")


class _CellRun:
    """A run of a cell the trainer cannot train yet: the contract's weights, drawn at random."""

    def __init__(self, cell, layers, classes, state_size=4):
        self.config = type("C", (), dict(cell=cell, num_layers=layers, num_classes=classes,
                                         state_size=state_size, echo_step=3))()
        self.status, self.params = "completed", random_weights(cell, layers, classes, state_size)


def _load_and_predict(path, symbols, classes):
    model = keras.models.load_model(path)
    return model.predict(keras_inputs(symbols, classes), verbose=0)[0]


def test_trained_rnn_run_exports_to_the_same_predictions(tmp_path):
    run = trained_rnn_run()
    out = export_model(run, tmp_path / "models" / "echo.keras")
    symbols = random_symbols(200, 1, 2)
    probs = _load_and_predict(out, symbols, 2)
    result = echo(run, symbols)
    assert np.array_equal(probs.argmax(-1), result.prediction)
    np.testing.assert_allclose(probs, result.trace.probs, atol=1e-5)
    assert not list(tmp_path.glob("models/.*"))  # no temporary file left beside it


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("layers", [1, 2])
def test_every_cell_and_stack_exports_to_the_same_predictions(tmp_path, cell, layers):
    classes = 3 if layers == 2 else 2  # one-hot inputs as well as the scalar symbol
    run = _CellRun(cell, layers, classes)
    out = export_model(run, tmp_path / f"{cell}{layers}.keras")
    symbols = random_symbols(60, layers, classes)
    probs = _load_and_predict(out, symbols, classes)
    result = echo(run, symbols)
    assert np.array_equal(probs.argmax(-1), result.prediction)
    np.testing.assert_allclose(probs, result.trace.probs, atol=1e-5)
    loaded = keras.models.load_model(out)
    kinds = {"rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}
    assert [type(layer).__name__ for layer in loaded.layers[1:]] == [kinds[cell]] * layers + ["Dense"]


def test_a_wrong_gate_order_would_be_caught():
    """The comparison is sharp: LSTM weights with two gates swapped predict differently."""
    w = random_weights("lstm", 1, 2, 4)
    symbols = random_symbols(60, 0, 2)
    model = build_keras_model(w, cell="lstm", num_layers=1, num_classes=2, state_size=4)
    swapped = dict(w)
    for key in ("kernel_0", "recurrent_0"):
        a = w[key].copy()
        a[..., 0:4], a[..., 4:8] = w[key][..., 4:8], w[key][..., 0:4]
        swapped[key] = a
    ours = run_network(swapped, cell="lstm", num_layers=1, num_classes=2, symbols=symbols).probs
    theirs = model.predict(keras_inputs(symbols, 2), verbose=0)[0]
    assert not np.allclose(ours, theirs, atol=1e-3)


def test_savedmodel_serves_the_same_predictions(tmp_path):
    from echo_rnn_cli._tf import tf

    run = _CellRun("gru", 2, 2)
    out = export_model(run, tmp_path / "served", fmt="savedmodel")
    assert (out / "saved_model.pb").is_file()
    symbols = random_symbols(40, 5, 2)
    loaded = tf.saved_model.load(str(out))  # kept: its variables die with it
    served = loaded.serve(tf.constant(keras_inputs(symbols, 2))).numpy()[0]
    assert np.array_equal(served.argmax(-1), echo(run, symbols).prediction)
    # Exporting again replaces the folder, leaving nothing else behind.
    replacement = _CellRun("rnn", 1, 2)
    export_model(replacement, out, fmt="savedmodel")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["served"]
    again = tf.saved_model.load(str(out))
    served = again.serve(tf.constant(keras_inputs(symbols, 2))).numpy()[0]
    np.testing.assert_allclose(served, echo(replacement, symbols).trace.probs, atol=1e-5)


def test_bad_destinations_and_runs_are_refused_before_writing(tmp_path):
    run = _CellRun("rnn", 1, 2)
    with pytest.raises(ExportError, match=r"\.keras"):
        export_model(run, tmp_path / "model.h5")
    (tmp_path / "dir.keras").mkdir()
    with pytest.raises(ExportError, match="is a folder"):
        export_model(run, tmp_path / "dir.keras")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExportError, match="is a file"):
        export_model(run, tmp_path / "file", fmt="savedmodel")
    with pytest.raises(ExportError, match="unknown export format"):
        export_model(run, tmp_path / "m.keras", fmt="onnx")
    diverged = Run(config=Config(epochs=1, total_series_length=150), status="diverged")
    with pytest.raises(WeightsError, match="diverged"):
        export_model(diverged, tmp_path / "d.keras")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.keras", "file"]


def test_a_failed_write_keeps_the_existing_model(tmp_path):
    run = trained_rnn_run()
    out = export_model(run, tmp_path / "m.keras")
    before = out.read_bytes()
    broken = Run(config=run.config, params=dict(run.params, W2=np.zeros((3, 3), np.float32)))
    with pytest.raises(WeightsError):
        export_model(broken, out)
    assert out.read_bytes() == before
    save_run(run, tmp_path / "run.npz")  # the run file and the model live side by side
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.keras", "run.npz"]
