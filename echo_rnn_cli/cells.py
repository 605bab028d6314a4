"""The tutorial's tanh cell, LSTM and GRU, stacked, with dropout and strided windows: one window's
forward pass and its hand-derived backward pass, for M models at once.

Written as ``model`` writes the tutorial's network, whose properties it keeps: inside, the model
axis is last ([B, T, S, M]); every sum is a chain of elementwise adds in an order fixed here (the
helpers of ``model``), so a model's numbers do not depend on its company; the backward pass is
derived by hand, one fused loop per step each way; and for the tanh cell, one layer, no dropout
and the stride equal to the window, the numbers are bit for bit those of
``model.loss_and_grads_ml`` (the same operations in the same order).

The cells and weight names are Keras's (see CONTRACT: ``kernel_{l}``, ``recurrent_{l}``,
``bias_{l}``, ``W2``, ``b2``; gate columns LSTM [i, f, c, o], GRU [z, r, h] with
``reset_after=True``), so that the weights load into Keras's own layers unchanged.
"""

from __future__ import annotations

import numpy as np

from ._tf import tf
from .model import (
    CHAIN_MAX_TERMS,
    _encode,
    _matvec,
    _outer_sum,
    _recur,
    _rows,
    dot_ready,
    fast_dot,
    fast_math,
    input_width,
    log_softmax_ml,
    matmul,
    sum_leading,
    sum_rows_steps,
)

CELLS = ("rnn", "lstm", "gru")
#: Blocks of state_size columns in a layer's kernel: one affine map per gate.
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
#: The ``init`` schemes each cell takes; the first is Keras's layer default where there is one.
INITS = {"rnn": ("tutorial", "glorot", "keras"), "lstm": ("keras",), "gru": ("keras",)}


def _check_cell(cell: str) -> None:
    if cell not in CELLS:
        raise ValueError(f"unknown cell {cell!r}: expected one of {', '.join(CELLS)}")


def state_count(cell: str) -> int:
    """Tensors of state each layer carries: LSTM its hidden and cell state, the others h alone."""
    _check_cell(cell)
    return 2 if cell == "lstm" else 1


def weight_names(cell: str, num_layers: int) -> list[str]:
    """The weights of a network, in the order ``init_weights`` returns them."""
    _check_cell(cell)
    names = [f"{kind}_{layer}" for layer in range(num_layers) for kind in ("kernel", "recurrent", "bias")]
    return [*names, "W2", "b2"]


def weight_shapes(cell: str, num_layers: int, state_size: int, num_classes: int) -> dict[str, tuple]:
    """Shapes of one model's weights (models first or last, the model axis is added to these)."""
    width = GATES[cell] * state_size
    shapes = {}
    for layer in range(num_layers):
        fan_in = input_width(num_classes) if layer == 0 else state_size
        shapes[f"kernel_{layer}"] = (fan_in, width)
        shapes[f"recurrent_{layer}"] = (state_size, width)
        shapes[f"bias_{layer}"] = (2, width) if cell == "gru" else (width,)
    return shapes | {"W2": (state_size, num_classes), "b2": (num_classes,)}


def zero_state(cell: str, num_layers: int, batch: int, state_size: int, models: int):
    """The state at an epoch's start, models last: per layer (h,) or (h, c), each [B, S, M]."""
    zero = tf.zeros([batch, state_size, models], tf.float32)
    return tuple((zero,) * state_count(cell) for _ in range(num_layers))


# --- initial weights (NumPy) ---------------------------------------------------------------------

def _glorot(rng: np.random.Generator, shape) -> np.ndarray:
    # As model.init_params draws it, so that the tutorial cell's layer 0 stays what it was.
    return rng.uniform(-1, 1, shape) * np.sqrt(6.0 / sum(shape))


def _orthogonal(rng: np.random.Generator, shape) -> np.ndarray:
    """keras.initializers.Orthogonal: Q of a normal matrix's QR, its columns' signs fixed by R's
    diagonal (so Q is uniformly distributed), transposed when there are more columns than rows."""
    rows, cols = int(np.prod(shape[:-1])), shape[-1]
    q, r = np.linalg.qr(rng.standard_normal((max(rows, cols), min(rows, cols))))
    q = q * np.sign(np.diag(r))
    return (q.T if rows < cols else q).reshape(shape)


