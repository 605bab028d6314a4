"""The one place TensorFlow is imported. Only modules that train import this one, so that
``echo-rnn --help`` and ``echo-rnn plot`` never pay TensorFlow's start-up of several seconds."""

import contextlib
import importlib.abc
import importlib.machinery
import os
import platform
import sys

from . import native_stderr, xla_cache

# Before the import: TensorFlow reads these once. Quiet its C++ start-up chatter (users get our
# own messages instead), and keep oneDNN's reordered float sums out so CPU runs are bit-reproducible.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
# One intra-op thread. XLA's CPU runtime hands each of a compiled program's kernels (a few
# hundred a window, each a few microseconds) to TensorFlow's intra-op pool, so with a pool of
# several threads consecutive kernels of one chain of dependent steps wake each other on other
# cores: a 64-unit LSTM's window took 555 us so and 341 us on one thread (the GRU 251 against
# 177, at 4 units 51 against 30; the tanh cell, a few kernels a step, the same), idle 2-core AMD
# EPYC, benchmarks/RESULTS.md. Nothing here is large enough to gain from a second thread; the
# held-out evaluation still compiles on another core (a Python thread), and a sweep runs a
# process per core. TF_NUM_INTRAOP_THREADS set by the user wins.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")


def _add_flag(variable: str, flags: str) -> None:
    """Append flags to XLA_FLAGS / TF_XLA_FLAGS unless the user already set the first of them."""
    current = os.environ.get(variable, "")
    if flags.split("=")[0] not in current:
        os.environ[variable] = f"{current} {flags}".strip()


#: ARM CPUs (Linux's aarch64, macOS's arm64): fused multiply-add is in their base instruction set.
ARM = platform.machine().lower() in ("aarch64", "arm64")

# LLVM's -O1 instead of -O3 for XLA's kernels: compiling our programs takes 15-40% less time and
# the code runs as fast or faster (they are tiny fused loops; see benchmarks/RESULTS.md). Not on
# ARM, where only -O3 lets the FMA switch below work (see there).
_add_flag("XLA_FLAGS", f"--xla_backend_optimization_level={3 if ARM else 1}")
# No fused multiply-adds in XLA's own kernels. LLVM contracts a multiply feeding an add into one
# FMA instruction (one rounding instead of two) wherever the vectorizer leaves the two side by
# side, and where it does depends on the shapes, the number of models among them, and on the
# CPU's vector width: a model trained with --seeds then parted in its last bits from the same
# model trained alone (fast math: a GRU from 3 models on, a tanh cell from 5). Capped at AVX
# (which has no FMA), every multiply and add rounds on its own, in every lane, on every x86 CPU.
# The library kernels that fast math calls (Eigen's matrix products) choose their own.
# On ARM no cap can remove FMA (every aarch64 CPU has it; XLA's ISA cap only knows x86 names), and
# XLA tells LLVM to fuse wherever it can (TargetOptions AllowFPOpFusion=Fast, fixed in its code). But
# at -O3 LLVM's AArch64 back end leaves forming FMAs to its machine combiner pass instead of its
# instruction selection (generateFMAsInMachineCombiner), and that pass has a switch of its own,
# reachable through XLA's pass-through to LLVM's options: with it off, no multiply and add are fused
# and ARM computes the x86 trace bit for bit (tanh, exp and the sigmoid included; see
# docs/reliability.md). A user's own --xla_backend_* flags replace ours, and fusion may come back.
if ARM:
    _add_flag("XLA_FLAGS", "--xla_backend_extra_options=-aarch64-enable-mcr=false")
else:
    _add_flag("XLA_FLAGS", "--xla_cpu_max_isa=AVX")
_user_tf_xla_flags = os.environ.get("TF_XLA_FLAGS")
_cache_flag = xla_cache.setup()
if _cache_flag:
    _add_flag("TF_XLA_FLAGS", _cache_flag)


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


class _SkipKeras(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """TensorFlow's import eagerly imports Keras (and through it matplotlib): a second of start-up
    for nothing we use. During that import, Keras is found where it is (TensorFlow reads its folder
    to set up ``tf.keras``) but refuses to load, which TensorFlow tolerates. Afterwards ``tf.keras``,
    ``from tensorflow.keras import ...`` and ``import keras`` work as usual, loading Keras then."""

    NAMES = ("keras", "tf_keras")

    def find_spec(self, name, path=None, target=None):
        if name not in self.NAMES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None:
            spec.loader = self
        return spec

    def create_module(self, spec):
        raise ImportError(f"{spec.name} is not loaded while TensorFlow is imported")

    def exec_module(self, module):  # pragma: no cover - create_module always refuses
        raise ImportError(module.__name__)


@contextlib.contextmanager
def _without_keras():
    if any(name in sys.modules for name in _SkipKeras.NAMES):
        yield
        return
    finder = _SkipKeras()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


with quiet_native_stderr(), _without_keras():
    import tensorflow as tf

    # The first device query initialises the platforms, which is when CUDA complains.
    tf.config.list_physical_devices()

# TensorFlow has read its XLA flags by now. Our staging folder is this process's own: a child
# process (a sweep worker, a user's subprocess) must not inherit it, so the variable goes back.
if _cache_flag:
    if _user_tf_xla_flags is None:
        os.environ.pop("TF_XLA_FLAGS", None)
    else:
        os.environ["TF_XLA_FLAGS"] = _user_tf_xla_flags


def _log_level() -> int:
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0


# Loading a cached program makes TensorFlow log two false alarms at level ERROR (see
# xla_cache.NOISE); shown only where ERROR lines are (TF_CPP_MIN_LOG_LEVEL below 3).
if _cache_flag and _log_level() < 3:
    native_stderr.install(xla_cache.NOISE)

__all__ = ["tf", "quiet_native_stderr"]
