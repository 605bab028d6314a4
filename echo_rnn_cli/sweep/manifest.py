"""The output folder's record: ``sweep.json``, each point's result, and what is finished already.

Light like ``grid``: ``summary`` reads manifests through here without the executors.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Config, ConfigError
from ..files import atomic_write_bytes
from ..runs import RunFileError, load_run
from .grid import Point

MANIFEST = "sweep.json"
MANIFEST_VERSION = 1
#: Sweep-level statuses: a run file's status, or 'error' (the point's training raised; no file).
FAILED = ("diverged", "error")
#: Settings a finished run may differ in from the point and still count as that point.
_IGNORED_ON_RESUME = frozenset({"device"})


@dataclass
class PointResult:
    """What became of one point. ``summary`` is the run's ``Run.summary`` (what ``train --json``
    prints), or None when no run file was written (status 'error')."""

    name: str
    status: str
    message: str = ""
    summary: dict[str, Any] | None = None
    skipped: bool = False  # finished by an earlier run of the sweep

    @property
    def failed(self) -> bool:
        return self.status in FAILED


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _comparable(c: Config) -> dict[str, Any]:
    return {k: v for k, v in c.to_dict().items() if k not in _IGNORED_ON_RESUME}


def finished_points(points: Sequence[Point], out_dir: Path) -> dict[str, PointResult]:
    """Points whose run file already holds a completed run of their settings.

    A missing, unreadable, interrupted or diverged file means the point is trained (again). A
    completed run of *other* settings under the same name is refused: the folder holds another
    sweep, and overwriting it silently would lose work."""
    done = {}
    for p in points:
        path = out_dir / p.file
        if not path.exists():
            continue
        try:
            run = load_run(path)
        except RunFileError:
            continue
        old, new = _comparable(run.config), _comparable(p.config)
        if old != new:
            diffs = ", ".join(f"{k} {old[k]!r} vs {new[k]!r}" for k in old if old[k] != new[k])
            raise ConfigError(f"{str(path)!r} holds a run of other settings ({diffs}); "
                              f"use another --out-dir or remove it")
        if run.status == "completed":
            done[p.name] = PointResult(p.name, "completed", "", run.summary(str(path)), skipped=True)
    return done


class Manifest:
    """``DIR/sweep.json``: the sweep's settings and every point's status, rewritten whole after each
    point finishes, so it is current after a crash too."""

    def __init__(self, out_dir: Path, base: Config, grid: Mapping[str, Sequence[Any]], points: Sequence[Point],
                 executor: str) -> None:
        self.path = out_dir / MANIFEST
        self.data: dict[str, Any] = {
            "format_version": MANIFEST_VERSION,
            "created": _now(),
            "updated": _now(),
            "executor": executor,
            "base_config": base.to_dict(),
            "grid": {k: list(v) for k, v in grid.items()},
            "seeds": sorted({p.config.seed for p in points}),
            "points": {p.name: {"file": p.file, "settings": p.settings, "status": "pending", "message": ""}
                       for p in points},
        }
        self.write()

    def update(self, result: PointResult) -> None:
        entry = self.data["points"][result.name]
        entry["status"], entry["message"] = result.status, result.message
        for key in ("eval_accuracy", "final_loss", "wall_seconds"):
            entry[key] = (result.summary or {}).get(key)
        self.data["updated"] = _now()
        self.write()

    def write(self) -> None:
        doc = dict(self.data, points=list(self.data["points"].values()))
        atomic_write_bytes(self.path, (json.dumps(doc, indent=1) + "\n").encode())


def read_manifest(out_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((Path(out_dir) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("points"), list) else None
