"""The compiled programs: one training epoch and one evaluation pass, each a single XLA call.

Python touches TensorFlow once per epoch: the windows, the state carried between them, the
optimizer updates and the per-window metrics all run inside one ``tf.function(jit_compile=True)``.
Compiled functions are cached per static setting, so runs of the same shapes in one process (tests,
sweeps, resumed runs) trace and compile once; ``_tf`` also keeps XLA's compiled programs on disk
across processes.

Inside, every tensor has the model axis last (see ``model``), and the weights (a dict in
``cells.weight_names`` order, any cell and number of layers) and optimizer slots travel through the
loop as one flat [P, M] block each: the update of all weights is then one fused loop instead of one
per weight.

A model's numbers do not depend on its company: a run trained with ``--seeds K`` is bit for bit
the run trained alone, in both math modes. XLA compiles another program for each number of models
(with one it drops the axis; with 3 or 5 it vectorises the model lanes differently), so this rests
on two things: no fused multiply-adds (``_tf`` compiles XLA's kernels for AVX, whose every multiply
and add rounds on its own in any lane), and sums in an order the code fixes (exact mode's chains of
adds; fast mode's library dots, whose order does not depend on the batch of models they run in).
Before the first, one model ran as two and three as four, the extra ones copies of the first,
which cost a single run about 50% more time per window (see the tests and benchmarks/RESULTS.md).
"""

from __future__ import annotations

import functools
import threading

from . import xla_cache
from ._tf import tf
from .model import (
    log_softmax_ml,
    math_mode,
    models_first,
    models_last,
    sum_leading,
    sum_rows_steps,
)
from .optim import OptState, apply_updates, clip_global_norm


class _Published:
    """A compiled function that, after a call that traced (and so compiled) a new program, hands
    what XLA compiled to the on-disk cache for later processes (see ``xla_cache``).

    A call that fails while the on-disk cache is on may have run a program the cache gave (a
    forged or mismatched entry passes every check but the run): the cache is dropped for the rest
    of the process, and the call made once more with the function made anew (a new name, so
    TensorFlow's own in-memory cache misses too), which compiles it. Only an accelerator."""

    def __init__(self, make):
        self._make = make
        self._fn = make()
        self._traced = 0

    def __call__(self, *args):
        try:
            out = self._fn(*args)
        except tf.errors.OpError:
            if not xla_cache.distrust():
                raise
            self._fn, self._traced = self._make(), 0
            out = self._fn(*args)
        traced = self._fn.experimental_get_tracing_count()
        if traced != self._traced:
            self._traced = traced
            xla_cache.publish()
        return out

    def __getattr__(self, name):
        return getattr(self._fn, name)


class BackgroundCompile:
    """Traces ``fn`` for ``args``, then calls it once on another thread, to have it compiled while
    the caller goes on (training, on the other core); the result is thrown away. ``wait()`` before the real
    call, which then finds the program compiled. Not a daemon thread: the interpreter waits for it
    rather than tearing TensorFlow down under it."""

    def __init__(self, fn, device: str, *args):
        # Traced here, in order: traced on the thread, the program's name would depend on what the
        # caller traced meanwhile, and the on-disk cache would miss it in the next process.
        traced = fn.experimental_get_tracing_count()
        with tf.device(device):
            fn.get_concrete_function(*args)
        self._thread = None
        if fn.experimental_get_tracing_count() == traced:
            # Traced before in this process, so compiled by that call already: running it again
            # would only take the other core from training (a whole evaluation's worth).
            return
        self._thread = threading.Thread(target=self._run, args=(fn, device, args), name="echo-rnn-compile")
        self._thread.start()

    @staticmethod
    def _run(fn, device, args):
        try:
            with tf.device(device):
                fn(*args)
        except Exception:  # the real call raises it again, where it can be reported
            pass

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()