def _layer_init(rng, cell: str, init: str, fan_in: int, state_size: int) -> dict[str, np.ndarray]:
    width = GATES[cell] * state_size
    if init == "keras":
        kernel, recurrent = _glorot(rng, (fan_in, width)), _orthogonal(rng, (state_size, width))
    else:
        # The tutorial's draw: one matrix for [x_t, s_{t-1}], split into its input and state rows.
        shape = (fan_in + state_size, state_size)
        w = (_glorot(rng, shape) if init == "glorot" else rng.random(shape)).astype(np.float32)
        kernel, recurrent = w[:fan_in], w[fan_in:]
    bias = np.zeros((2, width) if cell == "gru" else width, np.float32)
    if cell == "lstm":
        bias[state_size:2 * state_size] = 1.0  # Keras's unit_forget_bias: remember at first
    return {"kernel": kernel.astype(np.float32), "recurrent": recurrent.astype(np.float32), "bias": bias}


def init_weights(rng: np.random.Generator, cell: str, num_layers: int, state_size: int, num_classes: int,
                 init: str) -> dict[str, np.ndarray]:
    """Initial weights of one model (float32, shapes of ``weight_shapes``), drawn from ``rng``.

    rnn: 'tutorial' (uniform [0, 1), today's default), 'glorot', or 'keras' (SimpleRNN's default:
    Glorot kernel, orthogonal recurrent kernel). lstm, gru: 'keras' (Glorot-uniform kernel,
    orthogonal recurrent kernel, zero biases, LSTM forget bias 1). Layers are drawn in order and
    W2 last, so one tanh layer gets exactly ``model.init_params``'s arrays.
    """
    _check_cell(cell)
    if init not in INITS[cell]:
        raise ValueError(f"init {init!r} does not apply to cell {cell!r}: expected one of {', '.join(INITS[cell])}")
    if num_layers < 1:
        raise ValueError(f"num_layers must be at least 1, not {num_layers}")
    out = {}
    for layer in range(num_layers):
        fan_in = input_width(num_classes) if layer == 0 else state_size
        for kind, w in _layer_init(rng, cell, init, fan_in, state_size).items():
            out[f"{kind}_{layer}"] = w
    shape = (state_size, num_classes)
    W2 = rng.random(shape) if init == "tutorial" else _glorot(rng, shape)
    return out | {"W2": W2.astype(np.float32), "b2": np.zeros(num_classes, np.float32)}


# --- models-last internals -----------------------------------------------------------------------

def _scan(step, first: tuple, inputs: tuple, reverse: bool = False, unroll: bool | None = None,
          last: bool = False) -> tuple:
    """``carry, outs = step(carry, *(a[:, t] for a in inputs))`` along the step axis (1).

    Returns each of ``outs`` for every step, stacked on axis 1 (with ``last``: and the carry after
    the last step, as (outs, carry)). ``model._recur`` for a tuple of
    carries and outputs (the same operations when unrolled), but by default a compiled loop: with
    several carries (an LSTM's h and c, or the backward pass's) XLA fuses each unrolled step into
    the next without ever writing the carries out, recomputing all earlier steps in every step's
    loop. Measured at 4 units, per window: LSTM 300 us unrolled against 150 us in the loop, and
    with 16 models 2,550 against 280 us (``benchmarks/RESULTS.md``).
    """
    steps = inputs[0].shape[1]
    order = list(reversed(range(steps)) if reverse else range(steps))
    if unroll:
        out = [None] * steps
        carry = first
        for t in order:
            carry, out[t] = step(carry, *(a[:, t] for a in inputs))
        stacked = tuple(tf.stack(o, axis=1) for o in zip(*out, strict=True))
        return (stacked, carry) if last else stacked
    # The steps' inputs are read in place, a dynamic slice each (transposing them step-major
    # first cost a copy of each, slow with the models innermost).
    # A step traced only for its outputs' shapes: unused, so compiled away. Every step runs in
    # the loop (a first step taken before it had XLA copy the loop's transposed weights twice).
    _, outs = step(first, *(a[:, order[0]] for a in inputs))
    # A step's outputs ([B, X, M] each) are written as one [B, sum X, M] block: one write per
    # step instead of one per output (each a kernel of its own), split again after the loop.
    widths = [o.shape[1] for o in outs]
    acc = tf.TensorArray(outs[0].dtype, size=steps, element_shape=[outs[0].shape[0], sum(widths), outs[0].shape[2]])

    def body(i, carry, acc):
        t = steps - 1 - i if reverse else i
        carry, outs = step(carry, *(a[:, t] for a in inputs))
        return i + 1, carry, acc.write(t, tf.concat(outs, axis=1))

    _, carry, acc = tf.while_loop(lambda i, *_: i < steps, body, (tf.constant(0), first, acc),
                                  maximum_iterations=steps)
    stacked = tf.transpose(acc.stack(), [1, 0, 2, 3])  # [B, T, sum X, M]
    stacked = tuple(tf.split(stacked, widths, axis=2))
    return (stacked, carry) if last else stacked


