"""The network with the model axis first (``[M, ...]``), as the tests state their cases.

The package runs models-last inside its compiled programs (see ``echo_rnn_cli.model``); these
wrappers turn the axis around the package's own functions, so the tests check exactly what trains.
"""

from echo_rnn_cli._tf import tf
from echo_rnn_cli.model import Params, forward_ml, loss_and_grads_ml, models_first, models_last
from echo_rnn_cli.optim import OptState, apply_updates


def params_models_last(params: Params) -> Params:
    return Params(*map(models_last, params))


def params_models_first(params: Params) -> Params:
    return Params(*map(models_first, params))


def forward(params: Params, x, s0, num_classes: int, unroll: bool | None = None):
    """Run one window. x: [M, B, T] symbols; s0: [M, B, S] the carried state.

    Returns (xin [M,B,T,I], states [M,B,T,S], logits [M,B,T,C]).
    """
    out = forward_ml(params_models_last(params), models_last(x), models_last(s0), num_classes, unroll)
    return tuple(map(models_first, out))


def loss_and_grads(params: Params, x, y, s0, num_classes: int, unroll: bool | None = None):
    """``model.loss_and_grads_ml``, models first.

    Returns (loss [M], accuracy [M], probs [M,B,T,C], last state [M,B,S], grads: Params).
    """
    loss, acc, probs, last, grads = loss_and_grads_ml(
        params_models_last(params), models_last(x), models_last(y), models_last(s0), num_classes, unroll)
    return loss, acc, models_first(probs), models_first(last), params_models_first(grads)


def window_loss(params: Params, x, y, s0, num_classes: int):
    """The loss alone, for checking the hand-derived gradient with a gradient tape."""
    _, _, logits = forward(params, x, s0, num_classes)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
    return tf.reduce_mean(ce, axis=[1, 2])


def train_step(params: Params, opt: OptState, state, x, y, lr, *, optimizer: str, num_classes: int):
    """One window, models first: forward, hand-derived truncated backward, optimizer update.

    Returns (params, opt, next state, loss [M], accuracy [M], probs [M,B,T,C]).
    """
    loss, acc, probs, last, grads = loss_and_grads(params, x, y, state, num_classes)
    new_params, new_opt = apply_updates(optimizer, tuple(params), tuple(grads), opt, lr)
    return Params(*new_params), new_opt, last, loss, acc, probs
