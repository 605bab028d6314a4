"""The run file: the only contract between training and everything that reads results.

A ``.npz`` (NumPy's zip of arrays), written to a temporary file in the target's folder and renamed
into place, so a reader never sees half a file and a failed write never touches an existing one.
Read through ``load_run``, which reads the archive through ``safe_npz`` (a crafted file is refused
before any large allocation), checks the version and the keys and names what is wrong.

Format 2 keeps the file bounded however long the run (``trim``): the mean loss and accuracy of
every epoch, every window and snapshot of the first and the last epoch, and of evenly spaced epochs
between them as many as ``TRACE_BUDGET`` bytes hold. Format 1 files (every window) still load.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import CELL_INITS, COMPILED_MATH, Config, ConfigError, from_dict
from .files import atomic_write
from .guards import GuardError
from .inference import LEGACY_NAMES, weight_shapes
from .memory_profile import lags_for, peak
from .safe_npz import NpzError, parse_config_json, read_npz

FORMAT_VERSION = 2
#: Bytes of windows and snapshots a run file keeps at most (beyond its first and last epoch, which
#: are always kept whole); the per-epoch arrays add 24 bytes an epoch.
TRACE_BUDGET = 12 * 2**20
STATUSES = ("completed", "interrupted", "diverged")

_ARRAYS = {  # key: (dtype, number of dimensions)
    "loss": (np.float32, 1),
    "accuracy": (np.float32, 1),
    "epoch": (np.int32, 1),
    "epoch_seconds": (np.float64, 1),
    "epoch_loss": (np.float64, 1),
    "epoch_accuracy": (np.float64, 1),
    "snapshot_window": (np.int64, 1),
    "snapshot_inputs": (np.int32, 3),
    "snapshot_targets": (np.int32, 3),
    "snapshot_probs": (np.float32, 4),
    "memory_epoch": (np.int32, 1),
    "memory_profile": (np.float32, 2),
    "memory_reach": (np.float32, 3),
}
#: Arrays a file may lack: it was written before they were recorded (they then load empty).
_OPTIONAL_ARRAYS = ("memory_epoch", "memory_profile", "memory_reach")
_SCALARS = ("format_version", "config", "status", "message", "eval_accuracy", "eval_loss",
            "wall_seconds", "device", "versions", "epochs_completed", "created")
PARAM_PREFIX, OPT_PREFIX = "param_", "opt_"


class RunFileError(ValueError):
    """A run file that cannot be read; the message is one line meant for the user."""


def epoch_runs(epoch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The epochs present in an ordered ``epoch`` trace, where each starts and how many windows it
    has; without a sort or an index array as long as the trace (it may be tens of millions)."""
    starts = np.concatenate([[0], np.flatnonzero(epoch[1:] != epoch[:-1]) + 1]).astype(np.int64)
    return epoch[starts], starts, np.diff(np.append(starts, epoch.size))


