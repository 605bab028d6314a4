"""docs/memory.md says exactly what the memory profile and the gradient's reach are (issue 29, item 4):
implemented here from that page alone, in plain float64 NumPy (nothing of echo_rnn_cli's own
forward or backward pass), they match what `train` stores, to float64 rounding.

The gradient is taken by the complex step (d f / d h = Im f(h + iε) / ε, exact to float64 rounding
for functions like these), not by a backward pass, so it shares no arithmetic with the library's.
"""

import re
from pathlib import Path

import numpy as np
import pytest

from echo_rnn_cli import Config, load_run, memory_profile, save_run, train
from echo_rnn_cli.inference import weight_shapes
from tests.conftest import SMALL

PAGE = (Path(__file__).resolve().parents[1] / "docs" / "memory.md").read_text()
EPS = 1e-30


def sigma(z):
    return 1 / (1 + np.exp(-z))


def step(cell, w, layer, x, h, c):
    """One step of one layer, as the page writes it (any float or complex type)."""
    k, r, b = w[f"kernel_{layer}"], w[f"recurrent_{layer}"], w[f"bias_{layer}"]
    s = r.shape[0]
    if cell == "rnn":
        return np.tanh(x @ k + h @ r + b), c
    if cell == "lstm":
        z = x @ k + h @ r + b
        i, f, g, o = z[:, :s], z[:, s:2 * s], z[:, 2 * s:3 * s], z[:, 3 * s:]
        c = sigma(f) * c + sigma(i) * np.tanh(g)
        return sigma(o) * np.tanh(c), c
    a, rh = x @ k + b[0], h @ r + b[1]
    z = sigma(a[:, :s] + rh[:, :s])
    reset = sigma(a[:, s:2 * s] + rh[:, s:2 * s])
    candidate = np.tanh(a[:, 2 * s:] + reset * rh[:, 2 * s:])
    return z * h + (1 - z) * candidate, c


def encode(symbols, classes):
    return symbols[:, None].astype(np.float64) if classes == 2 else np.eye(classes)[symbols]


def run(cell, w, layers, classes, rows, state=None, nudge=None):
    """Rows [N, n] from ``state`` (zeros if None) -> (top h [N, n, S], the state after the last step).
    ``nudge`` (layer, step, [N, S]) is added to that layer's h right after that step."""
    n, steps = rows.shape
    s = w["W2"].shape[0]
    dtype = complex if nudge is not None else float
    h = [np.zeros((n, s), dtype) for _ in range(layers)] if state is None else [x.astype(dtype) for x in state[0]]
    c = [np.zeros((n, s), dtype) for _ in range(layers)] if state is None else [x.astype(dtype) for x in state[1]]
    top = np.zeros((n, steps, s), dtype)
    for t in range(steps):
        x = encode(rows[:, t], classes)
        for layer in range(layers):
            h[layer], c[layer] = step(cell, w, layer, x, h[layer], c[layer])
            if nudge is not None and nudge[:2] == (layer, t):
                h[layer] = h[layer] + nudge[2]
            x = h[layer]
        top[:, t] = h[-1]
    return top, (h, c)


