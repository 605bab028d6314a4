"""Training and evaluation: epochs of compiled windows, progress through a callback, a Run at the end.

Knows nothing of click or rich. Several configs that share shapes train together as one compiled
program (``train_many``); each gets its own Run, the same as training it alone would give.

``train_many`` reads top to bottom: ``check_group`` refuses what cannot train together,
``prepare_models`` stacks the starting weights into a ``Group``, ``run_epochs`` calls ``run_epoch``
until the end, a stop or every model diverged (``Traces`` keeps each model's traces and which are
still alive), ``evaluate_models`` scores the held-out series and ``build_runs`` makes the Runs.
"""

from __future__ import annotations

import datetime as _dt
import math
import platform
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ._version import __version__
from .config import (
    PER_MODEL_KEYS,
    RESUMABLE_CHANGES,
    Config,
    ConfigError,
    config_warnings,
    program_key,
)
from .data import INIT_STREAM, dropout_masks, epoch_data, eval_data, eval_weights, rng_for
from .memory_profile import lags_for, record, records_after
from .runs import Run

if TYPE_CHECKING:  # TensorFlow is imported when training starts, not with this module
    from ._tf import tf
    from .memory_profile import Profile
    from .optim import OptState

    Params = dict[str, tf.Tensor]  # the weights by ``cells.weight_names``, stacked [M, ...]


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
class ModelEpoch:
    """One model's windows of the epoch just trained (up to its first non-finite one, if it diverged
    there), for a logger per model."""

    first_window: int     # global index of the epoch's first window
    loss: np.ndarray      # [W] each window's mean loss
    accuracy: np.ndarray  # [W] each window's accuracy


@dataclass(frozen=True)
class EpochReport:
    """What the progress callback gets after every epoch (means over the models trained together)."""

    epoch: int              # epochs done so far, resumed ones included
    epochs: int             # epochs asked for in all
    loss: float             # mean window loss of this epoch
    accuracy: float         # mean window accuracy of this epoch
    windows_per_second: float  # in this epoch (the first one includes compiling)
    elapsed: float          # seconds since this call started
    samples: EpochSamples | None = None  # the first model's traces of this epoch (None once it diverged)
    models: tuple[ModelEpoch | None, ...] = ()  # every model's windows of this epoch (None: diverged before it)


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

    Models may differ only in ``config.PER_MODEL_KEYS`` (seed, learning_rate, echo_step, init).
    ``should_stop`` is polled between epochs: when it turns true the runs end with status
    'interrupted'. With ``stop_at_accuracy`` set, training ends 'completed' after the first epoch in
    which every model still alive reached it (mean training accuracy). A model whose loss turns
    non-finite stops with status 'diverged' (the others go on).
    """
    from ._tf import tf

    configs = check_group(configs, resumes, warn)
    device = resolve_device(configs[0].device)
    start = time.perf_counter()
    with tf.device(device):
        group = prepare_models(configs, resumes, device)
        traces = Traces(len(configs), configs[0].windows_per_epoch, configs[0].snapshot_every,
                        loss_bound=loss_bound(configs[0].num_classes))
        evaluation = Evaluation(configs, device, group.math)
        ran = run_epochs(group, traces, evaluation, on_epoch=on_epoch, should_stop=should_stop, start=start)
        eval_loss, eval_accuracy = _held_out(evaluation, group.params, ran > 0 and traces.alive.any(), warn)
        params, opt_state = group.final_weights()
    wall = time.perf_counter() - start
    outcome = Outcome(first_epoch=group.first_epoch, epochs_run=ran,
                      stopped_early=traces.stopped_early(configs[0].epochs - group.first_epoch),
                      reached_accuracy=traces.reached_accuracy, math_used=group.math,
                      eval_loss=eval_loss, eval_accuracy=eval_accuracy, params=params, opt_state=opt_state,
                      device=device, wall_seconds=wall, versions=library_versions(),
                      created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    runs = build_runs(configs, traces, outcome, resumes)
    warn_at_chance(runs, warn)
    return runs


def check_group(configs: Sequence[Config], resumes: Sequence[Run] | None,
                warn: Callable[[str], None] | None) -> list[Config]:
    """Refuse models that cannot train together or resumes that would not continue the same
    training; hand each config's warnings to ``warn`` (default: Python warnings, pointing at the
    caller of ``train_many``)."""
    configs = list(configs)
    if not configs:
        raise ValueError("train_many needs at least one config")
    if len({program_key(c) for c in configs}) != 1:
        raise ConfigError("models trained together must differ only in " + ", ".join(sorted(PER_MODEL_KEYS)))
    warn = warn or (lambda m: warnings.warn(m, stacklevel=4))
    for c in configs:
        for message in config_warnings(c):
            warn(message)
    if resumes is not None:
        for run, c in zip(resumes, configs, strict=True):
            check_resume(run, c)
    return configs


@dataclass
class Group:
    """Models trained together, as the compiled programs take them: weights and optimizer slots
    stacked models-first on the device, one learning rate per model. ``run_epoch`` moves them on."""

    configs: list[Config]
    device: str
    params: Params
    opt: OptState
    lr: tf.Tensor     # [M]
    first_epoch: int  # epochs done before this call (the same for every model)
    math: str = "exact"  # the mode the programs are compiled in (``math_used``)

    def final_weights(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The weights and optimizer state as a run file holds them, still stacked [M, ...]
        (the step count, shared by all models, is a scalar)."""
        names = list(self.params)
        params = {n: w.numpy() for n, w in self.params.items()}
        opt = {"step": self.opt.step.numpy()}
        opt |= {f"slot1_{n}": s.numpy() for n, s in zip(names, self.opt.slot1, strict=True)}
        opt |= {f"slot2_{n}": s.numpy() for n, s in zip(names, self.opt.slot2, strict=True)}
        return params, opt


