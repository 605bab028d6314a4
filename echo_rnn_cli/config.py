"""Settings: one dataclass whose defaults are the tutorial's, loaded from TOML and flags, checked once.

Everything is validated here, before any work, and every problem is one ``ConfigError`` whose text
names the key (or flag), the value given and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

OPTIMIZERS = ("adagrad", "adam", "sgd", "rmsprop")
DEVICES = ("auto", "cpu", "gpu")
INITS = ("tutorial", "glorot")
FLOAT32_MAX, FLOAT32_TINY = 3.4028234663852886e38, 1.1754943508222875e-38

#: What a run may be resumed with: changing anything else would change the model or its trace.
RESUMABLE_CHANGES = frozenset({"epochs", "device"})
#: Settings that may differ between models trained together in one compiled program.
PER_MODEL_KEYS = frozenset({"seed", "learning_rate", "echo_step", "init"})


class ConfigError(ValueError):
    """A setting that cannot be used; the message is one line meant for the user."""


@dataclass(frozen=True)
class Config:
    """The tutorial's settings are the defaults."""

    epochs: int = 100
    total_series_length: int = 50000
    truncated_backprop_length: int = 15
    state_size: int = 4
    num_classes: int = 2
    echo_step: int = 3
    batch_size: int = 5
    optimizer: str = "adagrad"
    learning_rate: float = 0.3
    seed: int = 0
    device: str = "auto"
    snapshot_every: int = 100
    init: str = "tutorial"

    # Derived sizes (the tutorial's integer divisions).
    @property
    def row_length(self) -> int:
        return self.total_series_length // self.batch_size

    @property
    def windows_per_epoch(self) -> int:
        return self.row_length // self.truncated_backprop_length

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "Config":
        return validate(dataclasses.replace(self, **changes))


FIELD_TYPES = {f.name: f.type for f in fields(Config)}


def program_key(c: Config) -> tuple:
    """Settings that shape the compiled program; configs equal here can train together in one
    program (the only place this rule lives: the trainer and the sweep's grouping both use it)."""
    return tuple(v for k, v in sorted(c.to_dict().items()) if k not in PER_MODEL_KEYS)
INT_KEYS = tuple(k for k, t in FIELD_TYPES.items() if t == "int")


def flag_name(key: str) -> str:
    return "--" + key.replace("_", "-")


CHOICES = {"optimizer": OPTIMIZERS, "device": DEVICES, "init": INITS}


def _looks_numeric(value: Any) -> bool:
    """A string that holds a number (a TOML value quoted by mistake)."""
    if not isinstance(value, str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True


def _coerce(key: str, value: Any, name: str) -> Any:
    """Check the type of one raw value (from TOML or a dict); ints stay ints, no silent rounding."""
    kind = FIELD_TYPES[key]
    quoted = " (a string: write the number without quotes)" if _looks_numeric(value) else ""
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be a whole number, got {value!r}{quoted}")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} must be a positive finite number, got {value!r}{quoted}")
        return float(value)
    if not isinstance(value, str):
        allowed = f"one of {', '.join(CHOICES[key])}" if key in CHOICES else "a string"
        raise ConfigError(f"{name} must be {allowed}, got {value!r}")
    return value.lower()


#: Bytes per symbol of a series: each epoch's series and its echo, as rows, as windows, stacked
#: for the compiled program and copied into it, and the held-out series beside them. Measured
#: about 58 (peak memory of 2e7 symbols less that of 2e6, on the CPU), rounded up.
SERIES_BYTES_PER_SYMBOL = 64


