"""Training and evaluation: epochs of compiled windows, progress through a callback, a Run at the end.

Knows nothing of click or rich. Several configs that share shapes train together as one compiled
program (``train_many``); each gets its own Run, the same as training it alone would give.
"""

from __future__ import annotations

import datetime as _dt
import platform
import time
import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ._version import __version__
from .config import program_key, PER_MODEL_KEYS, RESUMABLE_CHANGES, Config, ConfigError, config_warnings
from .data import INIT_STREAM, epoch_data, eval_data, eval_weights, rng_for
from .runs import Run


class DeviceError(RuntimeError):
    """The device asked for is not available on this machine."""


@dataclass(frozen=True)
class EpochSamples:
    """The first model's traces of the epoch just trained, for live figures (arrays already at hand)."""

    window_offset: int           # global index of the epoch's first window
    loss: np.ndarray             # [W] each window's mean loss
    snapshot_window: np.ndarray  # [S] global window index of each snapshot
    inputs: np.ndarray           # [S, B, T]
    targets: np.ndarray          # [S, B, T]
    probs: np.ndarray            # [S, B, T, C]


@dataclass(frozen=True)
class EpochReport:
    """What the progress callback gets after every epoch (means over the models trained together)."""

    epoch: int              # epochs done so far, resumed ones included
    epochs: int             # epochs asked for in all
    windows_done: int       # windows trained in this call
    windows_total: int      # windows this call will train if not stopped
    loss: float             # mean window loss of this epoch
    accuracy: float         # mean window accuracy of this epoch
    windows_per_second: float  # in this epoch (the first one includes compiling)
    elapsed: float          # seconds since this call started
    samples: EpochSamples | None = None  # the first model's traces of this epoch (None once it diverged)


Callback = Callable[[EpochReport], None]



def resolve_device(name: str) -> str:
    """'auto' | 'cpu' | 'gpu' -> a TensorFlow device name."""
    from ._tf import tf

    gpus = tf.config.list_physical_devices("GPU")
    if name == "gpu" and not gpus:
        raise DeviceError("--device gpu: TensorFlow sees no GPU on this machine (use --device cpu or auto)")
    return "/GPU:0" if name in ("gpu", "auto") and gpus else "/CPU:0"


def library_versions() -> dict[str, str]:
    from ._tf import tf

    return {"python": platform.python_version(), "numpy": np.__version__,
            "tensorflow": tf.__version__, "echo_rnn_cli": __version__}


def check_resume(run: Run, config: Config) -> None:
    """Refuse a resume that would not continue the same training."""
    if run.status == "diverged":
        raise ConfigError("cannot resume a diverged run: its weights are not finite; start a new run")
    old, new = run.config.to_dict(), config.to_dict()
    changed = [k for k in old if old[k] != new[k] and k not in RESUMABLE_CHANGES]
    if changed:
        diffs = ", ".join(f"{k} {old[k]!r} -> {new[k]!r}" for k in changed)
        raise ConfigError(f"cannot resume with changed settings ({diffs}); only epochs and device may change")
    if config.epochs <= run.epochs_completed:
        raise ConfigError(
            f"--epochs {config.epochs}: the run already has {run.epochs_completed} epochs; "
            f"ask for more to continue it"
        )
    if not run.params or not run.opt_state:
        raise ConfigError("this run file holds no weights to resume from")
    if not all(np.isfinite(v).all() for v in (*run.params.values(), *run.opt_state.values())):
        raise ConfigError("cannot resume: the run's weights are not finite (it diverged); start a new run")


def train(config: Config, *, on_epoch: Callback | None = None,
          should_stop: Callable[[], bool] | None = None, resume: Run | None = None,
          warn: Callable[[str], None] | None = None) -> Run:
    """Train one model (the tutorial's Echo-RNN) and evaluate it; returns its Run."""
    return train_many([config], on_epoch=on_epoch, should_stop=should_stop,
                      resumes=None if resume is None else [resume], warn=warn)[0]


