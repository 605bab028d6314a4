"""Optimizers as pure functions, so the update can live inside the compiled epoch.

The formulas and defaults are Keras 3's (``keras.optimizers.Adagrad`` etc.), checked against them
in the tests. Every optimizer keeps the same state shape (two slots per weight and a step count),
so the compiled loop has one signature whatever the choice.
"""

from __future__ import annotations

from typing import NamedTuple

from ._tf import tf

ADAGRAD_INITIAL_ACCUMULATOR = 0.1
EPSILON = 1e-7
ADAM_BETA_1, ADAM_BETA_2 = 0.9, 0.999
RMSPROP_RHO = 0.9


class OptState(NamedTuple):
    step: tf.Tensor  # scalar float32: updates applied so far
    slot1: tuple     # per weight: Adagrad accumulator, Adam m, RMSprop velocity
    slot2: tuple     # per weight: Adam v (unused by the others)


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
            p = p - rate * g / tf.sqrt(a + EPSILON)
        elif name == "rmsprop":
            a = RMSPROP_RHO * a + (1.0 - RMSPROP_RHO) * g * g
            p = p - rate * g / tf.sqrt(a + EPSILON)
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
