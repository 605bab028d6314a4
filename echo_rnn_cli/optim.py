"""Optimizers as pure functions, so the update can live inside the compiled epoch.

The formulas and defaults are Keras 3's (``keras.optimizers.Adagrad`` etc.), checked against them
in the tests. Every optimizer keeps the same state shape (two slots per weight and a step count),
so the compiled loop has one signature whatever the choice.
"""

from __future__ import annotations

from typing import NamedTuple

from ._tf import tf
from .model import sum_leading

ADAGRAD_INITIAL_ACCUMULATOR = 0.1
EPSILON = 1e-7
ADAM_BETA_1, ADAM_BETA_2 = 0.9, 0.999
RMSPROP_RHO = 0.9


class OptState(NamedTuple):
    step: tf.Tensor  # scalar float32: updates applied so far
    slot1: tuple     # per weight: Adagrad accumulator, Adam m, RMSprop velocity
    slot2: tuple     # per weight: Adam v (unused by the others)


def over_root(x, y):
    """``x / sqrt(y)``, exactly rounded (IEEE sqrt, then IEEE division) on every CPU.

    Written plainly, XLA rewrites ``x / sqrt(y)`` into ``x * rsqrt(y)`` and lowers rsqrt to the x86
    approximate instruction (VRSQRTPS/RSQRTSS) refined by a Newton step: its last bits differ
    between Intel and AMD processors, so the tutorial's Adagrad trace did too (it parted by window
    10 of a 3,000-symbol epoch). A divisor that is not itself a sqrt is left alone: ``max(s, 0)`` is
    ``s`` for every ``s = sqrt(y)`` (never negative; NaN stays NaN), and costs one max per weight.
    ``tests/test_cross_cpu.py`` checks the compiled programs for rsqrt and the results bit for bit
    against NumPy's exactly rounded float32 operations.
    """
    return x / tf.maximum(tf.sqrt(y), 0.0)


def clip_global_norm(g, clip_norm: float):
    """Gradients [P, M] (a model's weights packed in P, models last), or a tuple of such blocks
    [..., M], scaled per model so that their global norm is at most ``clip_norm``: Keras's
    ``global_clipnorm`` and PyTorch's ``clip_grad_norm_``, written so that gradients within the
    bound stay exactly as they are (the factor is exactly 1), and the norm's sum of squares is a
    chain of adds in a fixed order (``model.sum_leading``, then block after block), so a model
    clipped among others is clipped exactly as alone. A non-finite norm gives non-finite weights,
    which the trainer reports as a divergence."""
    blocks = g if isinstance(g, tuple) else (g,)
    squares = [sum_leading(tf.reshape(b * b, [-1, b.shape[-1]])) for b in blocks]  # each [M]
    norm = tf.sqrt(squares[0] if len(squares) == 1 else tf.add_n(squares))
    # The divisor is max(norm, clip), never a bare sqrt: see over_root.
    factor = clip_norm / tf.maximum(norm, clip_norm)
    return tuple(b * factor for b in blocks) if isinstance(g, tuple) else g * factor


def initial_slot_values(name: str) -> tuple[float, float]:
    return (ADAGRAD_INITIAL_ACCUMULATOR if name == "adagrad" else 0.0, 0.0)


def apply_updates(name: str, params: tuple, grads: tuple, state: OptState, lr, *, models_last: bool = False):
    """One step for M models at once. lr: [M], one per model: the first axis of every weight, or
    its last with ``models_last``."""
    step = state.step + 1.0
    new_p, new_1, new_2 = [], [], []
    for p, g, a, v in zip(params, grads, state.slot1, state.slot2, strict=True):
        rate = lr if models_last else tf.reshape(lr, [-1] + [1] * (len(p.shape) - 1))
        if name == "sgd":
            p = p - rate * g
        elif name == "adagrad":
            a = a + g * g
            p = p - over_root(rate * g, a + EPSILON)
        elif name == "rmsprop":
            a = RMSPROP_RHO * a + (1.0 - RMSPROP_RHO) * g * g
            p = p - over_root(rate * g, a + EPSILON)
        elif name == "adam":
            alpha = rate * tf.sqrt(1.0 - ADAM_BETA_2**step) / (1.0 - ADAM_BETA_1**step)
            a = a + (g - a) * (1.0 - ADAM_BETA_1)
            v = v + (g * g - v) * (1.0 - ADAM_BETA_2)
            p = p - a * alpha / (tf.sqrt(v) + EPSILON)
        else:  # config.OPTIMIZERS, checked with the config, makes this unreachable for users
            raise ValueError(f"unknown optimizer {name!r}")
        new_p.append(p)
        new_1.append(a)
        new_2.append(v)
    return tuple(new_p), OptState(step, tuple(new_1), tuple(new_2))
