"""Sweep results as rows: one per run file, for tables, CSV, JSON and the heatmap.

Reads run files only through ``load_run`` and never imports TensorFlow. A folder's rows are its
``*.npz`` files plus, from a sweep's ``sweep.json``, the points that have no run file yet (never
started, or failed without one), so a summary of an unfinished sweep shows what is missing.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import SETTINGS, key_order
from .runs import RunFileError, load_run
from .sweep.manifest import ManifestError, read_manifest

#: Result columns after the config keys, in this order, in CSV and JSON.
RESULT_KEYS = ("init_used", "math_used", "eval_accuracy", "eval_loss", "final_loss", "memory_lag", "wall_seconds",
               "epochs_completed", "status", "message", "file")


@dataclass
class Row:
    file: str
    config: dict[str, Any]
    status: str
    message: str = ""
    eval_accuracy: float = math.nan
    eval_loss: float = math.nan
    final_loss: float = math.nan
    wall_seconds: float = math.nan
    epochs_completed: int | None = None
    #: 'auto' settings as the run resolved them (empty for a point that left no run file).
    init_used: str = ""
    math_used: str = ""
    #: The lag the network rests on most at its last memory record (None: none, or not recorded).
    memory_lag: int | None = None

    def flat(self) -> dict[str, Any]:
        """Config keys (all of them, in the config's order), then the results."""
        out = {k: self.config.get(k) for k in SETTINGS}
        out.update({k: getattr(self, k) for k in RESULT_KEYS})
        return out


@dataclass
class Collected:
    rows: list[Row] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # one line per file that could not be read


def _row_from_file(path: Path) -> Row:
    run = load_run(path)
    return Row(file=str(path), config=run.config.to_dict(), init_used=run.init_used, math_used=run.math_used,
               status=run.status, message=run.message,
               eval_accuracy=run.eval_accuracy, eval_loss=run.eval_loss, final_loss=run.final_loss,
               wall_seconds=run.wall_seconds, epochs_completed=run.epochs_completed, memory_lag=run.memory_peak[0])


def collect(paths: Iterable[str | Path]) -> Collected:
    """Rows for run files and folders of run files (a folder's ``*.npz``, not its subfolders)."""
    out = Collected()
    seen: set[Path] = set()
    for p in map(Path, paths):
        if p.is_dir():
            files = sorted(f for f in p.glob("*.npz") if not f.name.startswith("."))
            missing_from_manifest(p, {f.name for f in files}, out)
        else:
            files = [p]
        for f in files:
            if f.resolve() in seen:
                continue
            seen.add(f.resolve())
            try:
                out.rows.append(_row_from_file(f))
            except RunFileError as e:
                out.errors.append(str(e))
    out.rows = sort_rows(out.rows)
    return out


def missing_from_manifest(folder: Path, present: set[str], out: Collected) -> None:
    """Points a sweep planned whose run file is not (yet) in the folder."""
    try:
        manifest = read_manifest(folder)
    except ManifestError as e:  # the run files' rows still print; this is one skip line
        out.errors.append(str(e))
        return
    if manifest is None:
        return
    base = manifest.get("base_config") or {}
    for point in manifest["points"]:
        try:
            name, settings, status = point["file"], point["settings"], point["status"]
        except (KeyError, TypeError):
            continue
        if name in present:
            continue
        out.rows.append(Row(file=str(folder / name), config={**base, **settings},
                            status="error" if status == "error" else "pending",
                            message=point.get("message") or ""))


def varying_keys(rows: Sequence[Row]) -> list[str]:
    """Config keys whose values differ between the rows (the sweep's axes and seed)."""
    keys = [k for k in SETTINGS if len({json.dumps(r.config.get(k)) for r in rows}) > 1]
    return key_order(keys)


def _sort_value(v: Any) -> tuple:
    return (0, v, "") if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, 0, str(v))


def sort_rows(rows: Sequence[Row]) -> list[Row]:
    """By the varying settings (numbers as numbers), in ``key_order``; the file name last."""
    keys = varying_keys(rows)
    return sorted(rows, key=lambda r: (*[_sort_value(r.config.get(k)) for k in keys], r.file))


def _json_safe(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def to_json(rows: Sequence[Row]) -> str:
    """A list of flat objects: the config keys, then the results (NaN as null)."""
    return json.dumps([{k: _json_safe(v) for k, v in r.flat().items()} for r in rows], indent=1)


def to_csv(rows: Sequence[Row]) -> str:
    """Header: every config key, then ``RESULT_KEYS``; empty cells for no value."""
    buf = io.StringIO()
    columns = [*SETTINGS, *RESULT_KEYS]
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if _json_safe(v) is None else v) for k, v in r.flat().items()})
    return buf.getvalue()


def _fmt(v: float, digits: int = 4) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def render_table(rows: Sequence[Row], console, plain: bool = False) -> None:
    """A rich table: file name, the settings that vary, the results. ``plain`` (a pipe or file):
    no title and no box-drawing lines, a header line and a line per run, columns apart by spaces,
    for `while read` loops, `awk` and `column`."""
    from rich.table import Table

    keys = varying_keys(rows)
    table = (Table(box=None, show_edge=False, pad_edge=False, padding=(0, 2, 0, 0)) if plain
             else Table(title=f"echo-rnn summary: {len(rows)} runs", title_justify="left"))
    for k in keys:
        table.add_column(k, justify="right")
    for col in ("status", "held-out acc", "final loss", "wall", "run file"):
        table.add_column(col, justify="left" if col in ("status", "run file") else "right")
    for r in rows:
        colour = {"completed": "green", "interrupted": "yellow", "pending": "yellow"}.get(r.status, "red")
        table.add_row(*[str(r.config.get(k)) for k in keys], f"[{colour}]{r.status}[/]",
                      _fmt(r.eval_accuracy), _fmt(r.final_loss),
                      "-" if not math.isfinite(r.wall_seconds) else f"{r.wall_seconds:.1f}s", Path(r.file).name)
    console.print(table)
