"""Use a trained network: feed it symbols and read its echo, with NumPy alone.

No TensorFlow here (``echo-rnn echo`` starts in a fraction of a second): the cells are written out
in float32 NumPy exactly as Keras defines them (see CONTRACT for cells, layers and weight names), so
the numbers agree with the trainer's and with an exported Keras model up to float32 rounding.

Symbols on the command line: for up to 10 classes, one digit per symbol (``0110100111``; commas and
spaces between them are allowed and ignored); for more classes, whole numbers separated by commas or
spaces (``0,11,3`` or ``"0 11 3"``), since ``11`` written as digits would be ambiguous.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

CELLS = ("rnn", "lstm", "gru")
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
#: Format-1 run files name layer 0 of the tutorial's network by its old names.
LEGACY_NAMES = {"Wx": "kernel_0", "Ws": "recurrent_0", "b": "bias_0"}
MAX_DIGIT_CLASSES = 10
#: The longest sequence ``echo`` feeds: NumPy steps through it one symbol at a time (about a
#: second for this many on a small network), and its three printed lines grow with it.
MAX_SYMBOLS = 100_000


class SequenceError(ValueError):
    """Symbols that cannot be fed to the network; the message is one line meant for the user."""


class WeightsError(ValueError):
    """A run whose weights cannot be used (diverged, missing, wrong shape); one line for the user."""


@dataclass
class Trace:
    """One pass over a sequence: probs [T, C]; h[l] (and for lstm c[l]) [T, S] per layer l."""

    probs: np.ndarray | None  # None where more than ``KEEP_PROBS``: the predictions are kept instead
    h: list[np.ndarray]
    c: list[np.ndarray] | None = None
    predicted: np.ndarray | None = None  # [T] int32, when given

    @property
    def prediction(self) -> np.ndarray:
        if self.predicted is not None:
            return self.predicted
        return np.argmax(self.probs, axis=-1).astype(np.int32)


@dataclass
class EchoResult:
    """The network's echo of one sequence. ``accuracy`` counts the steps from ``echo_step`` on (the
    earlier targets are zeros by construction, not an echo); None when the sequence is too short."""

    input: np.ndarray
    target: np.ndarray
    prediction: np.ndarray
    correct: np.ndarray
    accuracy: float | None
    echo_step: int
    num_classes: int
    trace: Trace

    def to_json(self) -> dict[str, Any]:
        """What ``echo --json`` prints: strings as typed (same length as the input for up to 10
        classes), and the accuracy (null when no step can be predicted)."""
        return {"input": format_symbols(self.input, self.num_classes),
                "target": format_symbols(self.target, self.num_classes),
                "prediction": format_symbols(self.prediction, self.num_classes),
                "accuracy": self.accuracy}


# --- symbols -------------------------------------------------------------------------------------

def parse_symbols(text: str, num_classes: int) -> np.ndarray:
    """A typed sequence -> int32 symbols in 0..C-1 (see the module's docstring for the syntax)."""
    stripped = text.strip()
    if not stripped:
        raise SequenceError("the sequence is empty: give at least one symbol, e.g. 0110100111")
    if num_classes <= MAX_DIGIT_CLASSES:
        tokens = [ch for ch in stripped if ch not in ", \t"]
        _check_length(len(tokens))
        top = str(num_classes - 1)
        # Compared as characters, not str.isdigit: that is true for '²' and other digits int() refuses.
        bad = sorted({ch for ch in tokens if not "0" <= ch <= top})
        if bad:
            raise SequenceError(f"the sequence may hold only the digits 0..{top} for {num_classes} classes; "
                                f"found {''.join(bad)[:20]!r}")
        return np.array([int(ch) for ch in tokens], np.int32)
    tokens = [t for t in re.split(r"[,\s]+", stripped) if t]
    _check_length(len(tokens))
    values = [_class_number(t, num_classes) for t in tokens]
    bad = [t for t, v in zip(tokens, values, strict=True) if v is None]
    if bad:
        shown = bad[0] if len(bad[0]) <= 20 else f"{bad[0][:20]}... ({len(bad[0]):,} characters)"
        raise SequenceError(f"the sequence may hold only whole numbers 0..{num_classes - 1}, separated by commas "
                            f"or spaces, for {num_classes} classes; found {shown!r}")
    return np.array(values, np.int32)


def _class_number(token: str, num_classes: int) -> int | None:
    """A token's class, or None. ASCII digits only, and no longer than the largest class: int() is
    never given what it refuses ('²') or what it is slow or unwilling to convert (thousands of digits)."""
    digits = token.lstrip("0") or "0"
    if not re.fullmatch(r"[0-9]+", token) or len(digits) > len(str(num_classes)):
        return None
    value = int(digits)
    return value if value < num_classes else None


def _check_length(count: int) -> None:
    if count > MAX_SYMBOLS:
        raise SequenceError(f"the sequence has {count:,} symbols, more than the {MAX_SYMBOLS:,} echo feeds at once")


def random_symbols(length: int, seed: int, num_classes: int) -> np.ndarray:
    """``length`` random symbols 0..C-1 drawn from ``seed`` (``echo --random N --seed S``)."""
    if not 1 <= length <= MAX_SYMBOLS:
        raise SequenceError(f"--random takes 1 to {MAX_SYMBOLS:,} symbols, got {length:,}")
    return np.random.default_rng(seed).integers(0, num_classes, size=length, dtype=np.int32)


def check_symbols(symbols: Any, num_classes: int) -> np.ndarray:
    """A 1-D sequence of whole numbers in 0..C-1, as int32."""
    arr = np.asarray(symbols)
    if arr.ndim != 1 or arr.size == 0:
        raise SequenceError(f"give a non-empty 1-D sequence of symbols, got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        raise SequenceError(f"symbols must be whole numbers, got {arr.dtype}")
    if arr.min() < 0 or arr.max() >= num_classes:
        raise SequenceError(f"symbols must be 0..{num_classes - 1} for {num_classes} classes, "
                            f"found {int(arr.min() if arr.min() < 0 else arr.max())}")
    return arr.astype(np.int32)


def format_symbols(symbols: np.ndarray, num_classes: int) -> str:
    """One digit per symbol up to 10 classes; else comma-separated numbers."""
    if num_classes <= MAX_DIGIT_CLASSES:
        return "".join(str(int(s)) for s in symbols)
    return ",".join(str(int(s)) for s in symbols)


def echo_target(symbols: np.ndarray, echo_step: int) -> np.ndarray:
    """The echo the network should produce, as ``data.echo_series`` makes it: shifted right by
    echo_step, the first echo_step steps zero."""
    y = np.roll(symbols, echo_step).astype(np.int32)
    y[:echo_step] = 0
    return y


def encode_inputs(symbols: np.ndarray, num_classes: int) -> np.ndarray:
    """[T] symbols -> [T, I0] float32: the symbol itself for 2 classes (the tutorial's), else one-hot."""
    if num_classes == 2:
        return symbols.astype(np.float32)[:, None]
    # Not np.eye(C)[symbols]: that builds C x C numbers first (37 GB for 100,000 classes).
    out = np.zeros((symbols.shape[0], num_classes), np.float32)
    out[np.arange(symbols.shape[0]), symbols] = 1
    return out


# --- weights -------------------------------------------------------------------------------------

def network_of(config: Any) -> dict[str, Any]:
    """cell, num_layers, num_classes of a run's config (cell and num_layers default to the tutorial's
    network for configs made before those settings existed)."""
    return {"cell": getattr(config, "cell", "rnn"), "num_layers": int(getattr(config, "num_layers", 1)),
            "num_classes": int(config.num_classes)}


def weight_shapes(*, cell: str, num_layers: int, num_classes: int, state_size: int) -> dict[str, tuple]:
    """Every weight of one network, by the contract's names."""
    if cell not in CELLS:
        raise WeightsError(f"unknown cell {cell!r}: expected one of {', '.join(CELLS)}")
    g, s = GATES[cell], state_size
    shapes: dict[str, tuple] = {}
    for layer in range(num_layers):
        width = (1 if num_classes == 2 else num_classes) if layer == 0 else s
        shapes[f"kernel_{layer}"] = (width, g * s)
        shapes[f"recurrent_{layer}"] = (s, g * s)
        shapes[f"bias_{layer}"] = (2, 3 * s) if cell == "gru" else (g * s,)
    return shapes | {"W2": (s, num_classes), "b2": (num_classes,)}


def network_weights(params: dict[str, Any], *, cell: str, num_layers: int, num_classes: int,
                    state_size: int) -> dict[str, np.ndarray]:
    """The weights by the contract's names (old names Wx/Ws/b accepted), float32, checked: all
    present, shaped for the network, finite. Keys beyond those are ignored."""
    named = {LEGACY_NAMES.get(k, k): v for k, v in params.items()}
    expected = weight_shapes(cell=cell, num_layers=num_layers, num_classes=num_classes, state_size=state_size)
    out = {}
    for key, shape in expected.items():
        if key not in named:
            raise WeightsError(f"the run has no weight {key!r} for its {num_layers}-layer {cell} network")
        arr = np.asarray(named[key])
        if arr.shape != shape:
            raise WeightsError(f"weight {key!r} has shape {arr.shape}, expected {shape}")
        if arr.dtype.kind not in "fiu" or not np.all(np.isfinite(arr)):
            raise WeightsError(f"weight {key!r} is not finite: the run diverged; train it again with a smaller "
                               "--learning-rate")
        out[key] = arr.astype(np.float32)
    return out


def run_weights(run: Any) -> dict[str, np.ndarray]:
    """A run's usable weights, or a WeightsError saying why there are none."""
    if run.status == "diverged":
        raise WeightsError("the run diverged (its loss became non-finite), so it kept no weights to use; "
                           "train it again with a smaller --learning-rate")
    if not run.params:
        raise WeightsError(f"the run file holds no weights (its status is {run.status!r}), so there is no "
                           "network to use; train it again")
    net = network_of(run.config)
    return network_weights(run.params, cell=net["cell"], num_layers=net["num_layers"],
                           num_classes=net["num_classes"], state_size=int(run.config.state_size))


# --- the cells, exactly Keras's ----------------------------------------------------------------

def sigmoid(z: np.ndarray) -> np.ndarray:
    # Split by sign so exp never overflows; both halves are the exact logistic.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e)).astype(z.dtype)


def cell_step(cell: str, xz_t: np.ndarray, h: np.ndarray, c: np.ndarray, recurrent: np.ndarray,
              bias: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple]:
    """One step of one layer, for any leading (batch) shape and float type: ``xz_t`` is the input
    part (x @ kernel + bias; for the gru its input bias only). Returns (h, c, what the step's
    backward pass needs, see ``memory_profile.cell_back``); c is only an lstm's."""
    s = h.shape[-1]
    if cell == "rnn":
        h = np.tanh(xz_t + h @ recurrent)
        return h, c, (h,)
    if cell == "lstm":
        z = xz_t + h @ recurrent
        i, f = sigmoid(z[..., :s]), sigmoid(z[..., s:2 * s])
        g, o = np.tanh(z[..., 2 * s:3 * s]), sigmoid(z[..., 3 * s:])
        c_new = f * c + i * g
        tanh_c = np.tanh(c_new)
        return o * tanh_c, c_new, (i, f, g, o, c, tanh_c)
    hz = h @ recurrent + bias[1]
    z = sigmoid(xz_t[..., :s] + hz[..., :s])
    r = sigmoid(xz_t[..., s:2 * s] + hz[..., s:2 * s])
    hh = np.tanh(xz_t[..., 2 * s:] + r * hz[..., 2 * s:])
    return z * h + (1 - z) * hh, c, (z, r, hh, hz, h)


def input_part(cell: str, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """The part of every step that does not depend on the state, for all steps at once."""
    return x @ kernel + (bias[0] if cell == "gru" else bias)


def _first_input(cell: str, symbols: np.ndarray, kernel: np.ndarray, bias: np.ndarray, num_classes: int):
    """Layer 0's input part for symbols [T]: the symbol's row of the kernel (one-hot times the kernel,
    without the [T, C] one-hot: 8 GB for 100,000 steps of 20,000 classes), or for 2 classes the
    symbol (0 or 1) times its one row; the same numbers as ``input_part`` on ``encode_inputs``."""
    b = bias[0] if cell == "gru" else bias
    if num_classes == 2:
        return symbols.astype(np.float32)[:, None] * kernel[0] + b
    return kernel[symbols] + b


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


#: At most this many probabilities (4 bytes each) at once while a sequence is fed: the steps go
#: through in chunks, so many classes cost time, not memory (100,000 steps of 20,000 classes
#: asked for 7.45 GiB at once, issue 27).
CHUNK_VALUES = 2**22
#: At most this many probabilities are kept in a Trace (``probs``); beyond, only the predictions.
KEEP_PROBS = 2**24
#: The most work ``echo`` does for one sequence, in multiply-adds and exponentials (see
#: ``echo_work``): about 20 s on the 2-core AMD EPYC of docs/speed.md. More is refused up front,
#: with the longest sequence this network can take within it.
MAX_ECHO_WORK = 2 * 10**10


def step_work(config: Any) -> int:
    """Multiply-adds and exponentials of one step of a run's network (every layer and the softmax)."""
    net = network_of(config)
    g, s, c = GATES.get(net["cell"], 4), int(config.state_size), net["num_classes"]
    return net["num_layers"] * g * s * 2 * s + s * c + c


def echo_work(config: Any, steps: int) -> int:
    return steps * step_work(config)


def check_echo_work(config: Any, steps: int) -> None:
    """Refuse, before any work, a sequence whose echo would take more than ``MAX_ECHO_WORK``."""
    work = echo_work(config, steps)
    if work > MAX_ECHO_WORK:
        most = max(1, MAX_ECHO_WORK // step_work(config))
        raise SequenceError(f"{steps:,} symbols through this network (state {config.state_size}, "
                            f"{config.num_classes:,} classes) take {work:.2g} operations, more than the "
                            f"{MAX_ECHO_WORK:.0e} echo does at once; give at most {most:,} symbols")


def run_network(weights: dict[str, Any], *, cell: str, num_layers: int, num_classes: int,
                symbols: Any, keep_states: bool = True) -> Trace:
    """Feed a 1-D symbol sequence from a zero state, step by step; every layer's states (without
    ``keep_states``: none) and the class probabilities of every step (``probs`` None beyond
    ``KEEP_PROBS`` of them: the predictions are kept). ``weights`` by either naming (checked).
    The steps go through in chunks of ``CHUNK_VALUES`` probabilities, so memory stays bounded."""
    if "W2" not in weights or np.ndim(weights["W2"]) != 2:
        raise WeightsError("the run has no softmax weight 'W2' [state_size, num_classes]")
    s = int(np.shape(weights["W2"])[0])
    w = network_weights(weights, cell=cell, num_layers=num_layers, num_classes=num_classes, state_size=s)
    symbols = check_symbols(symbols, num_classes)
    steps = symbols.shape[0]
    keep = (steps * s, steps * s) if keep_states else (0, 0)
    hs = [np.zeros(keep[0], np.float32).reshape(-1, s) for _ in range(num_layers)]
    cs = [np.zeros(keep[1], np.float32).reshape(-1, s) for _ in range(num_layers)] if cell == "lstm" else None
    probs = np.zeros((steps, num_classes), np.float32) if steps * num_classes <= KEEP_PROBS else None
    prediction = np.zeros(steps, np.int32)
    state = [(np.zeros(s, np.float32), np.zeros(s, np.float32)) for _ in range(num_layers)]
    chunk = max(1, CHUNK_VALUES // num_classes)
    for lo in range(0, steps, chunk):
        hi = min(lo + chunk, steps)
        x = None
        for layer in range(num_layers):
            kernel, recurrent, bias = w[f"kernel_{layer}"], w[f"recurrent_{layer}"], w[f"bias_{layer}"]
            xz = (_first_input(cell, symbols[lo:hi], kernel, bias, num_classes) if layer == 0
                  else input_part(cell, x, kernel, bias))
            h, c = state[layer]
            x = np.zeros((hi - lo, s), np.float32)
            for t in range(hi - lo):
                h, c, _ = cell_step(cell, xz[t], h, c, recurrent, bias)
                x[t] = h
                if keep_states and cs is not None:
                    cs[layer][lo + t] = c
            state[layer] = (h, c)
            if keep_states:
                hs[layer][lo:hi] = x
        logits = x @ w["W2"] + w["b2"]
        if probs is None:  # the largest logit is the most probable class: no exponentials needed
            prediction[lo:hi] = np.argmax(logits, axis=-1)
        else:
            probs[lo:hi] = softmax(logits)
            prediction[lo:hi] = np.argmax(probs[lo:hi], axis=-1)
    return Trace(probs=probs, h=hs if keep_states else [], c=cs if keep_states else None, predicted=prediction)


def echo(run: Any, symbols: Any, keep_states: bool = True) -> EchoResult:
    """The trained network of ``run`` echoing ``symbols`` (from a zero state); without
    ``keep_states`` its trace holds no states (``echo`` prints none)."""
    weights = run_weights(run)
    net = network_of(run.config)
    symbols = check_symbols(symbols, net["num_classes"])
    check_echo_work(run.config, symbols.shape[0])
    trace = run_network(weights, symbols=symbols, keep_states=keep_states, **net)
    return score(symbols, trace, int(run.config.echo_step), net["num_classes"])


def score(symbols: np.ndarray, trace: Trace, echo_step: int, num_classes: int) -> EchoResult:
    """Compare a trace's predictions with the echo of ``symbols``."""
    target = echo_target(symbols, echo_step)
    prediction = trace.prediction
    correct = prediction == target
    counted = correct[echo_step:]
    accuracy = float(np.mean(counted)) if counted.size else None
    return EchoResult(input=symbols, target=target, prediction=prediction, correct=correct, accuracy=accuracy,
                      echo_step=echo_step, num_classes=num_classes, trace=trace)
