"""Export a trained network as a Keras model (or a TensorFlow SavedModel) built from Keras's own layers.

The model takes what echo-rnn feeds its network, ``(batch, time, features)`` float32 with features 1
(the symbol itself) for 2 classes and C (one-hot, see ``inference.encode_inputs``) for more, and
returns the class probabilities of every step. Keras's SimpleRNN/LSTM/GRU compute exactly the cells
echo-rnn trains (same weight layout and gate order), so the exported model predicts what
``echo-rnn echo`` does. TensorFlow and Keras are imported inside the functions: importing this
module costs nothing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .files import atomic_write, publish, short_name
from .inference import CELLS, network_of, network_weights, run_weights
from .interrupts import raise_received, settle, sigterm_held

FORMATS = ("keras", "savedmodel")


class ExportError(ValueError):
    """An export that cannot be written; the message is one line meant for the user."""


def _keras():
    from ._tf import quiet_native_stderr, tf  # noqa: F401  (TensorFlow first, with echo-rnn's settings)

    with quiet_native_stderr():
        import keras
    return keras


def _recurrent_layer(keras, cell: str, state_size: int, name: str):
    if cell == "rnn":
        return keras.layers.SimpleRNN(state_size, return_sequences=True, name=name)
    if cell == "lstm":
        return keras.layers.LSTM(state_size, return_sequences=True, name=name)
    return keras.layers.GRU(state_size, return_sequences=True, reset_after=True, name=name)


def build_keras_model(weights: dict[str, Any], *, cell: str, num_layers: int, num_classes: int, state_size: int):
    """A ``keras.Model`` with the trained weights (either naming, see ``inference.network_weights``):
    Input (None, I0) -> num_layers recurrent layers -> Dense(C, softmax) at every step."""
    if cell not in CELLS:
        raise ExportError(f"unknown cell {cell!r}: expected one of {', '.join(CELLS)}")
    w = network_weights(weights, cell=cell, num_layers=num_layers, num_classes=num_classes, state_size=state_size)
    keras = _keras()
    width = 1 if num_classes == 2 else num_classes
    inputs = keras.Input(shape=(None, width), name="symbols", dtype="float32")
    x = inputs
    layers = []
    for layer in range(num_layers):
        rec = _recurrent_layer(keras, cell, state_size, f"{cell}_{layer}")
        x = rec(x)
        layers.append(rec)
    dense = keras.layers.Dense(num_classes, activation="softmax", name="softmax")
    outputs = dense(x)
    model = keras.Model(inputs, outputs, name=f"echo_rnn_{cell}_{num_layers}")
    for layer, rec in enumerate(layers):
        rec.set_weights([w[f"kernel_{layer}"], w[f"recurrent_{layer}"], w[f"bias_{layer}"]])
    dense.set_weights([w["W2"], w["b2"]])
    return model


def run_model(run: Any):
    """The Keras model of a run's trained network (WeightsError for a diverged run)."""
    weights = run_weights(run)
    return build_keras_model(weights, **network_of(run.config), state_size=int(run.config.state_size))


def _target(out_path: str | os.PathLike, fmt: str) -> Path:
    """Check the destination before any work: the right name for the format, a folder to write in."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}: expected one of {', '.join(FORMATS)}")
    path = Path(out_path)
    if fmt == "keras" and path.suffix != ".keras":
        raise ExportError(f"a Keras model file must end in .keras, got {str(path)!r}")
    if fmt == "keras" and path.is_dir():
        raise ExportError(f"{str(path)!r} is a folder; give a file name such as {str(path / 'model.keras')!r}")
    if fmt == "savedmodel" and path.exists() and not path.is_dir():
        raise ExportError(f"{str(path)!r} is a file; a SavedModel is a folder: give a new folder name")
    folder = path.parent if str(path.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"cannot write {str(path)!r}: cannot create its folder ({e.strerror or e})") from None
    if not os.access(folder, os.W_OK):
        raise ExportError(f"cannot write {str(path)!r}: its folder is not writable")
    return path


def _replace_folder(tmp: Path, path: Path) -> None:
    """Move a finished folder into place; an older one at ``path`` is removed only after that. The
    moves happen together: a SIGTERM between them would leave the older folder moved aside."""
    old = None
    with sigterm_held():
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
            os.replace(path, old / path.name)
        os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _save_savedmodel(model, path: Path, replace: bool = True, final: bool = False) -> None:
    from ._tf import quiet_native_stderr

    staging = None
    try:
        with sigterm_held():  # the folder and its name together (see files.atomic_write)
            staging = Path(tempfile.mkdtemp(prefix=f".{short_name(path.name)}.", dir=path.parent))
        tmp = staging / "model"
        with quiet_native_stderr():
            model.export(str(tmp), format="tf_saved_model", verbose=False)
        with sigterm_held():  # published and settled together (see files.atomic_write)
            raise_received()  # a Ctrl-C that TensorFlow swallowed still publishes nothing
            if replace and path.exists():
                _replace_folder(tmp, path)
            else:
                publish(tmp, path, replace=False)
            if final:
                settle()
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def export_model(run: Any, out_path: str | os.PathLike, fmt: str = "keras", *, replace: bool = True,
                 final: bool = False) -> Path:
    """Write a run's network as a ``.keras`` file (``keras.models.load_model``) or a SavedModel
    folder (``tf.saved_model.load(path).serve(x)``). Written beside the target first and published
    in one step, so a failure leaves no half-written model and keeps an existing one; an existing
    one is replaced only if ``replace`` (else ``files.NameTaken``). ``final``: the export is the
    command's outcome, and its exit code settles as the model takes its name."""
    path = _target(out_path, fmt)
    model = run_model(run)
    if fmt == "keras":
        atomic_write(path, lambda tmp: model.save(str(tmp)), replace=replace, final=final)
    else:
        _save_savedmodel(model, path, replace, final)
    return path


def keras_inputs(symbols: Any, num_classes: int) -> np.ndarray:
    """[T] symbols -> [1, T, I0] float32, what the exported model takes."""
    from .inference import check_symbols, encode_inputs

    return encode_inputs(check_symbols(symbols, num_classes), num_classes)[None]