def prepare_models(configs: Sequence[Config], resumes: Sequence[Run] | None = None,
                   device: str = "/CPU:0") -> Group:
    """Every model's starting weights and optimizer slots, fresh from its seed or taken from the run
    it resumes, stacked models-first on the device."""
    from ._tf import tf
    from .cells import weight_names
    from .optim import OptState

    configs = list(configs)
    names = weight_names(configs[0].cell, configs[0].num_layers)
    if resumes is None:
        weights, slots = fresh_weights(configs)
        first_epoch = 0
    else:
        weights, slots = [r.params for r in resumes], [r.opt_state for r in resumes]
        first_epoch = resumes[0].epochs_completed
        if any(r.epochs_completed != first_epoch for r in resumes):
            raise ConfigError("runs resumed together must have the same number of epochs done")
    math = math_used(configs, resumes)

    def stacked(dicts, key):
        return tf.constant(np.stack([np.asarray(d[key], np.float32) for d in dicts]))

    with tf.device(device):
        params = {n: stacked(weights, n) for n in names}
        opt = OptState(tf.constant(float(slots[0]["step"]), tf.float32),
                       tuple(stacked(slots, f"slot1_{n}") for n in names),
                       tuple(stacked(slots, f"slot2_{n}") for n in names))
        lr = tf.constant([c.learning_rate for c in configs], tf.float32)
    return Group(configs, device, params, opt, lr, first_epoch, math)


def math_used(configs: Sequence[Config], resumes: Sequence[Run] | None = None) -> str:
    """The mode the models compile in: 'auto' resolved (``Config.math_used``), or, resumed, the
    mode each run trained in so far, whatever 'auto' would choose now."""
    if resumes is None:
        return configs[0].math_used
    modes = {r.math_used for r in resumes}
    if len(modes) > 1:
        raise ConfigError("runs resumed together must have trained in the same math mode, not "
                          + " and ".join(sorted(modes)))
    return modes.pop()


