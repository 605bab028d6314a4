"""The tutorial's network in TensorFlow, written for many models at once.

A single run is one model (``M == 1``); runs that share shapes (other seeds, learning rates or echo
steps) train side by side in one compiled program. Weights are stored and stacked with the model
axis first (``[M, ...]``); the functions here take it last (``[..., M]``, see ``models_last``), so
that the compiled loops run across models in vector lanes and 16 models cost little more than
one. ``steps`` turns the axis at the edge of the compiled programs.

The backward pass is derived by hand instead of taken from a gradient tape. The workload is a long
chain of tiny matrices, so its cost is the number of operations, not their size; the hand-derived
pass needs about one fused loop per time step each way, the tape several times more. Its
correctness is checked against ``tf.GradientTape`` in the tests.

Every sum, matrix products included, is a chain of elementwise adds in an order fixed by this
code, never a dot, einsum or reduce op: XLA picks the blocking of those, and with it the order of
summation, from the whole shape, the number of models included. So a model trained among others
gets bit for bit the numbers it gets alone (see ``steps`` for the one exception it pads around);
and for these tiny sizes the fused loops beat library calls anyway. Past CHAIN_MAX_TERMS (128
units, classes or terms) products fall back to dot ops, to keep the program small, and that
promise is not made. Nor is it in fast mode (``math_mode("fast")``, the ``--math fast``
setting), where every product of 16 terms or more is a dot op (sums stay chains): from about 16 units on the
library kernels win, by 13-36x at 64 and 128 units.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from typing import NamedTuple

import numpy as np

from ._tf import tf
from .config import COMPILED_MATH
from .data import input_width

#: Windows of up to this many steps, with at most UNROLL_MAX_SIZE steps x units, are unrolled: one
#: fused loop per step, the fastest program for small states, but its size (and compile time) grows
#: with both. Others step through a compiled loop (with 64 units it also runs faster).
UNROLL_MAX_STEPS = 32
UNROLL_MAX_SIZE = 256
#: Sums are chains of at most this many adds (see ``sum_leading``).
CHAIN_MAX_TERMS = 128
#: In fast mode, a product or sum over fewer terms than this stays a chain of adds: XLA turns a dot
#: over a few terms (a one-hot input, 2 classes, 4 units) into multiplies and adds whose fused
#: multiply-adds, and so whose last bits, changed with the number of models.
#: From this many terms on, the library's dot is both faster and the same for any number of models.
FAST_MIN_TERMS = 16
#: The ``math`` setting as compiled (``config.COMPILED_MATH``): 'exact' keeps the fixed chains of adds (a model's
#: numbers do not depend on its company); 'fast' hands products and sums to XLA's dot and reduce
#: ops (library kernels, their order of summation XLA's choice) and runs a single model as one.
_FAST = contextvars.ContextVar("echo_rnn_fast_math", default=False)


@contextlib.contextmanager
def math_mode(mode: str):
    """Build the network's operations in this mode (see MATH_MODES) while tracing a program."""
    if mode not in COMPILED_MATH:
        raise ValueError(f"unknown math mode {mode!r}: expected one of {', '.join(COMPILED_MATH)}")
    token = _FAST.set(mode == "fast")
    try:
        yield
    finally:
        _FAST.reset(token)


def fast_math() -> bool:
    """Whether the operations being traced now are in 'fast' mode."""
    return _FAST.get()


def fast_dot(terms: int) -> bool:
    """Whether a product summing this many terms is handed to XLA's dot op (fast mode, and enough
    terms: ``FAST_MIN_TERMS``)."""
    return fast_math() and terms >= FAST_MIN_TERMS


