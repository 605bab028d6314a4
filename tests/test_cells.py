"""The cells (tanh, LSTM, GRU), stacked, with dropout and strided windows: their forward pass against
Keras's own layers, their hand-derived gradients against a gradient tape, the tutorial's network
unchanged bit for bit, and a model's numbers independent of the models trained beside it."""

import numpy as np
import pytest

from echo_rnn_cli import cells, model
from echo_rnn_cli._tf import tf
from echo_rnn_cli.model import Params

CELLS = cells.CELLS


def make(cell, layers, models=2, batch=3, steps=6, state=4, classes=2, seed=0, dropout=0.0, init=None):
    """Weights (models last, biases made non-zero so their gradients show), symbols, a non-zero
    incoming state and, with ``dropout``, inverted-dropout masks."""
    rng = np.random.default_rng(seed)
    init = init or cells.INITS[cell][0]
    per = [cells.init_weights(rng, cell, layers, state, classes, init) for _ in range(models)]
    weights = {}
    for name in per[0]:
        w = np.stack([p[name] for p in per], axis=-1)
        if name.startswith("b"):
            w = w + rng.uniform(-0.5, 0.5, w.shape).astype(np.float32)
        weights[name] = tf.constant(w)
    x = tf.constant(rng.integers(0, classes, (batch, steps, models)), tf.int32)
    y = tf.constant(rng.integers(0, classes, (batch, steps, models)), tf.int32)
    s0 = tuple(tuple(tf.constant(rng.uniform(-0.5, 0.5, (batch, state, models)), tf.float32)
                     for _ in range(cells.state_count(cell))) for _ in range(layers))
    masks = None
    if dropout:
        keep = rng.random((layers, batch, steps, state, models)) >= dropout
        masks = tuple(tf.constant(k / (1 - dropout), tf.float32) for k in keep)
    return weights, x, y, s0, masks


def model_slice(tree, m):
    """Model m's part (the model axis is last) of a tensor, or a dict or tuple of them."""
    if isinstance(tree, dict):
        return {k: model_slice(v, m) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        return type(tree)(model_slice(v, m) for v in tree)
    return tree[..., m]


# --- a reference with plain TensorFlow ops, one model ----------------------------------------------

def reference_cell(cell, u_t, state, kernel, recurrent, bias):
    if cell == "rnn":
        return (tf.tanh(u_t @ kernel + state[0] @ recurrent + bias),)
    if cell == "lstm":
        i, f, g, o = tf.split(u_t @ kernel + state[0] @ recurrent + bias, 4, axis=-1)
        c = tf.sigmoid(f) * state[1] + tf.sigmoid(i) * tf.tanh(g)
        return tf.sigmoid(o) * tf.tanh(c), c
    xz, xr, xh = tf.split(u_t @ kernel + bias[0], 3, axis=-1)
    hz, hr, hh = tf.split(state[0] @ recurrent + bias[1], 3, axis=-1)
    z, r = tf.sigmoid(xz + hz), tf.sigmoid(xr + hr)
    return (z * state[0] + (1 - z) * tf.tanh(xh + r * hh),)


def reference_logits(w, x, state, cell, layers, classes, masks=None):
    """x [B, T]; state per layer [B, S] tensors; masks per layer [B, T, S]. Returns logits, last state."""
    u = tf.cast(x, tf.float32)[..., None] if classes == 2 else tf.one_hot(x, classes)
    last = []
    for layer in range(layers):
        s, hs = state[layer], []
        for t in range(x.shape[1]):
            s = reference_cell(cell, u[:, t], s, w[f"kernel_{layer}"], w[f"recurrent_{layer}"], w[f"bias_{layer}"])
            hs.append(s[0])
        last.append(s)
        u = tf.stack(hs, axis=1)
        if masks is not None:
            u = u * masks[layer]
    return u @ w["W2"] + w["b2"], last


def reference_loss(weights, x, y, state, cell, layers, classes, stride, masks=None):
    """The summed per-model losses: the mean cross-entropy over each row's last ``stride`` outputs."""
    total = 0.0
    for m in range(x.shape[-1]):
        logits, _ = reference_logits(model_slice(weights, m), x[..., m], model_slice(state, m), cell, layers,
                                     classes, None if masks is None else model_slice(masks, m))
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y[:, -stride:, m], logits=logits[:, -stride:])
        total += tf.reduce_mean(ce)
    return total


# --- initial weights -------------------------------------------------------------------------------

