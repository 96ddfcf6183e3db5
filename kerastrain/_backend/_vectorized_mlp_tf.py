"""Many MLP trials as one TensorFlow program: ``tf.vectorized_map`` over one member's step.

The TensorFlow counterpart of `_vectorized_mlp` (JAX), with the same API for
`kerastrain.tuning._group.GroupTrainer`. One member's math is
`_vectorized_mlp_math`'s (``keras.ops`` on the TensorFlow backend); a step of
every member is that math under a ``tf.GradientTape``, mapped over the stacked
members with ``tf.vectorized_map`` (pfor), and an epoch is one ``tf.while_loop``
over its batches inside one ``tf.function``. No XLA: measured on the 2-core
CPU (``bench/tf_vectorized``), ``jit_compile`` made epochs no faster and the
compile 4-9 s instead of 1-2 s.

pfor has no converter for TensorFlow's stateless random ops, so each member's
dropout draw runs in a while loop over the members inside the step (``warn``
off: that is expected, not news to the user). The rest is vectorized.

One program runs at a time in a process (`_OneAtATime`): TensorFlow rewrites
some sums of these graphs into temporary variables named after their nodes, in a
per-step container that concurrent function calls share, and every program here
has the same node names; two groups' epochs at once (`_vectorized._side_by_side`
runs groups in threads) raised ``AlreadyExistsError: Resource
__per_step_0/while/body/_1/while/loop_body/AddN_13/pfor/AddN/tmp_var`` in a digits
search. The threads still overlap everything else (building members, checkpoints,
results), and one program's ops use every core.
"""

from __future__ import annotations

import functools
import threading

import tensorflow as tf
from keras import ops

from kerastrain._backend._vectorized_mlp_math import (
    forward,
    layout,
    learning_rate,
    loss_and_metric,
    regularization,
    train_loss,
    update,
)

_RUNNING = threading.Lock()


class _OneAtATime:
    """A ``tf.function`` whose calls hold the process's program lock (see above)."""

    def __init__(self, function):
        self.function = function

    def __call__(self, *args):
        with _RUNNING:
            return self.function(*args)

    def get_concrete_function(self, *args):
        return self.function.get_concrete_function(*args)


def _unravel(shape, flat):
    """One member's flat parameter vector as its parameter dict (views of ``flat``)."""
    return {key: tf.reshape(flat[start:stop], dims) for key, start, stop, dims in layout(shape)}


def _map(function, elems):
    return tf.vectorized_map(function, elems, fallback_to_while_loop=True, warn=False)


def _member_step(shape, params, state, slots, member, x, y, rows):
    """One optimizer step of one member (flat parameters and slots, as in JAX's)."""
    with tf.GradientTape() as tape:
        tape.watch(params)
        loss, (new_state, metric) = train_loss(_unravel(shape, params), shape, state, member,
                                               x, y, rows)
    grads = tape.gradient(loss, params)
    iterations = slots["iterations"]
    lr = learning_rate(shape, member, iterations)
    new_params, first, second = update(shape, member, lr, iterations, grads, params,
                                       slots["first"], slots["second"])
    new_slots = {"first": first, "second": second, "iterations": iterations + 1}
    return new_params, new_state, new_slots, loss * ops.sum(rows), metric


@functools.lru_cache(maxsize=32)
def train_epoch_function(shape, per_member):
    """``(params, state, slots, member, x, y, index, valid) -> (..., sums)``, as
    `_vectorized_mlp.train_epoch_function` (a ``tf.function``)."""

    def step(params, state, slots, member, x, y, rows, mask):
        if per_member:  # rows: (members, batch), each member its own
            return _map(lambda a: _member_step(shape, a[0], a[1], a[2], a[3],
                                               tf.gather(x, a[4]), tf.gather(y, a[4]), mask),
                        (params, state, slots, member, rows))
        xb, yb = tf.gather(x, rows), tf.gather(y, rows)
        return _map(lambda a: _member_step(shape, a[0], a[1], a[2], a[3], xb, yb, mask),
                    (params, state, slots, member))

    @_OneAtATime
    @tf.function(autograph=False, reduce_retracing=True)
    def epoch(params, state, slots, member, x, y, index, valid):
        zeros = tf.zeros((shape.members,), tf.float32)

        def body(i, params, state, slots, losses, metrics):
            params, state, slots, loss, metric = step(params, state, slots, member, x, y,
                                                      index[i], valid[i])
            return i + 1, params, state, slots, losses + loss, metrics + metric

        _, params, state, slots, losses, metrics = tf.while_loop(
            lambda i, *_: i < tf.shape(index)[0], body,
            (tf.constant(0), params, state, slots, zeros, zeros))
        return params, state, slots, losses, metrics

    return epoch


