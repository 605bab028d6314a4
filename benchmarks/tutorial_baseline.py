"""Baseline (a): Erik Hallstrom's "How to Build a Recurrent Neural Network in
TensorFlow" tutorial, re-created faithfully through ``tf.compat.v1``.

The graph is the tutorial's: a hand-unrolled (``truncated_backprop_length``
steps) vanilla RNN with ``tanh`` state, a softmax read-out at every step, mean
sparse softmax cross-entropy, and ``AdagradOptimizer(0.3)``; one
``sess.run`` per window, feeding the last state back in via ``init_state``.
Only the old API names are translated (``tf.unpack`` -> ``tf.unstack``,
``tf.concat(1, [...])`` -> ``tf.concat([...], 1)``, keyword arguments for
``sparse_softmax_cross_entropy_with_logits``, ``initialize_all_variables`` ->
``global_variables_initializer``).  Plotting is omitted: this measures
training only.

IMPORTANT: ``run_tutorial`` calls ``tf.compat.v1.disable_eager_execution()``,
which is process-global and cannot be undone.  Run it in its own process
(e.g. ``python benchmarks/tutorial_baseline.py --max-windows 3000``), never in
a process that also runs eager / ``tf.function`` code that is being compared
against it.

Command line::

    python benchmarks/tutorial_baseline.py [--epochs N] [--max-windows N] [--seed N]

prints the result dict (without the per-window ``loss`` list) as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def run_tutorial(
    epochs: int = 100,
    total_series_length: int = 50000,
    truncated_backprop_length: int = 15,
    state_size: int = 4,
    batch_size: int = 5,
    echo_step: int = 3,
    seed: int = 0,
    max_windows: int | None = None,
) -> dict:
    """Train the tutorial's Echo-RNN in graph mode and time the training loop.

    Disables eager execution for the whole process: run in a dedicated
    process (see the module docstring).

    Returns a dict with:
      * ``windows`` - number of ``sess.run`` training steps (windows) executed;
      * ``seconds`` - wall time of the training loop only (per-epoch data
        generation included, as in the tutorial's loop; graph build and
        variable initialisation excluded);
      * ``per_window_seconds`` - ``seconds / windows``;
      * ``build_seconds`` - wall time to build the graph, create the session
        and initialise the variables;
      * ``final_loss_mean`` - mean loss over the windows run in the last
        epoch reached (a partial epoch if ``max_windows`` stopped early);
      * ``loss`` - the loss of every window, in order.

    ``max_windows`` stops after that many windows in total, so a benchmark can
    time a slice and extrapolate.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    tf1 = tf.compat.v1
    tf1.disable_eager_execution()

    if total_series_length % batch_size:
        raise ValueError("total_series_length must be divisible by batch_size")
    if max_windows is not None and max_windows < 1:
        raise ValueError("max_windows must be >= 1 or None")

    num_classes = 2
    num_batches = total_series_length // batch_size // truncated_backprop_length

    np.random.seed(seed)

    def generateData():
        x = np.array(np.random.choice(2, total_series_length, p=[0.5, 0.5]))
        y = np.roll(x, echo_step)
        y[0:echo_step] = 0
        x = x.reshape((batch_size, -1))  # The first index changing slowest, subseries as rows
        y = y.reshape((batch_size, -1))
        return (x, y)

    t_build = time.perf_counter()
    graph = tf1.Graph()
    with graph.as_default():
        tf1.set_random_seed(seed)

        batchX_placeholder = tf1.placeholder(tf.float32, [batch_size, truncated_backprop_length])
        batchY_placeholder = tf1.placeholder(tf.int32, [batch_size, truncated_backprop_length])
        init_state = tf1.placeholder(tf.float32, [batch_size, state_size])

        W = tf1.Variable(np.random.rand(state_size + 1, state_size), dtype=tf.float32)
        b = tf1.Variable(np.zeros((1, state_size)), dtype=tf.float32)
        W2 = tf1.Variable(np.random.rand(state_size, num_classes), dtype=tf.float32)
        b2 = tf1.Variable(np.zeros((1, num_classes)), dtype=tf.float32)

        # Unpack columns
        inputs_series = tf.unstack(batchX_placeholder, axis=1)
        labels_series = tf.unstack(batchY_placeholder, axis=1)

        # Forward pass
        current_state = init_state
        states_series = []
        for current_input in inputs_series:
            current_input = tf.reshape(current_input, [batch_size, 1])
            input_and_state_concatenated = tf.concat([current_input, current_state], 1)
            next_state = tf.tanh(tf.matmul(input_and_state_concatenated, W) + b)
            states_series.append(next_state)
            current_state = next_state

        logits_series = [tf.matmul(state, W2) + b2 for state in states_series]
        predictions_series = [tf.nn.softmax(logits) for logits in logits_series]

        losses = [
            tf.nn.sparse_softmax_cross_entropy_with_logits(logits=logits, labels=labels)
            for logits, labels in zip(logits_series, labels_series, strict=True)
        ]
        total_loss = tf.reduce_mean(losses)

        train_step = tf1.train.AdagradOptimizer(0.3).minimize(total_loss)
        init_op = tf1.global_variables_initializer()

    sess = tf1.Session(graph=graph)
    try:
        sess.run(init_op)
        build_seconds = time.perf_counter() - t_build

        loss_list: list[float] = []
        epoch_losses: list[float] = []
        windows = 0
        done = False
        t0 = time.perf_counter()
        for _epoch in range(epochs):
            x, y = generateData()
            _current_state = np.zeros((batch_size, state_size))
            epoch_losses = []
            for batch_idx in range(num_batches):
                start_idx = batch_idx * truncated_backprop_length
                end_idx = start_idx + truncated_backprop_length

                batchX = x[:, start_idx:end_idx]
                batchY = y[:, start_idx:end_idx]

                _total_loss, _train_step, _current_state, _predictions_series = sess.run(
                    [total_loss, train_step, current_state, predictions_series],
                    feed_dict={
                        batchX_placeholder: batchX,
                        batchY_placeholder: batchY,
                        init_state: _current_state,
                    },
                )
                loss_list.append(float(_total_loss))
                epoch_losses.append(float(_total_loss))
                windows += 1
                if max_windows is not None and windows >= max_windows:
                    done = True
                    break
            if done:
                break
        seconds = time.perf_counter() - t0
    finally:
        sess.close()

    return {
        "windows": windows,
        "seconds": seconds,
        "per_window_seconds": seconds / windows if windows else float("nan"),
        "build_seconds": build_seconds,
        "final_loss_mean": (sum(epoch_losses) / len(epoch_losses)) if epoch_losses else float("nan"),
        "loss": loss_list,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Tutorial (tf.compat.v1 graph-mode) Echo-RNN speed baseline."
    )
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--max-windows", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    result = run_tutorial(epochs=args.epochs, max_windows=args.max_windows, seed=args.seed)
    result.pop("loss")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
