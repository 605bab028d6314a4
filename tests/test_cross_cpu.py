"""The same numbers on every CPU: no approximate instruction, and no fused multiply-add, in the
compiled programs.

The tutorial's trace used to part between Intel and AMD processors within a few windows: XLA turned
Adagrad's ``g / sqrt(a + eps)`` into ``g * rsqrt(a + eps)`` and lowered rsqrt to the x86 approximate
instruction, whose last bits each vendor rounds its own way (see ``optim.over_root``). These checks
fail on any CPU if an approximation comes back: rsqrt in an optimized program, or a division that
is not exactly rounded.
"""

import numpy as np
import pytest

from echo_rnn_cli import Config
from echo_rnn_cli._tf import tf
from echo_rnn_cli.data import epoch_data
from echo_rnn_cli.optim import clip_global_norm, over_root
from echo_rnn_cli.steps import compiled_evaluate, compiled_train_epoch
from echo_rnn_cli.trainer import eval_inputs, prepare_models


def _crafted(n: int = 1 << 18):
    """Values across many binades, where an approximate reciprocal square root, even refined by a
    Newton step, misses the exactly rounded result in a large share of cases (about 40% here)."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal(n).astype(np.float32)
    y = (rng.random(n) * 10.0).astype(np.float32) ** 3 + np.float32(1e-7)
    return x, y


def test_over_root_is_exactly_rounded_when_compiled():
    x, y = _crafted()
    got = tf.function(over_root, jit_compile=True)(x, y).numpy()
    want = x / np.sqrt(y)  # NumPy's float32 sqrt and division are IEEE, exactly rounded
    assert np.array_equal(got, want)


def test_the_plain_formula_would_fail_that_check():
    """The check above can fail: XLA's rewrite of the plain formula misses on these inputs (on
    every x86 CPU seen so far; if XLA ever computes it exactly, this says so and can go)."""
    x, y = _crafted()
    got = tf.function(lambda a, b: a / tf.sqrt(b), jit_compile=True)(x, y).numpy()
    assert np.count_nonzero(got != x / np.sqrt(y)) > 1000


def test_no_multiply_and_add_are_fused_when_compiled():
    """Each multiply and add rounds on its own in XLA's kernels, on every CPU (``_tf``: capped at AVX
    on x86; on ARM, which always has fused multiply-add, LLVM's machine combiner off at -O3). Fused,
    where LLVM's vectorizer happened to leave them side by side, a model's last bits would depend on
    the models beside it in a vector, and ARM's trace would part from x86's."""
    rng = np.random.default_rng(1)
    a, b, c = (rng.standard_normal(1 << 16).astype(np.float32) for _ in range(3))
    got = tf.function(lambda a, b, c: a * b + c, jit_compile=True)(a, b, c).numpy()
    fused = (a.astype(np.float64) * b + c).astype(np.float32)  # the float64 product is exact
    assert np.count_nonzero(fused != a * b + c) > 1000  # so the check below can fail (23% of these)
    assert np.array_equal(got, a * b + c)


def test_clipping_is_exact_and_leaves_small_gradients_alone():
    g = np.array([[3.0, 0.3], [4.0, 0.4]], np.float32)  # two models: norms 5 and 0.5
    got = tf.function(lambda a: clip_global_norm(a, 1.0), jit_compile=True)(g).numpy()
    assert np.array_equal(got[:, 1], g[:, 1])  # within the bound: exactly as it was
    assert np.array_equal(got[:, 0], g[:, 0] * np.float32(1.0 / 5.0))
    x, y = _crafted(4096)
    big = tf.function(lambda a: clip_global_norm(a, 0.5), jit_compile=True)(x[:, None]).numpy()[:, 0]
    norm = np.sqrt(np.sum(x.astype(np.float64) ** 2))
    np.testing.assert_allclose(np.sqrt(np.sum(big.astype(np.float64) ** 2)), 0.5, rtol=1e-5)
    assert norm > 0.5


def _optimized_programs(c: Config) -> str:
    """The optimized HLO of the epoch and the evaluation that training ``c`` compiles."""
    group = prepare_models([c])
    xs, ys = (tf.constant(a[:, None]) for a in epoch_data(c, 0))
    fn = compiled_train_epoch(c.optimizer, c.num_classes, c.snapshot_every, c.cell, c.num_layers, c.stride_steps,
                              c.math_used, c.clip_norm)
    masks = None
    if c.dropout:
        from echo_rnn_cli.data import dropout_masks

        masks = tf.constant(dropout_masks(c, 0)[:, None])
    text = fn.experimental_get_compiler_ir(group.params, group.opt, xs, ys, group.lr, masks)(stage="optimized_hlo")
    ev = compiled_evaluate(c.num_classes, c.cell, c.num_layers, c.math_used)
    text += ev.experimental_get_compiler_ir(group.params, *eval_inputs([c]))(stage="optimized_hlo")
    return text


@pytest.mark.parametrize("changes", [
    {},
    {"optimizer": "rmsprop"},
    {"optimizer": "adam", "clip_norm": 0.5},
    {"clip_norm": 1.0, "cell": "lstm"},
    {"cell": "gru", "num_layers": 2, "dropout": 0.1, "num_classes": 3},
    {"cell": "gru", "math": "fast", "clip_norm": 2.0},
])
def test_no_approximate_square_roots_in_the_compiled_programs(changes):
    c = Config(total_series_length=600, epochs=1, snapshot_every=10, **changes)
    text = _optimized_programs(c)
    assert "sqrt(" in text or c.optimizer == "sgd"  # the update's square root is there, and exact
    assert "rsqrt(" not in text
