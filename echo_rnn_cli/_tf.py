"""The one place TensorFlow is imported. Only modules that train import this one, so that
``echo-rnn --help`` and ``echo-rnn plot`` never pay TensorFlow's start-up of several seconds."""

import contextlib
import os
import sys

# Before the import: TensorFlow reads these once. Quiet its C++ start-up chatter (users get our
# own messages instead), and keep oneDNN's reordered float sums out so CPU runs are bit-reproducible.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


@contextlib.contextmanager
def quiet_native_stderr():
    """Silence what TensorFlow's C++ side writes to fd 2 before its logging is set up (CUDA probes
    on machines without a GPU, absl notices); Python exceptions still propagate as usual."""
    if os.environ.get("ECHO_RNN_DEBUG"):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (some embedding hosts)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


with quiet_native_stderr():
    import tensorflow as tf  # noqa: E402

    # The first device query initialises the platforms, which is when CUDA complains.
    tf.config.list_physical_devices()

__all__ = ["tf", "quiet_native_stderr"]