def _mv(v, w, transpose: bool = False):
    """``model._matvec(v, _rows(w, axis))`` in a few graph operations instead of a few per row:
    the same products summed by the same chain of adds, the model axis innermost, so still
    independent of the number of models; but a program about half the size for LSTM and GRU, whose
    transposed recurrent kernel has G*S rows, and so about half the compile time. (XLA fuses it
    differently from ``_matvec``, which can change the last bit; the tanh cell keeps
    ``model``'s own form to stay bit for bit the tutorial's network.)"""
    if fast_dot(w.shape[1 if transpose else 0]):
        return matmul(v, w, transpose)
    # v [..., K, M] times w [K, N, M]: the terms run along K; transposed, v [..., N, M], along N.
    prod, axis = (v[..., None, :, :] * w, -2) if transpose else (v[..., :, None, :] * w, -3)
    if prod.shape[axis] > CHAIN_MAX_TERMS:
        # An LSTM's 4 * S terms pass a chain's length from 33 units on: chained in blocks (not
        # ``_matvec``'s reduce op), so the order of summation stays fixed whatever M is.
        axis += len(prod.shape)
        return sum_leading(tf.transpose(prod, [axis, *(a for a in range(len(prod.shape)) if a != axis)]))
    return tf.add_n(tf.unstack(prod, axis=axis))


def _back_matrix(w):
    """w [K, N, M] as the backward loop multiplies by its transpose (``_back_mv``): in fast mode
    transposed here, once, outside the step loop (else XLA transposes it for the dot in every
    step: 13 us of a 64-unit LSTM's step); in exact mode as it is."""
    return dot_ready(tf.transpose(w, [1, 0, 2])) if fast_dot(w.shape[1]) else w


def _back_mv(v, wb):
    """v [..., N, M] times the transpose of w, given ``_back_matrix(w)``."""
    return matmul(v, wb) if fast_dot(wb.shape[0]) else _mv(v, wb, transpose=True)


def _input_part(cell: str, u, kernel, bias):
    """Every step's input contribution x K + b, for all T at once: it does not depend on the state."""
    return _matvec(u, _rows(kernel)) + (bias[0] if cell == "gru" else bias)[None, None]


def _layer_forward(cell: str, kernel, recurrent, bias, u, first: tuple, keep: bool, unroll):
    """One layer over the window. u: [B, T, I, M]; first: its incoming state.

    Returns the stacked step outputs: (h,) for rnn, (h, c) for lstm, (h,) for gru, followed, when
    ``keep``, by what the backward pass needs: lstm the gate activations [i, f, g, o]; gru
    [z, r], the candidate and the recurrent part of its pre-activation.
    """
    xw = _input_part(cell, u, kernel, bias)
    R = dot_ready(recurrent) if fast_dot(recurrent.shape[0]) else recurrent  # made once, outside the loop
    size = recurrent.shape[0]
    if cell == "rnn":
        rows = _rows(recurrent)
        return (_recur(lambda s, xw_t: tf.tanh(xw_t + _matvec(s, rows)), first[0], (xw,), unroll=unroll),)

    def lstm_gates(z):
        return tf.concat([tf.sigmoid(z[..., :2 * size, :]), tf.tanh(z[..., 2 * size:3 * size, :]),
                          tf.sigmoid(z[..., 3 * size:, :])], axis=-2)

    def lstm(carry, xw_t):
        h, c = carry
        z = xw_t + _mv(h, R)
        gates = lstm_gates(z)
        c = gates[:, size:2 * size] * c + gates[:, :size] * gates[:, 2 * size:3 * size]
        h = gates[:, 3 * size:] * tf.tanh(c)
        # Fast math keeps the pre-activations and forms the gates of all steps after the loop, in
        # one go (the same operations on the same numbers): written out in the step, each gate
        # was a kernel of its own, 7 a step instead of 3.
        return (h, c), ((h, c, z if fast_math() else gates) if keep else (h, c))

    if cell == "lstm" and keep and fast_math():
        h, c, z = _scan(lstm, tuple(first), (xw,), unroll=unroll)
        return h, c, lstm_gates(z)

    def gru(carry, xw_t):
        h = carry[0]
        hz = _mv(h, R) + bias[1][None]
        zr = tf.sigmoid(xw_t[:, :2 * size] + hz[:, :2 * size])
        z = zr[:, :size]
        cand = tf.tanh(xw_t[:, 2 * size:] + zr[:, size:] * hz[:, 2 * size:])
        h = z * h + (1.0 - z) * cand
        return (h,), ((h, zr, cand, hz[:, 2 * size:]) if keep else (h,))

    return _scan(lstm if cell == "lstm" else gru, tuple(first), (xw,), unroll=unroll)