@pytest.mark.parametrize("scheme", ["tutorial", "glorot"])
@pytest.mark.parametrize("classes", [2, 3])
def test_one_tanh_layer_draws_the_tutorials_weights(scheme, classes):
    ours = cells.init_weights(np.random.default_rng(7), "rnn", 1, 5, classes, scheme)
    theirs = model.init_params(np.random.default_rng(7), 5, classes, scheme)
    renamed = {"kernel_0": "Wx", "recurrent_0": "Ws", "bias_0": "b", "W2": "W2", "b2": "b2"}
    assert list(ours) == cells.weight_names("rnn", 1)
    for name, old in renamed.items():
        assert ours[name].dtype == np.float32
        np.testing.assert_array_equal(ours[name], theirs[old], err_msg=name)


@pytest.mark.parametrize("cell", CELLS)
def test_layers_after_the_first_leave_its_draw_alone(cell):
    init = cells.INITS[cell][0]
    one = cells.init_weights(np.random.default_rng(1), cell, 1, 4, 2, init)
    three = cells.init_weights(np.random.default_rng(1), cell, 3, 4, 2, init)
    assert list(three) == cells.weight_names(cell, 3)
    assert {n: w.shape for n, w in three.items()} == cells.weight_shapes(cell, 3, 4, 2)
    for name in ("kernel_0", "recurrent_0", "bias_0"):
        np.testing.assert_array_equal(one[name], three[name])
    assert not np.array_equal(three["kernel_1"], three["kernel_2"])


@pytest.mark.parametrize("cell, gates", [("lstm", 4), ("gru", 3), ("rnn", 1)])
def test_keras_init(cell, gates):
    w = cells.init_weights(np.random.default_rng(2), cell, 2, 6, 3, "keras")
    assert w["kernel_0"].shape == (3, gates * 6) and w["kernel_1"].shape == (6, gates * 6)
    limit = np.sqrt(6 / (3 + gates * 6))
    assert np.abs(w["kernel_0"]).max() <= limit and np.abs(w["kernel_0"]).max() > limit / 2
    # Orthogonal: the recurrent kernel's rows are orthonormal (more columns than rows).
    r = w["recurrent_1"].astype(np.float64)
    np.testing.assert_allclose(r @ r.T, np.eye(6), atol=1e-5)
    bias = w["bias_0"]
    if cell == "lstm":
        np.testing.assert_array_equal(bias, np.r_[np.zeros(6), np.ones(6), np.zeros(12)])
    else:
        assert bias.shape == ((2, 18) if cell == "gru" else (6,)) and not bias.any()
    assert not w["b2"].any() and w["W2"].shape == (6, 3)


def test_init_refuses_what_does_not_apply():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="does not apply"):
        cells.init_weights(rng, "lstm", 1, 4, 2, "tutorial")
    with pytest.raises(ValueError, match="unknown cell"):
        cells.init_weights(rng, "transformer", 1, 4, 2, "keras")
    with pytest.raises(ValueError, match="at least 1"):
        cells.init_weights(rng, "gru", 0, 4, 2, "keras")


# --- forward against Keras -------------------------------------------------------------------------

