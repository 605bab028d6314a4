"""Settings: one dataclass whose defaults are the tutorial's, loaded from TOML and flags, checked once.

Everything is validated here, before any work, and every problem is one ``ConfigError`` whose text
names the key (or flag), the value given and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

OPTIMIZERS = ("adagrad", "adam", "sgd", "rmsprop")
DEVICES = ("auto", "cpu", "gpu")
INITS = ("tutorial", "glorot")

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
INT_KEYS = tuple(k for k, t in FIELD_TYPES.items() if t == "int")


def flag_name(key: str) -> str:
    return "--" + key.replace("_", "-")


def _coerce(key: str, value: Any, name: str) -> Any:
    """Check the type of one raw value (from TOML or a dict); ints stay ints, no silent rounding."""
    kind = FIELD_TYPES[key]
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be a whole number, got {value!r}")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} must be a number, got {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a string, got {value!r}")
    return value.lower()


def _memory_bytes(c: Config) -> int:
    """A rough upper bound of what one model of this config holds at once while training."""
    width = (1 if c.num_classes == 2 else c.num_classes) + c.state_size
    weights = (width * c.state_size + c.state_size * (c.num_classes + 1) + c.num_classes) * 4 * 4
    window = c.batch_size * c.truncated_backprop_length * (c.state_size * 8 + c.num_classes * 6) * 4
    series = c.total_series_length * 4 * 8  # symbols, targets, eval copies and masks
    n_snap = -(-c.windows_per_epoch // c.snapshot_every) if c.windows_per_epoch else 0
    snapshots = n_snap * c.batch_size * c.truncated_backprop_length * (c.num_classes + 2) * 4 * c.epochs
    return weights + window + series + snapshots


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
        raise ConfigError(
            f"these sizes need about {need / 2**30:.1f} GiB of memory and this machine has "
            f"{have / 2**30:.1f} GiB; reduce state_size, total_series_length, batch_size or epochs"
        )
    return c


def load_toml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a config file into raw key/values (types checked by ``resolve``)."""
    p = Path(path)
    try:
        text = p.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {str(p)!r} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {str(p)!r} is a folder, not a file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {str(p)!r} cannot be read: {e}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {str(p)!r} is not valid TOML: {e}") from None
    for key, value in data.items():
        if key not in FIELD_TYPES:
            allowed = ", ".join(FIELD_TYPES)
            raise ConfigError(f"config file {str(p)!r}: unknown key {key!r} (allowed: {allowed})")
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
