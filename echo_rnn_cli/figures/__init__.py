"""Figures from run records, one family per module; matplotlib only, never TensorFlow.

- ``common``: what every figure shares: ``PlotError``, the tutorial's colours and bar heights, the
  settings line of a title, checks of a run and of ``--rows``/``--step``, the still formats, saving
  (atomically) and ``display_problem``.
- ``training``: the tutorial's figure (the loss over windows above input/echo/prediction bars) as a
  still, and its ``TrainingPanels``, which the replay and the live figure update.
- ``compare``: loss curves of several runs on one axis.
- ``animation``: the replay of a run's snapshots as a GIF (Pillow) or an MP4 (matplotlib's ffmpeg writer).
- ``live``: the figure ``train --live`` updates after each epoch.
- ``heatmap``: a sweep's held-out accuracy over two settings, averaged over seeds.
- ``states``: the hidden (and LSTM cell) state of a trained network over a sequence, recomputed with
  NumPy from the saved weights (``inference``), with the input, echo and prediction under it.

The functions take ``Run`` objects (or summary rows) and return matplotlib Figures, so a notebook
calls them as the command line does::

    from echo_rnn_cli import load_run
    from echo_rnn_cli.figures.training import training_figure
    training_figure(load_run("run.npz"), rows=3, log=True)

Files are drawn on a bare ``Figure`` (the Agg renderer; pyplot and its GUI backends are never
touched), so writing figures works headless and leaves no global state behind. Only ``--show`` and
``--live`` use pyplot, after ``common.display_problem`` has said a window can open. A new figure is a
new module here, built from ``common`` (and from ``training.TrainingPanels`` if it shows the bars).
"""
