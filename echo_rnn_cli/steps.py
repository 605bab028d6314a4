"""The compiled programs: one training epoch and one evaluation pass, each a single XLA call.

Python touches TensorFlow once per epoch: the windows, the state carried between them, the
optimizer updates and the per-window metrics all run inside one ``tf.function(jit_compile=True)``.
Compiled functions are cached per static setting, so runs of the same shapes in one process (tests,
sweeps, resumed runs) compile once.
"""

from __future__ import annotations

import functools

from ._tf import tf
from .model import Params, forward, loss_and_grads
from .optim import OptState, apply_updates


def train_step(params: Params, opt: OptState, state, x, y, lr, *, optimizer: str, num_classes: int):
    """One window: forward, hand-derived truncated backward, optimizer update.

    Returns (params, opt, next state, loss [M], accuracy [M], probs [M,B,T,C]).
    """
    loss, acc, probs, last, grads = loss_and_grads(params, x, y, state, num_classes)
    new_params, new_opt = apply_updates(optimizer, tuple(params), tuple(grads), opt, lr)
    return Params(*new_params), new_opt, last, loss, acc, probs


@functools.lru_cache(maxsize=None)
def compiled_train_epoch(optimizer: str, num_classes: int, snapshot_every: int):
    """A compiled epoch for these static settings (shapes are traced once per distinct shape)."""

    @tf.function(jit_compile=True, reduce_retracing=False)
    def train_epoch(params: Params, opt: OptState, xs, ys, lr):
        # xs, ys: [W, M, B, T] int32, every window of the epoch; lr: [M].
        n_windows, models, batch, steps = xs.shape
        n_snap = -(-n_windows // snapshot_every)
        state = tf.zeros([models, batch, params.Ws.shape[-1]], tf.float32)
        losses = tf.TensorArray(tf.float32, size=n_windows)
        accs = tf.TensorArray(tf.float32, size=n_windows)
        # One extra slot takes the writes of windows that are not snapshots, so no branch is needed.
        snaps = tf.zeros([n_snap + 1, models, batch, steps, num_classes], tf.float32)

        def body(i, params, opt, state, losses, accs, snaps):
            params, opt, state, loss, acc, probs = train_step(
                params, opt, state, xs[i], ys[i], lr, optimizer=optimizer, num_classes=num_classes
            )
            slot = tf.where(i % snapshot_every == 0, i // snapshot_every, n_snap)
            snaps = tf.tensor_scatter_nd_update(snaps, [[slot]], probs[None])
            return i + 1, params, opt, state, losses.write(i, loss), accs.write(i, acc), snaps

        _, params, opt, _, losses, accs, snaps = tf.while_loop(
            lambda i, *_: i < n_windows,
            body,
            (tf.constant(0), params, opt, state, losses, accs, snaps),
            maximum_iterations=n_windows,
        )
        return params, opt, losses.stack(), accs.stack(), snaps[:n_snap]

    return train_epoch


@functools.lru_cache(maxsize=None)
def compiled_evaluate(num_classes: int):
    @tf.function(jit_compile=True, reduce_retracing=False)
    def evaluate(params: Params, xs, ys, weights):
        """Held-out loss and accuracy: the state carried across all windows, no updates.

        weights [W, M, B, T] float32 is 0 where a target must not count (the series' first
        echo_step targets, zero by construction)."""
        n_windows, models, batch, _ = xs.shape
        state = tf.zeros([models, batch, params.Ws.shape[-1]], tf.float32)
        zero = tf.zeros([models], tf.float32)

        def body(i, state, loss_sum, hit_sum):
            _, h, logits = forward(params, xs[i], state, num_classes)
            ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=ys[i], logits=logits)
            hit = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=ys.dtype), ys[i]), tf.float32)
            w = weights[i]
            return (i + 1, h[:, :, -1, :], loss_sum + tf.reduce_sum(ce * w, [1, 2]),
                    hit_sum + tf.reduce_sum(hit * w, [1, 2]))

        _, _, loss_sum, hit_sum = tf.while_loop(
            lambda i, *_: i < n_windows, body, (tf.constant(0), state, zero, zero),
            maximum_iterations=n_windows,
        )
        count = tf.reduce_sum(weights, axis=[0, 2, 3])
        return loss_sum / count, hit_sum / count

    return evaluate
