"""JAX implementations of the backend primitives."""

import jax

NAME = "jax"


def compile_function(function):
    """`jax.jit`."""
    return jax.jit(function)


def value_and_grad(loss_fn):
    """``loss_fn(values, *args) -> loss`` to ``(values, *args) -> (loss, grads)``."""
    return jax.value_and_grad(loss_fn)


def hvp(loss_fn):
    """``(values, vectors, *args) -> H @ vectors`` by forward-over-reverse."""
    grad_fn = jax.grad(loss_fn)

    def wrapped(values, vectors, *args):
        vectors = [jax.numpy.asarray(v, dtype=w.dtype) for v, w in zip(vectors, values)]
        return jax.jvp(lambda w: grad_fn(w, *args), (list(values),), (vectors,))[1]

    return wrapped


def float64_mode():
    """JAX's 64-bit mode for a ``with`` block (thread-local; restored on exit)."""
    return jax.enable_x64(True)


# Gradient statistics (kerastrain/_backend/_statistics.py).

# JAX records before the update, from a dry run of it: a branch reading the old
# weights after the update would make XLA copy the donated weight buffers at
# every step, recording or not (bench/xla_inplace.py).
RECORD_BEFORE_UPDATE = True


def squared_norm(value):
    """Σx² (XLA fuses it into one pass)."""
    return jax.numpy.sum(jax.numpy.square(value))


def snapshot(variables, record):
    """The current values (a read is free in a functional program)."""
    return [jax.numpy.asarray(v.value) for v in variables]


def concrete_bool(value):
    """A Python bool for a concrete value (eager), None for a tracer."""
    try:
        return bool(value)
    except TypeError:  # jax.errors.ConcretizationTypeError is a TypeError
        return None


def assign_where(record, targets, compute):
    """No side effects in branches: select, then assign. Returns the values assigned."""
    from keras import ops

    def kept():
        return tuple(ops.convert_to_tensor(v) for v in targets)

    known = concrete_bool(record)
    if known is None:
        values = ops.cond(record, compute, kept)
    else:  # eager: a Python branch (an eager `cond` traces both branches per call)
        values = compute() if known else kept()
    for variable, value in zip(targets, values):
        variable.assign(value)
    return values
