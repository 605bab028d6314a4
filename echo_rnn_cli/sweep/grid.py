"""The grid and its points: ``--grid`` parsing, expansion into validated points, and run names.

Light on purpose: ``summary`` and ``heatmap`` import the naming helpers from here, so nothing
below may import the executors, Ray, multiprocessing or TensorFlow.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..config import GRID_KEYS, Config, ConfigError, config_warnings, key_order, parse_setting, validate

#: More runs than this in one sweep is surely a typo (and would take days).
MAX_POINTS = 100_000
_SAFE = re.compile(r"[^A-Za-z0-9.+-]")


def parse_grid(specs: Iterable[str]) -> dict[str, list[Any]]:
    """``["echo_step=1,2,3", "learning-rate=0.1,0.3"]`` -> ``{"echo_step": [1, 2, 3], ...}``.

    Keys may be written with ``-`` or ``_``; values are typed by the config field. Any problem is one
    ``ConfigError`` naming the ``--grid`` argument."""
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ConfigError(f"--grid {spec!r}: expected KEY=V1,V2,... (e.g. echo_step=1,2,3)")
        if key not in GRID_KEYS:
            raise ConfigError(f"--grid {spec!r}: unknown key {key!r} (allowed: {', '.join(GRID_KEYS)})")
        if key in grid:
            raise ConfigError(f"--grid {key}: given twice; list all its values in one --grid")
        name = f"--grid {key}"
        parsed = [parse_setting(key, v, name) for v in values.split(",")]
        if len(set(parsed)) != len(parsed):
            dup = next(v for v in parsed if parsed.count(v) > 1)
            raise ConfigError(f"{name}: value {dup!r} is listed twice")
        grid[key] = parsed
    return grid


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)  # shortest form that reads back the same: 0.3, 1e-05
    return str(value)


def point_name(settings: Mapping[str, Any]) -> str:
    """``{"echo_step": 3, "seed": 0}`` -> ``echo_step=3_seed=0``: readable, safe in a file name,
    the same for the same settings whatever order the grid was given in."""
    parts = [f"{k}={_SAFE.sub('-', format_value(settings[k]))}" for k in key_order(settings)]
    name = "_".join(parts) or "run"
    if len(name) > 200:  # file systems allow 255 bytes; keep the name unique with a digest
        name = name[:180] + "_" + hashlib.sha1(name.encode()).hexdigest()[:12]
    return name


@dataclass(frozen=True)
class Point:
    """One run of the sweep: its settings that vary (and seed), full config and file stem."""

    name: str
    config: Config
    settings: dict[str, Any]

    @property
    def file(self) -> str:
        return self.name + ".npz"


def _check_grid(grid: Mapping[str, Sequence[Any]], seeds: int) -> None:
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    count = math.prod(len(v) for v in grid.values()) * seeds
    if count > MAX_POINTS:
        # Checked before any point is built: expanding a huge grid would hang for minutes.
        raise ConfigError(f"--grid and --seeds {seeds} make {count:,} runs; allowed: at most {MAX_POINTS:,} "
                          f"in one sweep (split it into several)")
    if "seed" in grid and seeds > 1:
        raise ConfigError("--grid seed and --seeds both choose seeds; give one of them")
    for key, values in grid.items():
        if key not in GRID_KEYS:
            raise ConfigError(f"--grid: unknown key {key!r} (allowed: {', '.join(GRID_KEYS)})")
        if not len(values):
            raise ConfigError(f"--grid {key}: no values")


def expand_grid(base: Config, grid: Mapping[str, Sequence[Any]], seeds: int = 1) -> list[Point]:
    """Every combination of the grid's values (last key fastest), each with ``seeds`` seeds
    ``base.seed .. base.seed + seeds - 1``; every point's config is validated before it is returned."""
    _check_grid(grid, seeds)
    combos: list[dict[str, Any]] = [{}]
    for key, values in grid.items():
        combos = [{**c, key: v} for c in combos for v in values]
    names = {k: f"--grid {k}" for k in grid}
    points = []
    for combo in combos:
        seed_values = [combo["seed"]] if "seed" in combo else [base.seed + k for k in range(seeds)]
        for seed in seed_values:
            settings = {**combo, "seed": seed}
            values = base.to_dict() | settings
            try:
                config = validate(Config(**values), names)
            except (ConfigError, TypeError) as e:  # TypeError: a value of the wrong type from the Python API
                raise ConfigError(f"point {point_name(settings)}: {e}") from None
            points.append(Point(point_name(settings), config, settings))
    return points


def learnability_warnings(points: Sequence[Point]) -> list[str]:
    """The trainer's per-run warnings, counted once for the whole sweep."""
    unlearnable = [p for p in points if config_warnings(p.config)]
    if not unlearnable:
        return []
    return [f"echo_step >= truncated_backprop_length in {len(unlearnable)} of {len(points)} points: no window "
            f"holds a symbol and its echo, so those cannot learn it (expected in a learnability sweep)"]