def keras_probs(w, x, state, cell, layers, classes):
    """Keras's own layers with model m's weights: stacked cells, then Dense(C, softmax)."""
    import keras

    kinds = {"rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM,
             "gru": lambda n, **kw: keras.layers.GRU(n, reset_after=True, **kw)}
    u = tf.cast(x, tf.float32)[..., None] if classes == 2 else tf.one_hot(x, classes)
    last = []
    for layer in range(layers):
        rnn = kinds[cell](w[f"recurrent_{layer}"].shape[0], return_sequences=True, return_state=True)
        rnn.build(u.shape)
        rnn.set_weights([np.asarray(w[f"{k}_{layer}"]) for k in ("kernel", "recurrent", "bias")])
        u, *states = rnn(u, initial_state=list(state[layer]))
        last.append(states)
    dense = keras.layers.Dense(classes, activation="softmax")
    dense.build(u.shape)
    dense.set_weights([np.asarray(w["W2"]), np.asarray(w["b2"])])
    return dense(u), last


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("classes", [2, 3])
def test_forward_matches_keras_layers(cell, layers, classes):
    weights, x, y, s0, _ = make(cell, layers, classes=classes, seed=layers + classes)
    hs, logits, last = cells.window_forward(weights, x, s0, cell=cell, num_layers=layers, num_classes=classes)
    probs = cells.window_loss_and_grads(weights, x, y, s0, cell=cell, num_layers=layers, num_classes=classes,
                                        stride=x.shape[1])[2]
    assert len(hs) == layers and logits.shape == (3, 6, classes, 2)
    for m in range(2):
        want, want_last = keras_probs(model_slice(weights, m), x[..., m], model_slice(s0, m), cell, layers, classes)
        ours = tf.nn.softmax(logits[..., m], axis=-1)
        np.testing.assert_allclose(ours.numpy(), np.asarray(want), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(probs[..., m].numpy(), np.asarray(want), rtol=1e-5, atol=1e-6)
        for layer in range(layers):
            assert len(last[layer]) == len(want_last[layer]) == cells.state_count(cell)
            for a, b in zip(last[layer], want_last[layer], strict=True):
                np.testing.assert_allclose(a[..., m].numpy(), np.asarray(b), rtol=1e-5, atol=1e-6)


# --- gradients against a tape ----------------------------------------------------------------------

def assert_gradients_match_tape(cell, layers, stride, dropout, classes):
    """One window's loss and hand-derived gradients (in the math mode being traced) against a
    gradient tape over the plain-TensorFlow reference. Returns the inputs and the rest of what
    the window gave: (accuracy, probs, next state)."""
    weights, x, y, s0, masks = make(cell, layers, classes=classes, seed=stride, dropout=dropout)
    with tf.GradientTape() as tape:
        tape.watch(weights)
        want_loss = reference_loss(weights, x, y, s0, cell, layers, classes, stride, masks)
    want = tape.gradient(want_loss, weights)
    loss, acc, probs, nxt, grads = cells.window_loss_and_grads(
        weights, x, y, s0, cell=cell, num_layers=layers, num_classes=classes, stride=stride, masks=masks)
    np.testing.assert_allclose(tf.reduce_sum(loss).numpy(), want_loss.numpy(), rtol=1e-5)
    assert list(grads) == list(weights)
    for name in weights:
        assert grads[name].shape == weights[name].shape, name
        np.testing.assert_allclose(grads[name].numpy(), want[name].numpy(), rtol=1e-4, atol=1e-6, err_msg=name)
    return weights, x, y, s0, masks, (acc, probs, nxt)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers, stride, dropout, classes", [
    (1, 6, 0.0, 2), (1, 2, 0.0, 3), (2, 6, 0.0, 2), (2, 4, 0.3, 3), (2, 1, 0.5, 2), (1, 3, 0.4, 2)])
