"""What a setting is: its type, default, allowed values, help line and where it may vary, and how one
raw value of it (from TOML, a flag's text or the Python API) is checked.

``Config`` (in ``config``) declares each setting once with :func:`setting`; the click options, the
TOML checks, grid values, the per-model and resumable sets and docs/training.md's table all follow from
those declarations. Nothing here knows the individual settings.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

#: A float setting is a float32 inside the compiled program: beyond these it is inf or 0.
FLOAT32_MAX, FLOAT32_TINY = 3.4028234663852886e38, 1.1754943508222875e-38


class ConfigError(ValueError):
    """A setting that cannot be used; the message is one line meant for the user."""


@dataclass(frozen=True)
class Setting:
    """One setting. ``kind`` is ``int``, ``float`` (a positive finite float32, at most ``max`` if
    given; or with ``fraction`` a number in [0, 1)) or ``str`` (one of ``choices``, compared in
    lower case). ``off``: a value outside those rules that is allowed too and means the setting
    does nothing (a float's 0)."""

    name: str
    kind: str
    default: Any
    help: str
    min: int | None = None
    max: int | float | None = None
    choices: tuple[str, ...] = ()
    per_model: bool = False   # may differ between models trained together in one compiled program
    grid: bool = True         # may vary in a sweep's --grid
    resumable: bool = False   # may change when a run is resumed (it changes neither the model nor its trace)
    off: Any = None           # the value that turns the setting off, allowed besides the rules above
    fraction: bool = False    # a float in [0, 1) (a probability that must leave something), not a positive one

    @property
    def flag(self) -> str:
        return flag_name(self.name)

    def allowed(self) -> str:
        """What is allowed, in words, for messages and help."""
        if self.choices:
            return f"one of {', '.join(self.choices)}"
        if self.kind == "float":
            if self.fraction:
                return "a number from 0 up to (not including) 1"
            off = "" if self.off is None else f", or {self.off:g} (off)"
            within = "a positive finite number" if self.max is None else f"a number above 0 and at most {self.max:g}"
            return within + off
        if self.max is not None:
            return f"{self.min} to {self.max}"
        return f"{self.min} or more"

    def coerce(self, value: Any, name: str) -> Any:
        """Check the type of one raw value (from TOML or a dict); ints stay ints, no silent rounding."""
        quoted = " (a string: write the number without quotes)" if _looks_numeric(value) else ""
        if self.kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{name} must be a whole number, got {value!r}{quoted}")
            return value
        if self.kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{name} must be {self.allowed()}, got {value!r}{quoted}")
            return float(value)
        if not isinstance(value, str):
            allowed = self.allowed() if self.choices else "a string"
            raise ConfigError(f"{name} must be {allowed}, got {value!r}")
        return value.lower()

    def parse(self, text: str, name: str) -> Any:
        """One value written as text (a --grid value), typed like the setting; range checks are
        ``check``'s, so a grid point is refused with the same words as a flag."""
        text = text.strip()
        if self.kind == "int":
            try:
                return int(text)
            except ValueError:
                raise ConfigError(f"{name}: {text!r} is not a whole number") from None
        if self.kind == "float":
            try:
                value = float(text)
            except ValueError:
                raise ConfigError(f"{name}: {text!r} is not a number") from None
            if not math.isfinite(value):
                raise ConfigError(f"{name}: {text!r} is not a finite number")
            return value
        if not text:
            raise ConfigError(f"{name}: empty value")
        return text.lower()

    def check_type(self, value: Any, name: str) -> None:
        """A value of the wrong type (possible from the Python API) is refused before any range."""
        if self.kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(f"{name} must be a whole number, got {value!r}")
        if self.kind == "float" and (isinstance(value, bool) or not isinstance(value, (int, float))
                                     or not math.isfinite(value) or value < 0
                                     or (value == 0 and not self.fraction and value != self.off)):
            raise ConfigError(f"{name} must be {self.allowed()}, got {value!r}")

    def check(self, value: Any, name: str) -> None:
        """Whether a value of the right type is allowed on its own (how it fits the others is
        ``config.validate``'s)."""
        if self.choices and value not in self.choices:
            raise ConfigError(f"{name} must be {self.allowed()}, got {value!r}")
        if self.off is not None and value == self.off:
            return
        if self.kind == "float" and self.fraction and not value < 1:
            raise ConfigError(f"{name} must be {self.allowed()}, got {value!r}")
        if self.kind == "float" and self.max is not None and value > self.max:
            raise ConfigError(f"{name} must be {self.allowed()}, got {value!r}")
        if self.kind == "float" and not self.fraction and not FLOAT32_TINY <= value <= FLOAT32_MAX:
            raise ConfigError(f"{name} must be between {FLOAT32_TINY:.3g} and {FLOAT32_MAX:.3g} "
                              f"(training uses float32), got {value!r}")
        if self.kind != "int":
            return
        if self.min is not None and value < self.min:
            words = "0 or more" if self.min == 0 else f"at least {self.min}"
            raise ConfigError(f"{name} must be {words}, got {value}")
        if self.max is not None and value > self.max:
            raise ConfigError(f"{name} must be at most {self.max}, got {value}")


def flag_name(key: str) -> str:
    return "--" + key.replace("_", "-")


def setting(default: Any, help: str, *, min: int | None = None, max: int | float | None = None,
            choices: tuple[str, ...] = (), per_model: bool = False, grid: bool = True,
            resumable: bool = False, off: Any = None, fraction: bool = False) -> Any:
    """A ``Config`` field with its rules as metadata (the name and type come from the field)."""
    rules = dict(help=help, min=min, max=max, choices=tuple(choices), per_model=per_model, grid=grid,
                 resumable=resumable, off=off, fraction=fraction)
    return dataclasses.field(default=default, metadata={"setting": rules})


def table(cls: type) -> dict[str, Setting]:
    """Every setting of a dataclass declared with :func:`setting`, in declaration order."""
    def kind(f: dataclasses.Field) -> str:  # a string where annotations are postponed, else the type
        return f.type if isinstance(f.type, str) else f.type.__name__

    return {f.name: Setting(name=f.name, kind=kind(f), default=f.default, **f.metadata["setting"])
            for f in dataclasses.fields(cls)}


def _looks_numeric(value: Any) -> bool:
    """A string that holds a number (a TOML value quoted by mistake)."""
    if not isinstance(value, str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True
