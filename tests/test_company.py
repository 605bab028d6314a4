"""A model's numbers do not depend on its company, in both math modes (issue 19).

``--seeds N`` trains N models in one program; each must be bit for bit the model trained alone,
whatever N, the cell, the size and the mode. XLA compiles a different program for each number of
models and vectorises the model lanes differently, so this holds only because its kernels fuse no
multiply-adds (``_tf``) and every sum has an order the code fixes: before, a fast GRU of 64 units
parted from itself alone at window 7 with 3 models, a fast tanh cell with 5.
"""

import os

import pytest

from echo_rnn_cli import Config, train, train_many
from tests.test_reliability import assert_same_run

#: A short run: enough windows for a difference in the last bit to show in the loss.
SHAPE = dict(total_series_length=750, epochs=2, snapshot_every=5)
RATE = {"rnn": 0.3, "lstm": 1.0, "gru": 0.5}


def config(cell: str, state: int, math: str, seed: int) -> Config:
    return Config(cell=cell, state_size=state, math=math, seed=seed, learning_rate=RATE[cell], **SHAPE)


def test_xla_compiles_without_fused_multiply_adds():
    """The flags; tests/test_cross_cpu.py checks what they do."""
    from echo_rnn_cli import _tf  # sets the flags TensorFlow reads

    flags = os.environ["XLA_FLAGS"].split()
    if _tf.ARM:  # no instruction set without FMA: -O3, where only the machine combiner fuses, and it off
        assert "--xla_backend_optimization_level=3" in flags
        assert "--xla_backend_extra_options=-aarch64-enable-mcr=false" in flags
    else:
        assert "--xla_cpu_max_isa=AVX" in flags


def test_five_fast_tanh_models_are_each_the_model_alone():
    """The quick subset's case: 5 models of 16 units, which parted before fused multiply-adds were off."""
    configs = [config("rnn", 16, "fast", s) for s in range(5)]
    for c, run in zip(configs, train_many(configs), strict=True):
        assert_same_run(run, train(c))


@pytest.mark.slow  # compiles each cell, size and mode for 1 and 5 models
@pytest.mark.parametrize("math", ["exact", "fast"])
@pytest.mark.parametrize("state", [4, 64])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_seeds_trained_together_are_each_the_model_trained_alone(cell, state, math):
    configs = [config(cell, state, math, s) for s in range(5, 10)]
    for c, run in zip(configs, train_many(configs), strict=True):
        assert_same_run(run, train(c))


@pytest.mark.slow  # compiles a 64-unit GRU in fast math
def test_a_fast_run_resumes_bit_for_bit():
    c = config("gru", 64, "fast", 1)
    straight = train(c)
    first = train(c.replace(epochs=1))
    assert_same_run(train(c, resume=first), straight)