def _memory_parts(c: Config) -> dict[str, int]:
    """A rough upper bound of what one model of this config holds at once, by the setting that
    drives each part (all Python ints: no overflow, however absurd the sizes)."""
    width = (1 if c.num_classes == 2 else c.num_classes) + c.state_size
    # Weights, both optimizer slots and the gradients.
    weights = (width * c.state_size + c.state_size * (c.num_classes + 1) + c.num_classes) * 4 * 4
    # One window's states, their derivatives, logits and probabilities inside the compiled program,
    # and a step's broadcast state-by-weights product, in case it is not fused away.
    window = c.batch_size * c.truncated_backprop_length * (c.state_size * 8 + c.num_classes * 6) * 4
    weights += 2 * c.batch_size * c.state_size * (c.state_size + c.num_classes) * 4
    series = c.total_series_length * SERIES_BYTES_PER_SYMBOL
    windows = c.total_series_length // c.batch_size // c.truncated_backprop_length
    n_snap = -(-windows // c.snapshot_every) if windows else 0
    per_snapshot = c.batch_size * c.truncated_backprop_length * (c.num_classes + 2) * 4
    # Kept for the whole run, and concatenated once at the end (twice the size for a moment):
    # each window's loss, accuracy and epoch, the snapshots, and a little bookkeeping per epoch.
    trace = 2 * c.epochs * (windows * 12 + n_snap * per_snapshot + 1024)
    return {"weights": weights, "window": window, "series": series, "trace": trace}


#: The settings that drive each part, for naming the one to reduce.
_PART_KEYS = {"weights": ("state_size", "num_classes"), "window": ("truncated_backprop_length", "batch_size"),
              "series": ("total_series_length",), "trace": ("epochs", "total_series_length")}


def _memory_bytes(c: Config) -> int:
    return sum(_memory_parts(c).values())


def _largest_fitting(c: Config, key: str, budget: int) -> int:
    """The largest value of ``key`` (the others as given) whose estimate fits the budget, or 0."""
    lo, hi = 0, getattr(c, key)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _memory_bytes(dataclasses.replace(c, **{key: mid})) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _what_to_reduce(c: Config, budget: int, given: set[str]) -> tuple[str, int]:
    """The setting to name when a config does not fit, and its largest value that would (0: none).

    The settings the user gave come first, then the others; within each, the one driving the
    biggest part of the estimate first; the first whose reduction alone is enough is named."""
    parts = _memory_parts(c)
    keys = sorted(_PART_KEYS, key=parts.get, reverse=True)
    ordered = list(dict.fromkeys(k for part in keys for k in _PART_KEYS[part]))
    ordered = [k for k in ordered if k in given] + [k for k in ordered if k not in given]
    for key in ordered:
        fits = _largest_fitting(c, key, budget)
        if fits >= (2 if key == "num_classes" else 1):
            return key, fits
    return ordered[0], 0


def _show(n: int) -> str:
    """An integer as given, or in scientific notation when it is absurdly long."""
    text = str(n)
    return text if len(text) <= 24 else f"{text[0]}.{text[1:3]}e+{len(text) - 1}"


def _gib(n: int) -> str:
    return f"about {n / 2**30:,.1f} GiB" if n < 2**80 else "more than 10^15 GiB"


def _available_memory() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 1 << 40


def validate(c: Config, names: dict[str, str] | None = None) -> Config:
    """Check every setting and how they fit together; return the config unchanged or raise.

    ``names`` says how to call a key in messages (its flag, or the file it came from)."""
    names = names or {}
    d = lambda key: names.get(key, f"'{key}'")  # noqa: E731
    for key in INT_KEYS:
        value = getattr(c, key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{d(key)} must be a whole number, got {value!r}")
    for key in ("epochs", "total_series_length", "truncated_backprop_length", "state_size",
                "batch_size", "snapshot_every"):
        if getattr(c, key) < 1:
            raise ConfigError(f"{d(key)} must be at least 1, got {getattr(c, key)}")
    if c.num_classes < 2:
        raise ConfigError(f"{d('num_classes')} must be at least 2, got {c.num_classes}")
    if c.echo_step < 0:
        raise ConfigError(f"{d('echo_step')} must be 0 or more, got {c.echo_step}")
    if c.seed < 0:
        raise ConfigError(f"{d('seed')} must be 0 or more, got {c.seed}")
    lr = c.learning_rate
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ConfigError(f"{d('learning_rate')} must be a positive finite number, got {lr!r}")
    if not FLOAT32_TINY <= lr <= FLOAT32_MAX:  # it is a float32 inside: beyond these it is inf or 0
        raise ConfigError(f"{d('learning_rate')} must be between {FLOAT32_TINY:.3g} and {FLOAT32_MAX:.3g} "
                          f"(training uses float32), got {lr!r}")
    if c.optimizer not in OPTIMIZERS:
        raise ConfigError(f"{d('optimizer')} must be one of {', '.join(OPTIMIZERS)}, got {c.optimizer!r}")
    if c.init not in INITS:
        raise ConfigError(f"{d('init')} must be one of {', '.join(INITS)}, got {c.init!r}")
    if c.device not in DEVICES:
        raise ConfigError(f"{d('device')} must be one of {', '.join(DEVICES)}, got {c.device!r}")
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
    if c.echo_step >= c.row_length:
        raise ConfigError(
            f"{d('echo_step')} {c.echo_step} is not shorter than a row ({c.row_length} steps); "
            f"allowed: 0 to {c.row_length - 1}"
        )
    need, have = _memory_bytes(c), _available_memory()
    if need > have // 2:
        key, fits = _what_to_reduce(c, have // 2, given=set(names))
        allowed = (f"at most {fits:,} with the other settings as they are" if fits
                   else "smaller values of the other settings too")
        raise ConfigError(
            f"{d(key)} {_show(getattr(c, key))} needs {_gib(need)} of memory and this machine "
            f"has {have / 2**30:,.1f} GiB (at most half of it may be used); allowed: {allowed}"
        )
    return c


def check_models(c: Config, models: int, name: str = "--seeds") -> None:
    """Refuse training ``models`` copies of a config together when they would not fit in memory
    (each holds its own weights, traces and series); before any of them is even built."""
    one, have = _memory_bytes(c), _available_memory()
    if models * one > have // 2:
        fits = (have // 2) // max(one, 1)
        raise ConfigError(
            f"{name} {_show(models)}: {_show(models)} models of these settings need {_gib(models * one)} of "
            f"memory and this machine has {have / 2**30:,.1f} GiB (at most half of it may be used); "
            f"allowed: at most {fits:,}"
        )


def load_toml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a config file into raw key/values (types checked by ``resolve``)."""
    p = Path(path)
    try:
        text = p.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {str(p)!r} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {str(p)!r} is a folder, not a file") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {str(p)!r} is not a TOML text file (byte {e.start} is not UTF-8)") from None
    except OSError as e:
        raise ConfigError(f"config file {str(p)!r} cannot be read: {e.strerror or e}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        # tomllib names the line, except at the very end of the file ("at end of document").
        last = max(len(text.splitlines()), 1)
        message = str(e).replace("(at end of document)", f"(at line {last}, the end of the file)")
        raise ConfigError(f"config file {str(p)!r} is not valid TOML: {message}") from None
    for key, value in data.items():
        if key not in FIELD_TYPES:
            close = difflib.get_close_matches(key.replace("-", "_"), FIELD_TYPES, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            allowed = ", ".join(FIELD_TYPES)
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
        if key not in FIELD_TYPES:
            raise ConfigError(f"unknown setting {key!r} (allowed: {', '.join(FIELD_TYPES)})")
        names[key] = flag_name(key)
        values[key] = _coerce(key, value, names[key])
    return validate(Config(**values), names)


def from_dict(data: dict[str, Any]) -> Config:
    """A config from a dict (a run file's), checked like a TOML file; unknown keys are refused."""
    for key in data:
        if key not in FIELD_TYPES:
            raise ConfigError(f"unknown setting {key!r}")
    return validate(Config(**{k: _coerce(k, v, f"'{k}'") for k, v in data.items()}))


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