def _member_eval(shape, flat, state, member, x, y, valid):
    outputs, _ = forward(shape, _unravel(shape, flat), state, member, x, False)
    losses, metric = loss_and_metric(shape, outputs, y)
    return ops.sum(losses * valid), ops.sum(metric * valid)


@functools.lru_cache(maxsize=32)
def evaluate_function(shape, per_member):
    """``(params, state, member, x, y, index, valid, count) -> (loss, metric)``, as
    `_vectorized_mlp.evaluate_function` (a ``tf.function``)."""

    def chunk_sums(params, state, member, x, y, rows, mask):
        if per_member:  # rows, mask: (members, chunk)
            return _map(lambda a: _member_eval(shape, a[0], a[1], a[2], tf.gather(x, a[3]),
                                               tf.gather(y, a[3]), a[4]),
                        (params, state, member, rows, mask))
        xb, yb = tf.gather(x, rows), tf.gather(y, rows)
        return _map(lambda a: _member_eval(shape, a[0], a[1], a[2], xb, yb, mask),
                    (params, state, member))

    @_OneAtATime
    @tf.function(autograph=False, reduce_retracing=True)
    def evaluate(params, state, member, x, y, index, valid, count):
        if per_member:  # (members, chunks, chunk) -> (chunks, members, chunk)
            index, valid = tf.transpose(index, (1, 0, 2)), tf.transpose(valid, (1, 0, 2))
        zeros = tf.zeros((shape.members,), tf.float32)

        def body(i, losses, metrics):
            loss, metric = chunk_sums(params, state, member, x, y, index[i], valid[i])
            return i + 1, losses + loss, metrics + metric

        _, loss, metric = tf.while_loop(lambda i, *_: i < tf.shape(index)[0], body,
                                        (tf.constant(0), zeros, zeros))
        penalty = _map(lambda a: regularization(shape, _unravel(shape, a[0]), a[1]),
                       (params, member))
        return loss / count + penalty, metric / count

    return evaluate


@_OneAtATime
@tf.function(autograph=False, reduce_retracing=True)
def keep_best(best, current, improved):
    """``current`` where a member ``improved``, else ``best`` (its best-epoch weights)."""
    def choose(b, c):
        mask = tf.reshape(improved, [-1] + [1] * (len(c.shape) - 1))
        return tf.where(mask, c, b)

    return tf.nest.map_structure(choose, best, current)


def precompile(function, args, optimize=True):
    """Trace ``function`` for ``args`` now (TensorFlow's "compile": a graph, no XLA);
    the returned callable runs the traced graph."""
    del optimize
    function.get_concrete_function(*args)
    return function


def platform():
    """The platform the programs run on: ``"cpu"`` or ``"gpu"``."""
    return "gpu" if tf.config.list_logical_devices("GPU") else "cpu"


def compiler_options():
    return None


def copy(tree):
    """``tree`` (TensorFlow's tensors are immutable and nothing is donated: no copy needed)."""
    return tree


def to_device(tree):
    """``tree``'s NumPy arrays as tensors."""
    return tf.nest.map_structure(tf.convert_to_tensor, tree)


def to_host(tree):
    """``tree``'s tensors as NumPy arrays that own their memory.

    Not views of the tensors' buffers: a NumPy view into a TensorFlow buffer at an
    offset (a member's bias in its flat vector) converts back to a tensor aliasing that
    buffer unaligned, and assigning it to a Keras variable aborts the process
    (``tensor.cc: Check failed: IsAligned()``, seen in a digits search's checkpoints).
    """
    return tf.nest.map_structure(lambda leaf: leaf.numpy().copy(), tree)