class Params(NamedTuple):
    """Weights of M models. The tutorial's ``W`` is split into its input rows ``Wx`` and its
    state rows ``Ws``: ``[x_t, s_{t-1}] @ W == x_t @ Wx + s_{t-1} @ Ws``.
    Shapes are given models-first, as they are stored; the functions here take them models-last."""

    Wx: tf.Tensor  # [M, I, S]
    Ws: tf.Tensor  # [M, S, S]
    b: tf.Tensor   # [M, S]
    W2: tf.Tensor  # [M, S, C]
    b2: tf.Tensor  # [M, C]


PARAM_NAMES = Params._fields


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


# --- the model axis: first outside, last inside ------------------------------------------------

def models_last(a):
    """[M, ...] -> [..., M]."""
    return tf.transpose(a, [*range(1, len(a.shape)), 0])


def models_first(a):
    """[..., M] -> [M, ...]."""
    return tf.transpose(a, [len(a.shape) - 1, *range(len(a.shape) - 1)])


# --- the network, models last ------------------------------------------------------------------

def _encode(x, num_classes: int):
    """Symbols [B, T, M] (int) -> inputs [B, T, I, M] (float32)."""
    if num_classes == 2:
        return tf.cast(x, tf.float32)[:, :, None, :]
    return tf.one_hot(x, num_classes, axis=2, dtype=tf.float32)


def _rows(w, axis: int = 0):
    """A matrix [K, N, M] (or, with axis=1, [N, K, M] transposed) as what ``_matvec`` takes: its K
    rows [N, M] in a list, made once outside the step loops; or, past CHAIN_MAX_TERMS or in fast
    mode, [K, N, M]."""
    if w.shape[axis] > CHAIN_MAX_TERMS or fast_dot(w.shape[axis]):
        return dot_ready(w if axis == 0 else tf.transpose(w, [1, 0, 2]))
    return tf.unstack(w, axis=axis)


def _matvec(v, rows):
    """[..., K, M] times each model's K x N matrix (``_rows``) -> [..., N, M].

    A chain of multiply-adds over K, one fused loop with the models innermost. A reduce op would be
    shorter, but XLA picks its order of summation from the whole shape: with 16 models and 24 units
    it sums differently than with 2, and the models' numbers would depend on their company.
    """
    if not isinstance(rows, list):
        return matmul(v, rows)
    return tf.add_n([vk[..., None, :] * wk for vk, wk in zip(tf.unstack(v, axis=-2), rows, strict=True)])


@dataclasses.dataclass(frozen=True)
class ModelsFirst:
    """A weight [K, N, M] held as each model's K x N matrix with the models first, [M, K, N]: what
    XLA's dot takes as a batched product. Made once, outside the step loops (``dot_ready``)."""

    mf: tf.Tensor

    @property
    def shape(self):
        return tf.TensorShape([*self.mf.shape[1:], self.mf.shape[0]])


def dot_ready(w):
    """A weight [K, N, M] as ``matmul`` multiplies by it fastest: itself for one model (XLA drops
    the model axis), else ``ModelsFirst``."""
    return w if isinstance(w, ModelsFirst) or w.shape[-1] == 1 else ModelsFirst(models_first(w))


def matmul(v, w, transpose: bool = False):
    """[..., K, M] times each model's K x N matrix w [K, N, M] (or, transposed, [..., N, M] times
    w's transpose) -> [..., N, M] (or [..., K, M]): one dot op, batched over the models.

    Several models are multiplied models first: XLA's dot wants its batch dimension leading, and
    with the models last it transposed both operands in every step or left the library kernel out
    (a 64-unit LSTM step's product for 16 models: 298 us so, 55 us models first)."""
    if not isinstance(w, ModelsFirst) and w.shape[-1] == 1:
        return tf.einsum("...nm,knm->...km" if transpose else "...km,knm->...nm", v, w)
    wf = dot_ready(w).mf
    models, lead = wf.shape[0], v.shape[:-2]
    vf = tf.reshape(models_first(v), [models, -1, v.shape[-2]])
    out = tf.matmul(vf, wf, transpose_b=transpose)  # [M, rows, N]
    return models_last(tf.reshape(out, [models, *lead, out.shape[-1]]))


