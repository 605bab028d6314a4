"""The output folder's record: ``sweep.json``, each point's result, and what is finished already.

Light like ``grid``: ``summary`` reads manifests through here without the executors.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Config, ConfigError
from ..files import atomic_write_bytes
from ..runs import RunFileError, load_run
from .grid import MAX_POINTS, Point

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


def kept_run(path: Path, config: Config, status: str, epochs: int) -> PointResult | None:
    """What became of a point whose new run (``status``, ``epochs`` done) would replace ``path``
    but may not; None when it may. Nothing replaces a completed run (a worker whose driver died, a
    second sweep, a task trained again), and an interrupted run does not replace a run of the same
    settings that got as far. Missing or unreadable files may be replaced."""
    try:
        if not path.is_file():
            return None
        old = load_run(path)
    except (OSError, RunFileError):
        return None
    same = _comparable(old.config) == _comparable(config)
    if old.status == "completed" and same:
        return PointResult(path.stem, "completed", "", old.summary(str(path)), skipped=True)
    if old.status == "completed":
        return PointResult(path.stem, "error", f"{str(path)!r} now holds a completed run of other settings; "
                                               f"this point's run was not saved over it")
    if same and status == "interrupted" and old.epochs_completed >= epochs:
        return PointResult(path.stem, "interrupted", f"stopped after {epochs} epochs; the earlier run file "
                                                     f"with {old.epochs_completed} epochs was kept")
    return None


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


class ManifestError(ValueError):
    """A ``sweep.json`` that cannot be used; the message is one line naming the file and the fault."""


#: Larger than any manifest of MAX_POINTS points; a bigger file is not one this package wrote.
MAX_MANIFEST_BYTES = 256 * 2**20
#: JSON objects and lists, and commas, a manifest of MAX_POINTS points holds at most (two objects
#: and about twenty commas a point), with room for braces and commas in messages. Parsed, each
#: costs 8 to 64 bytes: 256 MB of '{},' would take 7 GB, so they are counted before parsing.
MAX_CONTAINERS = 4 * MAX_POINTS + 1024
MAX_COMMAS = 64 * MAX_POINTS


def read_manifest(out_dir: str | os.PathLike) -> dict[str, Any] | None:
    """``DIR/sweep.json``, checked: None when there is none; a ``ManifestError`` when it cannot be
    read or is not what a sweep writes (never a TypeError, a KeyError or a hang). What comes back
    has a dict ``base_config`` and a list of ``points``, each with str ``file`` (a plain name),
    dict ``settings`` and str ``status`` and ``message``."""
    path = Path(out_dir) / MANIFEST
    text = _read_regular(path)
    if text is None:
        return None
    where = repr(str(path))
    containers, commas = text.count(b"{") + text.count(b"["), text.count(b",")
    if containers > MAX_CONTAINERS or commas > MAX_COMMAS:
        raise ManifestError(f"{where} is not a sweep manifest: it holds {containers:,} JSON objects and lists and "
                            f"{commas:,} commas, more than a sweep of at most {MAX_POINTS:,} points writes")
    try:
        data = json.loads(text)
    except RecursionError:
        raise ManifestError(f"{where} is not a sweep manifest: its JSON is nested too deeply") from None
    except ValueError as e:  # also UnicodeDecodeError
        raise ManifestError(f"{where} is not a sweep manifest: not JSON ({str(e).splitlines()[0]})") from None
    problem = _manifest_problem(data)
    if problem:
        raise ManifestError(f"{where} is not a sweep manifest: {problem}")
    return data


def _read_regular(path: Path) -> bytes | None:
    """The file's bytes, None if there is none; a FIFO, device or folder is refused without
    blocking (opened non-blocking, checked with fstat before any read)."""
    where = repr(str(path))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ManifestError(f"{where} cannot be read: {e.strerror or e}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ManifestError(f"{where} is not a regular file")
        if info.st_size > MAX_MANIFEST_BYTES:
            raise ManifestError(f"{where} is not a sweep manifest: {info.st_size:,} bytes, more than "
                                f"{MAX_MANIFEST_BYTES:,}")
        chunks, size = [], 0
        while size <= MAX_MANIFEST_BYTES and (chunk := os.read(fd, 1 << 20)):
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    except OSError as e:
        raise ManifestError(f"{where} cannot be read: {e.strerror or e}") from None
    finally:
        os.close(fd)


def _manifest_problem(data: Any) -> str:
    """What is wrong with a parsed manifest, in a few words; '' when nothing is."""
    if not isinstance(data, dict):
        return f"the top level is {_json_kind(data)}, not an object"
    if not isinstance(data.get("base_config"), dict):
        return f"'base_config' is {_json_kind(data.get('base_config'))}, not an object"
    points = data.get("points")
    if not isinstance(points, list):
        return f"'points' is {_json_kind(points)}, not a list"
    for i, point in enumerate(points):
        if not isinstance(point, dict):
            return f"point {i + 1} is {_json_kind(point)}, not an object"
        for key, kind in (("file", str), ("settings", dict), ("status", str)):
            if not isinstance(point.get(key), kind):
                return f"point {i + 1}: {key!r} is {_json_kind(point.get(key))}, not {_json_kind(kind())}"
        if not isinstance(point.get("message", ""), str):
            return f"point {i + 1}: 'message' is {_json_kind(point.get('message'))}, not a string"
        name = point["file"]
        if name in ("", ".", "..") or "/" in name or os.sep in name or "\0" in name:
            return f"point {i + 1}: 'file' {name[:80]!r} is not a plain file name"
        point.setdefault("message", "")
    return ""


def _json_kind(value: Any) -> str:
    kinds = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "missing or null"}
    return kinds.get(type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)
