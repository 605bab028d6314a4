"""echo-rnn: train, watch and sweep the Echo-RNN of the tutorial "How to Build a Recurrent Neural
Network in TensorFlow".

A notebook uses the same API as the command line::

    from echo_rnn_cli import Config, train, save_run, load_run
    run = train(Config(echo_step=3, epochs=5))
    print(run.eval_accuracy)

Importing this package does not import TensorFlow; training does, when it starts.
"""

from ._version import __version__
from .config import Config, ConfigError, resolve
from .runs import Run, RunFileError, load_run, save_run


def train(*args, **kwargs):
    """Train one model; see :func:`echo_rnn_cli.trainer.train`."""
    from .trainer import train as _train

    return _train(*args, **kwargs)


def train_many(*args, **kwargs):
    """Train models that share shapes together; see :func:`echo_rnn_cli.trainer.train_many`."""
    from .trainer import train_many as _train_many

    return _train_many(*args, **kwargs)


__all__ = ["Config", "ConfigError", "Run", "RunFileError", "load_run", "resolve", "save_run",
           "train", "train_many", "__version__"]
