"""The math of one member of the chapter's MLP space, backend-neutral (``keras.ops``).

The vectorized-trials executor trains K members (trials) stacked along a
leading axis as one program: `_vectorized_mlp` maps this over the members with
``jax.vmap`` inside ``jax.jit``; `_vectorized_mlp_tf` with ``tf.vectorized_map``
inside ``tf.function``. Members differ in everything the space samples, as
*traced values*, not Python constants: depth and width (padded to the group's
largest and masked), activation (every activation of the space is computed and
the member's one selected), batch normalization on/off, dropout rate (each
member draws from its own seed state, exactly the masks the backend's Keras
``Dropout`` would draw at the member's true width), L2 coefficient, optimizer
family and its hyperparameters, learning rate and schedule. The one backend
branch is the dropout draw (`_dropout`): each backend's Keras ``Dropout`` draws
its masks with its own generator, and a member reproduces them exactly.

Exactness: each member computes its own network: padded units are multiplied
by a zero mask after every hidden layer, so they contribute nothing to the
forward pass and get exactly zero gradients; their weights start at zero and
every optimizer here leaves a zero weight with a zero gradient at zero (zero
updates, weight decay of zero is zero, L2 of zero is zero). The layer math is
Keras's own (`keras.ops` / `keras.activations`) and the update formulas are
Keras's (the kerastrain presets' ``convention="keras"``), so a member equals the
same trial trained alone by Keras up to float32 summation order (tested to 1e-5
relative).
"""

from __future__ import annotations

import dataclasses
import functools

import keras
import numpy as np
from keras import ops

FAMILIES = ("sgd", "adagrad", "adadelta", "rmsprop", "adam")
SCHEDULES = ("constant", "exponential", "inverse_time", "step", "cosine")
BN_MOMENTUM = 0.99
BN_EPSILON = 1e-3


@dataclasses.dataclass(frozen=True)
class GroupShape:
    """What is static in one compiled program (one cache entry per value)."""

    input_dim: int
    outputs: int  # classes, or 1 for regression
    classification: bool
    depth: int  # the largest number of hidden layers
    width: int  # the largest units of a hidden layer
    columns: int  # a hidden layer's affine outputs: width, or up to 2x for maxout pieces
    activations: tuple  # activation names computed (maxout included)
    families: tuple  # optimizer families computed
    schedules: tuple  # schedules computed
    batch_norm: bool  # some member uses batch normalization
    dropout: bool  # some member uses dropout
    batch_size: int
    members: int


# -- forward pass -----------------------------------------------------------
def _select(index, values):
    """``values[index]`` for a traced integer index (a chain of ``where``)."""
    result = values[0]
    for position, value in enumerate(values[1:], start=1):
        result = ops.where(index == position, value, result)
    return result


def _activation(name, z, width):
    """Activation ``name`` of the affine outputs ``z`` (batch, columns), ``width`` wide.

    Maxout's two pieces of unit ``j`` sit at columns ``j`` and ``half + j`` (``half =
    columns // 2``), so a maxout member of up to ``half`` units shares a program with
    members of ``columns`` plain units at no extra matmul work.
    """
    if name == "maxout":
        half = z.shape[-1] // 2
        first, second = z[:, :half], z[:, half:2 * half]
        if keras.config.backend() == "jax":
            # JAX's elementwise maximum has the values and the tie gradients (half each)
            # of Keras's Maxout's max over the pieces, as a smaller, faster program
            unit = ops.maximum(first, second)
        else:  # TensorFlow's maximum sends a tie's whole gradient to one piece
            unit = ops.max(ops.stack([first, second], axis=1), axis=1)
        if half >= width:
            return unit[:, :width]
        return ops.pad(unit, [[0, 0], [0, width - half]])
    return keras.activations.get(name)(z[:, :width])


def _dropout(values, seed, member, units, batch, width):
    """The backend's Keras ``Dropout`` at the member's true width ``units``, in the
    padded layout (``values``: ``(batch, width)``).

    Keras draws a ``(batch, units)`` uniform tensor from the layer's seed state. Both
    backends' counter-based generators (JAX's partitionable threefry, TensorFlow's
    Philox) make element ``(i, j)`` of that draw element ``i * units + j`` of a flat
    draw, so the padded layout gathers those positions of one flat draw.
    """
    if keras.config.backend() == "tensorflow":
        import tensorflow as tf

        # tf.nn.experimental.stateless_dropout: keep where uniform >= rate, scale by
        # 1 / (1 - rate) (computed in Python, as Keras passes a Python rate)
        uniform = tf.random.stateless_uniform((batch * width,), seed=seed, dtype=values.dtype)
        index = tf.range(values.shape[0])[:, None] * units + tf.range(width)[None, :]
        mask = tf.gather(uniform, index) >= member["rate"]
        return tf.where(mask, values * member["scale"], tf.zeros_like(values))
    import jax
    import jax.numpy as jnp

    from kerastrain._backend._threefry import uniform_at

    # jax.random.bernoulli(seed, keep): keep where uniform < keep, divide by keep; the
    # flat draw's elements are hashed where they are needed (no draw of batch * width
    # values and gather: `_threefry`)
    keep = member["keep"]
    rows = jnp.arange(values.shape[0], dtype=jnp.uint32)[:, None] * units.astype(jnp.uint32)
    index = rows + jnp.arange(width, dtype=jnp.uint32)[None, :]
    mask = uniform_at(seed, index) < keep
    return jax.lax.select(mask, values / keep, jnp.zeros_like(values))


