"""Many MLP trials as one compiled JAX program (the vectorized-trials executor's core).

K members (trials) of the chapter's MLP space are stacked along a leading axis
and trained by one ``jax.jit(lax.scan(jax.vmap(step)))`` per epoch; one
member's math (forward pass, loss, schedules, optimizer updates) is
`_vectorized_mlp_math`'s, shared with the TensorFlow program
(`_vectorized_mlp_tf`). A member equals the same trial trained alone by
``model.fit`` up to float32 summation order (tested to 1e-5 relative).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from keras import ops

from kerastrain._backend._vectorized_mlp_math import (  # noqa: F401 (the program's API)
    GroupShape,
    forward,
    learning_rate,
    loss_and_metric,
    parameter_template,
    ravel,
    regularization,
    train_loss,
    unravel,
    update,
)


@functools.lru_cache(maxsize=32)
def _unravel(shape):
    return ravel_pytree(parameter_template(shape))[1]


@functools.lru_cache(maxsize=32)
def _pieces(shape):
    """``(kernel keys, unravel of the rest)``: how an epoch carries a member's parameters.

    Each hidden kernel is an array of its own (the matmuls read it in place, and its
    update is one elementwise pass); the small rest (biases, BN's scale and offset, the
    output layer) stays one flat vector, so the update has a few large fusions to
    compile, not three per parameter. (Slicing kernels out of one flat vector and
    concatenating their gradients back every step cost a fifth of a digits epoch on
    the 2-core CPU; one fusion set per parameter cost a third more compile time.)
    """
    template = parameter_template(shape)
    kernels = tuple(key for key in sorted(template) if key.startswith("kernel_"))
    rest = {key: value for key, value in template.items() if key not in kernels}
    return kernels, ravel_pytree(rest)[1]


def _to_pieces(shape, flat):
    """One member's flat vector -> ``{kernel key: kernel, "rest": flat rest}``."""
    kernels, _ = _pieces(shape)
    params = _unravel(shape)(flat)
    rest = {key: value for key, value in params.items() if key not in kernels}
    return {**{key: params[key] for key in kernels}, "rest": ravel_pytree(rest)[0]}


def _from_pieces(shape, pieces):
    """`_to_pieces`'s inverse: the member's parameter dict."""
    kernels, unravel_rest = _pieces(shape)
    return {**{key: pieces[key] for key in kernels}, **unravel_rest(pieces["rest"])}


def _pieces_train_loss(pieces, shape, state, member, x, y, rows):
    return train_loss(_from_pieces(shape, pieces), shape, state, member, x, y, rows)


def _member_step(shape, carry, batch):
    """One optimizer step of one member, parameters and slots as `_pieces`: the update is
    one elementwise expression per piece."""
    params, state, slots, member = carry
    x, y, rows = batch
    (loss, (new_state, metric)), grads = jax.value_and_grad(_pieces_train_loss, has_aux=True)(
        params, shape, state, member, x, y, rows)
    iterations = slots["iterations"]
    lr = learning_rate(shape, member, iterations)
    new_params, first, second = {}, {}, {}
    for key in params:
        new_params[key], first[key], second[key] = update(
            shape, member, lr, iterations, grads[key], params[key], slots["first"][key],
            slots["second"][key])
    new_slots = {"first": first, "second": second, "iterations": iterations + 1}
    return (new_params, new_state, new_slots, member), (loss * ops.sum(rows), metric)


def _vmapped_step(shape, per_member):
    step = functools.partial(_member_step, shape)
    batch_axes = (0, 0, None) if per_member else None
    return jax.vmap(step, in_axes=((0, 0, 0, 0), batch_axes))


@functools.lru_cache(maxsize=32)
def train_epoch_function(shape, per_member):
    """`_epoch`, jitted (its params, state and slots donated)."""
    return jax.jit(_epoch(shape, per_member), donate_argnums=(0, 1, 2))


def _epoch(shape, per_member):
    """ ``(params, state, slots, member, x, y, index, valid) -> (..., sums)``.

    ``index``: ``(batches, batch_size)`` rows of ``x`` / ``y`` every member
    trains on, or ``(batches, members, batch_size)`` with ``per_member`` (each
    member its own data: the folds of cross-validation); ``valid``:
    ``(batches, batch_size)``, all ones but in the last batch when it is
    ``model.fit``'s smaller one (padded, so one step body serves every batch
    and is compiled once). Batches are gathered inside the program. Returns
    the new params, state and slots and, per member, the sum of batch losses
    times batch sizes and the sum of the metric.
    """
    vstep = _vmapped_step(shape, per_member)

    def epoch(params, state, slots, member, x, y, index, valid):
        def body(carry, batch):
            rows, mask = batch
            return vstep(carry, (x[rows], y[rows], mask))

        to_trees = jax.vmap(functools.partial(_to_pieces, shape))
        to_flat = jax.vmap(lambda pieces: ravel_pytree(_from_pieces(shape, pieces))[0])
        trees = {"first": to_trees(slots["first"]), "second": to_trees(slots["second"]),
                 "iterations": slots["iterations"]}
        carry = (to_trees(params), state, trees, member)
        carry, (losses, metrics) = jax.lax.scan(body, carry, (index, valid))
        params, state, trees, _ = carry
        slots = {"first": to_flat(trees["first"]), "second": to_flat(trees["second"]),
                 "iterations": trees["iterations"]}
        return to_flat(params), state, slots, losses.sum(axis=0), metrics.sum(axis=0)

    return epoch