def train_many(configs: Sequence[Config], *, on_epoch: Callback | None = None,
               should_stop: Callable[[], bool] | None = None,
               resumes: Sequence[Run] | None = None,
               warn: Callable[[str], None] | None = None) -> list[Run]:
    """Train models that share shapes together, one compiled program for all; a Run for each.

    Models may differ only in ``config.PER_MODEL_KEYS`` (seed, learning_rate, echo_step, init). ``should_stop`` is polled between
    epochs: when it turns true the runs end with status 'interrupted'. A model whose loss turns
    non-finite stops with status 'diverged' (the others go on).
    """
    from ._tf import tf
    from .model import PARAM_NAMES, Params, init_params
    from .optim import OptState, initial_slot_values
    from .steps import BackgroundCompile, compiled_evaluate, compiled_train_epoch

    configs = list(configs)
    if not configs:
        raise ValueError("train_many needs at least one config")
    if len({program_key(c) for c in configs}) != 1:
        raise ConfigError("models trained together must differ only in " + ", ".join(sorted(PER_MODEL_KEYS)))
    warn = warn or (lambda m: warnings.warn(m, stacklevel=3))
    for c in configs:
        for message in config_warnings(c):
            warn(message)
    if resumes is not None:
        for run, c in zip(resumes, configs, strict=True):
            check_resume(run, c)
    c0 = configs[0]
    device = resolve_device(c0.device)
    models = len(configs)
    start = time.perf_counter()

    # Weights and optimizer state: fresh from each seed, or from the runs being resumed.
    if resumes is None:
        per_model = [init_params(rng_for(c.seed, INIT_STREAM), c.state_size, c.num_classes, c.init) for c in configs]
        s1, s2 = initial_slot_values(c0.optimizer)
        slots = [{f"slot1_{n}": np.full_like(p[n], s1) for n in PARAM_NAMES}
                 | {f"slot2_{n}": np.full_like(p[n], s2) for n in PARAM_NAMES}
                 | {"step": np.float32(0)} for p in per_model]
        first_epoch = 0
    else:
        per_model = [r.params for r in resumes]
        slots = [r.opt_state for r in resumes]
        first_epoch = resumes[0].epochs_completed
        if any(r.epochs_completed != first_epoch for r in resumes):
            raise ConfigError("runs resumed together must have the same number of epochs done")

    def stacked(dicts, key):
        return tf.constant(np.stack([np.asarray(d[key], np.float32) for d in dicts]))

    with tf.device(device):
        params = Params(*[stacked(per_model, n) for n in PARAM_NAMES])
        opt = OptState(tf.constant(float(slots[0]["step"]), tf.float32),
                       tuple(stacked(slots, f"slot1_{n}") for n in PARAM_NAMES),
                       tuple(stacked(slots, f"slot2_{n}") for n in PARAM_NAMES))
        lr = tf.constant([c.learning_rate for c in configs], tf.float32)
        train_epoch = compiled_train_epoch(c0.optimizer, c0.num_classes, c0.snapshot_every)
        evaluate = compiled_evaluate(c0.num_classes)
        warmup = eval_args = None

        n_win = c0.windows_per_epoch
        snap_idx = np.arange(0, n_win, c0.snapshot_every)
        traces = [_Trace() for _ in configs]
        alive = np.ones(models, bool)
        epochs_total = c0.epochs
        windows_total = (epochs_total - first_epoch) * n_win
        done = 0
        epoch = first_epoch
        for epoch in range(first_epoch, epochs_total):
            if should_stop is not None and should_stop():
                break
            t0 = time.perf_counter()
            batches = [epoch_data(c, epoch) for c in configs]
            xs = tf.constant(np.stack([b[0] for b in batches], axis=1))
            ys = tf.constant(np.stack([b[1] for b in batches], axis=1))
            params, opt, losses, accs, probs = train_epoch(params, opt, xs, ys, lr)
            if warmup is None and epoch + 1 < epochs_total:
                # Compile the evaluation on the other core while the remaining epochs train.
                eval_args = eval_inputs(configs)
                warmup = BackgroundCompile(evaluate, device, params, *eval_args)
            losses, accs, probs = losses.numpy(), accs.numpy(), probs.numpy()
            seconds = time.perf_counter() - t0
            for m, trace in enumerate(traces):
                if not alive[m]:
                    continue
                x_m, y_m = batches[m]
                trace.add_epoch(epoch, epoch * n_win, losses[:, m], accs[:, m], seconds,
                                snap_idx, x_m[snap_idx], y_m[snap_idx], probs[:, m])
                if not trace.finite:
                    alive[m] = False
            done += n_win
            if on_epoch is not None:
                elapsed = time.perf_counter() - start
                on_epoch(EpochReport(epoch + 1, epochs_total, done, windows_total,
                                     float(np.nanmean(losses)), float(np.nanmean(accs)),
                                     n_win / max(seconds, 1e-9), elapsed,
                                     traces[0].latest(epoch * n_win) if alive[0] else None))
            if not alive.any():
                break
        stopped_early = any(t.epochs_done < epochs_total - first_epoch for t, a in zip(traces, alive) if a)

        eval_loss = eval_acc = np.full(models, np.nan)
        if warmup is not None:
            warmup.wait()
        if alive.any() and done:  # nothing trained (stopped at once): nothing new to evaluate
            ev_loss, ev_acc = evaluate(params, *(eval_args or eval_inputs(configs)))
            eval_loss, eval_acc = ev_loss.numpy(), ev_acc.numpy()

        final_params = {n: getattr(params, n).numpy() for n in PARAM_NAMES}
        final_opt = {"step": opt.step.numpy()}
        final_opt |= {f"slot1_{n}": s.numpy() for n, s in zip(PARAM_NAMES, opt.slot1)}
        final_opt |= {f"slot2_{n}": s.numpy() for n, s in zip(PARAM_NAMES, opt.slot2)}

    wall = time.perf_counter() - start
    versions = library_versions()
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    runs = []
    for m, (c, trace) in enumerate(zip(configs, traces)):
        prev = resumes[m] if resumes is not None else None
        if not alive[m]:
            status = "diverged"
            message = (f"the loss became non-finite at window {trace.first_bad} (epoch {trace.bad_epoch + 1}): "
                       f"learning_rate {c.learning_rate} is likely too high for {c.optimizer}; try a smaller one")
        elif stopped_early:
            status, message = "interrupted", f"stopped after {trace.epochs_done + first_epoch} of {c.epochs} epochs"
        else:
            status, message = "completed", ""
        run = trace.to_run(c, prev)
        run.status, run.message = status, message
        run.eval_loss, run.eval_accuracy = float(eval_loss[m]), float(eval_acc[m])
        if prev is not None and not done:
            run.eval_loss, run.eval_accuracy = prev.eval_loss, prev.eval_accuracy
        run.wall_seconds = wall + (prev.wall_seconds if prev else 0.0)
        run.device = device
        run.versions = versions
        run.created = created
        run.epochs_completed = first_epoch + trace.epochs_done
        if alive[m]:
            run.params = {n: v[m] for n, v in final_params.items()}
            run.opt_state = {k: (v[m] if np.ndim(v) else v) for k, v in final_opt.items()}
        runs.append(run)
    return runs