class _Flat:
    """Packs weights [..., M] (models last) into one [P, M] block and back: the optimizer's update
    of all weights is then one fused loop, which pays for tiny networks (exact math), where a
    window is a few dozen small loops."""

    def __init__(self, shapes):
        self.shapes = [tuple(s) for s in shapes]
        self.sizes = [int(tf.TensorShape(s[:-1]).num_elements()) for s in self.shapes]

    def pack(self, tensors):
        return tf.concat([tf.reshape(t, [n, -1]) for t, n in zip(tensors, self.sizes, strict=True)], axis=0)

    def unpack(self, flat):
        parts = tf.split(flat, self.sizes, axis=0)
        return [tf.reshape(p, s) for p, s in zip(parts, self.shapes, strict=True)]

    @staticmethod
    def blocks(packed) -> tuple:
        return (packed,)

    @staticmethod
    def joined(blocks: tuple):
        return blocks[0]


class _Each:
    """``_Flat``'s interface with every weight a block of its own (fast math). Packing copied every
    weight and gradient into the block and out again in every window: for a 64-unit LSTM four
    copies of its 64 x 256 recurrent kernel, the concatenation of all its gradients and a slice of
    each, more than its forward steps' matrix products cost. Separate updates cost a few small
    loops, nothing at these sizes."""

    @staticmethod
    def pack(tensors):
        return tuple(tensors)

    @staticmethod
    def unpack(blocks):
        return list(blocks)

    @staticmethod
    def blocks(packed) -> tuple:
        return tuple(packed)

    @staticmethod
    def joined(blocks: tuple):
        return tuple(blocks)


def compiled_train_epoch(optimizer: str, num_classes: int, snapshot_every: int, cell: str = "rnn",
                         num_layers: int = 1, stride: int = 0, math: str = "exact", clip_norm: float = 0.0):
    """A compiled epoch for these static settings (shapes are traced once per distinct shape).

    ``stride`` 0 is the window's length. The weights are a dict in ``cells.weight_names`` order;
    ``masks`` (with dropout only, else None) [W, M, L, B, T, S] multiply each layer's output.
    ``math``: ``model.MATH_MODES``; ``clip_norm`` > 0 clips each model's global gradient norm
    (0: no clipping code at all, so the tutorial's program is unchanged). The same settings give
    the same function however they are passed (functools.cache alone tells ``f(a)`` from ``f(a, default)``)."""
    return _compiled_train_epoch(optimizer, num_classes, snapshot_every, cell, num_layers, stride, math,
                                 float(clip_norm))


