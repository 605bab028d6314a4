"""The run file: the only contract between training and everything that reads results.

A ``.npz`` (NumPy's zip of arrays), written to a temporary file in the target's folder and renamed
into place, so a reader never sees half a file and a failed write never touches an existing one.
Read through ``load_run``, which checks the version and the keys and names what is wrong.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import Config, ConfigError, from_dict
from .files import atomic_write
from .inference import LEGACY_NAMES, weight_shapes

FORMAT_VERSION = 1
STATUSES = ("completed", "interrupted", "diverged")

_ARRAYS = {  # key: (dtype, number of dimensions)
    "loss": (np.float32, 1),
    "accuracy": (np.float32, 1),
    "epoch": (np.int32, 1),
    "epoch_seconds": (np.float64, 1),
    "snapshot_window": (np.int64, 1),
    "snapshot_inputs": (np.int32, 3),
    "snapshot_targets": (np.int32, 3),
    "snapshot_probs": (np.float32, 4),
}
_SCALARS = ("format_version", "config", "status", "message", "eval_accuracy", "eval_loss",
            "wall_seconds", "device", "versions", "epochs_completed", "created")
PARAM_PREFIX, OPT_PREFIX = "param_", "opt_"


class RunFileError(ValueError):
    """A run file that cannot be read; the message is one line meant for the user."""


@dataclass
class Run:
    """One training run: its settings, traces, snapshots, results and the state to resume it."""

    config: Config
    status: str = "completed"
    message: str = ""
    loss: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    accuracy: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    epoch: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    epoch_seconds: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    snapshot_window: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    snapshot_inputs: np.ndarray | None = None
    snapshot_targets: np.ndarray | None = None
    snapshot_probs: np.ndarray | None = None
    eval_accuracy: float = float("nan")
    eval_loss: float = float("nan")
    wall_seconds: float = 0.0
    device: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    epochs_completed: int = 0
    created: str = ""
    params: dict[str, np.ndarray] = field(default_factory=dict)
    opt_state: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        c = self.config
        empty = (0, c.batch_size, c.truncated_backprop_length)
        if self.snapshot_inputs is None:
            self.snapshot_inputs = np.zeros(empty, np.int32)
        if self.snapshot_targets is None:
            self.snapshot_targets = np.zeros(empty, np.int32)
        if self.snapshot_probs is None:
            self.snapshot_probs = np.zeros(empty + (c.num_classes,), np.float32)

    @property
    def final_loss(self) -> float:
        """Mean window loss of the last epoch trained (NaN before any)."""
        if self.loss.size == 0:
            return float("nan")
        last = self.epoch == self.epoch[-1]
        return float(np.mean(self.loss[last]))

    @property
    def snapshot_predictions(self) -> np.ndarray:
        """Predicted class of every snapshot step, [K, B, T]."""
        return np.argmax(self.snapshot_probs, axis=-1).astype(np.int32)

    def summary(self, output: str | None = None) -> dict[str, Any]:
        """What ``--json`` prints and sweeps collect: one flat, JSON-safe dict."""
        def num(v: float) -> float | None:
            return None if not np.isfinite(v) else float(v)

        return {
            "output": output,
            "status": self.status,
            "message": self.message,
            "eval_accuracy": num(self.eval_accuracy),
            "eval_loss": num(self.eval_loss),
            "final_loss": num(self.final_loss),
            "epochs_completed": int(self.epochs_completed),
            "windows": int(self.loss.size),
            "wall_seconds": round(float(self.wall_seconds), 4),
            "device": self.device,
            "config": self.config.to_dict(),
        }


def save_run(run: Run, path: str | os.PathLike) -> Path:
    """Write atomically: a temporary file beside the target, flushed, then renamed over it."""
    path = Path(path)
    arrays: dict[str, Any] = {
        "format_version": np.int64(FORMAT_VERSION),
        "config": np.str_(json.dumps(run.config.to_dict(), sort_keys=True)),
        "status": np.str_(run.status),
        "message": np.str_(run.message),
        "eval_accuracy": np.float64(run.eval_accuracy),
        "eval_loss": np.float64(run.eval_loss),
        "wall_seconds": np.float64(run.wall_seconds),
        "device": np.str_(run.device),
        "versions": np.str_(json.dumps(run.versions, sort_keys=True)),
        "epochs_completed": np.int64(run.epochs_completed),
        "created": np.str_(run.created),
    }
    for key, (dtype, _) in _ARRAYS.items():
        arrays[key] = np.asarray(getattr(run, key), dtype=dtype)
    arrays.update({PARAM_PREFIX + k: np.asarray(v) for k, v in run.params.items()})
    arrays.update({OPT_PREFIX + k: np.asarray(v) for k, v in run.opt_state.items()})
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    atomic_write(path, write)
    return path


def check_writable(path: str | os.PathLike) -> Path:
    """Fail early (before training) if the run file could not be written there.

    Creates the missing parent folders, as a user naming runs/x.npz would expect."""
    path = Path(path)
    if path.is_dir():
        raise RunFileError(f"output {str(path)!r} is a folder; give a file name such as {str(path / 'run.npz')!r}")
    folder = path.parent if str(path.parent) else Path(".")
    blocker = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise RunFileError(f"cannot write the output {str(path)!r}: {str(blocker)!r} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        reason = e.strerror or str(e)
        raise RunFileError(f"cannot write the output {str(path)!r}: cannot create its folder ({reason})") from None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=folder)
        try:
            os.close(fd)
        finally:
            os.unlink(tmp)
    except OSError as e:
        reason = e.strerror or str(e)
        raise RunFileError(f"cannot write the output {str(path)!r}: {reason}") from None
    return path


#: What kind of value each scalar must be (NumPy dtype kinds): a whole number, a number, a string.
_SCALAR_KINDS = {"format_version": "iu", "epochs_completed": "iu", "eval_accuracy": "fiu", "eval_loss": "fiu",
                 "wall_seconds": "fiu", "config": "U", "status": "U", "message": "U", "device": "U",
                 "versions": "U", "created": "U"}
_KIND_NAMES = {"iu": "a whole number", "fiu": "a number", "U": "a string"}


def _scalar(data: Any, key: str, path: Path) -> Any:
    value = data[key]
    if value.shape != ():
        raise RunFileError(f"{str(path)!r} is not a valid run file: {key!r} is not a single value")
    kinds = _SCALAR_KINDS[key]
    if value.dtype.kind not in kinds:
        raise RunFileError(f"{str(path)!r} is not a valid run file: {key!r} is not {_KIND_NAMES[kinds]}")
    return value.item()


def _weight_shapes(c: Config) -> dict[str, tuple[int, ...]]:
    """The shape of every param_* and opt_* array a run of this config holds (cells.py's layout)."""
    params = weight_shapes(cell=c.cell, num_layers=c.num_layers, num_classes=c.num_classes, state_size=c.state_size)
    opt = {"step": ()} | {f"slot{k}_{name}": shape for k in (1, 2) for name, shape in params.items()}
    return {PARAM_PREFIX + k: v for k, v in params.items()} | {OPT_PREFIX + k: v for k, v in opt.items()}


def _check_contents(where: str, config: Config, values: dict[str, Any], params: dict, opt_state: dict) -> None:
    """Shapes that must agree with each other and with the config; a file that passes can be plotted
    and resumed without surprises."""
    def bad(what: str) -> RunFileError:
        return RunFileError(f"{where} is not a valid run file: {what}")

    n = values["loss"].shape[0]
    if values["accuracy"].shape[0] != n or values["epoch"].shape[0] != n:
        raise bad("loss, accuracy and epoch differ in length")
    k = values["snapshot_window"].shape[0]
    c = config
    tail = {"snapshot_inputs": (c.batch_size, c.truncated_backprop_length),
            "snapshot_targets": (c.batch_size, c.truncated_backprop_length),
            "snapshot_probs": (c.batch_size, c.truncated_backprop_length, c.num_classes)}
    for key, shape in tail.items():
        if values[key].shape[0] != k:
            raise bad(f"{key} does not match snapshot_window")
        if values[key].shape[1:] != shape:
            raise bad(f"{key} has shape {values[key].shape}, expected (K, {', '.join(map(str, shape))}) for its config")
    if values["status"] not in STATUSES:
        raise RunFileError(f"{where} has an unknown status {values['status']!r}")
    done = values["epochs_completed"]
    if not 0 <= done <= c.epochs:
        raise bad(f"epochs_completed {done} is not between 0 and its config's epochs {c.epochs}")
    if values["status"] != "diverged" and n != done * c.windows_per_epoch:
        raise bad(f"{n} training windows recorded for {done} epochs of {c.windows_per_epoch}")
    if not isinstance(values["versions"], dict):
        raise bad("'versions' is not a JSON object")
    expected = _weight_shapes(c)
    stored = {PARAM_PREFIX + k: v for k, v in params.items()} | {OPT_PREFIX + k: v for k, v in opt_state.items()}
    if stored:  # absent in diverged runs, whose weights are not worth keeping
        for key in sorted(set(expected) | set(stored)):
            if key not in stored or key not in expected:
                raise bad(f"the weights are incomplete or unknown ({key!r})")
            arr = stored[key]
            if arr.dtype.kind != "f" or arr.shape != expected[key]:
                raise bad(f"{key!r} is {arr.dtype} {arr.shape}, expected float {expected[key]} for its config")


def load_run(path: str | os.PathLike) -> Run:
    """Read and check a run file; any problem is one ``RunFileError`` naming the file and the fault."""
    path = Path(path)
    where = repr(str(path))
    _check_is_file(path, where)
    config, values, params, opt_state = _read(path, where)
    _check_contents(where, config, values, params, opt_state)
    return Run(config=config, params=params, opt_state=opt_state, **values)


def _check_is_file(path: Path, where: str) -> None:
    if not path.exists():
        raise RunFileError(f"run file {where} does not exist")
    if path.is_dir():
        raise RunFileError(f"run file {where} is a folder, not a file")


def _read(path: Path, where: str) -> tuple[Config, dict[str, Any], dict, dict]:
    """Open the archive and read everything in it; a fault of the file, not of its contents, becomes
    one ``RunFileError`` too."""
    try:
        with open(path, "rb") as f:  # opened first, so that a file we may not read says so
            is_zip = zipfile.is_zipfile(f)
        if not is_zip:  # else np.load reads it as a pickle and says so, confusingly
            raise RunFileError(f"{where} is not a run file: not an .npz (zip) archive, or a truncated one")
        with np.load(path, allow_pickle=False) as data:
            return _read_archive(data, path, where)
    except RunFileError:
        raise
    except (zipfile.BadZipFile, EOFError, ValueError, OSError, KeyError, json.JSONDecodeError) as e:
        raise _unreadable(e, where) from None


def _unreadable(e: Exception, where: str) -> RunFileError:
    if isinstance(e, PermissionError):
        return RunFileError(f"run file {where} cannot be read: permission denied")
    detail = str(e).splitlines()[0] if str(e) else type(e).__name__
    if "allow_pickle" in detail:
        detail = "it holds pickled Python objects, which echo-rnn never writes and will not load"
    return RunFileError(f"{where} is not a readable run file ({detail})")


def _read_archive(data: Any, path: Path, where: str) -> tuple[Config, dict[str, Any], dict, dict]:
    """The config, the other values and the weights of an open .npz, each checked for its kind."""
    keys = set(data.files)
    _check_version(data, keys, path, where)
    missing = [k for k in (*_SCALARS, *_ARRAYS) if k not in keys]
    if missing:
        raise RunFileError(f"{where} is not a complete run file: missing {', '.join(missing)}")
    try:
        config = from_dict(json.loads(_scalar(data, "config", path)))
    except (json.JSONDecodeError, TypeError, ConfigError) as e:
        raise RunFileError(f"{where} has an invalid config: {e}") from None
    values: dict[str, Any] = {k: _scalar(data, k, path) for k in _SCALARS if k not in ("format_version", "config")}
    values["versions"] = json.loads(values["versions"])
    values |= {key: _array(data, key, where) for key in _ARRAYS}
    params = _weights(data, keys, PARAM_PREFIX, where)
    opt_state = _weights(data, keys, OPT_PREFIX, where)
    return config, values, params, opt_state


def _weights(data: Any, keys: set[str], prefix: str, where: str) -> dict[str, Any]:
    """The arrays under ``prefix``, by their names now (old names mapped, see ``_renamed``)."""
    out: dict[str, Any] = {}
    for key in sorted(k for k in keys if k.startswith(prefix)):
        name = _renamed(key[len(prefix):])
        if name in out:
            raise RunFileError(f"{where} is not a valid run file: it holds {prefix + name!r} under its old "
                               f"name and its new one")
        out[name] = data[key]
    return out


def _renamed(key: str) -> str:
    """A weight's (or its optimizer slot's) name in files written before LSTM/GRU and layers
    (``Wx``, ``slot1_Ws``, ...) as it is named now (``kernel_0``, ``slot1_recurrent_0``, ...)."""
    slot, _, name = key.partition("_") if key.startswith("slot") else ("", "", key)
    name = LEGACY_NAMES.get(name, name)
    return f"{slot}_{name}" if slot else name


def _check_version(data: Any, keys: set[str], path: Path, where: str) -> None:
    if "format_version" not in keys:
        raise RunFileError(f"{where} is a zip (.npz) file but not an echo-rnn run file (no 'format_version')")
    version = int(_scalar(data, "format_version", path))
    if version > FORMAT_VERSION:
        raise RunFileError(
            f"{where} has run-file format {version}, newer than this echo-rnn reads "
            f"({FORMAT_VERSION}); upgrade echo-rnn"
        )
    if version < 1:
        raise RunFileError(f"{where} has an invalid format version {version}")


def _array(data: Any, key: str, where: str) -> np.ndarray:
    """One of the traces or snapshots, with its number of dimensions checked and its dtype made ours."""
    dtype, ndim = _ARRAYS[key]
    arr = data[key]
    if arr.ndim != ndim:
        raise RunFileError(f"{where} is not a valid run file: {key!r} has {arr.ndim} dimensions, expected {ndim}")
    if arr.dtype.kind not in ("iu" if np.dtype(dtype).kind in "iu" else "fiu"):
        raise RunFileError(f"{where} is not a valid run file: {key!r} holds {arr.dtype}, not numbers")
    return arr.astype(dtype, copy=False)