def fresh_weights(configs: Sequence[Config]) -> tuple[list[dict], list[dict]]:
    """Each model's initial weights (from its seed) and optimizer slots (the optimizer's start values)."""
    from .cells import init_weights
    from .optim import initial_slot_values

    weights = [init_weights(rng_for(c.seed, INIT_STREAM), c.cell, c.num_layers, c.state_size, c.num_classes,
                            c.init_scheme) for c in configs]
    s1, s2 = initial_slot_values(configs[0].optimizer)
    slots = [{f"slot1_{n}": np.full_like(w, s1) for n, w in p.items()}
             | {f"slot2_{n}": np.full_like(w, s2) for n, w in p.items()}
             | {"step": np.float32(0)} for p in weights]
    return weights, slots


@dataclass(frozen=True)
class EpochResult:
    """One epoch of every model, as arrays."""

    epoch: int
    batches: list[tuple[np.ndarray, np.ndarray]]  # per model: the epoch's (inputs, targets), each [W, B, T]
    loss: np.ndarray      # [W, M]
    accuracy: np.ndarray  # [W, M]
    probs: np.ndarray     # [S, M, B, T, C] at the snapshot windows
    seconds: float        # data, the compiled call and its results (the first includes compiling)


def run_epoch(group: Group, epoch: int, evaluation: Evaluation | None = None) -> EpochResult:
    """One epoch: each model's fresh data, the one compiled call that trains them all (the group's
    weights move on), its results as arrays. With ``evaluation``, and epochs still to come, the
    evaluation starts compiling on the other core meanwhile."""
    from ._tf import tf
    from .steps import compiled_train_epoch

    c0 = group.configs[0]
    train_epoch = compiled_train_epoch(c0.optimizer, c0.num_classes, c0.snapshot_every, c0.cell, c0.num_layers,
                                       c0.stride_steps, group.math, c0.clip_norm)
    t0 = time.perf_counter()
    batches = [epoch_data(c, epoch) for c in group.configs]
    xs = tf.constant(np.stack([b[0] for b in batches], axis=1))
    ys = tf.constant(np.stack([b[1] for b in batches], axis=1))
    masks = None if c0.dropout == 0 else tf.constant(np.stack([dropout_masks(c, epoch) for c in group.configs], 1))
    group.params, group.opt, losses, accs, probs = train_epoch(group.params, group.opt, xs, ys, group.lr, masks)
    if evaluation is not None and epoch + 1 < c0.epochs:
        evaluation.compile_ahead(group.params)
    losses, accs, probs = losses.numpy(), accs.numpy(), probs.numpy()
    return EpochResult(epoch, batches, losses, accs, probs, time.perf_counter() - t0)


def run_epochs(group: Group, traces: Traces, evaluation: Evaluation | None = None, *,
               on_epoch: Callback | None = None, should_stop: Callable[[], bool] | None = None,
               start: float | None = None) -> int:
    """Epoch after epoch until the last one, a stop asked for (polled before each) or every model
    diverged; returns how many epochs ran. ``start``: when the call began, for the reports."""
    start = time.perf_counter() if start is None else start
    epochs = group.configs[0].epochs
    ran = 0
    if group.first_epoch == 0:
        traces.record_memory(group, 0)  # the initial weights: what the network rests on before it learns
    for epoch in range(group.first_epoch, epochs):
        if should_stop is not None and should_stop():
            break
        result = run_epoch(group, epoch, evaluation)
        traces.add(result)
        ran += 1
        traces.check_accuracy(group.configs[0].stop_at_accuracy)
        if records_after(epoch + 1) or epoch + 1 == epochs:
            traces.record_memory(group, epoch + 1)
        if on_epoch is not None:
            on_epoch(epoch_report(result, traces, epochs, time.perf_counter() - start))
        if not traces.alive.any() or traces.reached_accuracy:
            break
    if ran:  # however the call ended, a record of where it ended
        traces.record_memory(group, group.first_epoch + ran)
    return ran