def _forward(weights, x, state, cell, num_layers, num_classes, masks, keep, unroll):
    """All layers and the softmax layer's logits. Returns (per layer (input, incoming state, step
    outputs), the softmax layer's input [B, T, S, M], logits [B, T, C, M])."""
    u = _encode(x, num_classes)
    layers = []
    for layer in range(num_layers):
        outs = _layer_forward(cell, weights[f"kernel_{layer}"], weights[f"recurrent_{layer}"],
                              weights[f"bias_{layer}"], u, state[layer], keep, unroll)
        layers.append((u, state[layer], outs))
        # Inverted dropout on what the layer hands up, never on its own recurrence.
        u = outs[0] if masks is None else outs[0] * masks[layer]
    logits = _matvec(u, _rows(weights["W2"])) + weights["b2"][None, None]
    return layers, u, logits


# --- the backward pass ---------------------------------------------------------------------------

def _rnn_backward(recurrent, first: tuple, outs: tuple):
    h = outs[0]
    rows = _rows(recurrent, axis=1)

    def local(dh, carried, f):
        dz = (dh + carried[0]) * f[0]
        return dz, dz

    def back(dh, carried, f):
        return (_matvec((dh + carried[0]) * f[0], rows),)
    return (1.0 - h * h,), local, back


def _lstm_backward(recurrent, first: tuple, outs: tuple):
    size = recurrent.shape[0]
    c, gates = outs[1], outs[2]
    i, f_, g, o = (gates[:, :, k * size:(k + 1) * size] for k in range(4))
    tc = tf.tanh(c)
    c_prev = tf.concat([first[1][:, None], c[:, :-1]], axis=1)
    sig = gates * (1.0 - gates)
    # d(pre-activation) = [dc, dc, dc, dh] x these, in the gate order [i, f, c, o].
    scale = tf.concat([g * sig[:, :, :size], c_prev * sig[:, :, size:2 * size], i * (1.0 - g * g),
                       tc * sig[:, :, 3 * size:]], axis=2)
    to_c = o * (1.0 - tc * tc)

    def pre(dh, carried, f):
        dh = dh + carried[0]
        dc = carried[1] + dh * f[1]
        return dc, tf.concat([dc, dc, dc, dh], axis=-2) * f[0]

    def local(dh, carried, f):
        dz = pre(dh, carried, f)[1]
        return dz, dz

    rt = _back_matrix(recurrent)

    def back(dh, carried, f):
        dc, dz = pre(dh, carried, f)
        return _back_mv(dz, rt), dc * f[2]
    return (scale, to_c, f_), local, back


def _gru_backward(recurrent, first: tuple, outs: tuple):
    size = recurrent.shape[0]
    h, zr, cand, hz_h = outs
    prev = tf.concat([first[0][:, None], h[:, :-1]], axis=1)
    z, r = zr[:, :, :size], zr[:, :, size:]
    dsig = zr * (1.0 - zr)
    to_z, to_cand, to_r = (prev - cand) * dsig[:, :, :size], (1.0 - z) * (1.0 - cand * cand), hz_h * dsig[:, :, size:]

    def pre(dh, carried, f):
        dh = dh + carried[0]
        dcand = dh * f[1]
        dzr = tf.concat([dh * f[0], dcand * f[2]], axis=-2)
        return dh, tf.concat([dzr, dcand], axis=-2), tf.concat([dzr, dcand * f[4]], axis=-2)

    def local(dh, carried, f):
        return pre(dh, carried, f)[1:]

    rt = _back_matrix(recurrent)

    def back(dh, carried, f):
        dh, _, dhz = pre(dh, carried, f)
        return (dh * f[3] + _back_mv(dhz, rt),)
    return (to_z, to_cand, to_r, z, r), local, back


