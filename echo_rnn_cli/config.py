"""Settings: one dataclass whose defaults are the tutorial's, loaded from TOML and flags, checked once.

Each setting is declared once, in ``Config``, with its default, allowed values, help line and where
it may vary (``settings.setting``). The command-line flags, TOML checks, --grid values, the
per-model and resumable sets and summary's column order are all derived from that table; adding a
setting is one declaration plus the code that uses it (and a row in docs/training.md's table, which a
test compares with this one).

Everything is validated here, before any work, and every problem is one ``ConfigError`` whose text
names the key (or flag), the value given and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import memory
from .settings import FLOAT32_MAX, FLOAT32_TINY, ConfigError, Setting, flag_name, setting, table

OPTIMIZERS = ("adagrad", "adam", "sgd", "rmsprop")
DEVICES = ("auto", "cpu", "gpu")
CELLS = ("rnn", "lstm", "gru")
#: The deepest stack of layers (see num_layers).
MAX_LAYERS = 16
#: How the compiled program sums (``model``): 'exact' in a fixed order, 'fast' with library kernels;
#: 'auto' is ``Config.math_used``: one of those two, chosen from the network's shape.
MATH_MODES = ("auto", "exact", "fast")
#: The modes a program is compiled in ('auto' resolved).
COMPILED_MATH = ("exact", "fast")
#: 'auto' compiles in fast mode from this many units on, per cell: where benchmarks/scaling.py
#: measured fast as the faster at that size and every larger one (benchmarks/crossover.md, recorded
#: with `--math exact,fast --states 4,8,16,32`; at a tie, exact). The tutorial's 4 units stay exact.
FAST_MATH_FROM = {"rnn": 32, "lstm": 16, "gru": 16}
#: A sweep trains points of one program side by side in one compiled program only below this many
#: units, per cell: where benchmarks/scaling.py measured a model among 16 (``--seeds 16``) cheaper
#: per window than the model alone (benchmarks/grouping.md, `--seeds 1,16 --states 4,16,32,64`; a tie
#: counts as slower); from there on, each point alone.
#: ``train --seeds`` always trains its models together, as asked.
GROUP_BELOW = {"rnn": 64, "lstm": 32, "gru": 32}
#: ``init`` schemes; 'auto' is ``Config.init_scheme``: the tutorial's weights for the tutorial's
#: network (a tanh cell of 4 units, one layer), Keras's layer defaults everywhere else.
INITS = ("auto", "tutorial", "glorot", "keras")
#: The network whose initial weights 'auto' keeps as the tutorial draws them: (state_size, num_layers).
TUTORIAL_NETWORK = (4, 1)
#: The schemes that apply to each cell (``cells.INITS``, here without importing TensorFlow).
CELL_INITS = {"rnn": ("tutorial", "glorot", "keras"), "lstm": ("keras",), "gru": ("keras",)}

__all__ = ["CELLS", "CELL_INITS", "COMPILED_MATH", "DEVICES", "FAST_MATH_FROM",
           "FLOAT32_MAX", "FLOAT32_TINY", "GRID_KEYS", "GROUP_BELOW", "INITS", "MATH_MODES",
           "OPTIMIZERS",
           "PER_MODEL_KEYS",
           "RESUMABLE_CHANGES", "SETTINGS", "Config", "ConfigError", "Setting", "config_warnings",
           "flag_name", "from_dict", "key_order", "load_toml", "network_text", "parse_setting", "program_key",
           "resolve", "validate"]


@dataclass(frozen=True)
class Config:
    """The tutorial's settings are the defaults. The order here is the order of --help, the
    README's table, CSV columns and run files' config."""

    epochs: int = setting(100, "Passes over a fresh series", min=1, resumable=True)
    total_series_length: int = setting(50000, "Symbols in each epoch's series", min=1)
    truncated_backprop_length: int = setting(15, "Steps per window; the gradient stops at window edges", min=1)
    state_size: int = setting(4, "Units in the RNN state", min=1)
    num_classes: int = setting(2, "Symbols 0..C-1; 2 feeds 0/1, more feed one-hot", min=2)
    echo_step: int = setting(3, "How far the echo lags the input", min=0, per_model=True)
    batch_size: int = setting(5, "Rows the series is cut into", min=1)
    optimizer: str = setting("adagrad", "Update rule (Keras 3's formulas and defaults)", choices=OPTIMIZERS)
    learning_rate: float = setting(0.3, "Step size, a positive number", per_model=True)
    seed: int = setting(0, "Seeds data and initial weights", min=0, per_model=True)
    device: str = setting("auto", "auto uses a GPU when TensorFlow sees one", choices=DEVICES, resumable=True)
    # The compiled epoch holds it as an int32; no epoch has a billion windows (memory refuses that).
    snapshot_every: int = setting(100, "Windows between prediction snapshots within an epoch", min=1,
                                  max=10**9)
    init: str = setting("auto", "Initial weights: auto (tutorial for the tutorial's rnn of 4 units and one layer, "
                        "keras everywhere else), tutorial (uniform [0,1); saturates tanh beyond 4 units), glorot or "
                        "keras (Keras's layer defaults)", choices=INITS, per_model=True)
    # Beyond the tutorial (its next parts): these shape the compiled program, so not per model.
    cell: str = setting("rnn", "Recurrent cell: rnn (the tutorial's tanh), lstm or gru (Keras's layers)",
                        choices=CELLS)
    # At most 16: each layer is written out in the compiled program, which takes seconds per layer
    # to compile (an LSTM of 32 layers: about 100 s and 2.7 GB on 2 cores), so 500 would take hours.
    num_layers: int = setting(1, "Stacked recurrent layers", min=1, max=MAX_LAYERS)
    dropout: float = setting(0.0, "Dropout between layers and before the softmax layer, in training",
                             fraction=True)
    stride: int = setting(0, "Steps between window starts; 0: the window length (no overlap)", min=0)
    math: str = setting("auto", "Sums: auto (fast from 32 units for the rnn, from 16 for lstm and gru, else "
                        "exact: whichever the benchmark measures as faster), exact (in a fixed order; the "
                        "tutorial's trace, the same on every CPU) or fast (library dot products, many times "
                        "faster from 64 units; last bits may differ between CPU kinds); both keep --seeds runs "
                        "bit for bit single runs", choices=MATH_MODES)
    stop_at_accuracy: float = setting(0.0, "End after the first epoch whose mean training accuracy reaches this "
                                      "(every model's, with --seeds); 0: train all --epochs", max=1.0, off=0.0,
                                      resumable=True)
    clip_norm: float = setting(0.0, "Scale each model's gradients so that their global norm (over all its "
                               "weights) is at most this, as Keras's global_clipnorm and PyTorch's "
                               "clip_grad_norm_; 0: off",
                               off=0.0)

    # Derived sizes (the tutorial's integer divisions).
    @property
    def row_length(self) -> int:
        return self.total_series_length // self.batch_size

    @property
    def stride_steps(self) -> int:
        """Steps between window starts (``stride`` 0 is the window's length)."""
        return self.stride or self.truncated_backprop_length

    @property
    def windows_per_epoch(self) -> int:
        # Windows of T steps starting every K steps: with K == T, the tutorial's row_length // T.
        return (self.row_length - self.truncated_backprop_length) // self.stride_steps + 1

    @property
    def init_scheme(self) -> str:
        """The initial weights' scheme, 'auto' resolved: the tutorial's uniform [0, 1) weights for
        the tutorial's own network, whose trace they keep; Keras's layer defaults for every other,
        since the all-positive weights saturate tanh from about 5 units or a second layer on and
        the network then learns nothing (measured: docs/training.md, *Initial weights*)."""
        if self.init != "auto":
            return self.init
        return "tutorial" if self.is_tutorial_network else "keras"

    @property
    def math_used(self) -> str:
        """The compiled program's mode, 'auto' resolved from the cell and the state size only
        (``FAST_MATH_FROM``): never from the number of models, the machine or its load, so a
        sweep point's numbers do not depend on how it was batched or where it ran. (Layers
        repeat the same products, so they do not move the crossover.)"""
        if self.math != "auto":
            return self.math
        return "fast" if self.state_size >= FAST_MATH_FROM[self.cell] else "exact"

    @property
    def groups_well(self) -> bool:
        """Whether a sweep trains this point beside others of its program (``GROUP_BELOW``)."""
        return self.state_size < GROUP_BELOW[self.cell]

    @property
    def is_tutorial_network(self) -> bool:
        """The tutorial's own network: its tanh cell, 4 units, one layer (``TUTORIAL_NETWORK``)."""
        return self.cell == "rnn" and (self.state_size, self.num_layers) == TUTORIAL_NETWORK

    @property
    def input_width(self) -> int:
        """Inputs per step: 2 classes feed the symbol itself (as the tutorial), more feed one-hot."""
        return 1 if self.num_classes == 2 else self.num_classes

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> Config:
        return validate(dataclasses.replace(self, **changes))


#: Every setting, in declaration order: the one table the rest is derived from.
SETTINGS: dict[str, Setting] = table(Config)
FIELD_TYPES = {k: s.kind for k, s in SETTINGS.items()}
#: What a run may be resumed with: changing anything else would change the model or its trace.
RESUMABLE_CHANGES = frozenset(k for k, s in SETTINGS.items() if s.resumable)
#: Settings that may differ between models trained together in one compiled program.
PER_MODEL_KEYS = frozenset(k for k, s in SETTINGS.items() if s.per_model)
#: Settings a sweep's --grid may vary.
GRID_KEYS = tuple(k for k, s in SETTINGS.items() if s.grid)


def program_key(c: Config) -> tuple:
    """Settings that shape the compiled program; configs equal here can train together in one
    program (the only place this rule lives: the trainer and the sweep's grouping both use it)."""
    # 'auto' as what it compiles to: an auto and an exact config of one shape share one program.
    d = c.to_dict() | {"math": c.math_used}
    return tuple(v for k, v in sorted(d.items()) if k not in PER_MODEL_KEYS)


def key_order(keys: Iterable[str]) -> list[str]:
    """How keys are ordered in run names, tables and sorts: alphabetical, the seed last."""
    keys = set(keys)
    return sorted(keys - {"seed"}) + (["seed"] if "seed" in keys else [])


def parse_setting(key: str, text: str, name: str) -> Any:
    """One value of a setting written as text (a --grid value), typed like the setting; ``name``
    says how to call it in a ``ConfigError``. Whether the value is allowed is ``validate``'s."""
    return SETTINGS[key].parse(text, name)


def _coerce(key: str, value: Any, name: str) -> Any:
    """Check the type of one raw value (from TOML or a dict); ints stay ints, no silent rounding."""
    return SETTINGS[key].coerce(value, name)


def validate(c: Config, names: dict[str, str] | None = None) -> Config:
    """Check every setting and how they fit together; return the config unchanged or raise.

    ``names`` says how to call a key in messages (its flag, or the file it came from)."""
    names = names or {}

    def d(key: str) -> str:
        return names.get(key, f"'{key}'")

    for key, s in SETTINGS.items():  # every type first: a range check needs the right type
        s.check_type(getattr(c, key), d(key))
    for key, s in SETTINGS.items():
        s.check(getattr(c, key), d(key))
    if c.total_series_length < c.batch_size:
        raise ConfigError(
            f"{d('total_series_length')} {c.total_series_length} is too short for "
            f"{d('batch_size')} {c.batch_size}: each of the {c.batch_size} rows needs at least one step"
        )
    if c.truncated_backprop_length > c.row_length:
        raise ConfigError(
            f"{d('truncated_backprop_length')} {c.truncated_backprop_length} is longer than a row "
            f"({c.total_series_length} steps / {c.batch_size} rows = {c.row_length}); "
            f"allowed: 1 to {c.row_length}"
        )
    _check_cell_settings(c, d)
    if c.echo_step >= c.row_length:
        raise ConfigError(
            f"{d('echo_step')} {c.echo_step} is not shorter than a row ({c.row_length} steps); "
            f"allowed: 0 to {c.row_length - 1}"
        )
    memory.check_fits(c, d, given=set(names))
    return c


#: Far above any config (a few hundred bytes); a bigger "config" is a mistake, not settings.
MAX_CONFIG_BYTES = 1 << 20


def _check_cell_settings(c: Config, d) -> None:
    """The settings of the cells issue that depend on others: the init scheme on the cell, the
    stride on the window. (Called after the window was checked against the row.)"""
    if c.init != "auto" and c.init not in CELL_INITS[c.cell]:
        raise ConfigError(f"{d('init')} {c.init!r} does not apply to {d('cell')} {c.cell!r}; "
                          f"allowed for {c.cell}: auto, {', '.join(CELL_INITS[c.cell])}")
    if c.stride > c.truncated_backprop_length:
        raise ConfigError(f"{d('stride')} {c.stride} is longer than the window ({d('truncated_backprop_length')} "
                          f"{c.truncated_backprop_length}); allowed: 0 (the window's length) or 1 to "
                          f"{c.truncated_backprop_length}")


def _read_toml(p: Path) -> dict[str, Any]:
    from .guards import GuardError, open_regular

    try:  # open_regular: a FIFO or a device is refused at once, never waited on or read forever
        with open_regular(p, max_bytes=MAX_CONFIG_BYTES, what="config file") as f:
            text = f.read().decode("utf-8")
    except GuardError as e:
        raise ConfigError(str(e)) from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {str(p)!r} is not a TOML text file (byte {e.start} is not UTF-8)") from None
    except OSError as e:
        raise ConfigError(f"config file {str(p)!r} cannot be read: {e.strerror or e}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        # tomllib names the line, except at the very end of the file ("at end of document").
        last = max(len(text.splitlines()), 1)
        message = str(e).replace("(at end of document)", f"(at line {last}, the end of the file)")
        raise ConfigError(f"config file {str(p)!r} is not valid TOML: {message}") from None


def load_toml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a config file into raw key/values (types checked by ``resolve``)."""
    p = Path(path)
    data = _read_toml(p)
    for key, value in data.items():
        if key not in SETTINGS:
            close = difflib.get_close_matches(key.replace("-", "_"), SETTINGS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            allowed = ", ".join(SETTINGS)
            raise ConfigError(f"config file {str(p)!r}: unknown key {key!r} ({hint}allowed: {allowed})")
        if isinstance(value, dict):
            raise ConfigError(f"config file {str(p)!r}: {key!r} must be a value, not a table")
    return data


def resolve(config_file: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None,
            base: Config | None = None) -> Config:
    """Defaults (or ``base``) < config file < overrides (flags; None means not given)."""
    values = (base or Config()).to_dict()
    names: dict[str, str] = {}
    if config_file is not None:
        for key, value in load_toml(config_file).items():
            names[key] = f"'{key}' in {str(config_file)!r}"
            values[key] = _coerce(key, value, names[key])
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in SETTINGS:
            raise ConfigError(f"unknown setting {key!r} (allowed: {', '.join(SETTINGS)})")
        names[key] = flag_name(key)
        values[key] = _coerce(key, value, names[key])
    return validate(Config(**values), names)


def from_dict(data: dict[str, Any]) -> Config:
    """A config from a dict (a run file's), checked like a TOML file; unknown keys are refused."""
    for key in data:
        if key not in SETTINGS:
            raise ConfigError(f"unknown setting {key!r}")
    return validate(Config(**{k: _coerce(k, v, f"'{k}'") for k, v in data.items()}))


def network_text(c: Config) -> str:
    """The network beyond the tutorial's, in words for titles ('lstm · 2 layers · dropout 0.2 ·
    stride 5'); empty for the tutorial's own (one tanh layer, no dropout, windows side by side)."""
    parts = [c.cell] if c.cell != "rnn" else []
    parts += [f"{c.num_layers} layers"] if c.num_layers > 1 else []
    parts += [f"dropout {c.dropout:g}"] if c.dropout else []
    parts += [f"stride {c.stride}"] if c.stride_steps != c.truncated_backprop_length else []
    parts += ["fast math"] if c.math_used == "fast" else []
    parts += [f"clip {c.clip_norm:g}"] if c.clip_norm else []
    return " · ".join(parts)


def config_warnings(c: Config) -> list[str]:
    """Settings that are allowed but will not do what a user probably wants."""
    out = []
    if c.echo_step >= c.truncated_backprop_length:
        out.append(
            f"echo_step {c.echo_step} is not shorter than truncated_backprop_length "
            f"{c.truncated_backprop_length}: no window holds both a symbol and its echo, so the "
            f"gradient never links them and the network cannot learn the echo (the tutorial explains why)"
        )
    return out
