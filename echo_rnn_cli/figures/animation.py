"""The replay of a run: its snapshots in order, the loss curve growing and the bars changing, as the
tutorial's live figure did during training. GIF through Pillow, MP4 through matplotlib's ffmpeg writer."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..files import atomic_write
from ..runs import Run
from .common import PlotError, check_rows, require_windows
from .training import TrainingPanels, new_figure, run_log_scale, run_title, trained_windows

ANIMATION_FORMATS = ("gif", "mp4")


def animation_format(path: str | os.PathLike) -> str:
    """'gif' or 'mp4' from the file's extension; PlotError for others, or MP4 without ffmpeg."""
    path = Path(path)
    kind = path.suffix.lower().lstrip(".")
    if os.path.isdir(path):  # not Path.is_dir, which raises for a name too long (guards words that)
        raise PlotError(f"--animate {str(path)!r} is a folder; give a file name such as "
                        f"{str(path / 'replay.gif')!r}")
    if kind not in ANIMATION_FORMATS:
        got = f": {path.suffix!r} is not an animation format" if path.suffix else " has no extension"
        raise PlotError(f"--animate {str(path)!r}{got}; use .gif (or .mp4 with ffmpeg)")
    if kind == "mp4" and ffmpeg_path() is None:
        raise PlotError(f"--animate {str(path)!r}: MP4 needs ffmpeg (on PATH, or pip install "
                        f"'echo-rnn-cli[video]'); use .gif")
    return kind


def animation_frames(run: Run, frames: int | None = 100) -> np.ndarray:
    """Snapshot indices replayed: all of them, or ``frames`` spread evenly from the first to the last."""
    K = run.snapshot_window.size
    if K == 0:
        raise PlotError("the run holds no prediction snapshots to replay")
    if frames is None or frames >= K:
        return np.arange(K)
    if frames < 1:
        raise PlotError(f"--frames {frames}: must be at least 1")
    return np.unique(np.linspace(0, K - 1, frames).round().astype(int))


def animate(run: Run, path: str | os.PathLike, fps: int = 10, rows: int | None = None, log: bool | None = None,
            frames: int | None = 100, dpi: int = 80, *, name: str | None = None, replace: bool = True,
            final: bool = False) -> int:
    """Replay the snapshots in order into a GIF or an MP4 (by the extension of ``path``), written
    atomically (over what is there only if ``replace``); returns the number of frames."""
    path = Path(path)
    kind = animation_format(path)
    require_windows(run, name)
    rows = check_rows(run, rows)
    order = animation_frames(run, frames)
    fig = new_figure(None, rows)
    fig.set_dpi(dpi)
    log, note = run_log_scale(run, log)
    panels = TrainingPanels(fig, run.config, rows, log, trained_windows(run), note)
    x, y = run.loss_points()
    panels.show_loss(y, x=x)  # legend entries for all the run will show (a divergence, say)
    run_title(fig, run, name)

    def show(i: int) -> None:
        k = order[i]
        window = int(run.snapshot_window[k])
        panels.show_loss(y, upto=window + 1, x=x)
        panels.rescale_for(y)
        panels.show_snapshot(window, run.snapshot_inputs[k], run.snapshot_targets[k], run.snapshot_probs[k])

    render = _blitter(fig, panels, show)
    write = _write_gif if kind == "gif" else _write_mp4
    atomic_write(path, lambda tmp: write(tmp, render, len(order), fps), replace=replace, final=final)
    return int(len(order))


def _blitter(fig, panels: TrainingPanels, show):
    """``render(i)``: frame i as an RGB array. The axes, ticks and titles are drawn once as a
    background, and each frame redraws only what changes (a full redraw per frame is ten times slower)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    show(0)
    canvas = FigureCanvasAgg(fig)
    changing = panels.changing_artists()
    for artist in changing:
        artist.set_animated(True)
    canvas.draw()
    background = canvas.copy_from_bbox(fig.bbox)

    def render(i: int) -> np.ndarray:
        show(i)
        canvas.restore_region(background)
        for artist in changing:
            artist.axes.draw_artist(artist)
        return np.asarray(canvas.buffer_rgba())[..., :3]

    return render


def _write_gif(path: Path, render, count: int, fps: int) -> None:
    """Frames as one GIF, all mapped to one palette made from the first and last frames (what
    matplotlib's PillowWriter does, less a palette search per frame, which cost more than drawing)."""
    from PIL import Image

    last = Image.fromarray(np.array(render(count - 1)))
    first = Image.fromarray(np.array(render(0)))
    both = Image.new("RGB", (first.width, first.height * 2))
    both.paste(first, (0, 0))
    both.paste(last, (0, first.height))
    palette = both.quantize(colors=255, method=Image.Quantize.MEDIANCUT)

    def frames():
        for i in range(1, count):
            yield Image.fromarray(render(i)).quantize(palette=palette, dither=Image.Dither.NONE)

    head = first.quantize(palette=palette, dither=Image.Dither.NONE)
    head.save(path, format="GIF", save_all=True, append_images=frames(), duration=round(1000 / fps), loop=0)


def _write_mp4(path: Path, render, count: int, fps: int) -> None:
    """Frames as H.264 through matplotlib's ffmpeg writer, which encodes a bare "screen" figure
    showing each frame as an image (at dpi 1 its size in inches is its size in pixels, exactly)."""
    import matplotlib
    from matplotlib import animation
    from matplotlib.figure import Figure

    first = np.array(render(0))
    height, width = first.shape[:2]
    screen = Figure(figsize=(width, height), dpi=1)
    image = screen.figimage(first, resize=False)
    writer = animation.FFMpegWriter(fps=fps, codec="h264", extra_args=[  # H.264 in yuv420p needs even sizes
        "-pix_fmt", "yuv420p", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"])
    with matplotlib.rc_context({"animation.ffmpeg_path": ffmpeg_path()}), writer.saving(screen, str(path), dpi=1):
        writer.grab_frame()
        for i in range(1, count):
            image.set_data(np.array(render(i)))
            writer.grab_frame()


def ffmpeg_path() -> str | None:
    """ffmpeg as matplotlib finds it (on PATH), else the one the optional imageio-ffmpeg ships."""
    import shutil

    import matplotlib

    found = shutil.which(matplotlib.rcParams["animation.ffmpeg_path"])
    if found:
        return found
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # not installed, or no binary for this platform
        return None
