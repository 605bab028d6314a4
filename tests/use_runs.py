"""Runs shared by the tests of inference, export and the state figure: one really trained, cached."""

from __future__ import annotations

import functools

import numpy as np

from echo_rnn_cli import Config
from echo_rnn_cli.inference import weight_shapes


@functools.lru_cache(maxsize=1)
def trained_rnn_run():
    """A small rnn run really trained (2 epochs of 1500 symbols, seed 0)."""
    from echo_rnn_cli import train

    return train(Config(epochs=2, total_series_length=1500))


class NetConfig:
    """The settings a network needs, with cell and num_layers, which Config does not have yet."""

    def __init__(self, cell: str, num_layers: int, num_classes: int = 2, state_size: int = 4, echo_step: int = 3):
        self.cell, self.num_layers, self.num_classes = cell, num_layers, num_classes
        self.state_size, self.echo_step = state_size, echo_step


def random_weights(cell: str, num_layers: int, num_classes: int, state_size: int, seed: int = 0):
    """Weights with the contract's names and shapes, drawn large enough that the cells saturate and
    differ visibly from one another (a wrong gate order changes the result)."""
    rng = np.random.default_rng([seed, num_layers, num_classes, state_size, len(cell)])
    shapes = weight_shapes(cell=cell, num_layers=num_layers, num_classes=num_classes, state_size=state_size)
    return {k: rng.normal(0.0, 0.9, s).astype(np.float32) for k, s in shapes.items()}
