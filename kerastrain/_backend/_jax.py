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
