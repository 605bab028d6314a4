"""echo-rnn: train, watch and sweep the Echo-RNN of the tutorial "How to Build a Recurrent Neural
Network in TensorFlow".

A notebook uses the same API as the command line::

    from echo_rnn_cli import Config, train, save_run, load_run
    run = train(Config(echo_step=3, epochs=5))
    print(run.eval_accuracy)
    print(echo(run, [0, 1, 1, 0, 1, 0, 0, 1]).prediction)   # the trained network, in NumPy
    export_model(run, "echo.keras")                          # a plain Keras model

Importing this package does not import TensorFlow; training does, when it starts. Nor does it
import NumPy: the names below are loaded on first use, so that the ``echo-rnn`` command can
take over Ctrl-C before anything slow is imported (see ``cli``).
"""

from ._version import __version__

#: Public name -> the module that defines it, imported when the name is first used.
_LAZY = {"Config": "config", "ConfigError": "config", "resolve": "config",
         "Run": "runs", "RunFileError": "runs", "load_run": "runs", "save_run": "runs",
         "echo": "inference", "export_model": "export"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def train(*args, **kwargs):
    """Train one model; see :func:`echo_rnn_cli.trainer.train`."""
    from .trainer import train as _train

    return _train(*args, **kwargs)


def train_many(*args, **kwargs):
    """Train models that share shapes together; see :func:`echo_rnn_cli.trainer.train_many`."""
    from .trainer import train_many as _train_many

    return _train_many(*args, **kwargs)


__all__ = ["Config", "ConfigError", "Run", "RunFileError", "echo", "export_model", "load_run", "resolve",
           "save_run", "train", "train_many", "__version__"]