def epoch_report(result: EpochResult, traces: Traces, epochs: int, elapsed: float) -> EpochReport:
    """What the progress callback gets: means over the models, the first model's samples."""
    return EpochReport(result.epoch + 1, epochs, float(np.nanmean(result.loss)), float(np.nanmean(result.accuracy)),
                       traces.windows / max(result.seconds, 1e-9), elapsed, traces.samples(result.epoch),
                       traces.model_epochs(result.epoch))


class Evaluation:
    """The held-out evaluation of the models trained together. ``compile_ahead`` has it compiled on
    another thread while the epochs train, so that it is ready when they end."""

    def __init__(self, configs: Sequence[Config], device: str, math: str | None = None) -> None:
        from .steps import compiled_evaluate

        self.configs, self.device = list(configs), device
        c0 = self.configs[0]
        self.fn = compiled_evaluate(c0.num_classes, c0.cell, c0.num_layers, math or c0.math_used)
        self._inputs = None
        self._warmup = None

    def inputs(self):
        if self._inputs is None:
            self._inputs = eval_inputs(self.configs)
        return self._inputs

    def compile_ahead(self, params: Params) -> None:
        """Start compiling for these weights' shapes, once."""
        from .steps import BackgroundCompile

        if self._warmup is None:
            self._warmup = BackgroundCompile(self.fn, self.device, params, *self.inputs())

    def wait(self) -> None:
        if self._warmup is not None:
            self._warmup.wait()


def _held_out(evaluation: Evaluation, params: Params, trained: bool, warn) -> tuple[np.ndarray, np.ndarray]:
    """``evaluate_models``, but a failure there (after all the training) is a warning and NaN
    results: the trained weights are worth more than their held-out score."""
    try:
        return evaluate_models(evaluation, params, trained=trained)
    except Exception as e:
        if warn is not None:
            detail = str(e).splitlines()[0] if str(e) else ""
            warn(f"the held-out evaluation failed ({type(e).__name__}: {detail}); the run is kept without "
                 "held-out results")
        nan = np.full(len(evaluation.configs), np.nan)
        return nan, nan


def evaluate_models(evaluation: Evaluation, params: Params, *, trained: bool) -> tuple[np.ndarray, np.ndarray]:
    """Held-out (loss [M], accuracy [M]); NaN if nothing new was trained (stopped at once, or every
    model diverged), which leaves nothing to evaluate."""
    evaluation.wait()
    if not trained:
        nan = np.full(len(evaluation.configs), np.nan)
        return nan, nan
    loss, accuracy = evaluation.fn(params, *evaluation.inputs())
    return loss.numpy(), accuracy.numpy()


@dataclass(frozen=True)
class Outcome:
    """What one call of ``train_many`` ended with, for building the runs."""

    first_epoch: int      # epochs done before the call
    epochs_run: int       # epochs the call ran (0: stopped before the first)
    stopped_early: bool   # the models still alive did not reach their last epoch
    eval_loss: np.ndarray      # [M]
    eval_accuracy: np.ndarray  # [M]
    params: dict[str, np.ndarray]     # [M, ...]
    opt_state: dict[str, np.ndarray]  # [M, ...], the step a scalar
    device: str
    wall_seconds: float
    versions: dict[str, str]
    created: str
    reached_accuracy: bool = False  # stopped because every model alive reached stop_at_accuracy
    math_used: str = "exact"  # the mode the programs compiled in