class _Trace:
    """Per-model traces gathered epoch by epoch."""

    def __init__(self) -> None:
        self.loss, self.acc, self.epoch, self.seconds = [], [], [], []
        self.snap_window, self.snap_x, self.snap_y, self.snap_p = [], [], [], []
        self.finite = True
        self.first_bad = -1
        self.bad_epoch = -1

    @property
    def epochs_done(self) -> int:
        return len(self.seconds)

    def latest(self, offset: int) -> EpochSamples:
        return EpochSamples(offset, self.loss[-1], self.snap_window[-1], self.snap_x[-1], self.snap_y[-1],
                            self.snap_p[-1])

    def add_epoch(self, epoch, offset, loss, acc, seconds, snap_idx, x, y, p) -> None:
        bad = np.flatnonzero(~np.isfinite(loss))
        if bad.size:  # keep the trace up to and including the first non-finite window
            cut = int(bad[0]) + 1
            self.finite, self.first_bad, self.bad_epoch = False, offset + cut - 1, epoch
            loss, acc = loss[:cut], acc[:cut]
            keep = snap_idx < cut
            snap_idx, x, y, p = snap_idx[keep], x[keep], y[keep], p[keep]
        self.loss.append(loss)
        self.acc.append(acc)
        self.epoch.append(np.full(loss.shape[0], epoch, np.int32))
        if self.finite:
            self.seconds.append(seconds)
        self.snap_window.append(offset + snap_idx)
        self.snap_x.append(x)
        self.snap_y.append(y)
        self.snap_p.append(p)

    def to_run(self, c: Config, prev: Run | None) -> Run:
        def cat(parts, before, dtype, tail_shape=()):
            arrays = ([before] if before is not None else []) + parts
            return np.concatenate(arrays).astype(dtype) if arrays else np.zeros((0, *tail_shape), dtype)

        shape = (c.batch_size, c.truncated_backprop_length)
        return Run(
            config=c,
            loss=cat(self.loss, prev.loss if prev else None, np.float32),
            accuracy=cat(self.acc, prev.accuracy if prev else None, np.float32),
            epoch=cat(self.epoch, prev.epoch if prev else None, np.int32),
            epoch_seconds=cat([np.array(self.seconds, np.float64)], prev.epoch_seconds if prev else None, np.float64),
            snapshot_window=cat(self.snap_window, prev.snapshot_window if prev else None, np.int64),
            snapshot_inputs=cat(self.snap_x, prev.snapshot_inputs if prev else None, np.int32, shape),
            snapshot_targets=cat(self.snap_y, prev.snapshot_targets if prev else None, np.int32, shape),
            snapshot_probs=cat(self.snap_p, prev.snapshot_probs if prev else None, np.float32,
                               (*shape, c.num_classes)),
        )


def eval_inputs(configs: Sequence[Config]):
    """The held-out windows of every model, stacked for the compiled evaluation: (xs, ys, weights)."""
    from ._tf import tf

    evals = [eval_data(c) for c in configs]
    return (tf.constant(np.stack([e[0] for e in evals], 1)), tf.constant(np.stack([e[1] for e in evals], 1)),
            tf.constant(np.stack([eval_weights(c) for c in configs], axis=1)))