def sum_leading(a):
    """Sum over axis 0 as chains of adds, never as a reduce op.

    A chain of elementwise adds compiles to one fused loop with the models innermost, in vector
    lanes (a reduce over outer axes becomes a scalar loop per output element), and its order of
    additions is fixed by the code, whatever M is. Long sums are chained in blocks of
    CHAIN_MAX_TERMS, then the block sums chained again, so the program stays small; the last
    block is padded with zeros, which add exactly. Fast math sums so too: XLA's reduce op over the
    leading axis ran as a scalar loop per output, up to 20x slower at 16 models of 64 units (the
    LSTM's bias gradients: 1.3 ms a window).
    """
    while a.shape[0] > CHAIN_MAX_TERMS:
        blocks = -(-a.shape[0] // CHAIN_MAX_TERMS)
        pad = blocks * CHAIN_MAX_TERMS - a.shape[0]
        if pad:
            a = tf.concat([a, tf.zeros([pad, *a.shape[1:]], a.dtype)], axis=0)
        a = tf.add_n(tf.unstack(tf.reshape(a, [blocks, CHAIN_MAX_TERMS, *a.shape[1:]]), axis=1))
    return tf.add_n(tf.unstack(a, axis=0))


def sum_rows_steps(a):
    """[B, T, ..., M] -> [..., M]: the sum over rows and steps."""
    return sum_leading(tf.reshape(a, [-1, *a.shape[2:]]))


def _outer_sum(u, v):
    """[B, T, K, M], [B, T, N, M] -> [K, N, M]: the outer products summed over rows and steps,
    formed term by term so that the fused loop never writes out the [B, T, K, N, M] products."""
    u, v = tf.reshape(u, [-1, *u.shape[2:]]), tf.reshape(v, [-1, *v.shape[2:]])
    if fast_dot(min(u.shape[1], v.shape[1])):
        # Models first, as matmul; u transposed by a copy of its own, so that the product is the
        # same plain batched dot for any number of models (left to the dot, the transposed operand
        # was read in a way that changed the sums' order once there were several models).
        ut = tf.transpose(u, [2, 1, 0])  # [M, K, rows]
        return models_last(tf.matmul(ut, models_first(v)))
    if u.shape[0] > CHAIN_MAX_TERMS:
        return sum_leading(u[:, :, None, :] * v[:, None, :, :])
    return tf.add_n([a * b for a, b in zip(tf.unstack(u[:, :, None, :]), tf.unstack(v[:, None, :, :]), strict=True)])


def _recur(step, first, inputs: tuple, reverse: bool = False, unroll: bool | None = None):
    """``carry = step(carry, *(a[:, t] for a in inputs))`` along the step axis (1) of the inputs.

    Returns every step's carry, stacked on axis 1. Unrolled in Python (the default for small
    windows, see UNROLL_MAX_STEPS): one fused loop per step, the fastest program. Otherwise a
    compiled loop: slower per step, but the program, and its compile time, does not grow with T.
    """
    steps = inputs[0].shape[1]
    if unroll is None:
        unroll = steps <= UNROLL_MAX_STEPS and steps * first.shape[1] <= UNROLL_MAX_SIZE
    if unroll:
        out = [None] * steps
        carry = first
        for t in (reversed(range(steps)) if reverse else range(steps)):
            carry = step(carry, *(a[:, t] for a in inputs))
            out[t] = carry
        return tf.stack(out, axis=1)
    acc = tf.TensorArray(first.dtype, size=steps, element_shape=first.shape)

    def body(i, carry, acc):
        t = steps - 1 - i if reverse else i
        # Read in place, a dynamic slice: made step-major first, each input cost a copy.
        carry = step(carry, *(a[:, t] for a in inputs))
        return i + 1, carry, acc.write(t, carry)

    _, _, acc = tf.while_loop(lambda i, *_: i < steps, body, (tf.constant(0), first, acc),
                              maximum_iterations=steps)
    stacked = acc.stack()
    return tf.transpose(stacked, [1, 0, *range(2, len(stacked.shape))])


def forward_ml(p: Params, x, s0, num_classes: int, unroll: bool | None = None):
    """One window, models last. p: weights [..., M]; x: [B, T, M] symbols; s0: [B, S, M].
    ``unroll``: None picks by the window's length (see ``_recur``).

    Returns (xin [B,T,I,M], states [B,T,S,M], logits [B,T,C,M]).
    """
    xin = _encode(x, num_classes)
    # The input part of every step's affine map does not depend on the state: do it for all T at once.
    xw = _matvec(xin, _rows(p.Wx)) + p.b[None, None]
    Ws = _rows(p.Ws)

    def step(s, xw_t):
        return tf.tanh(xw_t + _matvec(s, Ws))

    h = _recur(step, s0, (xw,), unroll=unroll)
    logits = _matvec(h, _rows(p.W2)) + p.b2[None, None]
    return xin, h, logits


def log_softmax_ml(logits):
    """Log-probabilities over the class axis (2) of [B, T, C, M]. The sum over classes is a chain
    of adds, like every sum here (the max is exact in any order)."""
    top = tf.reduce_max(logits, axis=2, keepdims=True)
    shifted = logits - top
    total = sum_leading(tf.exp(tf.transpose(shifted, [2, 0, 1, 3])))
    return shifted - tf.math.log(total)[:, :, None]


def loss_and_grads_ml(p: Params, x, y, s0, num_classes: int, unroll: bool | None = None):
    """Mean sparse softmax cross-entropy of one window per model, its gradients, and more; everything
    models-last (x, y: [B, T, M]; s0: [B, S, M]).

    The gradient flows back through the window's own steps only: ``s0`` is a constant here, which
    is exactly the tutorial's truncated backpropagation (the state is fed in as a placeholder).

    Returns (loss [M], accuracy [M], probs [B,T,C,M], last state [B,S,M], grads [..., M]).
    """
    xin, h, logits = forward_ml(p, x, s0, num_classes, unroll)
    batch, steps, _ = x.shape
    count = float(batch * steps)
    logp = log_softmax_ml(logits)
    probs = tf.exp(logp)
    onehot = tf.one_hot(y, num_classes, axis=2, dtype=tf.float32)
    loss = -sum_rows_steps(sum_leading(tf.transpose(onehot * logp, [2, 0, 1, 3]))) / count
    correct = tf.cast(tf.equal(tf.argmax(logits, axis=2, output_type=y.dtype), y), tf.float32)
    accuracy = sum_rows_steps(correct) / count

    dlogits = (probs - onehot) / count
    dh = _matvec(dlogits, _rows(p.W2, axis=1))  # [B, T, S, M]: times W2 transposed
    # What flows back into step t from the steps after it: the loop carries only this, and every
    # step's dz = (dh + carried) * tanh' is then formed for all steps at once.
    dtanh = 1.0 - h * h
    WsT = _rows(p.Ws, axis=1)

    def back(carry, dh_t, dtanh_t):
        return _matvec((dh_t + carry) * dtanh_t, WsT)

    zero = tf.zeros_like(s0)
    carried = zero[:, None]  # nothing comes back into the window's last step
    if steps > 1:
        earlier = _recur(back, zero, (dh[:, 1:], dtanh[:, 1:]), reverse=True, unroll=unroll)
        carried = tf.concat([earlier, carried], axis=1)
    dz = (dh + carried) * dtanh
    prev = tf.concat([s0[:, None], h[:, :-1]], axis=1)
    grads = Params(_outer_sum(xin, dz), _outer_sum(prev, dz), sum_rows_steps(dz),
                   _outer_sum(h, dlogits), sum_rows_steps(dlogits))
    return loss, accuracy, probs, h[:, -1], grads