def build_runs(configs: Sequence[Config], traces: Traces, outcome: Outcome,
               resumes: Sequence[Run] | None = None) -> list[Run]:
    """A Run per model: its traces (after those of the run it resumes), status, held-out results
    and, unless it diverged, its weights."""
    runs = []
    for m, (c, trace) in enumerate(zip(configs, traces.of, strict=True)):
        prev = resumes[m] if resumes is not None else None
        alive = bool(traces.alive[m])
        run = trace.to_run(c, prev)
        if prev is not None:  # the means of the epochs whose windows a bounded file left out
            run.epoch_loss, run.epoch_accuracy = prev.epoch_means()
            run.init_used = prev.init_used  # what it drew then, whatever 'auto' means now
        run.status, run.message = run_status(c, trace, alive, outcome)
        run.eval_loss, run.eval_accuracy = float(outcome.eval_loss[m]), float(outcome.eval_accuracy[m])
        if prev is not None and not outcome.epochs_run:
            run.eval_loss, run.eval_accuracy = prev.eval_loss, prev.eval_accuracy
        if not alive:  # a diverged model has no held-out results, whatever its company computed
            run.eval_loss = run.eval_accuracy = float("nan")
        run.wall_seconds = outcome.wall_seconds + (prev.wall_seconds if prev else 0.0)
        run.device, run.versions, run.created = outcome.device, outcome.versions, outcome.created
        run.math_used = outcome.math_used
        run.epochs_completed = outcome.first_epoch + trace.epochs_done
        if alive:
            run.params = {n: v[m] for n, v in outcome.params.items()}
            run.opt_state = {k: (v[m] if np.ndim(v) else v) for k, v in outcome.opt_state.items()}
        runs.append(run)
    return runs


def loss_bound(num_classes: int) -> float:
    """The window loss beyond which a model counts as diverged although its loss is still finite.

    A uniform guess costs ln(C) per step, and a network that learns anything costs less. A window
    whose mean cross-entropy is 100 times that (100 for 2 classes: the targets given, on average,
    probability below e^-100) comes only from weights that have blown up; the bad spikes of a run
    that still learns stay within a few times ln(C)."""
    return 100.0 * max(math.log(num_classes), 1.0)


def run_status(c: Config, trace: _Trace, alive: bool, outcome: Outcome) -> tuple[str, str]:
    """(status, message) of one model's run."""
    if not alive:
        where = f"at window {trace.first_bad} (epoch {trace.bad_epoch + 1})"
        if np.isfinite(trace.bad_loss):
            what = (f"the loss exploded to {trace.bad_loss:.3g} {where}, beyond the bound of "
                    f"{loss_bound(c.num_classes):g} (a uniform guess costs {math.log(c.num_classes):.3g})")
        else:
            what = f"the loss became non-finite {where}"
        return "diverged", (f"{what}: learning_rate {c.learning_rate} is likely too high for {c.optimizer}; "
                            f"try a smaller one")
    done = trace.epochs_done + outcome.first_epoch
    if outcome.reached_accuracy and done < c.epochs:
        accuracy = float(np.mean(trace.acc[-1]))
        return "completed", (f"stopped at epoch {done} of {c.epochs}: training accuracy {accuracy:.3f} "
                             f">= {c.stop_at_accuracy:g}")
    if outcome.stopped_early:
        return "interrupted", f"stopped after {trace.epochs_done + outcome.first_epoch} of {c.epochs} epochs"
    return "completed", ""


def near_chance(run: Run) -> bool:
    """A completed run whose held-out accuracy is less than a tenth of the way from chance (1/C) to 1."""
    chance = 1.0 / run.config.num_classes
    return run.status == "completed" and bool(run.eval_accuracy < chance + 0.1 * (1.0 - chance))


def warn_at_chance(runs: Sequence[Run], warn: Callable[[str], None] | None) -> None:
    """One warning per completed run that learned nothing although a window can hold its echo
    (the other case, ``echo_step >= truncated_backprop_length``, is warned of before training),
    naming the causes its own trace and settings point to."""
    warn = warn or (lambda m: warnings.warn(m, stacklevel=4))
    for run in runs:
        c = run.config
        if near_chance(run) and c.echo_step < c.truncated_backprop_length:
            warn(f"seed {c.seed}: held-out accuracy {run.eval_accuracy:.3f} is chance level (1/{c.num_classes}), "
                 f"although a window of {c.truncated_backprop_length} steps holds an echo of {c.echo_step}: "
                 + "; ".join(chance_causes(run)))