@functools.cache
def _compiled_train_epoch(optimizer, num_classes, snapshot_every, cell, num_layers, stride, math, clip_norm):
    def train_epoch(params: dict, opt: OptState, xs, ys, lr, masks=None):
        with math_mode(math):
            return _train_epoch(params, opt, xs, ys, lr, masks)

    def _train_epoch(params: dict, opt: OptState, xs, ys, lr, masks):
        from . import cells

        # xs, ys: [W, M, B, T] int32, every window of the epoch; lr: [M].
        n_windows, models, batch, steps = xs.shape
        n_snap = -(-n_windows // snapshot_every)
        names = cells.weight_names(cell, num_layers)  # not the dict's order: tf.nest sorts the keys
        flat = _Each() if math == "fast" else _Flat([models_last(params[n]).shape for n in names])
        xs_ml = tf.transpose(xs, [0, 2, 3, 1])
        ys_ml = tf.transpose(ys, [0, 2, 3, 1])
        if masks is not None:  # [W, M, L, B, T, S] -> [W, L, B, T, S, M]
            masks = tf.transpose(masks, [0, 2, 3, 4, 5, 1])
        state = cells.zero_state(cell, num_layers, batch, params["recurrent_0"].shape[1], models)
        stats = tf.TensorArray(tf.float32, size=n_windows)  # per window: [loss, accuracy] x M
        # One extra slot takes the writes of windows that are not snapshots, so no branch is needed.
        snaps = tf.zeros([n_snap + 1, batch, steps, num_classes, models], tf.float32)

        def body(i, w, count, slot1, slot2, state, stats, snaps):
            weights = dict(zip(names, flat.unpack(w), strict=True))
            loss, acc, probs, state, grads = cells.window_loss_and_grads(
                weights, xs_ml[i], ys_ml[i], state, cell=cell, num_layers=num_layers, num_classes=num_classes,
                stride=stride or steps, masks=None if masks is None else tf.unstack(masks[i]))
            g = flat.pack([grads[n] for n in names])
            if clip_norm:
                g = clip_global_norm(g, clip_norm)
            w, new = apply_updates(optimizer, flat.blocks(w), flat.blocks(g),
                                   OptState(count, flat.blocks(slot1), flat.blocks(slot2)), lr, models_last=True)
            w, new = flat.joined(w), OptState(new.step, flat.joined(new.slot1), flat.joined(new.slot2))
            slot = tf.where(i % snapshot_every == 0, i // snapshot_every, n_snap)
            snaps = tf.tensor_scatter_nd_update(snaps, [[slot]], probs[None])
            return (i + 1, w, new.step, new.slot1, new.slot2, state,
                    stats.write(i, tf.stack([loss, acc])), snaps)

        def packed(ts):
            return flat.pack([models_last(t) for t in ts])

        _, w, count, slot1, slot2, _, stats, snaps = tf.while_loop(
            lambda i, *_: i < n_windows,
            body,
            (tf.constant(0), packed([params[n] for n in names]), opt.step, packed(opt.slot1), packed(opt.slot2),
             state, stats, snaps),
            maximum_iterations=n_windows,
        )
        def unpacked(f):
            return tuple(models_first(t) for t in flat.unpack(f))

        stats = stats.stack()
        return (dict(zip(names, unpacked(w), strict=True)), OptState(count, unpacked(slot1), unpacked(slot2)),
                stats[:, 0], stats[:, 1], tf.transpose(snaps[:n_snap], [0, 4, 1, 2, 3]))

    return _Published(lambda: tf.function(train_epoch, jit_compile=True, reduce_retracing=False, autograph=False))


def compiled_evaluate(num_classes: int, cell: str = "rnn", num_layers: int = 1, math: str = "exact"):
    """The compiled held-out evaluation for these static settings (see ``compiled_train_epoch``)."""
    return _compiled_evaluate(num_classes, cell, num_layers, math)


@functools.cache
def _compiled_evaluate(num_classes, cell, num_layers, math):
    def evaluate(params: dict, xs, ys, weights):
        with math_mode(math):
            return _evaluate(params, xs, ys, weights)

    def _evaluate(params: dict, xs, ys, weights):
        """Held-out loss and accuracy: the state carried across all windows, no updates, no dropout.

        weights [W, M, B, T] float32 is 0 where a target must not count (the series' first
        echo_step targets, zero by construction)."""
        from . import cells

        n_windows, models, batch, _ = xs.shape
        p = {n: models_last(w) for n, w in params.items()}
        xs, ys, weights = (tf.transpose(a, [0, 2, 3, 1]) for a in (xs, ys, weights))
        state = cells.zero_state(cell, num_layers, batch, p["recurrent_0"].shape[0], models)
        zero = tf.zeros([models], tf.float32)

        def body(i, state, loss_sum, hit_sum):
            # Not unrolled: evaluation runs once per training, so a small program that compiles
            # fast beats the fastest one.
            _, logits, state = cells.window_forward(p, xs[i], state, cell=cell, num_layers=num_layers,
                                                    num_classes=num_classes, unroll=False)
            onehot = tf.one_hot(ys[i], num_classes, axis=2, dtype=tf.float32)
            ce = -sum_leading(tf.transpose(onehot * log_softmax_ml(logits), [2, 0, 1, 3]))
            hit = tf.cast(tf.equal(tf.argmax(logits, 2, output_type=ys.dtype), ys[i]), tf.float32)
            w = weights[i]
            return (i + 1, state, loss_sum + sum_rows_steps(ce * w), hit_sum + sum_rows_steps(hit * w))

        _, _, loss_sum, hit_sum = tf.while_loop(
            lambda i, *_: i < n_windows, body, (tf.constant(0), state, zero, zero),
            maximum_iterations=n_windows,
        )
        count = tf.reduce_sum(weights, axis=[0, 1, 2])  # of zeros and ones: exact in any order
        return loss_sum / count, hit_sum / count

    return _Published(lambda: tf.function(evaluate, jit_compile=True, reduce_retracing=False, autograph=False))
