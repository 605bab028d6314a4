"""The tutorial's network stays the same network, on every CPU.

tests/data/golden.npz holds the traces of these configs as main trained them once every operation
was exactly rounded (``optim.over_root``) and rounded on its own (no fused multiply-adds: XLA's
kernels compiled for AVX, ``_tf``), recorded on an AMD EPYC with AVX-512 (TensorFlow 2.21):
``Config(epochs=2, total_series_length=3000, seed=s)`` for s in 0, 1, 2, and a 3-class glorot/Adam
config. No operation in the compiled programs rounds by CPU model any more
(tests/test_cross_cpu.py), so the same file must match bit for bit on Intel processors too, and on
ARM, where ``_tf`` keeps LLVM from fusing multiply-adds (checked on aarch64 under QEMU with
scripts/test_aarch64.sh; with the fusion, ARM computed golden_fma's trace).

Two earlier recordings stay only to show that each change moved the tutorial's trace by rounding,
nothing more: tests/data/golden_before_cells.npz (an Intel Xeon, Adagrad's square root through the
approximate instruction) and tests/data/golden_fma.npz (an AMD EPYC, the exact square root, but
multiply-adds fused where LLVM's vectorizer happened to place them).
"""

from pathlib import Path

import numpy as np
import pytest

from echo_rnn_cli import Config, train_many

DATA = Path(__file__).parent / "data"
GOLDEN, BEFORE = DATA / "golden.npz", DATA / "golden_before_cells.npz"


@pytest.fixture(scope="module")
def traces():
    runs = train_many([Config(epochs=2, total_series_length=3000, seed=s) for s in (0, 1, 2)])
    other = Config(epochs=2, total_series_length=3000, num_classes=3, init="glorot", optimizer="adam",
                   learning_rate=0.01)
    run = train_many([other])[0]
    return {"loss_seeds": np.stack([r.loss for r in runs]), "acc_seeds": np.stack([r.accuracy for r in runs]),
            "eval": np.array([r.eval_loss for r in runs]), "loss_c3": run.loss, "eval_c3": np.array([run.eval_loss])}


def test_default_network_is_unchanged_bit_for_bit(traces):
    want = np.load(GOLDEN)
    assert sorted(want.files) == sorted(traces)
    for key, value in traces.items():
        np.testing.assert_array_equal(value, want[key], err_msg=key)


@pytest.mark.parametrize("older", ["golden_before_cells", "golden_fma"])
def test_each_determinism_fix_changed_the_tutorial_trace_by_rounding_only(traces, older):
    """The older traces agree with today's to float32 rounding (a few ulp) until the difference has
    been carried through many windows: the traces are chaotic, two epochs later seed 2 is up to
    1e-3 apart. Not equal, or this file would not be needed."""
    before = np.load(DATA / f"{older}.npz")
    for seed in range(3):
        new, old = traces["loss_seeds"][seed], before["loss_seeds"][seed]
        assert not np.array_equal(new, old)
        np.testing.assert_allclose(new[:20], old[:20], rtol=1e-6, atol=0)
    np.testing.assert_allclose(traces["loss_c3"], before["loss_c3"], rtol=1e-5, atol=0)
