"""The NumPy network: symbols in, echo out, agreeing with what the trainer computed."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from echo_rnn_cli import Config, Run, load_run, save_run
from echo_rnn_cli.data import echo_series, eval_data, eval_weights
from echo_rnn_cli.inference import (
    SequenceError,
    WeightsError,
    check_symbols,
    echo,
    echo_target,
    format_symbols,
    network_weights,
    parse_symbols,
    random_symbols,
    run_network,
    run_weights,
)
from tests.use_runs import NetConfig, random_weights, trained_rnn_run


def test_importing_inference_does_not_import_tensorflow():
    code = ("import sys, numpy as np; from echo_rnn_cli import inference; "
            "w = {'Wx': np.ones((1, 2), 'f4'), 'Ws': np.eye(2, dtype='f4'), 'b': np.zeros(2, 'f4'), "
            "'W2': np.ones((2, 2), 'f4'), 'b2': np.zeros(2, 'f4')}; "
            "inference.run_network(w, cell='rnn', num_layers=1, num_classes=2, symbols=[0, 1, 1]); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))")
    root = Path(__file__).resolve().parents[1]  # this checkout's package, whatever is installed
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root,
                         env=os.environ | {"PYTHONPATH": str(root)})
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("text, classes, expected", [
    ("0110100111", 2, [0, 1, 1, 0, 1, 0, 0, 1, 1, 1]),
    (" 0, 1 1 ", 2, [0, 1, 1]),
    ("0123", 4, [0, 1, 2, 3]),
    ("9", 10, [9]),
    ("0,11,3", 12, [0, 11, 3]),
    ("0 11  3", 12, [0, 11, 3]),
    ("12", 13, [12]),
])
def test_parse_symbols(text, classes, expected):
    assert parse_symbols(text, classes).tolist() == expected
    assert parse_symbols(text, classes).dtype == np.int32


@pytest.mark.parametrize("text, classes, fragment", [
    ("", 2, "empty"),
    ("   ", 2, "empty"),
    ("0120", 2, "digits 0..1"),
    ("01a", 4, "'a'"),
    ("0,-1", 2, "'-'"),
    ("0,12", 12, "'12'"),
    ("0;1", 12, "'0;1'"),
])
def test_bad_sequences_are_one_line_errors(text, classes, fragment):
    with pytest.raises(SequenceError) as err:
        parse_symbols(text, classes)
    message = str(err.value)
    assert fragment in message and "\n" not in message
    assert isinstance(err.value, ValueError)


def test_check_symbols_refuses_out_of_range_and_non_integers():
    for bad in ([], [0, 2], [-1], [0.5], [[0, 1]]):
        with pytest.raises(SequenceError):
            check_symbols(bad, 2)


def test_random_symbols_are_reproducible_and_in_range():
    a, b = random_symbols(50, 7, 3), random_symbols(50, 7, 3)
    assert np.array_equal(a, b) and set(a.tolist()) <= {0, 1, 2} and a.size == 50
    assert not np.array_equal(a, random_symbols(50, 8, 3))
    with pytest.raises(SequenceError):
        random_symbols(0, 0, 2)


def test_format_symbols_round_trips():
    assert format_symbols(parse_symbols("0110", 2), 2) == "0110"
    assert format_symbols(np.array([0, 11, 3]), 12) == "0,11,3"


def test_echo_target_is_the_series_echo():
    x, y = echo_series(np.random.default_rng(3), 40, 3, 4)
    assert np.array_equal(echo_target(x, 3), y)
    assert echo_target(np.array([1, 1], np.int32), 3).tolist() == [0, 0]


def test_old_and_new_weight_names_give_the_same_network():
    new = random_weights("rnn", 1, 2, 4)
    old = {"Wx": new["kernel_0"], "Ws": new["recurrent_0"], "b": new["bias_0"], "W2": new["W2"], "b2": new["b2"]}
    symbols = [1, 0, 1, 1, 0, 0, 1]
    a = run_network(new, cell="rnn", num_layers=1, num_classes=2, symbols=symbols)
    b = run_network(old, cell="rnn", num_layers=1, num_classes=2, symbols=symbols)
    assert np.array_equal(a.probs, b.probs)


def test_rnn_steps_are_the_tutorials_cell():
    w = random_weights("rnn", 1, 3, 2)
    symbols = np.array([2, 0, 1], np.int32)
    trace = run_network(w, cell="rnn", num_layers=1, num_classes=3, symbols=symbols)
    h = np.zeros(2)
    for t, s in enumerate(symbols):  # in float64, by the tutorial's formula
        h = np.tanh(np.eye(3)[s] @ w["kernel_0"] + h @ w["recurrent_0"] + w["bias_0"])
        assert np.allclose(trace.h[0][t], h, atol=1e-6)
    logits = trace.h[0][-1] @ w["W2"] + w["b2"]
    assert np.allclose(trace.probs[-1], np.exp(logits) / np.exp(logits).sum(), atol=1e-6)
    assert trace.c is None and trace.probs.dtype == np.float32


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("layers", [1, 2])
def test_trace_shapes(cell, layers):
    trace = run_network(random_weights(cell, layers, 4, 3), cell=cell, num_layers=layers, num_classes=4,
                        symbols=[0, 3, 2, 1, 1])
    assert trace.probs.shape == (5, 4) and np.allclose(trace.probs.sum(-1), 1, atol=1e-6)
    assert [h.shape for h in trace.h] == [(5, 3)] * layers
    assert (trace.c is not None) == (cell == "lstm")
    if cell == "lstm":
        assert [c.shape for c in trace.c] == [(5, 3)] * layers
    # A second layer really reads the first: changing layer 1's kernel changes the output.
    if layers == 2:
        w = random_weights(cell, layers, 4, 3)
        w["kernel_1"] = w["kernel_1"] * 2
        other = run_network(w, cell=cell, num_layers=layers, num_classes=4, symbols=[0, 3, 2, 1, 1])
        assert not np.allclose(other.probs, trace.probs)


def test_weights_are_checked():
    good = random_weights("lstm", 2, 2, 4)
    with pytest.raises(WeightsError, match="no weight 'bias_1'"):
        network_weights({k: v for k, v in good.items() if k != "bias_1"}, cell="lstm", num_layers=2,
                        num_classes=2, state_size=4)
    with pytest.raises(WeightsError, match="shape"):
        network_weights(good, cell="gru", num_layers=2, num_classes=2, state_size=4)
    bad = dict(good, recurrent_0=np.full((4, 16), np.nan, np.float32))
    with pytest.raises(WeightsError, match="diverged"):
        run_network(bad, cell="lstm", num_layers=2, num_classes=2, symbols=[0, 1])
    with pytest.raises(WeightsError, match="unknown cell"):
        run_network(good, cell="transformer", num_layers=2, num_classes=2, symbols=[0, 1])


def test_a_diverged_run_is_refused_in_one_line():
    run = Run(config=Config(epochs=1, total_series_length=150), status="diverged")
    with pytest.raises(WeightsError) as err:
        echo(run, [0, 1, 1])
    assert "diverged" in str(err.value) and "\n" not in str(err.value)


def test_echo_of_a_trained_run_reproduces_its_held_out_accuracy(tmp_path):
    """Each held-out row runs from a zero state with its state carried through all its windows:
    exactly what ``echo`` does with that row, so its predictions give the run's eval accuracy."""
    run = load_run(save_run(trained_rnn_run(), tmp_path / "run.npz"))
    c = run.config
    xs, ys = eval_data(c)
    rows_x = np.concatenate(list(xs), axis=1)  # [W, B, T] -> [B, W*T]
    rows_y = np.concatenate(list(ys), axis=1)
    weight = np.concatenate(list(eval_weights(c)), axis=1)
    correct = np.zeros_like(weight)
    for b in range(c.batch_size):
        result = echo(run, rows_x[b])
        correct[b] = result.prediction == rows_y[b]
        assert result.target[c.echo_step:].tolist() == rows_y[b, c.echo_step:].tolist()
    assert float((correct * weight).sum() / weight.sum()) == pytest.approx(run.eval_accuracy, abs=1e-6)