def _segment_means(values: np.ndarray, starts: np.ndarray, counts: np.ndarray, chunk: int = 1 << 22) -> np.ndarray:
    """The float64 mean of each segment; a few million windows at a time, so a long run's trace is
    never copied whole. Each segment is summed by itself, so chunking does not change a bit."""
    sums = np.empty(starts.size)
    i = 0
    while i < starts.size:
        j = max(i + 1, int(np.searchsorted(starts, starts[i] + chunk, side="right")))
        hi = int(starts[j]) if j < starts.size else values.size
        block = values[int(starts[i]):hi].astype(np.float64)
        sums[i:j] = np.add.reduceat(block, starts[i:j] - starts[i])
        i = j
    return sums / counts


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
    # Mean loss and accuracy of each epoch, as read from a file: the windows of an epoch that a
    # bounded file left out live on only here. Empty for a run fresh from training (see epoch_means).
    epoch_loss: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    epoch_accuracy: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
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
    #: The initial weights' scheme actually drawn (``config.init`` 'auto' resolved when trained).
    init_used: str = ""
    #: The mode its programs compiled in (``config.math`` 'auto' resolved when trained).
    math_used: str = ""
    # What the network remembers (``memory_profile``), recorded through training: the epochs done
    # at each record [P], the memory profile [P, L + 1] and the gradient's reach [P, layers, L + 1].
    memory_epoch: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    memory_profile: np.ndarray | None = None
    memory_reach: np.ndarray | None = None

    def __post_init__(self) -> None:
        c = self.config
        if not self.init_used:
            self.init_used = c.init_scheme
        if not self.math_used:
            self.math_used = c.math_used
        empty = (0, c.batch_size, c.truncated_backprop_length)
        if self.snapshot_inputs is None:
            self.snapshot_inputs = np.zeros(empty, np.int32)
        if self.snapshot_targets is None:
            self.snapshot_targets = np.zeros(empty, np.int32)
        if self.snapshot_probs is None:
            self.snapshot_probs = np.zeros(empty + (c.num_classes,), np.float32)
        lags = lags_for(c) + 1
        if self.memory_profile is None:
            self.memory_profile = np.zeros((0, lags), np.float32)
        if self.memory_reach is None:
            self.memory_reach = np.zeros((0, c.num_layers, lags), np.float32)

    @property
    def memory_peak(self) -> tuple[int | None, float | None]:
        """The lag the network rests on most at its last record, and that lag's share of the
        profile; (None, None) without records, for a diverged run, or where it rests on no input."""
        if self.status == "diverged" or not self.memory_epoch.size:
            return None, None
        return peak(self.memory_profile[-1])

    @property
    def final_loss(self) -> float:
        """Mean window loss of the last epoch trained (NaN before any)."""
        if self.loss.size == 0:
            return float("nan")
        last = self.epoch == self.epoch[-1]
        return float(np.mean(self.loss[last]))

    @property
    def epochs_traced(self) -> int:
        """Epochs with windows in the traces: those completed, and a diverged run's last, partial one."""
        return max(int(self.epoch[-1]) + 1 if self.epoch.size else 0, self.epoch_loss.size)

    @property
    def windows_trained(self) -> int:
        """Training windows run, whether or not the file kept them (the loss axis's extent)."""
        if self.epoch.size == 0:
            return 0
        last = int(self.epoch[-1])
        return last * self.config.windows_per_epoch + self.epoch.size - int(np.searchsorted(self.epoch, last))

    @property
    def window(self) -> np.ndarray:
        """The global index of every window kept in the traces (kept epochs are whole)."""
        n = self.epoch.size
        first_of_epoch = np.searchsorted(self.epoch, self.epoch, side="left")
        return self.epoch.astype(np.int64) * self.config.windows_per_epoch + (np.arange(n) - first_of_epoch)

    def epoch_means(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean loss and accuracy of every epoch traced (float64): from its windows where they are
        kept, else as the file recorded them. Computed the same way on every path, so a bounded
        file resumed and saved again holds the numbers a straight run's file holds."""
        n = self.epochs_traced
        loss, acc = np.full(n, np.nan), np.full(n, np.nan)
        loss[: self.epoch_loss.size] = self.epoch_loss
        acc[: self.epoch_accuracy.size] = self.epoch_accuracy
        if self.epoch.size:
            present, starts, counts = epoch_runs(self.epoch)
            loss[present] = _segment_means(self.loss, starts, counts)
            acc[present] = _segment_means(self.accuracy, starts, counts)
        return loss, acc

    def loss_points(self) -> tuple[np.ndarray, np.ndarray]:
        """(window, loss) to draw: every kept window, and for an epoch whose windows the file left
        out, its mean loss at its middle window. A run with every window: (0..n-1, loss)."""
        x, y = self.window, self.loss.astype(np.float64)
        means, _ = self.epoch_means()
        missing = np.setdiff1d(np.arange(means.size), self.epoch)
        if missing.size == 0:
            return x, y
        W = self.config.windows_per_epoch
        x = np.concatenate([x, missing * W + W // 2])
        y = np.concatenate([y, means[missing]])
        order = np.argsort(x, kind="stable")
        return x[order], y[order]

    @property
    def snapshot_predictions(self) -> np.ndarray:
        """Predicted class of every snapshot step, [K, B, T]."""
        return np.argmax(self.snapshot_probs, axis=-1).astype(np.int32)

    def summary(self, output: str | None = None) -> dict[str, Any]:
        """What ``--json`` prints and sweeps collect: one flat, JSON-safe dict."""
        def num(v: float) -> float | None:
            return None if not np.isfinite(v) else float(v)

        lag, share = self.memory_peak

        return {
            "output": output,
            "status": self.status,
            "message": self.message,
            "eval_accuracy": num(self.eval_accuracy),
            "eval_loss": num(self.eval_loss),
            "final_loss": num(self.final_loss),
            "epochs_completed": int(self.epochs_completed),
            "windows": self.windows_trained,
            "wall_seconds": round(float(self.wall_seconds), 4),
            "device": self.device,
            "init_used": self.init_used,
            "math_used": self.math_used,
            "memory_lag": lag,
            "memory_share": None if share is None else round(share, 4),
            "config": self.config.to_dict(),
        }


def _bytes_per_epoch(c: Config) -> int:
    """What one epoch's windows (loss, accuracy, epoch) and snapshots take in a run file."""
    snapshots = len(range(0, c.windows_per_epoch, c.snapshot_every))
    per_snapshot = 8 + c.batch_size * c.truncated_backprop_length * (4 + 4 + 4 * c.num_classes)
    return 12 * c.windows_per_epoch + snapshots * per_snapshot


def kept_epochs(epochs: int, config: Config, budget: int | None = None) -> np.ndarray:
    """Which of ``epochs`` epochs a file keeps whole (a mask): the first, the last, and the
    multiples of the smallest power-of-two stride whose epochs fit the budget.

    Powers of two nest: of its first M epochs, a run of N > M epochs keeps only epochs that a file
    of M epochs kept too, so a resumed file, trimmed again, holds what a straight run's file holds."""
    keep = np.zeros(epochs, bool)
    if epochs == 0:
        return keep
    middle = (TRACE_BUDGET if budget is None else budget) // _bytes_per_epoch(config) - 2
    if middle > 0:
        stride = 1
        while math.ceil(epochs / stride) > middle:
            stride *= 2
        keep[::stride] = True
    keep[0] = keep[-1] = True
    return keep


def trim(run: Run) -> dict[str, np.ndarray]:
    """The traces a file of format 2 holds: the per-epoch means of every epoch, and the windows and
    snapshots of the epochs ``kept_epochs`` picks. Depends only on the traces, so trimming twice
    changes nothing."""
    loss_means, acc_means = run.epoch_means()
    keep = kept_epochs(loss_means.size, run.config)
    windows = np.zeros(0, bool)
    if run.epoch.size:
        present, _, counts = epoch_runs(run.epoch)
        windows = np.repeat(keep[present], counts)
    W = max(run.config.windows_per_epoch, 1)
    snap_epoch = np.minimum(run.snapshot_window // W, max(keep.size - 1, 0))
    snaps = keep[snap_epoch] if keep.size else np.zeros(run.snapshot_window.size, bool)
    out = {"epoch_loss": loss_means, "epoch_accuracy": acc_means, "epoch_seconds": run.epoch_seconds}
    out |= {k: getattr(run, k)[windows] for k in ("loss", "accuracy", "epoch")}
    out |= {k: getattr(run, k)[snaps] for k in ("snapshot_window", "snapshot_inputs", "snapshot_targets",
                                                 "snapshot_probs")}
    # The records are few (about two a doubling of the epochs) and kept whole.
    out |= {k: getattr(run, k) for k in _OPTIONAL_ARRAYS}
    return out


def save_run(run: Run, path: str | os.PathLike, *, replace: bool = True) -> Path:
    """Write atomically: a temporary file beside the target, flushed, then published in one step
    (``files.publish``: over an existing file only if ``replace``, else ``NameTaken`` if the name
    is taken). The traces are bounded first (``trim``)."""
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
        "init_used": np.str_(run.init_used),
        "math_used": np.str_(run.math_used),
    }
    for key, value in trim(run).items():
        arrays[key] = np.asarray(value, dtype=_ARRAYS[key][0])
    arrays.update({PARAM_PREFIX + k: np.asarray(v) for k, v in run.params.items()})
    arrays.update({OPT_PREFIX + k: np.asarray(v) for k, v in run.opt_state.items()})
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    atomic_write(path, write, replace=replace)
    return path


#: What kind of value each scalar must be (NumPy dtype kinds): a whole number, a number, a string.
_SCALAR_KINDS = {"format_version": "iu", "epochs_completed": "iu", "eval_accuracy": "fiu", "eval_loss": "fiu",
                 "wall_seconds": "fiu", "config": "U", "status": "U", "message": "U", "device": "U",
                 "versions": "U", "created": "U", "init_used": "U", "math_used": "U"}
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
    _check_traces(values, c, bad)
    _check_memory(values, c, bad)
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


def _check_traces(values: dict[str, Any], c: Config, bad) -> None:
    """Kept epochs are whole, in order, and end at the last epoch done (format 1 keeps them all);
    the per-epoch means, where the file has them, cover every epoch."""
    epoch, done, W = values["epoch"], values["epochs_completed"], c.windows_per_epoch
    diverged = values["status"] == "diverged"
    wrong = bad(f"{epoch.size} training windows recorded for {done} epochs of {W}")
    if epoch.size and (np.any(np.diff(epoch) < 0) or epoch[0] != 0 or epoch[-1] > done - (0 if diverged else 1)):
        raise wrong
    present, counts = np.unique(epoch, return_counts=True)
    whole = counts[:-1] if diverged else counts
    last = int(present[-1]) + 1 if present.size else 0
    if np.any(whole != W) or (not diverged and last != done):
        raise wrong
    means = values.get("epoch_loss")
    if means is not None:
        traced = max(last, done)
        if means.size != traced or values["epoch_accuracy"].size != traced:
            raise bad(f"epoch_loss and epoch_accuracy must hold one mean for each of the {traced} epochs")


def _check_memory(values: dict[str, Any], c: Config, bad) -> None:
    """The memory records, where the file has them: one epoch count per record, rising, within the
    epochs done; profiles of lags_for(config) + 1 changes in probability (0 to 1) and reaches of
    one row per layer, finite and not negative."""
    if "memory_epoch" not in values:
        return
    epochs, profile, reach = values["memory_epoch"], values["memory_profile"], values["memory_reach"]
    lags = lags_for(c) + 1
    if profile.shape != (epochs.size, lags) or reach.shape != (epochs.size, c.num_layers, lags):
        raise bad(f"memory_profile {profile.shape} and memory_reach {reach.shape} do not fit {epochs.size} records "
                  f"of {lags} lags and {c.num_layers} layers")
    if epochs.size and (np.any(np.diff(epochs) <= 0) or epochs[0] < 0 or epochs[-1] > values["epochs_completed"]):
        raise bad("memory_epoch is not a rising list of epochs within those done")
    if not (np.all(np.isfinite(profile)) and np.all((profile >= 0) & (profile <= 1))
            and np.all(np.isfinite(reach)) and np.all(reach >= 0)):
        raise bad("memory_profile must hold changes in probability (0 to 1) and memory_reach finite norms")


def load_run(path: str | os.PathLike) -> Run:
    """Read and check a run file; any problem is one ``RunFileError`` naming the file and the fault.

    The archive is read through ``safe_npz``: a FIFO or device is refused without blocking, and a
    crafted header or config is refused before any large allocation or deep recursion."""
    path = Path(path)
    where = repr(str(path))
    try:
        data = read_npz(path, what="run file")
    except GuardError as e:  # NpzError, and open_regular's refusals (a FIFO, a device, a folder)
        raise RunFileError(str(e)) from None
    config, values, params, opt_state = _read_archive(data, path, where)
    _check_contents(where, config, values, params, opt_state)
    return Run(config=config, params=params, opt_state=opt_state, **values)


def _json_object(data: dict, key: str, path: Path, what: str, where: str) -> dict:
    try:
        return parse_config_json(_scalar(data, key, path), what=what)
    except NpzError as e:
        raise RunFileError(f"{where} has an invalid {what}: {e}") from None


def _read_archive(data: dict[str, np.ndarray], path: Path, where: str) -> tuple[Config, dict[str, Any], dict, dict]:
    """The config, the other values and the weights of the archive's arrays, each checked for its kind."""
    keys = set(data)
    version = _check_version(data, keys, path, where)
    config_dict = _json_object(data, "config", path, "config", where) if "config" in keys else None
    needed = [*_SCALARS, *(k for k in _ARRAYS
                           if (version >= 2 or k not in _PER_EPOCH_MEANS) and k not in _OPTIONAL_ARRAYS)]
    missing = [k for k in needed if k not in keys]
    if missing:
        raise RunFileError(f"{where} is not a complete run file: missing {', '.join(missing)}")
    try:
        config = from_dict(config_dict)
    except (TypeError, ConfigError) as e:
        raise RunFileError(f"{where} has an invalid config: {e}") from None
    values: dict[str, Any] = {k: _scalar(data, k, path) for k in _SCALARS if k not in ("format_version", "config")}
    values["versions"] = _json_object(data, "versions", path, "versions", where)
    values["init_used"] = _init_used(data, keys, config, path, where)
    values["math_used"] = _math_used(data, keys, config, path, where)
    values |= {key: _array(data, key, where) for key in _ARRAYS if key in keys}
    present = [k for k in _OPTIONAL_ARRAYS if k in keys]
    if present and len(present) != len(_OPTIONAL_ARRAYS):
        raise RunFileError(f"{where} is not a complete run file: it has {', '.join(present)} but not "
                           + ", ".join(k for k in _OPTIONAL_ARRAYS if k not in keys))
    params = _weights(data, keys, PARAM_PREFIX, where)
    opt_state = _weights(data, keys, OPT_PREFIX, where)
    return config, values, params, opt_state


def _init_used(data: Any, keys: set[str], config: Config, path: Path, where: str) -> str:
    """The initial weights' scheme the run drew. Files from before it was recorded say 'auto' for
    what was then the cell's first scheme (the tutorial's for every rnn, whatever its size)."""
    if "init_used" not in keys:
        return config.init if config.init != "auto" else CELL_INITS[config.cell][0]
    used = _scalar(data, "init_used", path)
    if used not in CELL_INITS[config.cell] or config.init not in ("auto", used):
        raise RunFileError(f"{where} is not a valid run file: init_used {used!r} does not fit its config "
                           f"(init {config.init!r}, cell {config.cell!r})")
    return used


def _math_used(data: Any, keys: set[str], config: Config, path: Path, where: str) -> str:
    """The mode the run's programs compiled in. Files from before it was recorded trained fast only
    where their config says so (there was no 'auto' then)."""
    if "math_used" not in keys:
        return "fast" if config.math == "fast" else "exact"
    used = _scalar(data, "math_used", path)
    if used not in COMPILED_MATH or config.math not in ("auto", used):
        raise RunFileError(f"{where} is not a valid run file: math_used {used!r} does not fit its config "
                           f"(math {config.math!r})")
    return used


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


#: Format 2's per-epoch means; a format-1 file has every window, so its means follow from them.
_PER_EPOCH_MEANS = ("epoch_loss", "epoch_accuracy")


def _check_version(data: dict, keys: set[str], path: Path, where: str) -> int:
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
    return version


def _array(data: dict, key: str, where: str) -> np.ndarray:
    """One of the traces or snapshots, with its number of dimensions checked and its dtype made ours."""
    dtype, ndim = _ARRAYS[key]
    arr = data[key]
    if arr.ndim != ndim:
        raise RunFileError(f"{where} is not a valid run file: {key!r} has {arr.ndim} dimensions, expected {ndim}")
    if arr.dtype.kind not in ("iu" if np.dtype(dtype).kind in "iu" else "fiu"):
        raise RunFileError(f"{where} is not a valid run file: {key!r} holds {arr.dtype}, not numbers")
    if np.dtype(dtype).kind in "iu" and arr.size and arr.dtype != dtype:
        # A cast would wrap what does not fit (2**32 + 10 read as 10): refuse it instead.
        bounds = np.iinfo(dtype)
        low, high = int(arr.min()), int(arr.max())
        if low < bounds.min or high > bounds.max:
            bad = high if high > bounds.max else low
            raise RunFileError(f"{where} is not a valid run file: {key!r} holds {bad}, beyond the "
                               f"{bounds.min:,} to {bounds.max:,} a run file's {key} can be")
    return arr.astype(dtype, copy=False)