def _moments(values, rows):
    """Keras's ``ops.moments`` over the batch, counting only the valid ``rows``.

    With every row valid this is ``jnp.mean`` and ``jnp.var``'s arithmetic; a
    padded last batch (``model.fit``'s smaller one) counts its real rows only.
    """
    weights = rows[:, None]
    count = ops.sum(rows)
    mean = ops.sum(values * weights, axis=0) / count
    variance = ops.sum(ops.square((values - mean) * weights), axis=0) / count
    return mean, variance


def forward(shape, params, state, member, x, training, rows=None):
    """One member's outputs (probabilities or values) and its new non-trainable state.

    ``rows``: in training, the batch's valid-row mask (all ones but in the padded
    last batch of an epoch).
    """
    h = x
    new_state = dict(state)
    batch = x.shape[0]
    for layer in range(shape.depth):
        active = layer < member["depth"]
        z = ops.add(ops.matmul(h, params[f"kernel_{layer}"]), params[f"bias_{layer}"])
        a = _select(member["activation"],
                    [_activation(name, z, shape.width) for name in shape.activations])
        if shape.batch_norm:
            moving_mean, moving_var = state[f"mean_{layer}"], state[f"var_{layer}"]
            if training:
                mean, variance = _moments(a, rows)
                use = ops.logical_and(member["batch_norm"], active)
                new_state[f"mean_{layer}"] = ops.where(
                    use, moving_mean * BN_MOMENTUM + mean * (1.0 - BN_MOMENTUM), moving_mean)
                new_state[f"var_{layer}"] = ops.where(
                    use, moving_var * BN_MOMENTUM + variance * (1.0 - BN_MOMENTUM), moving_var)
            else:
                mean, variance = moving_mean, moving_var
            normalized = ops.batch_normalization(
                a, mean, variance, axis=-1, offset=params[f"beta_{layer}"],
                scale=params[f"gamma_{layer}"], epsilon=BN_EPSILON)
            a = ops.where(member["batch_norm"], normalized, a)
        if shape.dropout and training:
            keep = member["keep"]
            seed = state[f"seed_{layer}"]
            dropped = _dropout(a, seed, member, member["units"][layer], batch, shape.width)
            uses = keep < 1.0
            a = ops.where(uses, dropped, a)
            step = ops.convert_to_tensor(np.asarray([0, 1]), dtype=seed.dtype)
            new_state[f"seed_{layer}"] = ops.where(ops.logical_and(uses, active),
                                                   seed + step, seed)
        a = a * member["unit_mask"][layer]
        h = a if layer == 0 else ops.where(active, a, h)
    out = ops.add(ops.matmul(h, params["out_kernel"]), params["out_bias"])
    if shape.classification:
        out = keras.activations.softmax(out)
    return out, new_state


def loss_and_metric(shape, outputs, y):
    """Per-sample loss and metric (accuracy / absolute error), as Keras compiles them."""
    if shape.classification:
        losses = keras.losses.sparse_categorical_crossentropy(y, outputs)
        metric = ops.cast(ops.equal(ops.argmax(outputs, axis=-1), y), outputs.dtype)
        return losses, metric
    target = ops.reshape(ops.cast(y, outputs.dtype), (-1, 1))
    return keras.losses.mean_squared_error(target, outputs), \
        ops.mean(ops.abs(target - outputs), axis=-1)


def regularization(shape, params, member):
    total = 0.0
    for layer in range(shape.depth):
        total = total + member["l2"] * ops.sum(ops.square(params[f"kernel_{layer}"]))
    return total


def train_loss(params, shape, state, member, x, y, rows):
    outputs, new_state = forward(shape, params, state, member, x, True, rows)
    losses, metric = loss_and_metric(shape, outputs, y)
    loss = ops.sum(losses * rows) / ops.sum(rows) + regularization(shape, params, member)
    return loss, (new_state, ops.sum(metric * rows))


# -- schedules and optimizers -------------------------------------------------
def learning_rate(shape, member, iterations):
    """The member's schedule at ``iterations`` (float32 step), kerastrain's/Keras's formulas."""
    step = ops.cast(iterations, "float32")
    lr0, steps = member["learning_rate"], member["decay_steps"]
    values = []
    for name in shape.schedules:
        if name == "constant":
            values.append(lr0)
        elif name == "exponential":
            values.append(lr0 * ops.exp(member["exp_rate"] * (step / steps)))
        elif name == "inverse_time":
            values.append(lr0 / (1.0 + member["inverse_rate"] * (step / steps)))
        elif name == "step":
            values.append(lr0 * ops.power(member["step_gamma"], ops.floor(step / steps)))
        elif name == "cosine":
            total = member["cosine_steps"]
            fraction = ops.minimum(step, total) / total
            decayed = 0.5 * (1.0 + ops.cos(np.float32(np.pi) * fraction))
            values.append(lr0 * decayed)
    return _select(member["schedule"], values)