def test_echo_result_and_json():
    run = trained_rnn_run()
    result = echo(run, parse_symbols("0110100111", 2))
    assert result.target.tolist() == [0, 0, 0, 0, 1, 1, 0, 1, 0, 0]
    assert result.correct.tolist() == (result.prediction == result.target).tolist()
    assert result.accuracy == pytest.approx(np.mean(result.correct[3:]))
    data = json.loads(json.dumps(result.to_json()))
    assert data["input"] == "0110100111" and data["target"] == "0000110100"
    assert len(data["prediction"]) == 10 and set(data["prediction"]) <= {"0", "1"}
    assert echo(run, [1, 0]).accuracy is None


def test_run_weights_maps_the_old_names():
    run = trained_rnn_run()
    old = {"Wx": run.params["kernel_0"], "Ws": run.params["recurrent_0"], "b": run.params["bias_0"],
           "W2": run.params["W2"], "b2": run.params["b2"]}
    weights = run_weights(dataclasses.replace(run, params=old))
    assert set(weights) == {"kernel_0", "recurrent_0", "bias_0", "W2", "b2"}
    assert np.array_equal(weights["kernel_0"], old["Wx"])


def test_config_without_cell_settings_means_the_tutorials_network():
    cfg = NetConfig("gru", 2)
    from echo_rnn_cli.inference import network_of

    assert network_of(cfg) == {"cell": "gru", "num_layers": 2, "num_classes": 2}
    assert network_of(Config()) == {"cell": "rnn", "num_layers": 1, "num_classes": 2}