def test_gradients_match_tape(cell, layers, stride, dropout, classes):
    weights, x, y, s0, masks, (acc, probs, nxt) = assert_gradients_match_tape(cell, layers, stride, dropout, classes)
    # The accuracy counts the same last outputs, and the state handed on is the one after K steps.
    hits = tf.equal(tf.argmax(probs[:, -stride:], axis=2, output_type=tf.int32), y[:, -stride:])
    np.testing.assert_allclose(acc.numpy(), tf.reduce_mean(tf.cast(hits, tf.float32), axis=[0, 1]).numpy())
    # (With dropout, the state the upper layers carry is that of the dropped-out inputs they read.)
    for m in range(2):
        head_masks = None if masks is None else [k[:, :stride, :, m] for k in masks]
        _, head = reference_logits(model_slice(weights, m), x[:, :stride, m], model_slice(s0, m), cell, layers,
                                   classes, head_masks)
        for a, b in zip(tf.nest.flatten(nxt), tf.nest.flatten(head), strict=True):
            np.testing.assert_allclose(a[..., m].numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", CELLS)
def test_stepped_loop_matches_unrolled(cell):
    weights, x, y, s0, masks = make(cell, 2, steps=5, classes=3, dropout=0.2)
    kw = dict(cell=cell, num_layers=2, num_classes=3, stride=3, masks=masks)
    unrolled = cells.window_loss_and_grads(weights, x, y, s0, unroll=True, **kw)
    stepped = cells.window_loss_and_grads(weights, x, y, s0, unroll=False, **kw)
    for a, b in zip(tf.nest.flatten(unrolled), tf.nest.flatten(stepped), strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-7)
    fwd = [cells.window_forward(weights, x, s0, cell=cell, num_layers=2, num_classes=3, unroll=u) for u in (1, 0)]
    for a, b in zip(tf.nest.flatten(fwd[0]), tf.nest.flatten(fwd[1]), strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("terms", [3, model.CHAIN_MAX_TERMS + 5])
@pytest.mark.parametrize("transpose", [False, True])
def test_products_are_products(terms, transpose):
    """The chained matrix-vector products, short and past a chain's length (LSTM: 4 x 33 units)."""
    rng = np.random.default_rng(terms)
    w = rng.normal(size=(terms, 7, 2) if not transpose else (7, terms, 2)).astype(np.float32)
    v = rng.normal(size=(3, terms, 2)).astype(np.float32)
    want = np.einsum("bkm,knm->bnm" if not transpose else "bkm,nkm->bnm", v.astype(np.float64), w)
    np.testing.assert_allclose(cells._mv(tf.constant(v), tf.constant(w), transpose).numpy(), want,
                               rtol=1e-5, atol=1e-5)


def test_bad_stride_is_refused():
    weights, x, y, s0, _ = make("gru", 1)
    for stride in (0, 7):
        with pytest.raises(ValueError, match="stride"):
            cells.window_loss_and_grads(weights, x, y, s0, cell="gru", num_layers=1, num_classes=2, stride=stride)


# --- the tutorial's network, bit for bit -----------------------------------------------------------

def tutorial_both(weights, x, y, s0, classes, unroll=None):
    p = Params(weights["kernel_0"], weights["recurrent_0"], weights["bias_0"], weights["W2"], weights["b2"])
    old = model.loss_and_grads_ml(p, x, y, s0[0][0], classes, unroll)
    new = cells.window_loss_and_grads(weights, x, y, s0, cell="rnn", num_layers=1, num_classes=classes,
                                      stride=x.shape[1], unroll=unroll)
    loss, acc, probs, nxt, grads = new
    return old, (loss, acc, probs, nxt[0][0], Params(*(grads[n] for n in weights)))


@pytest.mark.parametrize("models", [2, 4])
@pytest.mark.parametrize("classes, scheme, unroll", [(2, "tutorial", None), (3, "glorot", None), (2, "glorot", False)])
def test_tutorial_network_is_unchanged_bit_for_bit(models, classes, scheme, unroll):
    weights, x, y, s0, _ = make("rnn", 1, models=models, classes=classes, init=scheme, seed=models)
    old, new = tutorial_both(weights, x, y, s0, classes, unroll)
    for a, b in zip(tf.nest.flatten(old), tf.nest.flatten(new), strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("models, unroll", [(2, None), (4, None), (2, False)])
def test_tutorial_network_is_unchanged_bit_for_bit_compiled(models, unroll):
    weights, x, y, s0, _ = make("rnn", 1, models=models, classes=2, init="tutorial", steps=5)
    both = tf.function(lambda *a: tutorial_both(*a, 2, unroll), jit_compile=True, autograph=False)
    old, new = both(weights, x, y, s0)
    for a, b in zip(tf.nest.flatten(old), tf.nest.flatten(new), strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


# --- a model's numbers do not depend on its company ------------------------------------------------

def results_by_company(cell, run, counts):
    weights, x, y, s0, masks = make(cell, 2, models=max(counts), steps=5, state=3, classes=3, dropout=0.25, seed=11)

    def first(tree, n):
        return tf.nest.map_structure(lambda t: t[..., :n], tree)

    out = {}
    for n in counts:
        res = run(first(weights, n), first(x, n), first(y, n), first(s0, n), first(masks, n))
        out[n] = [t.numpy()[..., :2] for t in tf.nest.flatten(res)]
    return out


def window(weights, x, y, s0, masks, cell):
    train = cells.window_loss_and_grads(weights, x, y, s0, cell=cell, num_layers=2, num_classes=3, stride=3,
                                        masks=masks)
    return train, cells.window_forward(weights, x, s0, cell=cell, num_layers=2, num_classes=3)


@pytest.mark.slow  # compiles each cell for 1, 2 and more models
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_model_numbers_do_not_depend_on_company_compiled(cell):
    """The promise holds for the compiled program, which is what trains. (TensorFlow's eager
    kernels compute exp, tanh and the logistic differently in vector lanes and in the scalar tail,
    so op by op a model's last bits can depend on how many models there are.)"""
    run = tf.function(lambda *a: window(*a, cell), jit_compile=True, autograph=False)
    out = results_by_company(cell, run, (2, 4, 5, 8))
    for n in (4, 5, 8):
        for a, b in zip(out[2], out[n], strict=True):
            np.testing.assert_array_equal(a, b, err_msg=f"{n} models")
