import pytest

from echo_rnn_cli import Config, ConfigError, resolve
from echo_rnn_cli.config import config_warnings, load_toml


def test_defaults_are_the_tutorials():
    c = Config()
    assert (c.epochs, c.total_series_length, c.truncated_backprop_length, c.state_size,
            c.num_classes, c.echo_step, c.batch_size, c.optimizer, c.learning_rate) == (
        100, 50000, 15, 4, 2, 3, 5, "adagrad", 0.3)
    assert c.windows_per_epoch == 666


def test_default_toml_matches_dataclass(repo_root):
    assert resolve(repo_root / "configs" / "default.toml") == Config()


def test_every_preset_loads(repo_root):
    for path in (repo_root / "configs").glob("*.toml"):
        resolve(path)


def test_flags_override_file(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("echo_step = 5\nstate_size = 8\nlearning_rate = 1\n")
    c = resolve(f, {"state_size": 6, "epochs": None})
    assert (c.echo_step, c.state_size, c.epochs, c.learning_rate) == (5, 6, 100, 1.0)


@pytest.mark.parametrize("text, key, fragment", [
    ("echo_step = 'x'", "echo_step", "must be a whole number"),
    ("epochs = 1.5", "epochs", "must be a whole number"),
    ("optimizer = 'lbfgs'", "optimizer", "must be one of"),
    ("learning_rate = -1", "learning_rate", "must be a positive finite number"),
    ("learning_rate = nan", "learning_rate", "must be a positive finite number"),
])
def test_bad_toml_value_names_key_and_file(tmp_path, text, key, fragment):
    f = tmp_path / "c.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=rf"'{key}' in '.*c\.toml' {fragment}"):
        resolve(f)


@pytest.mark.parametrize("text, fragment", [
    ("nope = 1", "unknown key 'nope'"),
    ("epochs = ", "not valid TOML"),
    ("[train]\nepochs = 1", "unknown key 'train'"),
])
def test_bad_toml_file(tmp_path, text, fragment):
    f = tmp_path / "c.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        resolve(f)


def test_missing_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load_toml("no/such.toml")


@pytest.mark.parametrize("changes, fragment", [
    (dict(epochs=0), "epochs"),
    (dict(num_classes=1), "num_classes"),
    (dict(echo_step=-1), "echo_step"),
    (dict(truncated_backprop_length=20000), "longer than a row"),
    (dict(total_series_length=3), "too short"),
    (dict(echo_step=10000), "not shorter than a row"),
    (dict(state_size=10**7), "memory"),
    (dict(batch_size=True), "whole number"),
])
def test_validation(changes, fragment):
    with pytest.raises(ConfigError, match=fragment):
        Config().replace(**changes)


def test_warns_when_echo_outlives_window():
    assert config_warnings(Config(echo_step=15))
    assert not config_warnings(Config())