def softmax(h, w):
    logits = h @ w["W2"] + w["b2"]
    e = np.exp(logits - logits.real.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def page_profile(w, c: Config) -> np.ndarray:
    lags = min(512, max(2 * c.truncated_backprop_length, c.echo_step + 5))
    series = np.random.default_rng([c.seed, 4]).integers(0, c.num_classes, size=(16, 2 * lags + 17), dtype=np.int32)
    flips = max(2, 16 // min(c.num_classes - 1, 7))
    draw = np.random.default_rng([c.seed, 4, 1])
    changes = []
    for row in series:
        probs = softmax(run(c.cell, w, c.num_layers, c.num_classes, row[None])[0][0], w)
        for p in range(lags, lags + flips):
            js = (range(1, c.num_classes) if c.num_classes <= 8
                  else draw.choice(np.arange(1, c.num_classes), 7, replace=False))
            flipped = np.repeat(row[None], len(js), axis=0)
            flipped[:, p] = [(row[p] + j) % c.num_classes for j in js]
            other = softmax(run(c.cell, w, c.num_layers, c.num_classes, flipped)[0], w)
            ahead = probs[p:p + lags + 1]
            chosen = ahead.argmax(-1)
            steps = np.arange(lags + 1)
            change = np.abs(other[:, p + steps, chosen] - ahead[steps, chosen])
            changes.append(change.mean(axis=0))
    return np.mean(changes, axis=0)


def page_reach(w, c: Config) -> np.ndarray:
    lags = min(512, max(2 * c.truncated_backprop_length, c.echo_step + 5))
    series = np.random.default_rng([c.seed, 4]).integers(0, c.num_classes, size=(16, 2 * lags + 17), dtype=np.int32)
    T, S, layers = c.truncated_backprop_length, c.state_size, c.num_layers
    start = T * -(-lags // T)
    assert start + T <= series.shape[1]  # the page's lengthening applies only past 512 lags
    _, state = run(c.cell, w, layers, c.num_classes, series[:, :start])
    window = series[:, start:start + T]
    target = series[:, start + T - 1 - c.echo_step]
    reach = np.zeros((layers, lags + 1))
    rows = np.arange(16)
    for layer in range(layers):
        for t in range(T):
            grad = np.zeros((16, S))
            for unit in range(S):
                nudge = np.zeros((16, S), complex)
                nudge[:, unit] = EPS * 1j
                top, _ = run(c.cell, w, layers, c.num_classes, window, state, nudge=(layer, t, nudge))
                logits = top[:, -1] @ w["W2"] + w["b2"]
                m = logits.real.max(-1, keepdims=True)
                loss = m[:, 0] + np.log(np.exp(logits - m).sum(-1)) - logits[rows, target]
                grad[:, unit] = loss.imag / EPS
            k = T - 1 - t
            if k <= lags:
                reach[layer, k] = np.linalg.norm(grad, axis=1).mean()
    return reach


def random_weights(c: Config, seed=3):
    rng = np.random.default_rng(seed)
    shapes = weight_shapes(cell=c.cell, num_layers=c.num_layers, num_classes=c.num_classes, state_size=c.state_size)
    return {k: rng.normal(0, 0.8, size=v).astype(np.float32) for k, v in shapes.items()}


def test_the_page_says_what_the_test_implements():
    """The details this file rests on are on the page, in its words."""
    for fragment in ("default_rng([seed, 4]).integers(0, C, size=(16, 2·L + 17)", "n = max(2, 16 // min(C - 1, 7))",
                     "default_rng([seed, 4, 1]).choice(numpy.arange(1, C), 7, replace=False)",
                     "w = T·ceil(L / T)", "(no mean over the rows)", "an LSTM's cell\nstate c_t is a separate "
                     "variable, not included", "Keras's order i, f, g, o", "(the first of equal ones)",
                     "0\nfor k ≥ T"):
        assert re.sub(r"\s+", " ", fragment) in re.sub(r"\s+", " ", PAGE), fragment


CASES = [dict(cell="rnn"), dict(cell="lstm"), dict(cell="gru"), dict(cell="lstm", num_layers=2),
         dict(cell="gru", num_layers=2, num_classes=3), dict(cell="rnn", num_classes=10, echo_step=2),
         dict(cell="rnn", truncated_backprop_length=4, echo_step=7, seed=5)]


@pytest.mark.parametrize("case", CASES, ids=[",".join(f"{k}={v}" for k, v in c.items()) for c in CASES])
def test_the_page_computes_what_the_library_does(case):
    """Random weights (every unit and gate at work), every cell, layers and class counts, and an echo
    beyond twice the window (L from echo_step + 5): the library's float64 values to rounding."""
    c = Config(**{**SMALL, "state_size": 3, **case}, init="keras")
    w = random_weights(c)
    w64 = {k: v.astype(np.float64) for k, v in w.items()}
    np.testing.assert_allclose(page_profile(w64, c), memory_profile.memory_profile(w, c), rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(page_reach(w64, c), memory_profile.gradient_reach(w, c), rtol=1e-9, atol=1e-13)


def assert_stored_record_is_the_page(path: Path):
    """The last record of a run file (made with its final weights) is the page's measures of them,
    stored as float32: equal to float32 rounding of values equal to float64 rounding."""
    run = load_run(path)
    w = {k: v.astype(np.float64) for k, v in run.params.items()}
    profile, reach = page_profile(w, run.config), page_reach(w, run.config)
    np.testing.assert_allclose(run.memory_profile[-1], profile, rtol=2 ** -24, atol=1e-12)
    np.testing.assert_allclose(run.memory_reach[-1], reach, rtol=2 ** -24, atol=1e-12)
    assert run.memory_profile[-1].max() > 0.01 and run.memory_reach[-1, 0, 0] > 0  # there is something to match


def test_a_trained_runs_stored_records_are_the_pages(tmp_path):
    config = Config(epochs=8, total_series_length=20000)  # learns its echo (tests/test_memory_profile.py)
    assert_stored_record_is_the_page(save_run(train(config), tmp_path / "run.npz"))


@pytest.mark.slow  # compiles an lstm of two layers
def test_a_trained_lstms_stored_records_are_the_pages(tmp_path):
    config = Config(**SMALL, cell="lstm", num_layers=2, state_size=5, echo_step=2, truncated_backprop_length=6)
    assert_stored_record_is_the_page(save_run(train(config), tmp_path / "lstm.npz"))


def test_the_pages_name_the_record_schedule_the_trainer_keeps():
    """Records at 0, every epoch to 4, then round(2 ** (j / 2)): 6, 8, 11, ... (docs/run-file.md said
    "every epoch up to 8", issue 29), on both pages."""
    kept = [e for e in range(1, 50) if memory_profile.records_after(e)]
    assert kept == [1, 2, 3, 4, 6, 8, 11, 16, 23, 32, 45]
    run_file = (Path(__file__).resolve().parents[1] / "docs" / "run-file.md").read_text()
    for page in (PAGE, run_file):
        page = re.sub(r"\s+", " ", page)
        assert "every epoch up to 4" in page and "(6, 8, 11, 16, 23, 32, 45," in page
        assert "every epoch up to 8" not in page