def _cell_backward(cell: str, recurrent, first: tuple, outs: tuple):
    """A cell's backward step, as (factors, local, back).

    ``factors``: [B, T, ...] tensors of the forward pass, formed for all steps at once.
    ``local(dh_ext, carried, f)``: a step's (or, with the step axis, every step's) gradients of the
    input part and of the recurrent part of its pre-activation, from the gradient reaching its h
    from above and ``carried`` from the steps after it. ``back(dh_ext, carried, f)``: what it
    carries back into the step before it. The loop carries only that; the pre-activation
    gradients of all steps are formed afterwards in one go, as ``model`` does for the tanh cell.
    """
    return {"rnn": _rnn_backward, "lstm": _lstm_backward, "gru": _gru_backward}[cell](recurrent, first, outs)


def _through_time(cell: str, recurrent, first: tuple, outs: tuple, dh_ext, unroll):
    """Backpropagation through the window's steps of one layer, from dh_ext [B, T, S, M] (what
    reaches each step's h from above). Nothing flows into ``first``: the window's start is a
    constant, which is truncated backpropagation. Returns the pre-activation gradients of all
    steps: (of the input part, of the recurrent part), [B, T, G*S, M] each."""
    factors, local, back = _cell_backward(cell, recurrent, first, outs)
    if cell == "lstm" and fast_math() and dh_ext.shape[1] > 1:
        return _through_time_emitting(factors, local, back, first, dh_ext, unroll)
    zero = tuple(tf.zeros_like(s) for s in first)
    carried = tuple(z[:, None] for z in zero)  # nothing comes back into the window's last step
    steps = dh_ext.shape[1]
    if steps > 1:
        def step(carry, dh_t, *f_t):
            carry = back(dh_t, carry, f_t)
            return carry, carry

        inputs = (dh_ext[:, 1:], *(f[:, 1:] for f in factors))
        if cell == "rnn":  # model's own loop, as in _layer_forward
            earlier = (_recur(lambda c, *a: step((c,), *a)[0][0], zero[0], inputs, reverse=True, unroll=unroll),)
        else:
            earlier = _scan(step, zero, inputs, reverse=True, unroll=unroll)
        carried = tuple(tf.concat([e, c], axis=1) for e, c in zip(earlier, carried, strict=True))
    return local(dh_ext, carried, factors)


def _through_time_emitting(factors, local, back, first: tuple, dh_ext, unroll):
    """``_through_time`` for fast math's LSTM: each step of the loop hands out its own
    pre-activation gradient, which it forms anyway for its matrix product, instead of carrying
    back only what flows into the step before it and forming all steps' gradients again after the
    loop (XLA formed them there once for each use: 3 times for a 64-unit LSTM, more than a
    quarter of its backward pass). The same operations on the same numbers, so the same bits.
    (The GRU's two gradients, written out so, made its window slower: it keeps ``_through_time``.)"""
    def step(carry, dh_t, *f_t):
        dz, _ = local(dh_t, carry, f_t)  # the LSTM's input and recurrent parts share one gradient
        return back(dh_t, carry, f_t), (dz,)

    zero = tuple(tf.zeros_like(s) for s in first)
    (dz,), into_first = _scan(step, zero, (dh_ext[:, 1:], *(f[:, 1:] for f in factors)), reverse=True,
                              unroll=unroll, last=True)
    # Step 0's from what step 1 carried back into it (the loop's last carry): the loop never runs
    # the matrix product that would carry back past the window's start.
    at_first, _ = local(dh_ext[:, 0], into_first, tuple(f[:, 0] for f in factors))
    dz = tf.concat([at_first[:, None], dz], axis=1)
    return dz, dz


