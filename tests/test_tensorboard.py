"""TensorBoard event files, read back with TensorBoard's own reader."""

import numpy as np
import pytest

from echo_rnn_cli import Config, Run
from echo_rnn_cli.tensorboard import TensorBoardLogger, log_hparams, log_hparams_config, window_every
from tests.conftest import event_series as _series
from tests.conftest import read_events as _read

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")




def test_window_every_keeps_long_runs_small():
    assert window_every(150) == 1
    assert window_every(10_000) == 1
    assert window_every(10_001) == 2
    assert window_every(100 * 666) == 7 and 100 * 666 / 7 <= 10_000


def test_a_run_logged_epoch_by_epoch_reads_back(tmp_path):
    config = Config(epochs=3, total_series_length=300, batch_size=5, truncated_backprop_length=15)  # 4 windows
    rng = np.random.default_rng(0)
    losses = rng.random((3, 4)).astype(np.float32)
    accs = rng.random((3, 4)).astype(np.float32)
    with TensorBoardLogger(tmp_path, config) as logger:
        assert logger.every == 1
        for epoch in range(3):
            logger.log_epoch(epoch + 1, epoch * 4, losses[epoch], accs[epoch])
        run = Run(config=config, status="completed", eval_loss=0.25, eval_accuracy=0.875, epochs_completed=3)
        logger.log_end(run)
    ea = _read(tmp_path)
    tags = set(ea.Tags()["tensors"])
    assert {"train/window_loss", "train/window_accuracy", "train/epoch_loss", "train/epoch_accuracy",
            "eval/loss", "eval/accuracy", "config", "status"} <= tags
    window = _series(ea, "train/window_loss")
    assert [s for s, _ in window] == list(range(12))
    np.testing.assert_allclose([v for _, v in window], losses.ravel(), rtol=1e-6)
    epochs = _series(ea, "train/epoch_accuracy")
    assert [s for s, _ in epochs] == [1, 2, 3]
    np.testing.assert_allclose([v for _, v in epochs], accs.mean(axis=1), rtol=1e-6)
    assert _series(ea, "eval/accuracy") == [(3, 0.875)]
    config_text = _series(ea, "config")[0][1].decode()
    assert "| echo_step | 3 |" in config_text and "| epochs | 3 |" in config_text
    assert _series(ea, "status")[0][1].decode() == "completed"


def test_every_nth_window_is_counted_from_the_runs_start(tmp_path):
    config = Config(epochs=2, total_series_length=750, truncated_backprop_length=15)  # 10 windows an epoch
    with TensorBoardLogger(tmp_path, config, every=4) as logger:
        logger.log_epoch(1, 0, np.arange(10.0), np.zeros(10))
        logger.log_epoch(2, 10, np.arange(10.0, 20.0), np.zeros(10))
    window = _series(_read(tmp_path), "train/window_loss")
    assert window == [(s, float(s)) for s in (0, 4, 8, 12, 16)]


def test_a_diverged_run_logs_no_eval_but_says_why(tmp_path):
    config = Config(epochs=1, total_series_length=150)
    run = Run(config=config, status="diverged", message="the loss became non-finite at window 3",
              epochs_completed=0)
    with TensorBoardLogger(tmp_path, config) as logger:
        logger.log_epoch(1, 0, [0.5, np.nan], [0.5, np.nan])
        logger.log_end(run)
    ea = _read(tmp_path)
    assert "eval/accuracy" not in ea.Tags()["tensors"]
    assert _series(ea, "status")[0][1].decode() == "diverged: the loss became non-finite at window 3"


def test_hparams_of_a_sweep_read_back(tmp_path):
    from tensorboard.plugins.hparams import metadata

    points = [{"learning_rate": 0.1, "echo_step": 3}, {"learning_rate": 1, "echo_step": 5}]
    log_hparams_config(tmp_path, {"learning_rate": [0.1, 1], "echo_step": [3, 5]})
    for i, settings in enumerate(points):
        log_hparams(tmp_path / f"point-{i}", settings, {"eval/accuracy": 0.5 + i / 4, "eval/loss": float("nan")})

    top = _read(tmp_path).PluginTagToContent(metadata.PLUGIN_NAME)
    experiment = metadata.parse_experiment_plugin_data(top[metadata.EXPERIMENT_TAG])
    assert {h.name for h in experiment.hparam_infos} == {"learning_rate", "echo_step"}
    assert {m.name.tag for m in experiment.metric_infos} == {"eval/accuracy", "eval/loss"}
    for i, settings in enumerate(points):
        ea = _read(tmp_path / f"point-{i}")
        content = ea.PluginTagToContent(metadata.PLUGIN_NAME)[metadata.SESSION_START_INFO_TAG]
        start = metadata.parse_session_start_info_plugin_data(content)
        assert start.hparams["learning_rate"].number_value == pytest.approx(settings["learning_rate"])
        assert start.hparams["echo_step"].number_value == settings["echo_step"]
        assert _series(ea, "eval/accuracy") == [(0, 0.5 + i / 4)]
        assert "eval/loss" not in ea.Tags()["tensors"]  # NaN: not a point to plot


def test_the_logger_refuses_a_bad_every(tmp_path):
    with pytest.raises(ValueError):
        TensorBoardLogger(tmp_path, Config(), every=0)
