"""The strongest peer we could write: the Echo-RNN task as a JAX program, one ``jax.jit`` per epoch.

What a strong engineer would write for this task (issue 26): ``lax.scan`` over the epoch's windows
and, inside each, over its steps; ``jax.value_and_grad`` for the backward pass (XLA's own autodiff);
``jax.vmap`` for many models; batch-major layout. One input feature (the symbol itself), a Dense
layer of 2 logits, mean sparse cross-entropy, Adagrad 0.3 with accumulator 0.1 and epsilon 1e-7
(Keras's), the state carried from window to window and the gradient stopped at each window edge.
The cells are Keras's (LSTM gates [i, f, c, o] with forget bias 1; GRU [z, r, h], reset after).

Not part of echo-rnn: ``benchmarks/scaling.py`` imports it in a worker process of its own, and only
when JAX is installed (the ``bench`` extra).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

GATES = {"rnn": 1, "lstm": 4, "gru": 3}
LEARNING_RATE, ACCUMULATOR, EPSILON = 0.3, 0.1, 1e-7


def init(key, cell: str, state: int, inputs: int = 1, classes: int = 2) -> dict:
    """Keras's initial weights: Glorot-uniform kernels, orthogonal recurrent kernel, zero biases."""
    k1, k2, k3 = jax.random.split(key, 3)
    width = GATES[cell] * state
    glorot = jax.nn.initializers.glorot_uniform()
    p = {"kernel": glorot(k1, (inputs, width)),
         "recurrent": jax.nn.initializers.orthogonal()(k2, (state, width)),
         "bias": jnp.zeros((2, width) if cell == "gru" else (width,)),
         "W2": glorot(k3, (state, classes)), "b2": jnp.zeros((classes,))}
    if cell == "lstm":
        p["bias"] = p["bias"].at[state:2 * state].set(1.0)
    return p


def zero_state(cell: str, batch: int, state: int):
    h = jnp.zeros((batch, state))
    return (h, h) if cell == "lstm" else h


def step_fn(cell: str, p: dict):
    """One time step: (carry, x_t [B, I]) -> (carry, h_t)."""
    def rnn(h, x):
        h = jnp.tanh(x @ p["kernel"] + h @ p["recurrent"] + p["bias"])
        return h, h

    def lstm(carry, x):
        h, c = carry
        i, f, g, o = jnp.split(x @ p["kernel"] + h @ p["recurrent"] + p["bias"], 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    def gru(h, x):
        xz = x @ p["kernel"] + p["bias"][0]
        hz = h @ p["recurrent"] + p["bias"][1]
        xz_z, xz_r, xz_h = jnp.split(xz, 3, axis=-1)
        hz_z, hz_r, hz_h = jnp.split(hz, 3, axis=-1)
        z, r = jax.nn.sigmoid(xz_z + hz_z), jax.nn.sigmoid(xz_r + hz_r)
        h = z * h + (1.0 - z) * jnp.tanh(xz_h + r * hz_h)
        return h, h

    return {"rnn": rnn, "lstm": lstm, "gru": gru}[cell]


def window_loss(p: dict, carry, x, y, cell: str):
    """Mean cross-entropy of one window (x, y [B, T] int), and the state after it."""
    xs = jnp.swapaxes(x, 0, 1)[..., None].astype(jnp.float32)  # [T, B, 1]
    carry, hs = lax.scan(step_fn(cell, p), carry, xs)            # hs [T, B, S]
    logits = hs @ p["W2"] + p["b2"]
    logp = jax.nn.log_softmax(logits)
    nll = -jnp.take_along_axis(logp, jnp.swapaxes(y, 0, 1)[..., None], axis=-1)
    return jnp.mean(nll), carry


def train_epoch(p: dict, acc: dict, xs, ys, cell: str):
    """One epoch (xs, ys [W, B, T]): every window's loss, the weights and accumulators moved on."""
    grad = jax.value_and_grad(window_loss, has_aux=True)

    def body(state, xy):
        p, acc, carry = state
        (loss, carry), g = grad(p, carry, xy[0], xy[1], cell)
        acc = jax.tree.map(lambda a, gi: a + gi * gi, acc, g)
        p = jax.tree.map(lambda w, gi, a: w - LEARNING_RATE * gi / (jnp.sqrt(a) + EPSILON), p, g, acc)
        return (p, acc, lax.stop_gradient(carry)), loss

    state = p["recurrent"].shape[0]
    (p, acc, _), losses = lax.scan(body, (p, acc, zero_state(cell, xs.shape[1], state)), (xs, ys))
    return p, acc, losses


def initial(cell: str, state: int, models: int):
    """Weights and Adagrad accumulators of ``models`` models (stacked on a leading axis when more
    than one); model k's weights are the same whatever ``models`` is."""
    keys = jax.random.split(jax.random.PRNGKey(0), max(models, 2))[:models]
    ps = [init(k, cell, state) for k in keys]
    p = ps[0] if models == 1 else jax.tree.map(lambda *a: jnp.stack(a), *ps)
    return p, jax.tree.map(lambda w: jnp.full_like(w, ACCUMULATOR), p)


def compiled(cell: str, models: int):
    """The jitted epoch: one model, or ``models`` of them through ``vmap`` (xs, ys then [M, W, B, T])."""
    def one(p, acc, xs, ys):
        return train_epoch(p, acc, xs, ys, cell)
    return jax.jit(one if models == 1 else jax.vmap(one))


def time_epochs(cell: str, state: int, models: int, epoch_data, epochs: int, cap_s: float) -> dict:
    """Train ``models`` models for ``epochs`` timed epochs after an untimed first (compiling); each
    epoch's fresh data made inside the timing, as echo-rnn's trainer does. ``epoch_data(seed,
    epoch)`` -> (xs, ys) [W, B, T]. Returns the median seconds per window of the timed epochs."""
    import statistics

    p, acc = initial(cell, state, models)
    fn = compiled(cell, models)

    def epoch(e):
        t0 = time.perf_counter()
        batches = [epoch_data(s, e) for s in range(models)]
        xs, ys = (np.asarray(batches[0][i]) if models == 1 else np.stack([b[i] for b in batches]) for i in (0, 1))
        nonlocal p, acc
        p, acc, losses = fn(p, acc, xs, ys)
        losses = np.asarray(losses)  # read back, as echo-rnn reads its traces
        return time.perf_counter() - t0, losses, xs.shape[-3]

    epoch(0)  # compiles
    times, start, last = [], time.perf_counter(), None
    for e in range(1, epochs + 1):
        seconds, last, windows = epoch(e)
        times.append(seconds / windows)
        if e >= 3 and time.perf_counter() - start > cap_s:
            break
    return {"per_window_us": statistics.median(times) * 1e6, "final_loss": float(np.mean(last[-10:])),
            "jax": jax.__version__}