def _softmax_loss(logits, y, num_classes: int, stride: int):
    """Loss and accuracy over each row's last ``stride`` outputs, the probabilities of all, and the
    gradient of the loss at the counted logits [B, K, C, M]."""
    batch, steps = y.shape[:2]
    logp = log_softmax_ml(logits)
    probs = tf.exp(logp)
    onehot = tf.one_hot(y, num_classes, axis=2, dtype=tf.float32)
    counted = (logp, probs, onehot, logits, y)
    if stride < steps:
        counted = tuple(a[:, steps - stride:] for a in counted)
    logp_k, probs_k, onehot_k, logits_k, y_k = counted
    count = float(batch * stride)
    loss = -sum_rows_steps(sum_leading(tf.transpose(onehot_k * logp_k, [2, 0, 1, 3]))) / count
    correct = tf.cast(tf.equal(tf.argmax(logits_k, axis=2, output_type=y.dtype), y_k), tf.float32)
    accuracy = sum_rows_steps(correct) / count
    return loss, accuracy, probs, (probs_k - onehot_k) / count


def _layer_grads(cell: str, u, first: tuple, h, dxw, dhz) -> dict:
    prev = tf.concat([first[0][:, None], h[:, :-1]], axis=1)
    bias = sum_rows_steps(dxw) if cell != "gru" else tf.stack([sum_rows_steps(dxw), sum_rows_steps(dhz)])
    return {"kernel": _outer_sum(u, dxw), "recurrent": _outer_sum(prev, dhz), "bias": bias}


def window_loss_and_grads(weights: dict, x, y, state: tuple, *, cell: str, num_layers: int, num_classes: int,
                          stride: int, masks=None, unroll: bool | None = None):
    """One training window, models last, and its gradients by truncated backpropagation.

    weights: ``weight_names`` -> [..., M]; x, y: [B, T, M] int32; state: per layer (h,) or, for
    lstm, (h, c), each [B, S, M], a constant (no gradient flows into it). stride K in 1..T: the
    loss and accuracy are the means over each row's last K outputs. masks: None or per layer a
    [B, T, S, M] float32 multiplier (inverted dropout) on that layer's output h, before the next
    layer or the softmax layer reads it.

    Returns (loss [M], accuracy [M], probs [B, T, C, M], the state after the first K steps (as
    ``state``), grads (as ``weights``)).
    """
    batch, steps, _ = x.shape
    if not 1 <= stride <= steps:
        raise ValueError(f"stride must be in 1..{steps}, not {stride}")
    layers, top, logits = _forward(weights, x, state, cell, num_layers, num_classes, masks, True, unroll)
    loss, accuracy, probs, dlogits = _softmax_loss(logits, y, num_classes, stride)
    skipped = steps - stride
    grads = {"W2": _outer_sum(top[:, skipped:] if skipped else top, dlogits), "b2": sum_rows_steps(dlogits)}
    dh = _matvec(dlogits, _rows(weights["W2"], axis=1))
    if skipped:
        dh = tf.concat([tf.zeros([batch, skipped, *dh.shape[2:]], dh.dtype), dh], axis=1)
    for layer in reversed(range(num_layers)):
        if masks is not None:
            dh = dh * masks[layer]
        u, first, outs = layers[layer]
        recurrent = weights[f"recurrent_{layer}"]
        dxw, dhz = _through_time(cell, recurrent, first, outs, dh, unroll)
        for kind, g in _layer_grads(cell, u, first, outs[0], dxw, dhz).items():
            grads[f"{kind}_{layer}"] = g
        if layer:
            dh = _matvec(dxw, _rows(weights[f"kernel_{layer}"], axis=1))
    next_state = tuple(tuple(s[:, stride - 1] for s in outs[:state_count(cell)]) for _, _, outs in layers)
    return loss, accuracy, probs, next_state, {n: grads[n] for n in weights}


def window_forward(weights: dict, x, state: tuple, *, cell: str, num_layers: int, num_classes: int,
                   unroll: bool | None = None):
    """One window for evaluation, models last, without dropout.

    Returns (per layer its h for every step [B, T, S, M], logits [B, T, C, M], the state after the
    window's last step (as ``state``)).
    """
    layers, _, logits = _forward(weights, x, state, cell, num_layers, num_classes, None, False, unroll)
    hs = tuple(outs[0] for _, _, outs in layers)
    last = tuple(tuple(s[:, -1] for s in outs[:state_count(cell)]) for _, _, outs in layers)
    return hs, logits, last