def _member_eval(shape, flat, state, member, x, y, valid):
    outputs, _ = forward(shape, _unravel(shape)(flat), state, member, x, False)
    losses, metric = loss_and_metric(shape, outputs, y)
    return ops.sum(losses * valid), ops.sum(metric * valid)


@functools.lru_cache(maxsize=32)
def evaluate_function(shape, per_member):
    """`_evaluate`, jitted."""
    return jax.jit(_evaluate(shape, per_member))


@functools.lru_cache(maxsize=32)
def train_and_evaluate_function(shape, per_member):
    """One epoch and its evaluation as one program (one compile per group, not two):
    ``(params, state, slots, member, x, y, index, valid, x_val, y_val, val_index,
    val_valid, count) -> (params, state, slots, loss, metric, val_loss, val_metric)``,
    the arguments and results of `_epoch` and `_evaluate` in turn."""
    train, evaluate = _epoch(shape, per_member), _evaluate(shape, per_member)

    def both(params, state, slots, member, x, y, index, valid, x_val, y_val, val_index,
             val_valid, count):
        params, state, slots, loss, metric = train(params, state, slots, member, x, y,
                                                   index, valid)
        val_loss, val_metric = evaluate(params, state, member, x_val, y_val, val_index,
                                        val_valid, count)
        return params, state, slots, loss, metric, val_loss, val_metric

    return jax.jit(both, donate_argnums=(0, 1, 2))


def _evaluate(shape, per_member):
    """``(params, state, member, x, y, index, valid, count) -> (loss, metric)``.

    The validation rows come in equal chunks, ``(chunks, chunk)`` for all or
    ``(members, chunks, chunk)`` with ``per_member``; ``valid`` masks the
    padding; ``count`` is the number of validation examples (per member). The
    loss includes the L2 term, as Keras's ``val_loss`` does.
    """
    axis = 0 if per_member else None
    member_eval = jax.vmap(functools.partial(_member_eval, shape),
                           in_axes=(0, 0, 0, axis, axis, axis))

    def evaluate(params, state, member, x, y, index, valid, count):
        def body(totals, chunk):
            rows, mask = chunk
            loss, metric = member_eval(params, state, member, x[rows], y[rows], mask)
            return (totals[0] + loss, totals[1] + metric), None

        zeros = jnp.zeros((shape.members,), jnp.float32)
        if per_member:  # scan over chunks: (members, chunks, chunk) -> (chunks, members, chunk)
            index, valid = jnp.swapaxes(index, 0, 1), jnp.swapaxes(valid, 0, 1)
        (loss, metric), _ = jax.lax.scan(body, (zeros, zeros), (index, valid))
        penalty = jax.vmap(lambda flat, m: regularization(
            shape, _unravel(shape)(flat), m))(params, member)
        return loss / count + penalty, metric / count

    return evaluate


@jax.jit
def keep_best(best, current, improved):
    """``current`` where a member ``improved``, else ``best`` (its best-epoch weights)."""
    def choose(b, c):
        mask = improved.reshape((-1,) + (1,) * (c.ndim - 1))
        return jnp.where(mask, c, b)

    return jax.tree_util.tree_map(choose, best, current)


def precompile(function, args, optimize=True):
    """``function`` (jitted) compiled for ``args``: with this platform's `compiler_options`
    where ``optimize``."""
    lowered = function.lower(*args)
    return lowered.compile(compiler_options()) if optimize else lowered.compile()


def platform():
    """The platform the programs run on: ``"cpu"``, ``"gpu"`` or ``"tpu"``."""
    return jax.default_backend()


# XLA's CPU backend optimizes at LLVM -O3 by default. At -O2 a group's programs compile
# in 1.5 s instead of 1.7-2.0 s (the default digits space, 16 members, 2-core CPU) and an
# epoch runs 0-5% slower; compiles run beside other groups' epochs on the same cores, so
# a 64-trial digits search ends ~0.7 s sooner (13.8 and 14.0 s in two runs, against
# 14.4-14.9 s in four at the default). Copy insertion by region analysis drops one of the
# three per-step copies XLA makes of a 34 x 256 x 256 kernel and its optimizer slots (the
# update's three fusions each read the old arrays), and 512-bit vectors where the CPU has
# them: together a 34-member depth-2 epoch of width 256 takes 0.72-0.73 CPU-s instead of
# 0.82-0.85 (no effect on a member's numbers beyond float32 summation order; the whole
# digits search 12.3-12.5 s against 12.0-12.8 s, three pairs, 2026-12-04). Not measured
# on an accelerator: there the defaults stay.
_COMPILER_OPTIONS = {"cpu": {"xla_backend_optimization_level": 2,
                             "xla_cpu_copy_insertion_use_region_analysis": True,
                             "xla_cpu_prefer_vector_width": 512}}


def compiler_options():
    """XLA options for compiling a group's programs on this platform (or None)."""
    return _COMPILER_OPTIONS.get(platform())


def copy(tree):
    """A device copy of ``tree`` (a transfer, where ``jnp.copy`` compiles once per shape)."""
    return jax.device_put(tree, may_alias=False)


def to_device(tree):
    """``tree``'s NumPy arrays on the device. ``jax.device_put``, not ``jnp.asarray``: on
    JAX >= 0.10 ``jnp.asarray`` of a NumPy array compiles an identity program per shape
    (20-60 ms each on a 2-core CPU, dozens per search)."""
    return jax.device_put(tree)


def to_host(tree):
    return jax.tree_util.tree_map(np.asarray, jax.device_get(tree))
