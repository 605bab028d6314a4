"""The live figure of ``train --live``: the tutorial's figure, redrawn in a window as training goes.

The one figure that uses pyplot (a window needs it); callers ask ``common.display_problem`` first.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from ..config import Config
from .common import settings_text, suptitle
from .training import TrainingPanels, figure_size


class LiveFigure:
    """The tutorial's live figure during training: updated after every epoch with the loss so far
    and the bars of that epoch's last snapshot (of the first model when several train together)."""

    def __init__(self, config: Config, rows: int | None = None, warn=None, every: float = 0.25):
        import matplotlib.pyplot as plt

        self.plt = plt
        self.every = every  # seconds between redraws at most: a redraw costs more than a short epoch
        self._drawn = 0.0
        self.warn = warn or (lambda m: print(f"Warning: {m}", file=sys.stderr))
        self.rows = min(5, config.batch_size) if rows is None else rows
        self.loss: list[np.ndarray] = []
        self.alive = True
        plt.ion()
        self.fig = plt.figure(figsize=figure_size(self.rows))
        self.fig.canvas.manager.set_window_title("echo-rnn train")
        self.panels = TrainingPanels(self.fig, config, self.rows, planned_windows=None)
        suptitle(self.fig, "training: " + settings_text(config))
        plt.show(block=False)
        plt.pause(0.001)

    def update(self, report) -> None:
        """An ``on_epoch`` callback; a closed window or a GUI error ends the updates, not training."""
        samples = getattr(report, "samples", None)
        if not self.alive or samples is None:
            return
        try:
            if not self.plt.fignum_exists(self.fig.number):
                self.alive = False
                return
            self.loss.append(np.asarray(samples.loss))
            now = time.monotonic()
            if report.epoch < report.epochs and now - self._drawn < self.every:
                self.fig.canvas.flush_events()  # keep the window responsive between redraws
                return
            self._drawn = now
            self._redraw(report, samples)
        except Exception as e:  # a broken window must not stop training
            self.alive = False
            self.warn(f"--live: the figure stopped updating ({type(e).__name__}: {e}); training goes on")

    def _redraw(self, report, samples) -> None:
        loss = np.concatenate(self.loss)
        # Windows before this call (a resumed run) are not drawn; place this call's at their windows.
        offset = samples.window_offset + samples.loss.size - loss.size
        self.panels.show_loss(np.concatenate([np.full(offset, np.nan), loss]))
        if samples.snapshot_window.size:
            self.panels.show_snapshot(int(samples.snapshot_window[-1]), samples.inputs[-1],
                                      samples.targets[-1], samples.probs[-1])
        suptitle(self.fig, f"training: epoch {report.epoch}/{report.epochs}, loss {report.loss:.4f}\n"
                 + settings_text(self.panels.config))
        self.fig.canvas.draw_idle()
        self.fig.canvas.flush_events()

    def finish(self) -> None:
        """Keep the final figure open until its window is closed, as the tutorial's plt.show() did."""
        if self.alive and self.plt.fignum_exists(self.fig.number):
            self.plt.ioff()
            self.plt.show()
