"""The network and its hand-derived gradient, checked against TensorFlow's own autodiff."""

import numpy as np
import pytest

from echo_rnn_cli import model
from echo_rnn_cli._tf import tf
from echo_rnn_cli.model import PARAM_NAMES, Params, init_params
from echo_rnn_cli.optim import OptState, apply_updates, initial_slot_values
from tests.models_first import forward, loss_and_grads, train_step, window_loss


def make(models=2, batch=3, steps=6, state=4, classes=2, seed=0, scheme="glorot"):
    rng = np.random.default_rng(seed)
    ps = [init_params(rng, state, classes, scheme) for _ in range(models)]
    params = Params(*[tf.constant(np.stack([p[n] for p in ps])) for n in PARAM_NAMES])
    x = tf.constant(rng.integers(0, classes, (models, batch, steps)), tf.int32)
    y = tf.constant(rng.integers(0, classes, (models, batch, steps)), tf.int32)
    s0 = tf.constant(rng.uniform(-0.5, 0.5, (models, batch, state)), tf.float32)
    return params, x, y, s0


@pytest.mark.parametrize("classes", [2, 3])
def test_shapes(classes):
    params, x, y, s0 = make(classes=classes)
    xin, h, logits = forward(params, x, s0, classes)
    assert xin.shape == (2, 3, 6, 1 if classes == 2 else classes)
    assert h.shape == (2, 3, 6, 4)
    assert logits.shape == (2, 3, 6, classes)
    loss, acc, probs, last, grads = loss_and_grads(params, x, y, s0, classes)
    assert loss.shape == acc.shape == (2,)
    assert probs.shape == (2, 3, 6, classes)
    np.testing.assert_allclose(tf.reduce_sum(probs, -1).numpy(), 1.0, rtol=1e-5)
    assert np.array_equal(last.numpy(), h[:, :, -1].numpy())
    for g, p in zip(grads, params, strict=True):
        assert g.shape == p.shape


def test_tutorial_init_is_uniform_positive_and_biases_zero():
    p = init_params(np.random.default_rng(0), 4, 2, "tutorial")
    assert p["Wx"].shape == (1, 4) and p["Ws"].shape == (4, 4) and p["W2"].shape == (4, 2)
    assert all((p[k] >= 0).all() and (p[k] < 1).all() for k in ("Wx", "Ws", "W2"))
    assert not p["b"].any() and not p["b2"].any()


@pytest.mark.parametrize("classes", [2, 4])
def test_hand_derived_gradient_matches_tape(classes):
    params, x, y, s0 = make(classes=classes)
    with tf.GradientTape() as tape:
        tape.watch(list(params))
        loss = tf.reduce_sum(window_loss(params, x, y, s0, classes))
    expected = tape.gradient(loss, list(params))
    ours_loss, _, _, _, ours = loss_and_grads(params, x, y, s0, classes)
    np.testing.assert_allclose(tf.reduce_sum(ours_loss).numpy(), loss.numpy(), rtol=1e-5)
    for name, a, b in zip(PARAM_NAMES, ours, expected, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6, err_msg=name)


def test_gradient_stops_at_the_window_edge():
    """Two windows in a row: the second window's update must equal the gradient of its loss with
    its incoming state held constant, not the gradient through the first window's steps."""
    params, x, y, s0 = make(models=1, steps=5)
    x2, y2 = tf.reverse(x, [2]), tf.reverse(y, [2])
    s0 = tf.zeros_like(s0)
    opt = OptState(tf.constant(0.0), tuple(tf.zeros_like(p) for p in params),
                   tuple(tf.zeros_like(p) for p in params))
    lr = tf.constant([0.1])
    p1, opt1, state, *_ = train_step(params, opt, s0, x, y, lr, optimizer="sgd", num_classes=2)
    p2, *_ = train_step(p1, opt1, state, x2, y2, lr, optimizer="sgd", num_classes=2)
    applied = [(a - b).numpy() / 0.1 for a, b in zip(p1, p2, strict=True)]

    # The state carried in is a value: the gradient of the second window's loss with it held fixed.
    with tf.GradientTape() as tape:
        tape.watch(list(p1))
        truncated = tf.reduce_sum(window_loss(p1, x2, y2, state, 2))
    want = tape.gradient(truncated, list(p1))
    # What backpropagating across the edge would give: the carried state as a function of the weights.
    with tf.GradientTape() as tape:
        tape.watch(list(p1))
        _, h1, _ = forward(p1, x, s0, 2)
        through = tf.reduce_sum(window_loss(p1, x2, y2, h1[:, :, -1], 2))
    full = tape.gradient(through, list(p1))
    for name, a, b in zip(PARAM_NAMES, applied, want, strict=True):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-3, atol=1e-6, err_msg=name)
    # ...and backpropagating across the edge would have given something else.
    assert any(not np.allclose(a, f.numpy(), rtol=1e-3, atol=1e-6) for a, f in zip(applied, full, strict=True))


@pytest.mark.parametrize("name, keras_cls", [
    ("adagrad", "Adagrad"), ("adam", "Adam"), ("sgd", "SGD"), ("rmsprop", "RMSprop")])
def test_optimizers_match_keras(name, keras_cls):
    import keras

    rng = np.random.default_rng(3)
    values = [rng.normal(size=(1, 3, 2)).astype(np.float32), rng.normal(size=(1, 2)).astype(np.float32)]
    grad_steps = [[rng.normal(size=v.shape).astype(np.float32) for v in values] for _ in range(3)]
    s1, s2 = initial_slot_values(name)
    params = tuple(tf.constant(v) for v in values)
    state = OptState(tf.constant(0.0), tuple(tf.fill(v.shape, s1) for v in values),
                     tuple(tf.fill(v.shape, s2) for v in values))
    variables = [keras.Variable(v) for v in values]
    ref = getattr(keras.optimizers, keras_cls)(learning_rate=0.05)
    for grads in grad_steps:
        params, state = apply_updates(name, params, tuple(tf.constant(g) for g in grads), state,
                                      tf.constant([0.05]))
        ref.apply([tf.constant(g) for g in grads], variables)
    for ours, theirs in zip(params, variables, strict=True):
        np.testing.assert_allclose(ours.numpy(), np.asarray(theirs), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("steps, unroll", [(6, False), (model.UNROLL_MAX_STEPS + 8, None)])
def test_stepped_loop_gradient_matches_tape(steps, unroll):
    """Long windows step through a compiled loop instead of unrolling; same gradient."""
    params, x, y, s0 = make(models=2, batch=2, steps=steps, classes=3)
    with tf.GradientTape() as tape:
        tape.watch(list(params))
        loss = tf.reduce_sum(window_loss(params, x, y, s0, 3))
    expected = tape.gradient(loss, list(params))
    _, _, _, _, ours = loss_and_grads(params, x, y, s0, 3, unroll=unroll)
    unrolled = loss_and_grads(params, x, y, s0, 3, unroll=True)[4]
    for name, a, b, c in zip(PARAM_NAMES, ours, expected, unrolled, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(a.numpy(), c.numpy(), rtol=1e-5, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("terms", [1, 7, model.CHAIN_MAX_TERMS, 3 * model.CHAIN_MAX_TERMS + 5])
def test_chained_sums_equal_sums(terms):
    a = np.random.default_rng(terms).normal(size=(terms, 3, 2)).astype(np.float32)
    np.testing.assert_allclose(model.sum_leading(tf.constant(a)).numpy(), a.astype(np.float64).sum(0),
                               rtol=1e-5, atol=1e-5)
