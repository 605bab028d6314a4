import numpy as np

from echo_rnn_cli import Config
from echo_rnn_cli.data import (
    echo_series,
    epoch_data,
    eval_data,
    eval_weights,
    input_width,
    rng_for,
    to_rows,
    to_windows,
)


def test_echo_is_shifted_series_with_zeroed_head():
    x, y = echo_series(np.random.default_rng(1), 200, 3)
    assert set(np.unique(x)) <= {0, 1}
    assert np.all(y[:3] == 0)
    assert np.array_equal(y[3:], x[:-3])


def test_echo_step_zero_is_identity_and_multiclass_symbols():
    x, y = echo_series(np.random.default_rng(1), 100, 0, num_classes=5)
    assert np.array_equal(x, y)
    assert x.min() >= 0 and x.max() <= 4 and len(np.unique(x)) == 5


def test_rows_are_the_tutorial_reshape():
    s = np.arange(23)
    rows = to_rows(s, 5)
    assert rows.shape == (5, 4)
    assert np.array_equal(rows[1], [4, 5, 6, 7])  # consecutive along a row, row after row


def test_windows_slide_along_rows_and_drop_short_tail():
    rows = np.arange(2 * 10).reshape(2, 10)
    w = to_windows(rows, 3)
    assert w.shape == (3, 2, 3)  # 10 // 3 windows; the last step of each row is dropped
    assert np.array_equal(w[1, 0], [3, 4, 5])
    assert np.array_equal(w[2, 1], [16, 17, 18])


def test_epoch_data_shapes_and_seeding():
    c = Config(total_series_length=1000, truncated_backprop_length=15, batch_size=5)
    xs, ys = epoch_data(c, 0)
    assert xs.shape == ys.shape == (c.windows_per_epoch, 5, 15) == (13, 5, 15)
    assert xs.dtype == np.int32
    again = epoch_data(c, 0)
    assert np.array_equal(xs, again[0]) and np.array_equal(ys, again[1])
    assert not np.array_equal(xs, epoch_data(c, 1)[0])  # a fresh series every epoch
    assert not np.array_equal(xs, epoch_data(c.replace(seed=1), 0)[0])
    assert not np.array_equal(xs, eval_data(c)[0])  # held-out data is its own stream


def test_targets_echo_inputs_within_rows():
    c = Config(total_series_length=1000, echo_step=3)
    xs, ys = epoch_data(c, 2)
    row_x = xs.transpose(1, 0, 2).reshape(5, -1)
    row_y = ys.transpose(1, 0, 2).reshape(5, -1)
    assert np.array_equal(row_y[:, 3:], row_x[:, :-3])


def test_eval_weights_skip_only_the_series_head():
    c = Config(total_series_length=1000, echo_step=3)
    w = eval_weights(c)
    assert w.shape == (13, 5, 15)
    assert w[0, 0, :3].sum() == 0 and w.sum() == w.size - 3


def test_rng_streams_differ():
    a = rng_for(0, 1, 0).integers(0, 1 << 30, 4)
    b = rng_for(0, 2).integers(0, 1 << 30, 4)
    assert not np.array_equal(a, b)


def test_input_width_is_one_rule_for_the_network_and_the_run_file():
    """Binary symbols go in as one scalar, more classes one-hot; the network and the run file's
    checks use this one definition."""
    from echo_rnn_cli import model, runs

    assert [input_width(c) for c in (2, 3, 7)] == [1, 3, 7]
    assert model.input_width is input_width
    c = Config(num_classes=5, state_size=6)
    assert model.init_params(rng_for(0, 0), 6, 5)["Wx"].shape == runs._weight_shapes(c)["param_kernel_0"] == (5, 6)
