import numpy as np
import pytest

from echo_rnn_cli import Config, load_run, save_run, train, train_many
from echo_rnn_cli.config import ConfigError
from echo_rnn_cli.steps import compiled_train_epoch
from tests.conftest import SMALL


def test_train_small_run_record(small_config):
    reports = []
    run = train(small_config, on_epoch=reports.append)
    c = small_config
    n = c.epochs * c.windows_per_epoch
    assert run.status == "completed" and run.epochs_completed == 2
    assert run.loss.shape == run.accuracy.shape == run.epoch.shape == (n,)
    assert np.array_equal(np.unique(run.epoch), [0, 1])
    k = len(range(0, c.windows_per_epoch, c.snapshot_every)) * c.epochs
    assert run.snapshot_window.shape == (k,)
    assert run.snapshot_probs.shape == (k, 5, 15, 2)
    assert run.snapshot_inputs.shape == run.snapshot_targets.shape == (k, 5, 15)
    assert 0 <= run.eval_accuracy <= 1 and np.isfinite(run.eval_loss)
    assert [r.epoch for r in reports] == [1, 2]
    assert run.device.endswith("CPU:0")
    assert set(run.params) == {"Wx", "Ws", "b", "W2", "b2"}
    assert run.versions["tensorflow"]


def test_snapshot_targets_are_the_echo_of_inputs(small_config):
    run = train(small_config)
    x, y = run.snapshot_inputs, run.snapshot_targets
    assert np.array_equal(y[..., 3:], x[..., :-3])


def test_no_retracing_across_epochs_and_runs(small_config):
    train(small_config)
    fn = compiled_train_epoch(small_config.optimizer, 2, small_config.snapshot_every)
    before = fn.experimental_get_tracing_count()
    train(small_config.replace(epochs=3, seed=5))
    assert fn.experimental_get_tracing_count() == before


def test_seeded_runs_repeat_exactly(small_config):
    a, b = train(small_config), train(small_config)
    assert np.array_equal(a.loss, b.loss)
    assert not np.array_equal(a.loss, train(small_config.replace(seed=1)).loss)


@pytest.mark.parametrize("changes", [
    {},
    # Windows longer than the unroll limit step through a compiled loop: a program of another form.
    {"truncated_backprop_length": 40, "total_series_length": 2000, "snapshot_every": 5},
    # Tiny shapes, where a lone model's program differs most (XLA drops axes of length 1).
    {"batch_size": 2, "truncated_backprop_length": 2, "total_series_length": 200, "echo_step": 1},
])
def test_many_models_equal_single_runs(small_config, changes):
    """Each model trained among others is bit for bit the model trained alone: traces, snapshots,
    weights, optimizer state and held-out results."""
    configs = [small_config.replace(seed=s, **changes) for s in (0, 1, 2)]
    configs[2] = configs[2].replace(learning_rate=0.1, echo_step=max(1, configs[2].echo_step - 1))
    together = train_many(configs)
    for c, run in zip(configs, together):
        alone = train(c)
        for key in ("loss", "accuracy", "epoch", "snapshot_probs", "snapshot_inputs"):
            np.testing.assert_array_equal(getattr(run, key), getattr(alone, key), err_msg=key)
        for name in alone.params:
            np.testing.assert_array_equal(run.params[name], alone.params[name], err_msg=name)
        for name in alone.opt_state:
            np.testing.assert_array_equal(run.opt_state[name], alone.opt_state[name], err_msg=name)
        assert (run.eval_loss, run.eval_accuracy) == (alone.eval_loss, alone.eval_accuracy)


def test_many_models_must_share_shapes(small_config):
    with pytest.raises(ConfigError, match="differ only"):
        train_many([small_config, small_config.replace(state_size=5)])


def test_round_trip_through_file(small_config, tmp_path):
    run = train(small_config)
    path = save_run(run, tmp_path / "r.npz")
    back = load_run(path)
    assert back.config == run.config
    np.testing.assert_array_equal(back.loss, run.loss)
    np.testing.assert_array_equal(back.snapshot_probs, run.snapshot_probs)
    assert back.eval_accuracy == run.eval_accuracy and back.status == "completed"
    assert back.final_loss == pytest.approx(run.final_loss)
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_should_stop_interrupts_between_epochs(small_config):
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 1

    run = train(small_config.replace(epochs=5), should_stop=stop)
    assert run.status == "interrupted" and run.epochs_completed == 1
    assert run.loss.size == small_config.windows_per_epoch


def test_warns_on_echo_longer_than_window(small_config):
    seen = []
    train(small_config.replace(echo_step=15, epochs=1), warn=seen.append)
    assert seen and "cannot learn" in seen[0]


@pytest.mark.slow
def test_default_configuration_learns_the_echo():
    """The tutorial's settings, all 100 epochs: held-out accuracy at least 0.99."""
    run = train(Config())
    assert run.status == "completed"
    assert run.eval_accuracy >= 0.99, run.eval_accuracy
    first, last = run.loss[:666].mean(), run.final_loss
    assert last < 0.05 < first
