"""The tutorial's network stays the same network: traces recorded before LSTM/GRU, layers, dropout
and strides were added must come out bit for bit (tests/data/golden_before_cells.npz was made by
training these configs with the code of commit 17942e4, on this kind of CPU)."""

from pathlib import Path

import numpy as np

from echo_rnn_cli import Config, train_many

GOLDEN = Path(__file__).parent / "data" / "golden_before_cells.npz"


def test_default_network_is_unchanged_bit_for_bit():
    want = np.load(GOLDEN)
    runs = train_many([Config(epochs=2, total_series_length=3000, seed=s) for s in (0, 1, 2)])
    np.testing.assert_array_equal(np.stack([r.loss for r in runs]), want["loss_seeds"])
    np.testing.assert_array_equal(np.stack([r.accuracy for r in runs]), want["acc_seeds"])
    np.testing.assert_array_equal(np.array([r.eval_loss for r in runs]), want["eval"])
    other = Config(epochs=2, total_series_length=3000, num_classes=3, init="glorot", optimizer="adam",
                   learning_rate=0.01)
    run = train_many([other])[0]
    np.testing.assert_array_equal(run.loss, want["loss_c3"])
    np.testing.assert_array_equal(np.array([run.eval_loss]), want["eval_c3"])
