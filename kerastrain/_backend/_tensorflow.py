"""TensorFlow implementations of the backend primitives."""

import contextlib

import tensorflow as tf

NAME = "tensorflow"


def compile_function(function):
    """`tf.function` with relaxed shapes, so new batch sizes do not retrace."""
    return tf.function(function, reduce_retracing=True)


def value_and_grad(loss_fn):
    """``loss_fn(values, *args) -> loss`` to ``(values, *args) -> (loss, grads)``."""

    def wrapped(values, *args):
        values = [tf.convert_to_tensor(value) for value in values]
        with tf.GradientTape() as tape:
            tape.watch(values)
            loss = loss_fn(values, *args)
        grads = tape.gradient(loss, values, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return loss, grads

    return wrapped


def hvp(loss_fn):
    """``(values, vectors, *args) -> H @ vectors`` by reverse-over-reverse."""

    def wrapped(values, vectors, *args):
        values = [tf.convert_to_tensor(value) for value in values]
        with tf.GradientTape() as outer:
            outer.watch(values)
            with tf.GradientTape() as inner:
                inner.watch(values)
                loss = loss_fn(values, *args)
            grads = inner.gradient(
                loss, values, unconnected_gradients=tf.UnconnectedGradients.ZERO
            )
            dot = tf.add_n(
                [tf.reduce_sum(g * tf.cast(v, g.dtype)) for g, v in zip(grads, vectors)]
            )
        return outer.gradient(dot, values, unconnected_gradients=tf.UnconnectedGradients.ZERO)

    return wrapped


def float64_mode():
    """TensorFlow always supports float64: nothing to change."""
    return contextlib.nullcontext()