def chance_causes(run: Run) -> list[str]:
    """Why a run at chance learned nothing, each with what would help, from its settings and its
    per-epoch mean losses: only causes that apply, so no advice that cannot help."""
    from .config import TUTORIAL_NETWORK

    c, losses = run.config, run.epoch_means()[0]
    guess = math.log(c.num_classes)  # what a uniform guess costs per step
    causes = []
    if c.init_scheme == "tutorial" and not c.is_tutorial_network:
        causes.append(f"the tutorial's all-positive initial weights saturate tanh beyond its {TUTORIAL_NETWORK[0]} "
                      f"units and one layer: use --init keras (what --init auto picks here)")
    if losses.size and losses.min() < 0.5 * guess:
        best = int(losses.argmin())
        causes.append(f"it learned (mean loss {losses[best]:.3g} in epoch {best + 1}) and lost it again: its "
                      f"steps are too large; try a smaller --learning-rate (now {c.learning_rate:g}) or --clip-norm 1")
    elif losses.size and losses[-1] > 1.1 * guess:
        causes.append(f"its loss ended above a uniform guess's ({losses[-1]:.3g} > {guess:.3g}): the steps are "
                      f"too large for {c.optimizer}; try a smaller --learning-rate (now {c.learning_rate:g})")
    elif not causes:
        causes.append(f"its loss stayed near a uniform guess's ({guess:.3g}) for all {losses.size} epochs; the "
                      f"tutorial's network sits there a few epochs before it falls: try more --epochs")
    return causes


class Traces:
    """Every model's traces, and which models are still alive: a model whose loss turns non-finite
    or explodes beyond ``loss_bound`` keeps its trace up to that window and takes no further epochs."""

    def __init__(self, models: int, windows_per_epoch: int, snapshot_every: int,
                 loss_bound: float = math.inf) -> None:
        self.of = [_Trace(loss_bound) for _ in range(models)]
        self.alive = np.ones(models, bool)
        self.windows = windows_per_epoch
        self.snap_idx = np.arange(0, windows_per_epoch, snapshot_every)
        self.reached_accuracy = False

    def add(self, r: EpochResult) -> None:
        idx = self.snap_idx
        for m, trace in enumerate(self.of):
            if not self.alive[m]:
                continue
            x_m, y_m = r.batches[m]
            trace.add_epoch(r.epoch, r.epoch * self.windows, r.loss[:, m], r.accuracy[:, m], r.seconds,
                            idx, x_m[idx], y_m[idx], r.probs[:, m])
            if not trace.sane:
                self.alive[m] = False

    def record_memory(self, group: Group, epochs_done: int) -> None:
        """Every live model's memory profile and gradient's reach after ``epochs_done`` epochs
        (once per epoch count: the end of a call may fall on a scheduled record)."""
        weights = None
        for m, (c, trace) in enumerate(zip(group.configs, self.of, strict=True)):
            if not self.alive[m] or (trace.mem_epoch and trace.mem_epoch[-1] == epochs_done):
                continue
            if weights is None:
                weights = {n: w.numpy() for n, w in group.params.items()}
            trace.add_memory(epochs_done, record({n: w[m] for n, w in weights.items()}, c))

    def samples(self, epoch: int) -> EpochSamples | None:
        """The first model's traces of this epoch, for live figures (None once it diverged)."""
        return self.of[0].latest(epoch * self.windows) if self.alive[0] else None

    def model_epochs(self, epoch: int) -> tuple[ModelEpoch | None, ...]:
        """Every model's windows of this epoch, None for a model that did not train it (diverged before)."""
        return tuple(ModelEpoch(epoch * self.windows, t.loss[-1], t.acc[-1])
                     if t.epoch and t.epoch[-1].size and t.epoch[-1][0] == epoch else None for t in self.of)

    def check_accuracy(self, target: float) -> None:
        """Note whether every model still alive reached mean training accuracy ``target`` in the
        epoch just added (a target of 0 is off)."""
        self.reached_accuracy = bool(target > 0 and self.alive.any() and all(
            np.mean(t.acc[-1]) >= target for t, a in zip(self.of, self.alive, strict=True) if a))

    def stopped_early(self, planned: int) -> bool:
        """Whether a model still alive trained fewer than the ``planned`` epochs of this call (and
        not because they reached the accuracy asked for)."""
        return not self.reached_accuracy and any(
            t.epochs_done < planned for t, a in zip(self.of, self.alive, strict=True) if a)


