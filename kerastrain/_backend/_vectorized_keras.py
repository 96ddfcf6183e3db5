"""Compiled Keras models trained as one JAX program: ``vmap`` over Keras's own train step.

For a user's ``build(hp)`` model (any model Keras's JAX trainer can fit), the
members of a group are separately built and compiled Keras models with the
same *program*: `signature` is the jaxpr of ``model.train_step`` (every
Python constant a layer, loss or optimizer bakes into the step appears in
it), so two members share a program exactly when their steps differ only in
variable values: weights, optimizer state (a learning rate Keras keeps in a
variable), metric state and random-seed state (dropout). The step itself is
Keras's (``JAXTrainer.train_step`` / ``test_step``), mapped over a leading
member axis of the state and of the batch (each member gathers its own rows,
so members may see different data orders or cross-validation folds).

As ``model.fit`` does, an epoch runs its full batches (here one ``lax.scan``)
and then its last, smaller batch (a second compiled shape), and the logs of an
epoch are those of its last step: the running means of the epoch.
"""

from __future__ import annotations

import hashlib

import jax
import jax.numpy as jnp
import numpy as np

STATE_PARTS = ("trainable", "non_trainable", "optimizer", "metrics")


def model_state(model):
    """``(trainable, non_trainable, optimizer, metrics)`` values of a compiled, built model."""
    return ([v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables],
            [v.value for v in model.optimizer.variables],
            [v.value for v in model.metrics_variables])


def _abstract(tree):
    return jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(np.shape(a), a.dtype), tree)


def signature(model, x, y):
    """A digest of ``model.train_step``'s jaxpr (and its constants) for one batch ``(x, y)``."""
    state = _abstract(model_state(model))
    closed = jax.make_jaxpr(model.train_step)(state, (_abstract(x), _abstract(y)))
    digest = hashlib.sha256(str(closed.jaxpr).encode())
    for const in closed.consts:
        value = np.asarray(const)
        digest.update(str((value.shape, value.dtype)).encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def log_names(model, x, y):
    """The keys of ``model.train_step``'s logs (traced, not run)."""
    state = _abstract(model_state(model))
    logs, _ = jax.eval_shape(model.train_step, state, (_abstract(x), _abstract(y)))
    return list(logs)


def stack(states):
    """Members' state trees -> one tree of arrays with a leading member axis (on device)."""
    return jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *states)


def unstack(tree, index):
    return jax.tree_util.tree_map(lambda leaf: leaf[index], tree)


def to_host(tree):
    return jax.device_get(tree)


def train_function(model):
    """``(state, x, y, index) -> (state, logs)``: ``index`` (steps, members, batch) rows.

    Runs ``steps`` train steps of every member (a scan); logs are the last step's.
    """
    step = jax.vmap(model.train_step, in_axes=(0, 0))

    def run(state, x, y, index):
        def body(state, rows):
            logs, state = step(state, (x[rows], y[rows]))
            return state, logs

        state, logs = jax.lax.scan(body, state, index)
        return state, jax.tree_util.tree_map(lambda leaf: leaf[-1], logs)

    return jax.jit(run, donate_argnums=0)


def test_function(model):
    """``(state, x, y, index) -> (state, logs)`` of ``model.test_step`` (a scan); the state
    ``(trainable, non_trainable, metrics)`` comes back with its metrics updated."""
    step = jax.vmap(model.test_step, in_axes=(0, 0))

    def run(state, x, y, index):
        trainable, non_trainable, metrics = state

        def body(metrics, rows):
            logs, (_, _, metrics) = step((trainable, non_trainable, metrics),
                                         (x[rows], y[rows]))
            return metrics, logs

        metrics, logs = jax.lax.scan(body, metrics, index)
        return ((trainable, non_trainable, metrics),
                jax.tree_util.tree_map(lambda leaf: leaf[-1], logs))

    return jax.jit(run)


def keep_where(best, current, mask):
    """``best`` with the members flagged in ``mask`` replaced by ``current`` (copies)."""
    mask = jax.device_put(np.asarray(mask))

    def pick(old, new):
        return jnp.where(mask.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)

    return jax.tree_util.tree_map(pick, best, current)


def copy(tree):
    """A device copy of ``tree`` (see `_vectorized_mlp.copy`)."""
    return jax.device_put(tree, may_alias=False)


def to_device(array):
    """``array`` on the device, without a compile (see `_vectorized_mlp.to_device`)."""
    return jax.device_put(array)


def leaves(tree):
    return jax.tree_util.tree_leaves(tree)