def update(shape, member, lr, iterations, g, w, s1, s2):
    """One variable's update for the member's optimizer family (Keras's formulas).

    Every family's step is ``w - n / (sqrt(r) + e)`` (Adadelta's ``w + lr * -(n / sqrt(r))``)
    with its own numerator ``n``, radicand ``r`` and outer epsilon ``e``: SGD's
    ``w + m`` is ``w - (-m) / (sqrt(1) + 0)``, bit for bit. So the cheap moment updates
    are computed per family and selected, and the expensive square root and division
    run once for all families (they dominated the update when each family had its own).
    """
    index, eps = member["family"], member["epsilon"]
    square, no_epsilon = ops.square(g), ops.zeros_like(eps)
    parts = []  # per family: (numerator, radicand, outer epsilon, first slot, second slot)
    for family in shape.families:
        if family == "sgd":  # momentum 0 gives plain SGD's w - g * lr bit for bit
            mom = member["momentum"]
            m = s1 * mom - g * lr
            step = ops.where(member["nesterov"], m * mom - g * lr, m)
            parts.append((-step, ops.ones_like(w), no_epsilon, m, s2))
        elif family in ("adagrad", "rmsprop"):
            if family == "adagrad":
                accumulated = s1 + square
            else:
                accumulated = member["rho"] * s1 + member["one_minus_rho"] * square
            parts.append((lr * g, accumulated + eps, no_epsilon, accumulated, s2))
        elif family == "adadelta":  # its delta accumulator needs the quotient: below
            grad_acc = member["rho"] * s1 + member["one_minus_rho"] * square
            parts.append((ops.sqrt(s2 + eps) * g, grad_acc + eps, no_epsilon, grad_acc, s2))
        elif family == "adam":
            local_step = ops.cast(iterations + 1, w.dtype)
            b1_power = ops.power(member["beta_1"], local_step)
            b2_power = ops.power(member["beta_2"], local_step)
            alpha = lr * ops.sqrt(1 - b2_power) / (1 - b1_power)
            m = s1 + (g - s1) * member["one_minus_beta_1"]
            v = s2 + (square - s2) * member["one_minus_beta_2"]
            parts.append((m * alpha, v, eps, m, v))
    numerator, radicand, outer, first, second = (_select(index, list(values))
                                                 for values in zip(*parts))
    quotient = numerator / (ops.sqrt(radicand) + outer)
    base = w
    if "adam" in shape.families:  # AdamW decays the weights before the Adam step
        decays = ops.logical_and(index == shape.families.index("adam"),
                                 member["weight_decay"] > 0)
        base = ops.where(decays, w - w * member["weight_decay"] * lr, w)
    new_w = base - quotient
    if "adadelta" in shape.families:
        delta = -quotient
        adadelta = index == shape.families.index("adadelta")
        new_w = ops.where(adadelta, w + lr * delta, new_w)
        second = ops.where(adadelta, member["rho"] * s2 + member["one_minus_rho"]
                           * ops.square(delta), second)
    return new_w, first, second


def parameter_template(shape):
    """Zeros shaped like one member's parameters (the layout of its flat vector)."""
    params = {}
    for layer in range(shape.depth):
        rows = shape.input_dim if layer == 0 else shape.width
        params[f"kernel_{layer}"] = np.zeros((rows, shape.columns), np.float32)
        params[f"bias_{layer}"] = np.zeros((shape.columns,), np.float32)
        if shape.batch_norm:
            params[f"gamma_{layer}"] = np.zeros((shape.width,), np.float32)
            params[f"beta_{layer}"] = np.zeros((shape.width,), np.float32)
    params["out_kernel"] = np.zeros((shape.width, shape.outputs), np.float32)
    params["out_bias"] = np.zeros((shape.outputs,), np.float32)
    return params


def ravel(params):
    """One member's parameter dict as its flat vector (the program's layout: JAX's
    ``ravel_pytree`` order, dict keys sorted), in NumPy on the host."""
    return np.concatenate([np.asarray(params[key], np.float32).reshape(-1)
                           for key in sorted(params)])


@functools.lru_cache(maxsize=32)
def layout(shape):
    """``(key, start, stop, array shape)`` of each parameter in the flat vector."""
    layout, start = [], 0
    for key, template in sorted(parameter_template(shape).items()):
        layout.append((key, start, start + template.size, template.shape))
        start += template.size
    return tuple(layout)


def unravel(shape, flat):
    """One member's flat vector back as its parameter dict (host NumPy views; the
    inverse of `ravel`, without running a JAX op per member)."""
    flat = np.asarray(flat)
    return {key: flat[start:stop].reshape(dims) for key, start, stop, dims in layout(shape)}