class _Trace:
    """Per-model traces gathered epoch by epoch."""

    def __init__(self, loss_bound: float = math.inf) -> None:
        self.loss, self.acc, self.epoch, self.seconds = [], [], [], []
        self.snap_window, self.snap_x, self.snap_y, self.snap_p = [], [], [], []
        self.mem_epoch, self.mem_profile, self.mem_reach = [], [], []
        self.loss_bound = loss_bound
        self.sane = True      # no window's loss non-finite or beyond the bound yet
        self.first_bad = -1   # global index of the first window that was not
        self.bad_epoch = -1
        self.bad_loss = math.nan

    @property
    def epochs_done(self) -> int:
        return len(self.seconds)

    def latest(self, offset: int) -> EpochSamples:
        return EpochSamples(offset, self.loss[-1], self.snap_window[-1], self.snap_x[-1], self.snap_y[-1],
                            self.snap_p[-1])

    def add_epoch(self, epoch, offset, loss, acc, seconds, snap_idx, x, y, p) -> None:
        with np.errstate(invalid="ignore"):
            bad = np.flatnonzero(~np.isfinite(loss) | (loss > self.loss_bound))
        if bad.size:  # keep the trace up to and including the first bad window
            cut = int(bad[0]) + 1
            self.sane, self.first_bad, self.bad_epoch = False, offset + cut - 1, epoch
            self.bad_loss = float(loss[cut - 1])
            loss, acc = loss[:cut], acc[:cut]
            keep = snap_idx < cut
            snap_idx, x, y, p = snap_idx[keep], x[keep], y[keep], p[keep]
        self.loss.append(loss)
        self.acc.append(acc)
        self.epoch.append(np.full(loss.shape[0], epoch, np.int32))
        if self.sane:
            self.seconds.append(seconds)
        self.snap_window.append(offset + snap_idx)
        self.snap_x.append(x)
        self.snap_y.append(y)
        self.snap_p.append(p)

    def add_memory(self, epochs_done: int, record: Profile) -> None:
        self.mem_epoch.append(epochs_done)
        self.mem_profile.append(record.profile)
        self.mem_reach.append(record.reach)

    def to_run(self, c: Config, prev: Run | None) -> Run:
        def cat(parts, before, dtype, tail_shape=()):
            arrays = ([before] if before is not None else []) + parts
            return np.concatenate(arrays).astype(dtype) if arrays else np.zeros((0, *tail_shape), dtype)

        shape = (c.batch_size, c.truncated_backprop_length)
        lags = lags_for(c)
        before = (None, None, None)
        if prev is not None:  # the record where the previous call ended, if off the schedule, is superseded
            keep = np.array([e == 0 or records_after(int(e)) for e in prev.memory_epoch], bool)
            before = prev.memory_epoch[keep], prev.memory_profile[keep], prev.memory_reach[keep]
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
            memory_epoch=cat([np.array(self.mem_epoch, np.int32)], before[0], np.int32),
            memory_profile=cat([np.reshape(self.mem_profile, (-1, lags + 1))], before[1], np.float32),
            memory_reach=cat([np.reshape(self.mem_reach, (-1, c.num_layers, lags + 1))], before[2], np.float32),
        )


def eval_inputs(configs: Sequence[Config]):
    """The held-out windows of every model, stacked for the compiled evaluation: (xs, ys, weights)."""
    from ._tf import tf

    evals = [eval_data(c) for c in configs]
    return (tf.constant(np.stack([e[0] for e in evals], 1)), tf.constant(np.stack([e[1] for e in evals], 1)),
            tf.constant(np.stack([eval_weights(c) for c in configs], axis=1)))

