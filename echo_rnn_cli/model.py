"""The tutorial's network in TensorFlow, written for many models at once.

Every tensor carries a leading model axis ``M``: a single run is ``M == 1``, and runs that share
shapes (other seeds, learning rates or echo steps) train side by side in one compiled program.

The backward pass is derived by hand instead of taken from a gradient tape. The workload is a long
chain of tiny matrices, so its cost is the number of operations, not their size; the hand-derived
pass needs a handful of fused loops per time step, the tape needs several times more. Its
correctness is checked against ``tf.GradientTape`` in the tests.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._tf import tf


class Params(NamedTuple):
    """Weights of M models. The tutorial's ``W`` is split into its input rows ``Wx`` and its
    state rows ``Ws``: ``[x_t, s_{t-1}] @ W == x_t @ Wx + s_{t-1} @ Ws``."""

    Wx: tf.Tensor  # [M, I, S]
    Ws: tf.Tensor  # [M, S, S]
    b: tf.Tensor   # [M, S]
    W2: tf.Tensor  # [M, S, C]
    b2: tf.Tensor  # [M, C]


PARAM_NAMES = Params._fields


def input_width(num_classes: int) -> int:
    """Binary symbols go in as the scalar 0/1 (the tutorial's encoding); more classes one-hot."""
    return 1 if num_classes == 2 else num_classes


def init_params(rng: np.random.Generator, state_size: int, num_classes: int,
                scheme: str = "tutorial") -> dict[str, np.ndarray]:
    """Initial weights of one model (float32), biases zero.

    'tutorial': W and W2 uniform in [0, 1), as the tutorial does. Fine for its 4 units; with more,
    the all-positive weights saturate tanh and learning stalls. 'glorot': uniform in
    +-sqrt(6 / (fan_in + fan_out)), which keeps larger states trainable.
    """
    i = input_width(num_classes)
    shapes = {"W": (i + state_size, state_size), "W2": (state_size, num_classes)}
    if scheme == "glorot":
        W, W2 = (rng.uniform(-1, 1, s) * np.sqrt(6.0 / sum(s)) for s in shapes.values())
    else:
        W, W2 = (rng.random(s) for s in shapes.values())
    W, W2 = W.astype(np.float32), W2.astype(np.float32)
    return {
        "Wx": W[:i],
        "Ws": W[i:],
        "b": np.zeros(state_size, np.float32),
        "W2": W2,
        "b2": np.zeros(num_classes, np.float32),
    }


def encode_inputs(x, num_classes: int):
    """Symbols [M, B, T] (int) -> network inputs [M, B, T, I] (float32)."""
    if num_classes == 2:
        return tf.cast(x, tf.float32)[..., None]
    return tf.one_hot(x, num_classes, dtype=tf.float32)


def _matvec(v, w):
    """[M, B, K] x [M, K, N] -> [M, B, N] as a broadcast multiply-and-sum.

    For the tiny K and N of this network XLA fuses this into one loop with its neighbours, where a
    batched dot would be a separate library call per step.
    """
    return tf.reduce_sum(v[..., :, None] * w[:, None, :, :], axis=-2)


def forward(params: Params, x, s0, num_classes: int):
    """Run one window. x: [M, B, T] symbols; s0: [M, B, S] the carried state.

    Returns (xin [M,B,T,I], states [M,B,T,S], logits [M,B,T,C]).
    """
    xin = encode_inputs(x, num_classes)
    # The input part of every step's affine map does not depend on the state: do it for all T at once.
    xw = tf.einsum("mbti,mis->mbts", xin, params.Wx) + params.b[:, None, None, :]
    steps = x.shape[2]
    s = s0
    states = []
    for t in range(steps):  # unrolled: T is small and static, and XLA fuses across the steps
        s = tf.tanh(xw[:, :, t, :] + _matvec(s, params.Ws))
        states.append(s)
    h = tf.stack(states, axis=2)
    logits = tf.einsum("mbts,msc->mbtc", h, params.W2) + params.b2[:, None, None, :]
    return xin, h, logits


def loss_and_grads(params: Params, x, y, s0, num_classes: int):
    """Mean sparse softmax cross-entropy of one window per model, its gradients, and more.

    The gradient flows back through the window's own steps only: ``s0`` is a constant here, which
    is exactly the tutorial's truncated backpropagation (the state is fed in as a placeholder).

    Returns (loss [M], accuracy [M], probs [M,B,T,C], last state [M,B,S], grads: Params).
    """
    xin, h, logits = forward(params, x, s0, num_classes)
    _, batch, steps = x.shape
    logp = tf.nn.log_softmax(logits)
    probs = tf.exp(logp)
    onehot = tf.one_hot(y, num_classes, dtype=tf.float32)
    loss = -tf.reduce_mean(tf.reduce_sum(onehot * logp, axis=-1), axis=[1, 2])
    correct = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=y.dtype), y), tf.float32)
    accuracy = tf.reduce_mean(correct, axis=[1, 2])

    dlogits = (probs - onehot) / float(batch * steps)
    dW2 = tf.einsum("mbts,mbtc->msc", h, dlogits)
    db2 = tf.reduce_sum(dlogits, axis=[1, 2])
    dh = tf.einsum("mbtc,msc->mbts", dlogits, params.W2)

    Ws_t = tf.transpose(params.Ws, [0, 2, 1])
    dz_steps = [None] * steps
    carry = tf.zeros_like(s0)
    for t in reversed(range(steps)):
        ht = h[:, :, t, :]
        dz = (dh[:, :, t, :] + carry) * (1.0 - ht * ht)
        dz_steps[t] = dz
        carry = _matvec(dz, Ws_t)
    dz = tf.stack(dz_steps, axis=2)
    prev = tf.concat([s0[:, :, None, :], h[:, :, :-1, :]], axis=2)
    dWs = tf.einsum("mbti,mbts->mis", prev, dz)
    dWx = tf.einsum("mbti,mbts->mis", xin, dz)
    db = tf.reduce_sum(dz, axis=[1, 2])
    grads = Params(dWx, dWs, db, dW2, db2)
    return loss, accuracy, probs, h[:, :, -1, :], grads


def window_loss(params: Params, x, y, s0, num_classes: int):
    """The loss alone, for checking the hand-derived gradient with a gradient tape."""
    _, _, logits = forward(params, x, s0, num_classes)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
    return tf.reduce_mean(ce, axis=[1, 2])
